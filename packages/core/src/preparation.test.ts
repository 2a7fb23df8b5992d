import { describe, expect, it } from "vitest";
import { attendReference } from "./attention.js";
import { HeadCache, KvCache } from "./cache.js";
import { attentionWeights, requireRotary, type AttentionView, type PreparationModel } from "./preparation.js";
import { RazorkvError } from "./errors.js";
import { mulberry32, randomArray } from "./testing/random.js";
import { randomPrefill } from "./testing/prefill.js";

describe("attentionWeights", () => {
  it("a hand-computed case: one query over two keys, logits q·k/√d", () => {
    const head = new HeadCache(2);
    head.append(0, [1, 0], [0, 0]);
    head.append(1, [0, 2], [0, 0]);
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: 2 }, [head], 2);
    const view: AttentionView = { layer: 0, numHeads: 1, cache, queries: Float32Array.from([1, 1]), queryPositions: [1], scale: 1 / Math.SQRT2 };
    const w = attentionWeights(view, 0, 0);
    // logits 1/√2 and 2/√2: softmax = [1, e^{1/√2}] / (1 + e^{1/√2})
    const e = Math.exp(1 / Math.SQRT2);
    expect(w[0]).toBeCloseTo(1 / (1 + e), 14);
    expect(w[1]).toBeCloseTo(e / (1 + e), 14);
    // a query at position 0 does not see position 1
    expect([...attentionWeights({ ...view, queryPositions: [0] }, 0, 0)]).toEqual([1, 0]);
  });

  it("equals the reference attention's per-query weights (accumulated over one query), with GQA, windows and soft-capping", () => {
    const rand = mulberry32(5);
    for (const layerWindows of [undefined, [3, null]]) {
      const { cache } = randomPrefill({ numLayers: 2, numHeads: 6, numKvHeads: 2, headDim: 8, length: 11, seed: 3, layerWindows });
      for (let layer = 0; layer < 2; layer++) {
        for (const softcap of [undefined, 1.5]) {
          const queries = randomArray(rand, 2 * 6 * 8, 2);
          const last = cache.head(layer, 0).positions[cache.head(layer, 0).length - 1];
          const positions = [last, last - 1];
          for (let c = 0; c < 2; c++) {
            // the reference, one query at a time: its accumulated statistic is that query's weights
            const one = queries.slice(c * 48, (c + 1) * 48);
            const stats = attendReference({ cache, layer, numHeads: 6, queries: one, queryPositions: [positions[c]], out: new Float32Array(48), stats: { accumulated: true }, softcap });
            const view: AttentionView = { layer, numHeads: 6, cache, queries, queryPositions: positions, scale: 1 / Math.sqrt(8), softcap };
            for (let h = 0; h < 6; h++) {
              const w = attentionWeights(view, c, h);
              const ref = stats.accumulated![h];
              expect(w.length).toBe(ref.length);
              for (let s = 0; s < ref.length; s++) expect(w[s]).toBeCloseTo(ref[s], 6);
              expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
            }
          }
        }
      }
    }
  });

  it("gives the compensation slot its weight last, with logit + ln n", () => {
    const head = new HeadCache(2);
    head.append(5, [0, 0], [0, 0]);
    head.compensation = { key: Float32Array.from([0, 0]), value: Float32Array.from([0, 0]), count: 3 };
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: 2 }, [head], 6);
    const w = attentionWeights({ layer: 0, numHeads: 1, cache, queries: Float32Array.from([1, 1]), queryPositions: [5], scale: 1 }, 0, 0);
    // equal logits, the slot stands for 3 copies: 1 : 3
    expect(w[0]).toBeCloseTo(0.25, 14);
    expect(w[1]).toBeCloseTo(0.75, 14);
  });
});

describe("requireRotary", () => {
  it("names the step and the model when the engine exposes no RoPE", () => {
    const model = { ref: "tiny" } as PreparationModel;
    expect(() => requireRotary(model, "duo-attention")).toThrow(RazorkvError);
    expect(() => requireRotary(model, "duo-attention")).toThrow(/^duo-attention: needs the model's RoPE .* running tiny does not expose/);
  });
});
