import {
  checkPolicyConformance, defaultParams, kvBudget, mulberry32, randomDecodeStep, randomPrefill, RazorkvError, type KvCache,
} from "@razorkv/core";
import { describe, expect, it } from "vitest";
import h2o, { createH2o, params, type H2oParams } from "./index.js";

const shape = { numLayers: 2, numHeads: 6, numKvHeads: 2, headDim: 6 };
const defaults = defaultParams(params);

/** Softmax weights of query q over the given keys, computed directly (float64). */
function softmax(q: ArrayLike<number>, keys: ArrayLike<number>[], d: number): number[] {
  const logits = keys.map((k) => {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += q[i] * k[i];
    return dot / Math.sqrt(d);
  });
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** Brute force: accumulated attention from the queries, normalised, aggregated, sorted; heavy ∪ recent. */
function referenceKept(cache: KvCache, queries: Float32Array[], keep: number, p: H2oParams): number[][] {
  const { numKvHeads: nkv, headDim: d } = cache;
  const n = cache.nextPosition;
  const numHeads = queries[0].length / (n * d);
  const g = numHeads / nkv;
  const out: number[][] = [];
  for (let l = 0; l < cache.numLayers; l++) {
    for (let kv = 0; kv < nkv; kv++) {
      const head = cache.head(l, kv);
      const keys = Array.from({ length: n }, (_, j) => head.key(j));
      const perQuery: number[][] = [];
      for (let h = kv * g; h < (kv + 1) * g; h++) {
        const acc = new Array<number>(n).fill(0);
        for (let i = 0; i < n; i++) {
          const w = softmax(queries[l].subarray((i * numHeads + h) * d, (i * numHeads + h + 1) * d), keys.slice(0, i + 1), d);
          w.forEach((x, j) => (acc[j] += x));
        }
        perQuery.push(p.normalization === "mean" ? acc.map((x, j) => x / (n - j)) : acc);
      }
      const score = Array.from({ length: n }, (_, j) =>
        p.gqaAggregation === "max" ? Math.max(...perQuery.map((s) => s[j])) : perQuery.reduce((a, s) => a + s[j], 0) / g,
      );
      const recent = keep - Math.round(keep * p.heavyFraction);
      const candidates = Array.from({ length: n - recent }, (_, j) => j).sort((a, b) => score[b] - score[a] || a - b);
      const kept = [...candidates.slice(0, keep - recent), ...Array.from({ length: recent }, (_, i) => n - recent + i)];
      out.push(kept.sort((a, b) => a - b));
    }
  }
  return out;
}

const positionsOf = (cache: KvCache) => cache.heads.map((h) => Array.from(h.positions.subarray(0, h.length)));

describe("policy-h2o", () => {
  it("realizes the nominal budget at 0.1…0.9 on several lengths, and holds it while decoding", () => {
    checkPolicyConformance(h2o.create(defaults), {
      shape, lengths: [23, 64, 151], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], decodeSteps: 25,
    });
  });

  it("with sliding-window layers: held heads whole, budget held while decoding across a window's bound", () => {
    const rows = checkPolicyConformance(h2o.create(defaults), {
      shape: { ...shape, numLayers: 3, layerWindows: [40, null, 70] },
      lengths: [23, 64, 151], budgets: [0.3, 0.5, 0.7, 0.9], decodeSteps: 25,
    });
    expect(rows.length).toBeGreaterThan(6);
  });

  const variants: [string, H2oParams][] = [
    ["defaults (sum, GQA mean, even split)", defaults],
    ["mean normalisation, GQA max, 3/4 heavy", { ...defaults, normalization: "mean", gqaAggregation: "max", heavyFraction: 0.75 }],
  ];
  for (const [label, p] of variants) {
    it(`chooses what a brute-force reference chooses on random attention: ${label}`, () => {
      for (const [length, b] of [[29, 0.3], [77, 0.55], [120, 0.1]] as const) {
        const { cache, stats, queries } = randomPrefill({ ...shape, length, seed: length, stats: { accumulated: true } });
        const out = createH2o(p).compress(cache, stats, kvBudget(b));
        expect(positionsOf(out)).toEqual(referenceKept(cache, queries, Math.round(b * length), p));
      }
    });
  }

  it("while decoding, accumulates each new query's weights and evicts the lowest-scored non-recent entry", () => {
    const length = 40;
    const b = 0.4;
    const { cache, stats, queries } = randomPrefill({ ...shape, length, stats: { accumulated: true }, seed: 5 });
    const policy = createH2o(defaults);
    const out = policy.compress(cache, stats, kvBudget(b));
    const session = policy.decode!.start(out, stats, kvBudget(b));
    const { headDim: d, numKvHeads: nkv } = cache;
    const g = shape.numHeads / nkv;

    // the reference: per head, position → { key, per-query-head accumulated weight }, from explicit attention
    type Entry = { key: Float32Array; sums: number[] };
    const ref = out.heads.map((head, i) => {
      const l = Math.floor(i / nkv);
      const kv = i % nkv;
      const full = cache.head(l, kv);
      const kept = new Map<number, Entry>();
      for (const position of head.positions.subarray(0, head.length)) kept.set(position, { key: full.key(position).slice(), sums: new Array(g).fill(0) });
      const keys = Array.from({ length }, (_, j) => full.key(j));
      for (let h = 0; h < g; h++) {
        const qh = kv * g + h;
        for (let q = 0; q < length; q++) {
          softmax(queries[l].subarray((q * shape.numHeads + qh) * d, (q * shape.numHeads + qh + 1) * d), keys.slice(0, q + 1), d).forEach((w, j) => {
            const e = kept.get(j);
            if (e) e.sums[h] += w;
          });
        }
      }
      return kept;
    });

    const rand = mulberry32(77);
    let evictions = 0;
    for (let step = 1; step <= 30; step++) {
      const stepQueries: Float32Array[] = [];
      session.afterForward(randomDecodeStep(out, rand, shape.numHeads, policy.decode!.statsRequest, stepQueries));
      const n = length + step;
      const target = Math.round(b * n);
      const recent = target - Math.round(target * defaults.heavyFraction);
      out.heads.forEach((head, i) => {
        const l = Math.floor(i / nkv);
        const kv = i % nkv;
        const entries = ref[i];
        // the new token is never evicted in its own step (it is the most recent), so it is the head's last slot
        entries.set(n - 1, { key: head.key(head.length - 1).slice(), sums: new Array(g).fill(0) });
        const held = [...entries.values()];
        for (let h = 0; h < g; h++) {
          const qh = kv * g + h;
          softmax(stepQueries[l].subarray(qh * d, (qh + 1) * d), held.map((e) => e.key), d).forEach((w, j) => (held[j].sums[h] += w));
        }
        while (entries.size > target) {
          const candidates = [...entries.keys()].slice(0, entries.size - recent);
          const score = (p: number) => entries.get(p)!.sums.reduce((a, x) => a + x, 0) / g;
          const victim = candidates.reduce((best, p) => (score(p) < score(best) ? p : best));
          entries.delete(victim);
          evictions++;
        }
        expect(Array.from(head.positions.subarray(0, head.length))).toEqual([...entries.keys()]);
        expect(head.length).toBe(target);
      });
    }
    expect(evictions).toBeGreaterThan(20);
    expect(out.realizedBudget()).toBeCloseTo(b, 1);
  });

  it("rejects a budget that keeps no entry, saying which is the smallest feasible", () => {
    const { cache, stats } = randomPrefill({ ...shape, length: 37, stats: { accumulated: true } });
    expect(() => createH2o(defaults).compress(cache, stats, kvBudget(0.01))).toThrow(RazorkvError);
    expect(() => createH2o(defaults).compress(cache, stats, kvBudget(0.01))).toThrow(/h2o: kvBudget 0\.01 keeps 0 of 37 entries per head.*smallest feasible kvBudget is 0\.0136/);
  });

  it("says when the prefill did not collect accumulated attention", () => {
    const { cache, stats } = randomPrefill({ ...shape, length: 20 });
    expect(() => createH2o(defaults).compress(cache, stats, kvBudget(0.5))).toThrow(/no "accumulated" weights; prefill with stats \{ accumulated: true \}/);
  });
});
