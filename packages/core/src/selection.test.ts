import { describe, expect, it } from "vitest";
import { kvBudget } from "./budget.js";
import { RazorkvError } from "./errors.js";
import { mergeStatsRequests } from "./policy.js";
import { entriesToKeep, evictSlot, keepRecentAndTop, selectPerHead, topKSlots } from "./selection.js";
import { randomPrefill } from "./testing/prefill.js";
import { mulberry32 } from "./testing/random.js";

/** Reference: sort every candidate by (score desc, slot asc), take k, sort by slot. */
function bruteTopK(scores: ArrayLike<number>, k: number, from: number, to: number): number[] {
  const all = [];
  for (let s = from; s < to; s++) all.push({ s, v: scores[s] });
  all.sort((a, b) => (a.v === b.v ? a.s - b.s : b.v - a.v));
  return all.slice(0, Math.max(0, k)).map((x) => x.s).sort((a, b) => a - b);
}

describe("top-k selection", () => {
  it("equals a brute-force sort on random scores, ties included", () => {
    const rand = mulberry32(21);
    for (const n of [1, 7, 33, 101]) {
      // quantized scores make ties common
      const scores = Float64Array.from({ length: n }, () => Math.floor(rand() * 5));
      for (const k of [0, 1, Math.floor(n / 3), n - 1, n, n + 2]) {
        const from = Math.floor(n / 5);
        expect(topKSlots(scores, k, from, n)).toEqual(bruteTopK(scores, k, from, n));
      }
    }
  });

  it("keeps the recent window and the top of the rest", () => {
    const scores = [5, 1, 9, 3, 7, 0, 0];
    expect(keepRecentAndTop(scores, 4, 2)).toEqual([2, 4, 5, 6]);
    expect(keepRecentAndTop(scores, 3, 5)).toEqual([4, 5, 6]); // the window never exceeds the budget
    expect(keepRecentAndTop(scores, 9, 2)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});

describe("selectPerHead", () => {
  it("builds a new cache and leaves the full one untouched", () => {
    const { cache } = randomPrefill({ numLayers: 2, numHeads: 3, numKvHeads: 3, headDim: 5, length: 17, seed: 2 });
    const before = cache.clone();
    const out = selectPerHead(cache, (_h, layer, kv) => [layer, 5 + kv, 16], { compensation: true });
    expect(out.entryCount()).toBe(6 * 4);
    expect(out.head(1, 2).positions.subarray(0, 3)).toEqual(Int32Array.of(1, 7, 16));
    expect(out.head(1, 2).compensation?.count).toBe(14);
    out.head(0, 0).keys[0] = 99;
    for (let i = 0; i < cache.heads.length; i++) {
      expect(cache.heads[i].length).toBe(17);
      expect(cache.heads[i].keys).toEqual(before.heads[i].keys);
    }
  });

  it("evictSlot removes one entry in place", () => {
    const { cache } = randomPrefill({ numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 3, length: 6 });
    const h = cache.heads[0];
    const k4 = Array.from(h.key(4));
    evictSlot(h, 2);
    expect(h.length).toBe(5);
    expect(Array.from(h.positions.subarray(0, 5))).toEqual([0, 1, 3, 4, 5]);
    expect(Array.from(h.key(3))).toEqual(k4);
    expect(() => evictSlot(h, 5)).toThrow(/outside \[0, 5\)/);
  });
});

describe("entriesToKeep", () => {
  const { cache } = randomPrefill({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4, length: 50 });
  it("keeps round(kvBudget · N) and rejects an infeasible budget clearly", () => {
    expect(entriesToKeep(cache, kvBudget(0.31), "p")).toBe(16);
    expect(() => entriesToKeep(cache, kvBudget(0.05), "streamingllm", 5, "4 sinks + 1 recent")).toThrow(RazorkvError);
    expect(() => entriesToKeep(cache, kvBudget(0.05), "streamingllm", 5, "4 sinks + 1 recent")).toThrow(
      /streamingllm: kvBudget 0\.05 keeps 3 of 50 entries per head, but streamingllm needs at least 5 \(4 sinks \+ 1 recent\); the smallest feasible kvBudget is 0\.0900/,
    );
  });
});

describe("mergeStatsRequests", () => {
  it("collects the union of what policies ask for", () => {
    expect(mergeStatsRequests([{}, { accumulated: true }, { windowQueries: 32 }, { windowQueries: 32 }])).toEqual({ accumulated: true, windowQueries: 32 });
    expect(mergeStatsRequests([])).toEqual({});
    expect(() => mergeStatsRequests([{ windowQueries: 32 }, { windowQueries: 64 }])).toThrow(/windows of 32 and 64 queries/);
  });
});
