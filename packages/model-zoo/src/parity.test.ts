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
});
