import type { LayerAttentionStats, ObserveOptions, PreparationModel } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import { kvScores, selectRetrievalHeads } from "./index.js";
import type { NeedlePrompt } from "./needle-prompts.js";
import { argmax, meanScores, scorePrompt } from "./score.js";

/**
 * A stand-in model with planted attention: 2 layers × 4 query heads over 2 KV heads (GQA groups of 2). At decode
 * step t, query head (layer, h) puts weight 0.9 on the position `plant(t, layer, h)` and spreads the rest evenly, so
 * that position is its argmax. `next(t)` is the greedy token of step t (logits one-hot on it).
 */
function plantedModel(plant: (step: number, layer: number, head: number, length: number) => number, next: (step: number) => number = () => 0) {
  const calls: { tokens: number[]; stats: boolean }[] = [];
  const model = {
    ref: "planted", digest: "d",
    shape: { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, vocabSize: 100, maxContext: 64, layerWindows: [null, null], attentionScale: 0.5 },
    tokenizer: {
      vocabSize: 100, bosId: null, eosId: 99,
      encode: () => [], decode: (ids: number[]) => ids.map((i) => `<${i}>`).join(""), applyChatTemplate: () => "", isEndOfGeneration: (id: number) => id === 99,
    },
    prefill(tokens: ArrayLike<number>) {
      let length = tokens.length;
      let step = 0;
      const sequence = {
        get length() {
          return length;
        },
        extend(fed: ArrayLike<number>, options: ObserveOptions = {}) {
          calls.push({ tokens: Array.from(fed), stats: !!options.stats?.accumulated });
          length += fed.length;
          const t = step++;
          const stats: LayerAttentionStats[] = !options.stats?.accumulated ? [] : [0, 1].map((layer) => ({
            accumulated: [0, 1, 2, 3].map((h) => {
              const w = new Float32Array(length).fill(0.1 / (length - 1));
              w[plant(t, layer, h, length)] = 0.9;
              return w;
            }),
          }));
          const logits = new Float32Array(100);
          logits[next(t)] = 1;
          return { stats, logits };
        },
        positions: () => Int32Array.from({ length }, (_, s) => s),
      };
      return { stats: [], logits: new Float32Array(0), sequence };
    },
  } satisfies PreparationModel;
  return { model, calls };
}

// A 20-token prompt; the needle's value is positions 8…13 = [51, 52, 53, 54, 55, 51] (a repeated token); position 7
// holds 51 as well, outside the needle. The answer fed: a 2-token prefix [70, 71], then the six value tokens.
const ids = [10, 11, 12, 13, 14, 15, 16, 51, 51, 52, 53, 54, 55, 51, 17, 18, 19, 20, 21, 22];
const prompt: NeedlePrompt = { ids, span: [8, 14], answer: [70, 71, 51, 52, 53, 54, 55, 51], valueStart: 2, value: "<51><52><53><54><55><51>", depth: 0.4 };

describe("the retrieval score (Wu et al. 2024 §2) on planted attention", () => {
  it("teacher-forced: a hand-computed case, 2 layers × 2 KV heads, a 6-token needle", () => {
    // value step k (decode step t = k + 2, target prompt.answer[t] = ids[8 + k]); each head's argmax:
    //   L0 h0: the needle position of the target, 8 + k                         → copies 6 of 6  = 1
    //   L0 h1: 8 + k for k < 3, then position 3 (haystack)                       → 3 of 6         = 0.5
    //   L0 h2: always position 13 (holds 51): right token only for k = 0 and 5   → 2 of 6         = 1/3
    //   L0 h3: position 14, just after the needle                                → 0
    //   L1 h0: its own new slot (the last)                                       → 0
    //   L1 h1: always position 8 (holds 51): k = 0 and 5                          → 1/3
    //   L1 h2: 8 + k on even k (0, 2, 4), position 2 otherwise                   → 0.5
    //   L1 h3: position 7 — holds 51 but lies outside the needle                 → 0
    const plant = (t: number, layer: number, h: number, length: number) => {
      const k = t - 2;
      if (k < 0) return 0;
      const table = [
        [8 + k, k < 3 ? 8 + k : 3, 13, 14],
        [length - 1, 8, k % 2 === 0 ? 8 + k : 2, 7],
      ];
      return table[layer][h];
    };
    const { model, calls } = plantedModel(plant);
    const r = scorePrompt(model, prompt, "teacher-forced", 0);
    expect(r.scores).toEqual([[1, 0.5, 2 / 6, 0], [0, 2 / 6, 0.5, 0]]);
    expect(r.counted).toBe(true);
    // fed: the last prompt token, then the answer but its last token; attention only at the six value steps
    expect(calls.map((c) => c.tokens[0])).toEqual([22, 70, 71, 51, 52, 53, 54, 55]);
    expect(calls.map((c) => c.stats)).toEqual([false, false, true, true, true, true, true, true]);
    // KV heads: the max over each group (0.5 and 1 → 1, …) or the mean
    const profile = { numLayers: 2, numHeads: 4, numKvHeads: 2, retrieval: r.scores };
    expect(kvScores(profile, "max")).toEqual([[1, 1 / 3], [1 / 3, 0.5]]);
    expect(kvScores(profile, "mean")).toEqual([[0.75, 1 / 6], [1 / 6, 0.25]]);
    const base = { selection: "top-fraction", threshold: 0.1, groupReduce: "max" } as const;
    expect(selectRetrievalHeads(profile, { ...base, protectedFraction: 0.25 })).toEqual([{ layer: 0, kvHead: 0 }]);
    expect(selectRetrievalHeads(profile, { ...base, protectedFraction: 0.5 })).toEqual([{ layer: 0, kvHead: 0 }, { layer: 1, kvHead: 1 }]);
    // ties go to the earlier head: 3 of 4 takes L0 KV1 (1/3) before L1 KV0 (1/3)
    expect(selectRetrievalHeads(profile, { ...base, protectedFraction: 0.75 })).toEqual([{ layer: 0, kvHead: 0 }, { layer: 0, kvHead: 1 }, { layer: 1, kvHead: 1 }]);
    // the paper's rule: every head above the threshold
    expect(selectRetrievalHeads(profile, { ...base, protectedFraction: 0, selection: "threshold", threshold: 0.4 })).toEqual([{ layer: 0, kvHead: 0 }, { layer: 1, kvHead: 1 }]);
    expect(selectRetrievalHeads(profile, { ...base, protectedFraction: 0, selection: "threshold", groupReduce: "mean", threshold: 0.2 })).toEqual([{ layer: 0, kvHead: 0 }, { layer: 1, kvHead: 1 }]);
  });

  it("greedy: credits the generated token, counts every credited step (the authors' code), and keeps only answered prompts", () => {
    // generated: 70, the value 51 52 53 54 55 51, a repeated 52, then the end token 99
    const answered = [70, 51, 52, 53, 54, 55, 51, 52, 99];
    // L0 h0 attends the needle position holding the token it is about to generate (7 steps, 52 twice: 7 of 6);
    // every other head attends position 0
    const holding = (token: number) => ids.findIndex((x, i) => i >= 8 && i < 14 && x === token);
    const plant = (t: number, layer: number, h: number) => (layer === 0 && h === 0 && holding(answered[t]) >= 0 ? holding(answered[t]) : 0);
    const { model, calls } = plantedModel(plant, (t) => answered[t]);
    const r = scorePrompt(model, prompt, "greedy", 32);
    expect(r.answer).toEqual(answered);
    expect(calls.length).toBe(9); // stopped at the end token
    expect(r.scores[0][0]).toBeCloseTo(7 / 6, 15);
    expect(r.scores.flat().filter((x) => x !== 0).length).toBe(1);
    expect(r.counted).toBe(true);
    // an output that misses the value does not count, and the mean is over counted prompts only
    const missed = [70, 51, 52, 99];
    const m = scorePrompt(plantedModel(plant, (t) => missed[t]).model, prompt, "greedy", 32);
    expect(m.counted).toBe(false);
    expect(m.scores[0][0]).toBeCloseTo(2 / 6, 15);
    expect(meanScores([r, m], model.shape)[0][0]).toBeCloseTo(7 / 6, 15);
    expect(meanScores([m], model.shape)).toEqual([[0, 0, 0, 0], [0, 0, 0, 0]]);
    // maxNewTokens bounds the decode
    const long = plantedModel(() => 0, () => 5);
    scorePrompt(long.model, prompt, "greedy", 4);
    expect(long.calls.length).toBe(4);
  });

  it("argmax takes the first of equal maxima", () => {
    expect(argmax([0.2, 0.5, 0.5, 0.1])).toBe(1);
    expect(argmax([])).toBe(-1);
  });
});
