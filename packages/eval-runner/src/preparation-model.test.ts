/**
 * The engine's model as core's PreparationModel: a preparation step must see exactly what the runner's own prefill
 * computes (statistics and logits to the bit), observers must see each layer's real attention inputs, and a decode
 * step's statistics must be that token's attention probabilities, the ones an independent softmax over the observed
 * queries and keys gives.
 */
import { describe, expect, it } from "vitest";
import { attentionWeights, type AttentionView } from "@razorkv/core";
import { LlamaModel, randomWeights, tinyConfig, typescriptBackend, type LanguageModel, type Tokenizer } from "@razorkv/model-zoo";
import { preparationModel } from "./preparation-model.js";

const tokenizer = { bosId: 1, eosId: 2, vocabSize: 97 } as Tokenizer;

function languageModel(windows?: (number | null)[]): LanguageModel {
  const config = tinyConfig({ numLayers: 2, ...(windows ? { layerWindows: windows } : {}) });
  const weights = randomWeights(config, 11);
  return { ref: "tiny", loaded: { weights } as LanguageModel["loaded"], model: new LlamaModel(weights, typescriptBackend), tokenizer };
}

const tokens = Array.from({ length: 24 }, (_, i) => (i * 7 + 3) % 97);

describe("preparationModel", () => {
  it("describes the model's shape and passes its tokenizer and digest on", () => {
    const lm = languageModel([5, null]);
    const pm = preparationModel(lm, "abc");
    expect(pm.shape).toEqual({ numLayers: 2, numHeads: 6, numKvHeads: 2, headDim: 8, vocabSize: 97, maxContext: 4096, layerWindows: [5, null], attentionScale: 1 / Math.sqrt(8) });
    expect(pm.tokenizer).toBe(tokenizer);
    expect([pm.ref, pm.digest]).toEqual(["tiny", "abc"]);
    expect(pm.rotary).toBeUndefined();
  });

  it("prefill gives the model's own statistics and logits, to the bit", () => {
    const lm = languageModel();
    const stats = { repeatedSequence: { period: 8, firstPosition: 0 }, accumulated: true };
    const own = lm.model.prefill(tokens, { stats, logits: "all" });
    const viaView = preparationModel(lm, "d").prefill(tokens, { stats, logits: "all" });
    expect(viaView.logits).toEqual(own.logits);
    expect(viaView.stats).toEqual(own.stats);
    expect(viaView.sequence.length).toBe(tokens.length);
  });

  it("observers see every layer's queries and keys; a decode step's statistics are its attention probabilities", () => {
    for (const windows of [undefined, [5, null]]) {
      const lm = languageModel(windows);
      const pm = preparationModel(lm, "d");
      const seen: AttentionView[] = [];
      const weights: Float64Array[][] = [];
      // copy what is needed now: the view is only valid during the call
      const observer = {
        observe(view: AttentionView) {
          seen.push(view);
          weights.push(Array.from({ length: view.numHeads }, (_, h) => attentionWeights(view, view.queryPositions.length - 1, h)));
        },
      };
      const { sequence, logits } = pm.prefill(tokens, { observers: [observer] });
      expect(seen.map((v) => [v.layer, v.queryPositions.length])).toEqual([[0, 24], [1, 24]]);
      // an observed forward computes what an unobserved one does
      expect(logits).toEqual(lm.model.prefill(tokens).logits);
      seen.length = 0;
      weights.length = 0;
      const step = sequence.extend([5], { stats: { accumulated: true }, observers: [observer] });
      expect(sequence.length).toBe(25);
      expect(seen.map((v) => [v.layer, Array.from(v.queryPositions)])).toEqual([[0, [24]], [1, [24]]]);
      for (let layer = 0; layer < 2; layer++) {
        for (let h = 0; h < 6; h++) {
          const probabilities = step.stats[layer].accumulated![h];
          const positions = sequence.positions(layer, Math.floor(h / 3));
          // a windowed layer holds its last W positions after the step; the observer saw the cache before the trim
          const offset = weights[layer][h].length - probabilities.length;
          expect(positions.length).toBe(probabilities.length);
          expect(positions[positions.length - 1]).toBe(24);
          if (layer === 0 && windows) expect(Array.from(positions)).toEqual([20, 21, 22, 23, 24]);
          for (let s = 0; s < probabilities.length; s++) expect(probabilities[s]).toBeCloseTo(weights[layer][h][s + offset], 6);
          expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        }
      }
      // observers are per call: a later forward without them reports nothing
      seen.length = 0;
      sequence.extend([6]);
      expect(seen).toEqual([]);
    }
  });
});
