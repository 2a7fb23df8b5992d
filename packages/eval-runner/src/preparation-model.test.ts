/**
 * The engine's model as core's PreparationModel: a preparation step must see exactly what the runner's own prefill
 * computes (statistics and logits to the bit), observers must see each layer's real attention inputs, and a decode
 * step's statistics must be that token's attention probabilities, the ones an independent softmax over the observed
 * queries and keys gives.
 */
import { describe, expect, it } from "vitest";
import { attentionWeights, type AttentionView } from "@razorkv/core";
import { defaultBackend, LlamaModel, randomBlockWeights, randomWeights, tinyConfig, typescriptBackend, type LanguageModel, type LlamaConfig, type Tokenizer } from "@razorkv/model-zoo";
import { preparationModel } from "./preparation-model.js";

const tokenizer = { bosId: 1, eosId: 2, vocabSize: 97 } as Tokenizer;

function languageModel(windows?: (number | null)[], overrides: Partial<LlamaConfig> = {}): LanguageModel {
  const config = tinyConfig({ numLayers: 2, ...(windows ? { layerWindows: windows } : {}), ...overrides });
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
    expect(pm.rotary).toBeDefined();
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

  it("an int8 model prepares in f32: what a preparation computes does not depend on the sweep's prefillProducts", async () => {
    const native = await defaultBackend();
    expect(native, "the native kernels (int8 needs them)").not.toBe(typescriptBackend);
    const config = tinyConfig({ numLayers: 2, hiddenSize: 256, intermediateSize: 512, numHeads: 8, numKvHeads: 2, headDim: 32, vocabSize: 97 });
    const weights = randomBlockWeights(config, "Q4_K", 5);
    const int8 = new LlamaModel(weights, native, { prefillProducts: "int8" });
    const lm: LanguageModel = { ref: "tiny-q4k", loaded: { weights } as LanguageModel["loaded"], model: int8, tokenizer };
    const stats = { repeatedSequence: { period: 8, firstPosition: 0 }, accumulated: true };
    const prepared = preparationModel(lm, "d").prefill(tokens, { stats, logits: "all" });
    const f32 = new LlamaModel(weights, native).prefill(tokens, { stats, logits: "all" });
    expect(prepared.logits).toEqual(f32.logits);
    expect(prepared.stats).toEqual(f32.stats);
    expect(prepared.logits).not.toEqual(int8.prefill(tokens, { logits: "all" }).logits);
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

  it("rotary is the RoPE the forward applied: layer 0's keys of one token at two positions un-rotate to one vector", () => {
    // layer 0's input is the token's embedding alone, so its pre-RoPE key (and query) is the same at every position;
    // the observed ones differ only by the rotation. Gemma 3-shaped: the windowed layer has its own base, the global
    // one a YaRN scaling whose attention factor scales cos and sin (the inverse must divide it out).
    const yarn = { type: "yarn", factor: 4, originalContext: 8, betaFast: 32, betaSlow: 1, truncate: true, attentionFactor: 1.3 } as const;
    const cases: [(number | null)[], Partial<LlamaConfig>][] = [
      [[5, null], { localRope: { theta: 10 }, ropeScaling: yarn }],
      [[null, 5], { localRope: { theta: 10 }, ropeScaling: yarn }],
      [[null, null], {}],
    ];
    for (const [windows, overrides] of cases) {
      const lm = languageModel(windows, overrides);
      const pm = preparationModel(lm, "d");
      const d = 8;
      const ids = [3, 11, 42, 17, 42, 8, 9, 42];
      let keys: Float32Array | null = null;
      let queries: Float32Array | null = null;
      const observer = {
        observe(view: AttentionView) {
          if (view.layer !== 0) return;
          const head = view.cache.head(0, 1);
          keys = head.keys.slice(0, head.length * d);
          queries = view.queries.slice();
        },
      };
      pm.prefill(ids, { observers: [observer] });
      const at = (x: Float32Array, row: number, heads: number) => x.slice(row * heads * d, (row + 1) * heads * d);
      const unrotated = (x: Float32Array, row: number, heads: number) => {
        const v = at(x, row, heads);
        pm.rotary!.rotate(0, v, heads, [row], true);
        return v;
      };
      const k2 = unrotated(keys!, 2, 1);
      for (const p of [4, 7]) {
        expect(Array.from(at(keys!, p, 1))).not.toEqual(Array.from(at(keys!, 2, 1)));
        const k = unrotated(keys!, p, 1);
        for (let i = 0; i < d; i++) expect(k[i]).toBeCloseTo(k2[i], 5);
        const q = unrotated(queries!, p, 6);
        const q2 = unrotated(queries!, 2, 6);
        for (let i = 0; i < 6 * d; i++) expect(q[i]).toBeCloseTo(q2[i], 5);
        // and forward: the pre-RoPE key rotated to p is the key the model stored at p
        const again = k2.slice();
        pm.rotary!.rotate(0, again, 1, [p]);
        const stored = at(keys!, p, 1);
        for (let i = 0; i < d; i++) expect(again[i]).toBeCloseTo(stored[i], 5);
      }
      // the other layer's RoPE is another rotation where the config gives it one
      if (overrides.localRope) {
        const other = at(keys!, 4, 1);
        pm.rotary!.rotate(1, other, 1, [4], true);
        expect(Math.max(...Array.from(other, (x, i) => Math.abs(x - k2[i])))).toBeGreaterThan(1e-3);
      }
    }
    expect(() => preparationModel(languageModel(), "d").rotary!.rotate(2, new Float32Array(8), 1, [0])).toThrow("rotary: layer 2 outside [0, 2)");
  });
});
