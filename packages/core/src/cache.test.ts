import { describe, expect, it } from "vitest";
import { HeadCache, KvCache } from "./cache.js";
import { attendReference } from "./attention.js";
import { mulberry32, randomArray } from "./testing/random.js";

function filledHead(rand: () => number, d: number, n: number, firstPosition = 0): HeadCache {
  const h = new HeadCache(d, 2);
  for (let p = 0; p < n; p++) h.append(firstPosition + p, randomArray(rand, d), randomArray(rand, d));
  return h;
}

describe("HeadCache", () => {
  it("grows past its capacity and keeps entries in order", () => {
    const rand = mulberry32(1);
    const h = filledHead(rand, 5, 37);
    expect(h.length).toBe(37);
    expect(Array.from(h.positions.subarray(0, 37))).toEqual(Array.from({ length: 37 }, (_, i) => i));
    expect(h.capacity).toBeGreaterThanOrEqual(37);
  });

  it("grows by an eighth past an exact reserve, not by doubling: a decode after a 2K prefill keeps its arrays near 2K", () => {
    const h = new HeadCache(4, 1);
    h.reserve(2048);
    expect(h.capacity).toBe(2048);
    for (let p = 0; p < 2049; p++) h.append(p, new Float32Array(4).fill(p), new Float32Array(4).fill(-p));
    expect(h.capacity).toBe(2048 + 256);
    expect(h.keys.length).toBe((2048 + 256) * 4);
    expect(Array.from(h.key(2048))).toEqual([2048, 2048, 2048, 2048]);
    expect(Array.from(h.value(7))).toEqual([-7, -7, -7, -7]);
    const small = new HeadCache(4, 1);
    small.append(0, new Float32Array(4), new Float32Array(4));
    small.append(1, new Float32Array(4), new Float32Array(4));
    expect(small.capacity).toBe(65); // at least 64 more slots at a time
  });

  it("refuses a position that does not follow the last one", () => {
    const h = filledHead(mulberry32(2), 4, 3);
    expect(() => h.append(2, new Float32Array(4), new Float32Array(4))).toThrow(/not after the last held position 2/);
  });

  it("select keeps exactly the chosen slots with their positions", () => {
    const rand = mulberry32(3);
    const h = filledHead(rand, 3, 10, 100);
    const s = h.select([0, 4, 9]);
    expect(s.length).toBe(3);
    expect(Array.from(s.positions.subarray(0, 3))).toEqual([100, 104, 109]);
    expect(Array.from(s.key(1))).toEqual(Array.from(h.key(4)));
    expect(Array.from(s.value(2))).toEqual(Array.from(h.value(9)));
    expect(() => h.select([3, 3])).toThrow(/strictly increasing/);
    expect(() => h.select([10])).toThrow(/\[0, 10\)/);
  });

  it("foldDropped averages the dropped entries and merges an existing slot by count", () => {
    const rand = mulberry32(4);
    const d = 6;
    const h = filledHead(rand, d, 9);
    const once = h.foldDropped([0, 1, 8]);
    expect(once?.count).toBe(6);
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let s = 2; s < 8; s++) sum += h.keys[s * d + i];
      expect(once!.key[i]).toBeCloseTo(sum / 6, 6);
    }
    // folding in two steps equals folding once
    const step1 = h.select([0, 1, 5, 8], h.foldDropped([0, 1, 5, 8]));
    const step2 = step1.foldDropped([0, 1, 3]);
    expect(step2!.count).toBe(6);
    for (let i = 0; i < d; i++) {
      expect(step2!.key[i]).toBeCloseTo(once!.key[i], 6);
      expect(step2!.value[i]).toBeCloseTo(once!.value[i], 6);
    }
    expect(h.foldDropped(Array.from({ length: 9 }, (_, i) => i))).toBeNull();
  });
});

describe("KvCache", () => {
  it("measures the realized budget from the held entries, compensation slots included", () => {
    const rand = mulberry32(5);
    const shape = { numLayers: 2, numKvHeads: 3, headDim: 4 };
    const heads = Array.from({ length: 6 }, () => filledHead(rand, 4, 20));
    const full = new KvCache(shape, heads, 20);
    expect(full.realizedBudget()).toBe(1);
    const compressed = full.mapHeads((h, layer, kv) =>
      layer === 0 && kv === 0 ? h : h.select([0, 1, 18, 19], h.foldDropped([0, 1, 18, 19])),
    );
    // one full head (20) + five heads of 4 slots + 1 compensation slot
    expect(compressed.entryCount()).toBe(20 + 5 * 5);
    expect(compressed.realizedBudget()).toBeCloseTo(45 / 120, 12);
    expect(compressed.kvBytes(2)).toBe(45 * 2 * 4 * 2);
  });
});

describe("compensation slot (DESIGN §3)", () => {
  it("attention with the slot (logit + ln n) equals attention over n explicit copies of (k̂, v̂)", () => {
    const rand = mulberry32(6);
    const d = 16;
    const numHeads = 4;
    const kept = filledHead(rand, d, 7, 0);
    const kHat = randomArray(rand, d, 1.5);
    const vHat = randomArray(rand, d);
    const n = 13;
    const shape = { numLayers: 1, numKvHeads: 2, headDim: d };

    const withSlot = new KvCache(shape, [kept.clone(), kept.clone()], 7);
    for (const h of withSlot.heads) h.compensation = { key: kHat, value: vHat, count: n };

    // explicit copies sit at positions before the kept ones so causality admits them
    const explicitHead = new HeadCache(d);
    for (let c = 0; c < n; c++) explicitHead.append(c, kHat, vHat);
    for (let s = 0; s < kept.length; s++) explicitHead.append(n + s, kept.key(s), kept.value(s));
    const explicit = new KvCache(shape, [explicitHead, explicitHead.clone()], n + 7);

    const q = randomArray(rand, numHeads * d, 2);
    const outSlot = new Float32Array(numHeads * d);
    const outExplicit = new Float32Array(numHeads * d);
    attendReference({ cache: withSlot, layer: 0, numHeads, queries: q, queryPositions: [6], out: outSlot });
    attendReference({ cache: explicit, layer: 0, numHeads, queries: q, queryPositions: [n + 6], out: outExplicit });
    for (let i = 0; i < outSlot.length; i++) expect(outSlot[i]).toBeCloseTo(outExplicit[i], 5);
    // and the slot matters: without it the result differs
    const noSlot = new KvCache(shape, [kept.clone(), kept.clone()], 7);
    const outNoSlot = new Float32Array(numHeads * d);
    attendReference({ cache: noSlot, layer: 0, numHeads, queries: q, queryPositions: [6], out: outNoSlot });
    expect(Math.max(...outSlot.map((v, i) => Math.abs(v - outNoSlot[i])))).toBeGreaterThan(1e-3);
  });
});

describe("attendReference", () => {
  it("is causal by original position and matches a direct softmax on a tiny case", () => {
    const d = 2;
    const h = new HeadCache(d);
    h.append(0, [1, 0], [1, 2]);
    h.append(5, [0, 1], [3, 4]);
    h.append(9, [1, 1], [5, 6]);
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d }, [h], 10);
    const out = new Float32Array(2 * d);
    // query at position 5 sees slots 0 and 1; query at position 9 sees all three
    const stats = attendReference({
      cache, layer: 0, numHeads: 1, queries: new Float32Array([1, 0, 0, 2]), queryPositions: [5, 9], out,
      scale: 1, stats: { accumulated: true, windowQueries: 1 },
    });
    const e = Math.E;
    const p0 = e / (e + 1);
    expect(out[0]).toBeCloseTo(p0 * 1 + (1 - p0) * 3, 6);
    expect(out[1]).toBeCloseTo(p0 * 2 + (1 - p0) * 4, 6);
    const w = [1, Math.exp(2), Math.exp(2)];
    const z = w[0] + w[1] + w[2];
    expect(out[2]).toBeCloseTo((1 * w[0] + 3 * w[1] + 5 * w[2]) / z, 5);
    expect(stats.accumulated![0][0]).toBeCloseTo(p0 + w[0] / z, 6);
    expect(stats.accumulated![0][2]).toBeCloseTo(w[2] / z, 6);
    expect(stats.windowed![0][0]).toBeCloseTo(w[0] / z, 6);
  });
});

describe("repeated-sequence statistics (RazorAttention calibration)", () => {
  it("sums the weights on earlier copies (echo) and on their successors (induction)", () => {
    const d = 4;
    const n = 10;
    const h = new HeadCache(d);
    for (let p = 0; p < n; p++) h.append(p, [0, 0, 0, 0], [p, 0, 0, 0]);
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d }, [h], n);
    const positions = Array.from({ length: n }, (_, i) => i);
    // zero queries: uniform attention, so a query at position i gives weight 1/(i+1) to each visible key
    const stats = attendReference({
      cache, layer: 0, numHeads: 2, queries: new Float32Array(n * 2 * d), queryPositions: positions,
      out: new Float32Array(n * 2 * d), stats: { repeatedSequence: { period: 3, firstPosition: 1 } },
    });
    let expected = 0;
    let count = 0;
    for (let i = 4; i < n; i++) {
      let copies = 0;
      for (let j = i - 3; j >= 1; j -= 3) copies++;
      expected += copies / (i + 1);
      count++;
    }
    expect(stats.echo![0]).toBeCloseTo(expected / count, 12);
    expect(stats.induction![1]).toBeCloseTo(expected / count, 12);
  });
});
