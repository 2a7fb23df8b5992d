/**
 * Parity per architecture on Q4_K_M (issue #16): each family's tiny random-weight model, widened so that
 * llama.cpp's K-quants apply, quantized by `llama-quantize … Q4_K_M` (tools/arch-parity/quantize.py wrote
 * test/fixtures/arch-q4km/). The reference is transformers' own GGUF loading of the same file (gguf-py dequantizes),
 * run under the original config.json where that loader drops a setting (RoPE scaling, sliding window, soft caps,
 * Gemma's query scale: the fixture lists what it lost and what that costs). At every position of a 300-token input,
 * and continuing a 200-token prefill through the cache, our log-probabilities must be within 1e-3 of transformers'.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openGguf } from "./formats/gguf.js";
import { LlamaModel } from "./model/llama.js";
import { maxDifference, maxDifferenceContinued, parityBackends } from "./arch-parity.testing.js";

interface Reference {
  dir: string;
  modelType: string;
  ids: number[];
  targetLogprobs: number[];
  argmax: number[];
  argmaxLogprobs: number[];
  fullRows: { pos: number; logprobs: number[] }[];
  continued: { at: number; targetLogprobs: number[]; lastRow: number[] };
  gguf: string;
  /** ggml type of every tensor, as gguf-py reads the file. */
  tensorTypes: Record<string, string>;
  /** config.json fields transformers' GGUF loader got wrong: [config.json, loader]. */
  ggufLoaderLost: Record<string, [unknown, unknown]>;
  /** How far the GGUF loader's own config moves transformers' log-probs. */
  ggufLoaderEffect: number;
  /** How far the full-precision model's log-probs are from the Q4_K_M model's. */
  quantizationEffect: number;
}
const fixtures = new URL("../test/fixtures/arch-q4km/", import.meta.url).pathname;
const reference = JSON.parse(readFileSync(join(fixtures, "reference-q4km.json"), "utf8")) as {
  tolerance: number;
  models: Record<string, Reference>;
};
const TOLERANCE = 1e-3;

const backends = await parityBackends();

describe.each(Object.entries(reference.models))("%s", (name, ref) => {
  it(`Q4_K_M GGUF: log-probs within ${TOLERANCE} of transformers at every one of ${ref.ids.length} positions`, async () => {
    const weights = await openGguf(join(fixtures, ref.dir, ref.gguf));
    // the file is a real K-quant mixture, read as gguf-py reads it: a Q5_0/Q8_0 fallback would not test Q4_K/Q6_K
    const types = Object.fromEntries([...weights.tensorInfos.values()].map((t) => [t.name, t.typeName]));
    expect(types).toEqual(ref.tensorTypes);
    expect(new Set(Object.values(types))).toEqual(new Set(["F32", "Q4_K", "Q6_K"]));
    for (const backend of backends) {
      const model = new LlamaModel(weights, backend);
      const diff = maxDifference(model, ref);
      const continued = maxDifferenceContinued(model, ref);
      console.info(
        `arch parity ${name} Q4_K_M (${backend.name}): max |Δ log-prob| = ${diff.toExponential(2)}, ` +
          `continuing a ${ref.continued.at}-token prefill ${continued.toExponential(2)}`,
      );
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
      expect(continued).toBeLessThanOrEqual(TOLERANCE);
    }
  }, 60_000); // Gemma 3's six layers take ~5 s on two busy cores, over vitest's default 5 s
});
