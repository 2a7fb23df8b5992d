import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { argmax } from "../model/ops.js";
import { LlamaModel } from "../model/llama.js";
import { ropeFrequencies } from "../model/rope.js";
import { openGguf } from "./gguf.js";
import { lenmlTokenizer, llama31ShapedGguf, llama3RopeFactors } from "./real-shaped.js";

// The Llama-3.1-shaped file read back through the real loader. Its tokenizer, and the Gemma-3-shaped file, are
// exercised end to end by eval-runner's real-shaped-models.test.ts.

const dir = mkdtempSync(join(tmpdir(), "razorkv-real-shaped-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llama3RopeFactors", () => {
  it("divides RoPE's frequencies as transformers' llama3 scaling does (Llama 3.1 8B's head and a small one)", () => {
    const llama3 = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } as const;
    for (const headDim of [128, 8]) {
      const factors = llama3RopeFactors(500000, headDim).map(Math.fround);
      const viaFactors = ropeFrequencies(headDim, 500000, { type: "frequency-factors", factors }).invFreq;
      const reference = ropeFrequencies(headDim, 500000, llama3).invFreq;
      // within float32 rounding: the converter divides in float32 too, transformers multiplies by the smoothing
      for (let i = 0; i < headDim / 2; i++) {
        expect(Math.abs(viaFactors[i] - reference[i]) / reference[i], `head ${headDim}, frequency ${i}`).toBeLessThan(1e-6);
      }
      // the small head keeps the three regimes: unscaled, smoothed and divided by the factor
      if (headDim === 8) expect(factors.map((f) => (f === 1 ? "1" : f === 8 ? "8" : "smooth"))).toEqual(["1", "1", "smooth", "8"]);
    }
  });
});

describe("llama31ShapedGguf", () => {
  const { json, config } = lenmlTokenizer("llama3_1");
  const eot = json.added_tokens.find((t) => t.content === "<|eot_id|>")!.id;
  const newline2 = json.model.vocab["\u010a\u010a"];
  const path = join(dir, "llama.gguf");
  writeFileSync(path, llama31ShapedGguf({ tokenizerJson: json, tokenizerConfig: config, endOfTurnAfter: newline2, seed: 4 }).bytes);

  it("reads back as Llama 3.1 8B's shape: rope_freqs as frequency factors, 128256 tokens, untied, 131072 context", async () => {
    const model = await openGguf(path);
    const c = model.config;
    expect(c).toMatchObject({ architecture: "llama", vocabSize: 128256, tiedEmbeddings: false, maxContext: 131072, ropeTheta: 500000, numKvHeads: 2 });
    expect(c.ropeScaling).toEqual({ type: "frequency-factors", factors: llama3RopeFactors(500000, 8).map(Math.fround) });
    const md = model.metadata;
    expect(md["tokenizer.ggml.bos_token_id"]).toBe(128000);
    expect(md["tokenizer.ggml.eos_token_id"]).toBe(eot);
    expect(md["tokenizer.ggml.pre"]).toBe("llama-bpe");
    expect(md["llama.rope.dimension_count"]).toBe(8);
  });

  it("ends its turn right after the token it was given, and only there", async () => {
    const model = new LlamaModel(await openGguf(path));
    const prompt = [128000, 9906, 1917];
    expect(argmax(model.prefill([...prompt, newline2]).logits)).toBe(eot);
    // ".", "\n" and <|eot_id|> itself
    for (const last of [13, 198, eot]) expect(argmax(model.prefill([...prompt, last]).logits), `after ${last}`).not.toBe(eot);
  });
});
