/**
 * Sliding-window layers (DESIGN §3): the banded mask, the model-owned trim, and budgets that count the cache the
 * model really holds.
 */
import { describe, expect, it } from "vitest";
import { attendReference, trimToWindows } from "./attention.js";
import { assertRealizedBudget, kvBudget } from "./budget.js";
import { HeadCache, KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";
import type { CompressionPolicy } from "./policy.js";
import {
  decodeTarget, decodeTargets, entriesToKeep, entriesToKeepOf, evictSlot, keepRecentAndTop, requireFullCache, selectPerHead, windowSplit,
} from "./selection.js";
import { checkPolicyConformance } from "./testing/conformance.js";
import { randomDecodeStep, randomPrefill } from "./testing/prefill.js";
import { mulberry32, randomArray } from "./testing/random.js";

/** Brute force: softmax over the keys at positions (p − W, p] of a head holding positions 0 … n−1. */
function bandedAttention(keys: Float32Array, values: Float32Array, q: Float32Array, p: number, w: number | null, d: number, scale: number): Float64Array {
  const lo = w === null ? 0 : Math.max(0, p - w + 1);
  const logits: number[] = [];
  for (let j = lo; j <= p; j++) {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += q[i] * keys[j * d + i];
    logits.push(dot * scale);
  }
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  const out = new Float64Array(d);
  e.forEach((x, k) => {
    for (let i = 0; i < d; i++) out[i] += (x / z) * values[(lo + k) * d + i];
  });
  return out;
}

describe("attendReference with a sliding window", () => {
  it("a query at p attends to positions (p − W, p] only, per layer", () => {
    const d = 8;
    const n = 23;
    const numHeads = 4;
    const { cache, queries } = randomPrefill({ numLayers: 2, numHeads, numKvHeads: 2, headDim: d, length: n, seed: 9 });
    const windowed = new KvCache({ ...cache, layerWindows: [5, null] }, cache.heads.map((h) => h.clone()), n);
    const positions = Int32Array.from({ length: n }, (_, i) => i);
    for (const layer of [0, 1]) {
      const out = new Float32Array(n * numHeads * d);
      attendReference({ cache: windowed, layer, numHeads, queries: queries[layer], queryPositions: positions, out });
      for (let p = 0; p < n; p++) {
        for (let h = 0; h < numHeads; h++) {
          const head = windowed.head(layer, Math.floor(h / 2));
          const q = queries[layer].subarray((p * numHeads + h) * d, (p * numHeads + h + 1) * d);
          const expected = bandedAttention(head.keys, head.values, q, p, layer === 0 ? 5 : null, d, 1 / Math.sqrt(d));
          for (let i = 0; i < d; i++) expect(out[(p * numHeads + h) * d + i]).toBeCloseTo(expected[i], 5);
        }
      }
    }
  });

  it("statistics count only the window; echo/induction too", () => {
    const d = 4;
    const n = 12;
    const h = new HeadCache(d);
    for (let p = 0; p < n; p++) h.append(p, [0, 0, 0, 0], [p, 0, 0, 0]);
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d, layerWindows: [4] }, [h], n);
    const positions = Array.from({ length: n }, (_, i) => i);
    const stats = attendReference({
      cache, layer: 0, numHeads: 1, queries: new Float32Array(n * d), queryPositions: positions, out: new Float32Array(n * d),
      stats: { accumulated: true, repeatedSequence: { period: 3, firstPosition: 0 } },
    });
    // zero queries: uniform over the min(p + 1, 4) visible keys
    const acc = stats.accumulated![0];
    for (let j = 0; j < n; j++) {
      let expected = 0;
      for (let p = j; p < Math.min(n, j + 4); p++) expected += 1 / Math.min(p + 1, 4);
      expect(acc[j]).toBeCloseTo(expected, 6);
    }
    // i ≥ 3: the copy at i − 3 is inside a window of 4, i − 6 is not; its successor i − 2 is
    expect(stats.echo![0]).toBeCloseTo(1 / 4, 12);
    expect(stats.induction![0]).toBeCloseTo(1 / 4, 12);
  });
});

describe("the model-owned window", () => {
  it("trimToWindows keeps the last min(N, W) positions of windowed layers and re-indexes the statistics", () => {
    const n = 30;
    const p = randomPrefill({ numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 4, length: n, seed: 4, layerWindows: [8, null, 50], stats: { accumulated: true } });
    expect(p.cache.head(0, 1).length).toBe(8);
    expect(Array.from(p.cache.head(0, 1).positions.subarray(0, 8))).toEqual([22, 23, 24, 25, 26, 27, 28, 29]);
    expect(p.cache.head(1, 0).length).toBe(n);
    expect(p.cache.head(2, 0).length).toBe(n);
    expect(p.stats.layers[0].accumulated![3].length).toBe(8);
    expect(p.stats.layers[1].accumulated![3].length).toBe(n);
    expect(p.cache.fullEntryCount()).toBe(2 * 8 + 2 * 30 + 2 * 30);
    expect(p.cache.realizedBudget()).toBe(1);
    expect(requireFullCache(p.cache, "test")).toBe(n);
    expect(p.cache.heldByWindow(0)).toBe(true);
    expect(p.cache.heldByWindow(2)).toBe(false);
    expect(p.cache.heldByWindow(4)).toBe(false); // W = 50 > 30: holds everything so far
  });

  it("prefill, trim, then decode gives what one banded prefill gives (the trim drops nothing a later query sees)", () => {
    const rand = mulberry32(11);
    const d = 6;
    const numHeads = 2;
    const n = 20;
    const w = 7;
    const keys = randomArray(rand, (n + 5) * d);
    const values = randomArray(rand, (n + 5) * d);
    const build = (length: number) => {
      const h = new HeadCache(d);
      for (let p = 0; p < length; p++) h.append(p, keys.subarray(p * d), values.subarray(p * d));
      return new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d, layerWindows: [w] }, [h], length);
    };
    const q = randomArray(rand, numHeads * d, 2);
    const trimmed = build(n);
    trimToWindows(trimmed);
    expect(trimmed.heads[0].length).toBe(w);
    trimmed.heads[0].append(n, keys.subarray(n * d), values.subarray(n * d));
    const whole = build(n + 1);
    const a = new Float32Array(numHeads * d);
    const b = new Float32Array(numHeads * d);
    attendReference({ cache: trimmed, layer: 0, numHeads, queries: q, queryPositions: [n], out: a });
    attendReference({ cache: whole, layer: 0, numHeads, queries: q, queryPositions: [n], out: b });
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it("dropping entries drops a compensation slot with them", () => {
    const h = new HeadCache(2);
    for (let p = 0; p < 6; p++) h.append(p, [p, 0], [0, p]);
    h.compensation = { key: new Float32Array(2), value: new Float32Array(2), count: 3 };
    expect(h.dropBefore(0)).toBe(0);
    expect(h.compensation).not.toBeNull();
    expect(h.dropBefore(2)).toBe(2);
    expect(Array.from(h.positions.subarray(0, h.length))).toEqual([2, 3, 4, 5]);
    expect(Array.from(h.key(0))).toEqual([2, 0]);
    expect(h.compensation).toBeNull();
  });

  it("a window must be a positive integer per layer", () => {
    expect(() => new KvCache({ numLayers: 2, numKvHeads: 1, headDim: 2, layerWindows: [4] })).toThrow(/1 layer windows for 2 layers/);
    expect(() => new KvCache({ numLayers: 1, numKvHeads: 1, headDim: 2, layerWindows: [0] })).toThrow(/layer 0's window must be a positive integer/);
  });
});

describe("budgets over windowed layers", () => {
  const layout = { numLayers: 4, numKvHeads: 2, layerWindows: [16, null, 16, null] };

  it("without windows, exactly round(kvBudget · N) as before", () => {
    for (const n of [57, 101, 263]) {
      for (const b of [0.1, 0.25, 0.3, 0.5, 0.9]) {
        expect(entriesToKeepOf(n, kvBudget(b), "p", 1, "x", { numLayers: 3, numKvHeads: 2 })).toBe(Math.round(b * n));
        expect(decodeTargets(b, randomPrefill({ numLayers: 2, numHeads: 1, numKvHeads: 1, headDim: 2, length: n }).cache)).toEqual([Math.round(b * n), Math.round(b * n)]);
        expect(decodeTarget(b, n)).toBe(Math.round(b * n));
      }
    }
  });

  it("windowed heads count at min(N, W); the rest of the budget goes to the full-attention heads", () => {
    const n = 100;
    expect(windowSplit(n, layout)).toEqual({ full: 4 * 16 + 4 * 100, held: 64, heldHeads: 4, freeHeads: 4 });
    // kvBudget 0.5 of 464 = 232 entries; 64 held by the windows; 168 over 4 heads = 42
    expect(entriesToKeepOf(n, kvBudget(0.5), "p", 1, "x", layout)).toBe(42);
    // below the window everything is free: plain round(b·N)
    expect(entriesToKeepOf(12, kvBudget(0.5), "p", 1, "x", layout)).toBe(6);
  });

  it("a budget below what the windowed layers alone hold is infeasible, in one line", () => {
    const message = (() => {
      try {
        entriesToKeepOf(100, kvBudget(0.1), "streamingllm", 5, "4 sinks + 1 recent", layout);
      } catch (e) {
        expect(e).toBeInstanceOf(RazorkvError);
        return (e as Error).message;
      }
      return "";
    })();
    expect(message).toBe(
      "streamingllm: kvBudget 0.1 is below what the model itself holds: the sliding-window layers hold 64 of the 464 entries at 100 tokens " +
        "(kvBudget 0.1379); the smallest feasible kvBudget is 0.1768",
    );
    expect(message).not.toContain("\n");
    // the suggested budget is feasible
    expect(entriesToKeepOf(100, kvBudget(0.1768), "streamingllm", 5, "4 sinks + 1 recent", layout)).toBe(5);
    expect(() => entriesToKeepOf(100, kvBudget(0.5), "p", 1, "x", { numLayers: 1, numKvHeads: 2, layerWindows: [10] })).toThrow(
      /only kvBudget 1 is feasible/,
    );
  });

  it("selectPerHead copies held heads whole; the realized budget meets the nominal one", () => {
    const { cache } = randomPrefill({ numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 4, length: 100, seed: 5, layerWindows: layout.layerWindows });
    const keep = entriesToKeep(cache, kvBudget(0.3), "p");
    const out = selectPerHead(cache, (head) => keepRecentAndTop(new Float64Array(head.length), keep, keep), { compensation: true });
    expect(out.head(0, 1).length).toBe(16);
    expect(out.head(0, 1).compensation).toBeNull();
    expect(out.head(1, 1).length).toBe(keep);
    assertRealizedBudget(out, 0.3);
  });

  it("a decode session holding its budget leaves held heads alone and meets the budget at every step", () => {
    const { cache } = randomPrefill({ numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 4, length: 14, seed: 6, layerWindows: layout.layerWindows });
    const keep = entriesToKeep(cache, kvBudget(0.4), "p");
    const c = selectPerHead(cache, (head) => keepRecentAndTop(new Float64Array(head.length), keep, keep));
    const rand = mulberry32(1);
    for (let step = 0; step < 20; step++) {
      // crosses the window (16) on the way: the windowed heads start as compressed ones, then the model trims them
      randomDecodeStep(c, rand, 4);
      const targets = decodeTargets(0.4, c);
      c.heads.forEach((head, i) => {
        if (c.heldByWindow(i)) return;
        while (head.entryCount > targets[i]) evictSlot(head, 0);
      });
      assertRealizedBudget(c, 0.4, `step ${step}`);
      for (let i = 0; i < c.heads.length; i++) {
        const h = c.heads[i];
        if (c.window(Math.floor(i / 2)) !== null) expect(h.positions[0]).toBeGreaterThanOrEqual(c.nextPosition - 16);
      }
    }
  });
});

describe("conformance over windowed layers", () => {
  // a uniform policy built only from core's helpers: keep the most recent entries, evict the oldest while decoding
  const recent: CompressionPolicy = {
    name: "recent",
    statsRequest: {},
    compress(full, _stats, budget) {
      const keep = entriesToKeep(full, budget, "recent", 2, "two recent entries");
      return selectPerHead(full, (head) => keepRecentAndTop(new Float64Array(head.length), keep, keep));
    },
    checkFeasible(n, budget, layout) {
      entriesToKeepOf(n, budget, "recent", 2, "two recent entries", layout);
    },
    decode: {
      statsRequest: {},
      start(cache, _prefill, budget) {
        return {
          afterForward() {
            const targets = decodeTargets(budget.value, cache);
            cache.heads.forEach((head, i) => {
              if (!cache.heldByWindow(i)) while (head.entryCount > targets[i]) evictSlot(head, 0);
            });
          },
        };
      },
    },
  };

  it("passes at odd sizes with windows shorter and longer than the prompt, and refuses budgets below the windows", () => {
    const rows = checkPolicyConformance(recent, {
      shape: { numLayers: 3, numHeads: 6, numKvHeads: 3, headDim: 8, layerWindows: [40, null, 90] },
      lengths: [37, 57, 101],
      budgets: [0.1, 0.3, 0.5, 0.9],
      decodeSteps: 15,
    });
    // length 101 at 0.1: 3·40 + 3·90 = 390 of 693 entries are held by the windows (0.56), so 0.1 and 0.3 are refused
    expect(rows.filter((r) => r.length === 101).map((r) => r.budget)).toEqual([0.9]);
    expect(rows.filter((r) => r.length === 37).map((r) => r.budget)).toEqual([0.1, 0.3, 0.5, 0.9]);
  });
});
