/**
 * Parity of our forward pass with a peer implementation (transformers + gguf in float32 on the same GGUF file;
 * tools/parity/reference_logprobs.py wrote the fixture). At every position of three prompts — a sentence, a chat
 * prompt and the first 1024 tokens of an essay — our log-probabilities must be within 1e-3 of the peer's and our
 * argmax must equal its argmax.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { locateRealModel } from "./formats/fixtures.js";
import { loadLanguageModel, type LanguageModel } from "./language-model.js";
import { logSoftmax, argmax } from "./model/ops.js";
import { LlamaModel, PREFILL_UBATCH_ROWS } from "./model/llama.js";

interface ReferencePrompt {
  name: string;
  ids: number[];
  targetLogprobs: number[];
  argmax: number[];
  argmaxLogprobs: number[];
  topk: { pos: number; ids: number[]; logprobs: number[] }[];
}
const fixture = JSON.parse(readFileSync(new URL("../test/fixtures/logprobs-reference.json", import.meta.url), "utf8")) as {
  prompts: ReferencePrompt[];
};

const located = await locateRealModel();
const missing = "missing" in located ? located.missing : null;
const skipLocally = missing !== null && !process.env.CI;
if (skipLocally) console.warn(`parity tests skipped: the real model is not in the local cache (${missing}); run ../shared/bin/seed-hf-cache`);

describe.skipIf(skipLocally)("forward-pass parity with the transformers reference (SmolLM2-135M-Instruct Q4_1)", () => {
  let lm: LanguageModel;
  it("loads the real model (required under CI)", async () => {
    if (missing) throw new Error(`the real model is required under CI: ${missing}`);
    lm = await loadLanguageModel("smollm2-135m-instruct");
    console.info(`parity: forward pass on the ${lm.model.backend.name} backend`);
  }, 120_000);

  for (const prompt of fixture.prompts) {
    it(`${prompt.name} (${prompt.ids.length} tokens): log-probs within 1e-3 and the same argmax at every position`, () => {
      const V = lm.model.config.vocabSize;
      const { logits } = lm.model.prefill(prompt.ids, { logits: "all" });
      let maxDiff = 0;
      const argmaxMismatches: number[] = [];
      const topk = new Map(prompt.topk.map((t) => [t.pos, t]));
      for (let t = 0; t < prompt.ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const lp = logSoftmax(row);
        if (t + 1 < prompt.ids.length) maxDiff = Math.max(maxDiff, Math.abs(lp[prompt.ids[t + 1]] - prompt.targetLogprobs[t]));
        maxDiff = Math.max(maxDiff, Math.abs(lp[prompt.argmax[t]] - prompt.argmaxLogprobs[t]));
        if (argmax(row) !== prompt.argmax[t]) argmaxMismatches.push(t);
        const k = topk.get(t);
        if (k) k.ids.forEach((id, i) => (maxDiff = Math.max(maxDiff, Math.abs(lp[id] - k.logprobs[i]))));
      }
      console.info(`parity ${prompt.name}: max |Δ log-prob| = ${maxDiff.toExponential(2)}`);
      expect(argmaxMismatches).toEqual([]);
      expect(maxDiff).toBeLessThan(1e-3);
    }, 900_000);
  }

  // so the chunked pass (a long prompt's, SmolLM2's from ~1200 tokens) has the parity above too
  it(`the essay in ${PREFILL_UBATCH_ROWS}-row chunks gives the bits of one run, every position's logits and every head's cache`, () => {
    const longest = fixture.prompts.reduce((a, b) => (b.ids.length > a.ids.length ? b : a));
    expect(longest.ids.length).toBeGreaterThan(PREFILL_UBATCH_ROWS);
    const whole = new LlamaModel(lm.loaded.weights, lm.model.backend, { prefillChunkRows: Infinity });
    const chunked = new LlamaModel(lm.loaded.weights, lm.model.backend, { prefillChunkRows: PREFILL_UBATCH_ROWS });
    const a = whole.prefill(longest.ids, { logits: "all" });
    const b = chunked.prefill(longest.ids, { logits: "all" });
    // counted, not toEqual: vitest's deep equality on 50M floats runs out of heap
    const differing = (x: Float32Array, y: Float32Array): number => {
      let n = x.length === y.length ? 0 : Math.max(x.length, y.length);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (!Object.is(x[i], y[i])) n++;
      return n;
    };
    expect(differing(b.logits, a.logits)).toBe(0);
    a.cache.heads.forEach((head, i) => {
      const n = head.length * head.headDim;
      expect(b.cache.heads[i].length).toBe(head.length);
      expect(differing(b.cache.heads[i].keys.subarray(0, n), head.keys.subarray(0, n))).toBe(0);
      expect(differing(b.cache.heads[i].values.subarray(0, n), head.values.subarray(0, n))).toBe(0);
    });
  }, 900_000);
});
