import { attendReference, HeadCache, KvCache, mulberry32, randomArray, type AttentionStatsRequest, type LayerAttentionStats } from "@razorkv/core";
import { beforeAll, describe, expect, it } from "vitest";
import type { CpuKernels } from "./index.js";
import { kernels, kernelsDisabled, relativeError, sameBits } from "./test-helpers.js";

const TOL = 1e-4;

/** The SmolLM2 attention shape: 9 query heads over 3 KV heads of dimension 64. */
const H = 9;
const HKV = 3;
const D = 64;

/** Keys and values in the projection layout [T × Hkv × d], and the same tokens appended to a one-layer KvCache. */
function prefillInputs(seed: number, T: number, numKv: number, d: number) {
  const rand = mulberry32(seed);
  const keys = randomArray(rand, T * numKv * d);
  const values = randomArray(rand, T * numKv * d);
  const cache = new KvCache({ numLayers: 1, numKvHeads: numKv, headDim: d });
  for (let kv = 0; kv < numKv; kv++) {
    for (let t = 0; t < T; t++) cache.head(0, kv).append(t, keys, values, (t * numKv + kv) * d);
  }
  cache.nextPosition = T;
  return { rand, keys, values, cache };
}

function expectStatsClose(actual: LayerAttentionStats, expected: LayerAttentionStats): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const key of ["accumulated", "windowed"] as const) {
    const a = actual[key];
    const e = expected[key];
    if (!e) continue;
    expect(a).toHaveLength(e.length);
    for (let h = 0; h < e.length; h++) expect(relativeError(a![h], e[h]), `${key}[${h}]`).toBeLessThanOrEqual(TOL);
  }
  if (expected.echo) {
    expect(relativeError(actual.echo!, expected.echo)).toBeLessThanOrEqual(TOL);
    expect(relativeError(actual.induction!, expected.induction!)).toBeLessThanOrEqual(TOL);
  }
}

describe.skipIf(kernelsDisabled)("attendPrefill (projection layout, causal)", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
  });

  const cases: { name: string; T: number; C: number; numHeads: number; numKv: number; d: number; stats?: AttentionStatsRequest }[] = [
    { name: "T=37, 9 heads over 3 KV heads, d=64", T: 37, C: 37, numHeads: H, numKv: HKV, d: D },
    { name: "with accumulated and windowed statistics", T: 37, C: 37, numHeads: H, numKv: HKV, d: D, stats: { accumulated: true, windowQueries: 8 } },
    { name: "chunk of 17 queries after a prefix of 20", T: 37, C: 17, numHeads: H, numKv: HKV, d: D, stats: { accumulated: true, windowQueries: 5 } },
    { name: "single query at the end (C=1)", T: 130, C: 1, numHeads: H, numKv: HKV, d: D, stats: { accumulated: true, windowQueries: 1 } },
    { name: "long enough to use both threads and several value chunks", T: 700, C: 700, numHeads: H, numKv: HKV, d: D, stats: { accumulated: true, windowQueries: 32 } },
    { name: "odd head dim 13, no GQA", T: 29, C: 29, numHeads: 4, numKv: 4, d: 13, stats: { accumulated: true } },
    { name: "head dim 72 (a 64-wide block plus a tail), group 2", T: 41, C: 41, numHeads: 6, numKv: 3, d: 72 },
    { name: "repeated-sequence (RazorAttention calibration) scores", T: 1 + 4 * 9, C: 1 + 4 * 9, numHeads: H, numKv: HKV, d: D, stats: { repeatedSequence: { period: 9, firstPosition: 1 } } },
  ];

  for (const { name, T, C, numHeads, numKv, d, stats } of cases) {
    it(name, () => {
      const { rand, keys, values, cache } = prefillInputs(T * 31 + C, T, numKv, d);
      const queries = randomArray(rand, C * numHeads * d);
      const positions = Int32Array.from({ length: C }, (_, c) => T - C + c);
      const expected = new Float32Array(C * numHeads * d);
      const expectedStats = attendReference({ cache, layer: 0, numHeads, queries, queryPositions: positions, out: expected, stats });
      const out = new Float32Array(C * numHeads * d).fill(Number.NaN);
      const actualStats = k.attendPrefill({ queries, keys, values, out, numHeads, numKvHeads: numKv, headDim: d, numQueries: C, kvLength: T, stats });
      expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
      expectStatsClose(actualStats, expectedStats);
    });
  }

  it("gives the same bits on every call and for every thread count, statistics included (DESIGN §3)", () => {
    const T = 300;
    const { rand, keys, values } = prefillInputs(5, T, HKV, D);
    const queries = randomArray(rand, T * H * D);
    const threads = k.threads();
    try {
      const runs = [1, 2, 3, 2].map((n) => {
        k.setThreads(n);
        const out = new Float32Array(T * H * D);
        const stats = k.attendPrefill({ queries, keys, values, out, numHeads: H, numKvHeads: HKV, headDim: D, numQueries: T, stats: { accumulated: true, windowQueries: 7, repeatedSequence: { period: 50, firstPosition: 0 } } });
        return { out, stats };
      });
      for (const { out, stats } of runs.slice(1)) {
        expect(sameBits(out, runs[0].out)).toBe(true);
        for (let h = 0; h < H; h++) {
          expect(sameBits(stats.accumulated![h], runs[0].stats.accumulated![h])).toBe(true);
          expect(sameBits(stats.windowed![h], runs[0].stats.windowed![h])).toBe(true);
        }
        expect(sameBits(stats.echo!, runs[0].stats.echo!)).toBe(true);
        expect(sameBits(stats.induction!, runs[0].stats.induction!)).toBe(true);
      }
    } finally {
      k.setThreads(threads);
    }
  });

  it("names the argument and the expected size", () => {
    const q = new Float32Array(5 * H * D);
    const kv = new Float32Array(5 * HKV * D);
    const base = { queries: q, keys: kv, values: kv, out: new Float32Array(5 * H * D), numHeads: H, numKvHeads: HKV, headDim: D, numQueries: 5 };
    expect(() => k.attendPrefill({ ...base, keys: kv.subarray(1) })).toThrow(/keys has 959 values, expected kvLength×numKvHeads×headDim = 5×3×64 = 960/);
    expect(() => k.attendPrefill({ ...base, numKvHeads: 4 })).toThrow(/numHeads 9 is not a multiple of numKvHeads 4/);
    expect(() => k.attendPrefill({ ...base, kvLength: 4 })).toThrow(/kvLength must be an integer ≥ 5/);
    expect(() => k.attendPrefill({ ...base, out: q })).toThrow(/out must not overlap queries/);
  });
});

/** A compressed layer: KV head kv keeps `lengths[kv]` of `fullLength` positions (sinks + most recent), optionally folding the rest. */
function raggedCache(seed: number, fullLength: number, lengths: number[], d: number, compensate: boolean) {
  const rand = mulberry32(seed);
  const heads = lengths.map((keep) => {
    const full = new HeadCache(d, fullLength);
    for (let p = 0; p < fullLength; p++) full.append(p, randomArray(rand, d), randomArray(rand, d));
    const sinks = Math.min(keep, 2);
    const slots = [...Array.from({ length: sinks }, (_, i) => i), ...Array.from({ length: keep - sinks }, (_, i) => fullLength - (keep - sinks) + i)];
    return full.select(slots, compensate ? full.foldDropped(slots) : null);
  });
  const cache = new KvCache({ numLayers: 1, numKvHeads: lengths.length, headDim: d }, heads, fullLength);
  return { rand, cache };
}

describe.skipIf(kernelsDisabled)("attend / attendHeads (ragged per-head caches)", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
  });

  for (const compensate of [false, true]) {
    for (const C of [1, 3]) {
      it(`lengths 1, 5, 130 ${compensate ? "with" : "without"} compensation slots, C=${C}`, () => {
        const fullLength = 200;
        const { rand, cache } = raggedCache(C * 7 + (compensate ? 1 : 0), fullLength, [1, 5, 130], D, compensate);
        // the new tokens are the last C positions; append them so each query sees itself
        for (const head of cache.heads) {
          for (let c = 0; c < C; c++) head.append(fullLength + c, randomArray(rand, D), randomArray(rand, D));
        }
        cache.nextPosition = fullLength + C;
        if (compensate) expect(cache.heads.every((h) => h.compensation !== null || h.length === C + 1)).toBe(true);
        const queries = randomArray(rand, C * H * D, 2);
        const queryPositions = Array.from({ length: C }, (_, c) => fullLength + c);
        const stats: AttentionStatsRequest = { accumulated: true, windowQueries: 2 };
        const expected = new Float32Array(C * H * D);
        const expectedStats = attendReference({ cache, layer: 0, numHeads: H, queries, queryPositions, out: expected, stats });
        const out = new Float32Array(C * H * D).fill(Number.NaN);
        const actualStats = k.attend({ cache, layer: 0, numHeads: H, queries, queryPositions, out, stats });
        expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
        expectStatsClose(actualStats, expectedStats);
      });
    }
  }

  it("queries at arbitrary positions see only earlier slots (causal by original position)", () => {
    const { rand, cache } = raggedCache(3, 90, [40, 7, 90], D, true);
    const queryPositions = [5, 60, 0, 89, 30];
    const C = queryPositions.length;
    const queries = randomArray(rand, C * H * D);
    const expected = new Float32Array(C * H * D);
    const expectedStats = attendReference({ cache, layer: 0, numHeads: H, queries, queryPositions, out: expected, stats: { accumulated: true } });
    const out = new Float32Array(C * H * D);
    const actualStats = k.attend({ cache, layer: 0, numHeads: H, queries, queryPositions, out, stats: { accumulated: true } });
    expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
    expectStatsClose(actualStats, expectedStats);
  });

  it("a head with nothing visible and no compensation slot gives zeros, not NaN", () => {
    const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: 8 });
    cache.head(0, 0).append(10, new Float32Array(8).fill(1), new Float32Array(8).fill(1));
    const out = new Float32Array(2 * 8).fill(Number.NaN);
    k.attend({ cache, layer: 0, numHeads: 2, queries: new Float32Array(16).fill(0.5), queryPositions: [3], out });
    expect(Array.from(out)).toEqual(new Array(16).fill(0));
  });

  it("the compensation slot weighs exactly like its n copies (DESIGN §3)", () => {
    const rand = mulberry32(77);
    const d = D;
    const n = 6;
    const kHat = randomArray(rand, d);
    const vHat = randomArray(rand, d);
    const kept = Array.from({ length: 4 }, () => ({ key: randomArray(rand, d), value: randomArray(rand, d) }));
    // head A: 4 kept entries + the slot (k̂, v̂, n); head B: the same 4 entries + n literal copies of (k̂, v̂)
    const withSlot = new HeadCache(d);
    const withCopies = new HeadCache(d);
    for (let i = 0; i < n; i++) withCopies.append(i, kHat, vHat);
    kept.forEach((e, i) => {
      withSlot.append(n + i, e.key, e.value);
      withCopies.append(n + i, e.key, e.value);
    });
    withSlot.compensation = { key: kHat, value: vHat, count: n };
    const queries = randomArray(rand, 3 * d, 3);
    const run = (head: HeadCache) => {
      const cache = new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d }, [head], n + kept.length);
      const out = new Float32Array(3 * d);
      k.attend({ cache, layer: 0, numHeads: 3, queries, queryPositions: [n + kept.length - 1], out });
      return out;
    };
    expect(relativeError(run(withSlot), run(withCopies))).toBeLessThanOrEqual(1e-5);
  });

  it("reads a HeadCache's arrays in place, capacity beyond length included", () => {
    const { rand, cache } = raggedCache(11, 64, [64, 64, 64], D, false);
    for (const head of cache.heads) head.reserve(1000); // capacity ≫ length: only `length` slots are live
    const queries = randomArray(rand, H * D);
    const expected = new Float32Array(H * D);
    attendReference({ cache, layer: 0, numHeads: H, queries, queryPositions: [63], out: expected });
    const out = new Float32Array(H * D);
    k.attendHeads({ heads: cache.heads, headDim: D, numHeads: H, queries, queryPositions: Int32Array.of(63), out });
    expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
  });

  it("matches the reference on a multi-layer cache, layer by layer", () => {
    const rand = mulberry32(21);
    const T = 50;
    const cache = new KvCache({ numLayers: 3, numKvHeads: HKV, headDim: D });
    for (const head of cache.heads) for (let t = 0; t < T; t++) head.append(t, randomArray(rand, D), randomArray(rand, D));
    cache.nextPosition = T;
    const queries = randomArray(rand, 2 * H * D);
    for (let layer = 0; layer < 3; layer++) {
      const expected = new Float32Array(2 * H * D);
      attendReference({ cache, layer, numHeads: H, queries, queryPositions: [48, 49], out: expected });
      const out = new Float32Array(2 * H * D);
      k.attend({ cache, layer, numHeads: H, queries, queryPositions: [48, 49], out });
      expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
    }
  });

  it("refuses repeated-sequence statistics on a compressed cache, like the reference", () => {
    const { cache } = raggedCache(4, 30, [10, 10, 10], D, true);
    const args = { cache, layer: 0, numHeads: H, queries: new Float32Array(H * D), queryPositions: [29], out: new Float32Array(H * D), stats: { repeatedSequence: { period: 5, firstPosition: 0 } } };
    expect(() => attendReference(args)).toThrow(/uncompressed cache/);
    expect(() => k.attend(args)).toThrow(/uncompressed cache/);
  });

  it("names the argument and the expected size", () => {
    const { cache } = raggedCache(4, 30, [10, 10, 10], D, false);
    const base = { cache, layer: 0, numHeads: H, queries: new Float32Array(H * D), queryPositions: [29], out: new Float32Array(H * D) };
    expect(() => k.attend({ ...base, queries: new Float32Array(100) })).toThrow(/queries has 100 values, expected C×numHeads×headDim = 1×9×64 = 576/);
    expect(() => k.attend({ ...base, numHeads: 8 })).toThrow(/numHeads 8 is not a multiple of the number of KV heads \(3\)/);
    expect(() => k.attend({ ...base, layer: 1 })).toThrow(/layer 1 outside the cache's 1 layers/);
    const heads = cache.heads.map((h) => ({ keys: h.keys, values: h.values.subarray(0, 9 * D), positions: h.positions, length: h.length }));
    expect(() => k.attendHeads({ ...base, heads, headDim: D })).toThrow(/heads\[0\]\.values has 576 values, expected at least length×headDim = 10×64 = 640/);
  });
});

describe.skipIf(kernelsDisabled)("sliding window and soft cap (Mistral, Gemma 2/3)", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
  });

  // the reference reads the window from the cache's layer; the kernels take it as an argument
  const windowed = (cache: KvCache, window: number) => new KvCache({ ...cache, layerWindows: [window] }, cache.heads, cache.nextPosition);

  const cases: { name: string; T: number; C: number; numHeads: number; numKv: number; d: number; window: number; softcap?: number; stats?: AttentionStatsRequest }[] = [
    { name: "prefill T=101, window 7, 9 heads over 3", T: 101, C: 101, numHeads: H, numKv: HKV, d: D, window: 7, stats: { accumulated: true, windowQueries: 9 } },
    { name: "window 1 (each query sees itself only)", T: 23, C: 23, numHeads: 6, numKv: 3, d: 13, window: 1, stats: { accumulated: true } },
    { name: "window longer than the input changes nothing", T: 57, C: 57, numHeads: 4, numKv: 2, d: 72, window: 300 },
    { name: "window 70 over 700 tokens: several key blocks and value chunks skipped", T: 700, C: 700, numHeads: H, numKv: HKV, d: D, window: 70, stats: { accumulated: true, windowQueries: 32 } },
    { name: "chunk of 19 after 40 cached, window 13", T: 59, C: 19, numHeads: 6, numKv: 2, d: 40, window: 13, stats: { accumulated: true, windowQueries: 4 } },
    { name: "soft cap 5 with window 11 (Gemma 2 local layer)", T: 83, C: 83, numHeads: 4, numKv: 2, d: 24, window: 11, softcap: 5, stats: { accumulated: true } },
    { name: "repeated-sequence scores through a window", T: 1 + 4 * 9, C: 1 + 4 * 9, numHeads: H, numKv: HKV, d: D, window: 12, stats: { repeatedSequence: { period: 9, firstPosition: 1 } } },
  ];

  for (const { name, T, C, numHeads, numKv, d, window, softcap, stats } of cases) {
    it(`attendPrefill: ${name}`, () => {
      const { rand, keys, values, cache } = prefillInputs(T * 17 + C + window, T, numKv, d);
      const queries = randomArray(rand, C * numHeads * d, 2);
      const positions = Int32Array.from({ length: C }, (_, c) => T - C + c);
      const expected = new Float32Array(C * numHeads * d);
      const expectedStats = attendReference({ cache: windowed(cache, window), layer: 0, numHeads, queries, queryPositions: positions, out: expected, softcap, stats });
      const out = new Float32Array(C * numHeads * d).fill(Number.NaN);
      const actualStats = k.attendPrefill({ queries, keys, values, out, numHeads, numKvHeads: numKv, headDim: d, numQueries: C, kvLength: T, window, softcap, stats });
      expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
      expectStatsClose(actualStats, expectedStats);
    });

    it(`attend (over a KvCache): ${name}`, () => {
      const { rand, cache } = prefillInputs(T * 19 + C + window, T, numKv, d);
      const layer = windowed(cache, window);
      const queries = randomArray(rand, C * numHeads * d, 2);
      const positions = Int32Array.from({ length: C }, (_, c) => T - C + c);
      const expected = new Float32Array(C * numHeads * d);
      const expectedStats = attendReference({ cache: layer, layer: 0, numHeads, queries, queryPositions: positions, out: expected, softcap, stats });
      const out = new Float32Array(C * numHeads * d).fill(Number.NaN);
      const actualStats = k.attend({ cache: layer, layer: 0, numHeads, queries, queryPositions: positions, out, softcap, stats });
      expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
      expectStatsClose(actualStats, expectedStats);
    });
  }

  it("a trimmed, compressed windowed head with a compensation slot: window lowers the start, the slot stays visible", () => {
    const d = 24;
    const numHeads = 4;
    const { rand, cache } = prefillInputs(77, 90, 2, d);
    // head 0: positions 30…89 (trimmed to a window of 60); head 1: sinks 0…3, a folded slot and 50…89
    const heads = [cache.heads[0].select(Array.from({ length: 60 }, (_, i) => 30 + i))];
    const kept = [0, 1, 2, 3, ...Array.from({ length: 40 }, (_, i) => 50 + i)];
    heads.push(cache.heads[1].select(kept, cache.heads[1].foldDropped(kept)));
    const layer = new KvCache({ numLayers: 1, numKvHeads: 2, headDim: d, layerWindows: [60] }, heads, 90);
    const positions = Int32Array.of(70, 80, 89);
    const queries = randomArray(rand, positions.length * numHeads * d, 2);
    const expected = new Float32Array(queries.length);
    const expectedStats = attendReference({ cache: layer, layer: 0, numHeads, queries, queryPositions: positions, out: expected, stats: { accumulated: true } });
    const out = new Float32Array(queries.length);
    const actualStats = k.attend({ cache: layer, layer: 0, numHeads, queries, queryPositions: positions, out, stats: { accumulated: true } });
    expect(relativeError(out, expected)).toBeLessThanOrEqual(TOL);
    expectStatsClose(actualStats, expectedStats);
  });

  it("refuses a bad window or soft cap by name", () => {
    const q = new Float32Array(5 * H * D);
    const kv = new Float32Array(5 * HKV * D);
    const base = { queries: q, keys: kv, values: kv, out: new Float32Array(5 * H * D), numHeads: H, numKvHeads: HKV, headDim: D, numQueries: 5 };
    expect(() => k.attendPrefill({ ...base, window: 0 })).toThrow(/window must be an integer ≥ 1, got 0/);
    expect(() => k.attendPrefill({ ...base, softcap: -1 })).toThrow(/softcap must be a finite number > 0, got -1/);
  });
});

describe.skipIf(kernelsDisabled)("attendStep (one layer of a decode step over every sequence)", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
  });

  /** `count` sequences of a 2-layer cache with different lengths, compression and statistics, each with C queries. */
  function step(seed: number, count: number, C: number) {
    const rand = mulberry32(seed);
    return Array.from({ length: count }, (_, i) => {
      const fullLength = 40 + 37 * i;
      const compress = i % 2 === 1;
      const cache = new KvCache({ numLayers: 2, numKvHeads: HKV, headDim: D });
      for (const head of cache.heads) for (let p = 0; p < fullLength; p++) head.append(p, randomArray(rand, D), randomArray(rand, D));
      cache.nextPosition = fullLength;
      if (compress) {
        // layer 1 keeps sinks and a recent window per head, different lengths, with compensation slots
        for (let kv = 0; kv < HKV; kv++) {
          const full = cache.head(1, kv);
          const keep = [0, 1, ...Array.from({ length: 10 + 5 * kv }, (_, j) => fullLength - 10 - 5 * kv + j)];
          cache.heads[HKV + kv] = full.select(keep, full.foldDropped(keep));
        }
      }
      const queryPositions = Array.from({ length: C }, (_, c) => fullLength - C + c);
      const stats: AttentionStatsRequest | undefined = i % 3 === 0 ? { accumulated: true, windowQueries: 1 } : undefined;
      return { cache, queries: randomArray(rand, C * H * D, 2), queryPositions, stats };
    });
  }

  for (const [count, C] of [[1, 1], [2, 1], [5, 1], [3, 4]]) {
    it(`${count} sequence${count > 1 ? "s" : ""}, C=${C}: each gets attendHeads' bits and the reference's values, both layers`, () => {
      const seqs = step(count * 10 + C, count, C);
      for (const layer of [0, 1]) {
        const outs = seqs.map(() => new Float32Array(C * H * D).fill(Number.NaN));
        const stats = k.attendStep({ layer, numHeads: H, sequences: seqs.map((s, i) => ({ ...s, out: outs[i] })) });
        expect(stats).toHaveLength(count);
        seqs.forEach((s, i) => {
          const alone = new Float32Array(C * H * D);
          const aloneStats = k.attend({ ...s, layer, numHeads: H, out: alone });
          expect(sameBits(outs[i], alone), `sequence ${i} output`).toBe(true);
          for (const key of ["accumulated", "windowed"] as const) {
            expect(stats[i][key] === undefined).toBe(aloneStats[key] === undefined);
            aloneStats[key]?.forEach((a, h) => expect(sameBits(stats[i][key]![h], a), `sequence ${i} ${key}[${h}]`).toBe(true));
          }
          const expected = new Float32Array(C * H * D);
          const expectedStats = attendReference({ ...s, layer, numHeads: H, out: expected });
          expect(relativeError(outs[i], expected)).toBeLessThanOrEqual(TOL);
          expectStatsClose(stats[i], expectedStats);
        });
      }
    });
  }

  it("gives the same bits on one thread and on several (the work split changes, the results do not)", () => {
    const seqs = step(3, 1, 1);
    const threads = k.threads();
    try {
      const runs = [1, 2, 3].map((n) => {
        k.setThreads(n);
        const out = new Float32Array(H * D);
        const [stats] = k.attendStep({ layer: 0, numHeads: H, sequences: [{ ...seqs[0], out, stats: { accumulated: true } }] });
        return { out, stats };
      });
      for (const run of runs.slice(1)) {
        expect(sameBits(run.out, runs[0].out)).toBe(true);
        for (let h = 0; h < H; h++) expect(sameBits(run.stats.accumulated![h], runs[0].stats.accumulated![h])).toBe(true);
      }
    } finally {
      k.setThreads(threads);
    }
  });

  it("takes KV heads as arrays too, and names the sequence in its errors", () => {
    const [s] = step(4, 1, 1);
    const heads = s.cache.heads.slice(0, HKV);
    const out = new Float32Array(H * D);
    k.attendStep({ numHeads: H, headDim: D, sequences: [{ heads, queries: s.queries, queryPositions: s.queryPositions, out }] });
    const alone = new Float32Array(H * D);
    k.attendHeads({ heads, headDim: D, numHeads: H, queries: s.queries, queryPositions: s.queryPositions, out: alone });
    expect(sameBits(out, alone)).toBe(true);
    const bad = { cache: s.cache, queries: new Float32Array(100), queryPositions: s.queryPositions, out };
    expect(() => k.attendStep({ layer: 0, numHeads: H, sequences: [{ ...s, out }, bad] })).toThrow(
      /attendStep: sequences\[1\]\.queries has 100 values, expected C×numHeads×headDim = 1×9×64 = 576/,
    );
    expect(() => k.attendStep({ layer: 2, numHeads: H, sequences: [{ ...s, out }] })).toThrow(/layer 2 outside sequences\[0\]\.cache's 2 layers/);
    expect(() => k.attendStep({ numHeads: H, sequences: [{ queries: s.queries, queryPositions: [0], out }] })).toThrow(/sequences\[0\] gives neither cache nor heads/);
    expect(k.attendStep({ numHeads: H, sequences: [] })).toEqual([]);
  });
});
