import { checkPolicyConformance, defaultParams, kvBudget, randomPrefill, RazorkvError, type KvCache } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import snapkv, { createSnapKv, params, pool1d, type SnapKvParams } from "./index.js";

const shape = { numLayers: 2, numHeads: 6, numKvHeads: 3, headDim: 6 };
const defaults = defaultParams(params);

/** Brute force: explicit attention of the window's queries, summed, pooled by definition, aggregated, sorted. */
function referenceKept(cache: KvCache, queries: Float32Array[], keep: number, p: SnapKvParams): number[][] {
  const { numKvHeads: nkv, headDim: d } = cache;
  const n = cache.nextPosition;
  const numHeads = queries[0].length / (n * d);
  const g = numHeads / nkv;
  const w = Math.min(p.window, n);
  const prefix = n - w;
  const r = (p.kernelSize - 1) / 2;
  const out: number[][] = [];
  for (let l = 0; l < cache.numLayers; l++) {
    for (let kv = 0; kv < nkv; kv++) {
      const head = cache.head(l, kv);
      const pooled: number[][] = [];
      for (let h = kv * g; h < (kv + 1) * g; h++) {
        const sum = new Array<number>(n).fill(0);
        for (let i = n - w; i < n; i++) {
          const q = queries[l].subarray((i * numHeads + h) * d, (i * numHeads + h + 1) * d);
          const logits = Array.from({ length: i + 1 }, (_, j) => {
            let dot = 0;
            for (let x = 0; x < d; x++) dot += q[x] * head.key(j)[x];
            return dot / Math.sqrt(d);
          });
          const m = Math.max(...logits);
          const z = logits.reduce((a, x) => a + Math.exp(x - m), 0);
          logits.forEach((x, j) => (sum[j] += Math.exp(x - m) / z));
        }
        pooled.push(
          Array.from({ length: prefix }, (_, j) => {
            const near = [];
            for (let t = j - r; t <= j + r; t++) if (t >= 0 && t < prefix) near.push(sum[t]);
            return p.pooling === "max" ? Math.max(...near) : near.reduce((a, x) => a + x, 0) / p.kernelSize;
          }),
        );
      }
      const score = (j: number) =>
        p.gqaAggregation === "max" ? Math.max(...pooled.map((s) => s[j])) : pooled.reduce((a, s) => a + s[j], 0) / g;
      const top = Array.from({ length: prefix }, (_, j) => j).sort((a, b) => score(b) - score(a) || a - b).slice(0, keep - w);
      out.push([...top, ...Array.from({ length: w }, (_, i) => prefix + i)].sort((a, b) => a - b));
    }
  }
  return out;
}

describe("policy-snapkv", () => {
  it("realizes the nominal budget at 0.1…0.9 on several lengths", () => {
    checkPolicyConformance(snapkv.create({ ...defaults, window: 8 }), {
      shape, lengths: [83, 130, 247], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    });
    checkPolicyConformance(snapkv.create(defaults), { shape, lengths: [331, 517], budgets: [0.1, 0.3, 0.5, 0.7, 0.9] });
  });

  it("with sliding-window layers: held heads whole, the rest of the budget over the full-attention heads", () => {
    const rows = checkPolicyConformance(snapkv.create({ ...defaults, window: 8 }), {
      shape: { ...shape, layerWindows: [64, null] },
      lengths: [57, 130, 247], budgets: [0.2, 0.4, 0.6, 0.8, 0.9],
    });
    expect(rows.length).toBeGreaterThan(8);
  });

  it("pools with same padding", () => {
    expect(Array.from(pool1d([0, 5, 0, 0, 0, 0, 1], 3, "max"))).toEqual([5, 5, 5, 0, 0, 1, 1]);
    expect(Array.from(pool1d([3, 0, 0, 6], 3, "avg"))).toEqual([1, 1, 2, 2]);
  });

  const variants: [string, SnapKvParams][] = [
    ["defaults (window 32, max-pool 7, GQA mean)", defaults],
    ["kvpress settings (avg-pool 5), GQA max, window 11", { window: 11, kernelSize: 5, pooling: "avg", gqaAggregation: "max" }],
  ];
  for (const [label, p] of variants) {
    it(`chooses what a brute-force reference chooses on random attention: ${label}`, () => {
      for (const [length, b] of [[97, 0.45], [141, 0.3], [64, 0.9]] as const) {
        const { cache, stats, queries } = randomPrefill({ ...shape, length, seed: length + 3, stats: { windowQueries: p.window } });
        const out = createSnapKv(p).compress(cache, stats, kvBudget(b));
        const kept = out.heads.map((h) => Array.from(h.positions.subarray(0, h.length)));
        expect(kept).toEqual(referenceKept(cache, queries, Math.round(b * length), p));
      }
    });
  }

  it("rejects a budget smaller than the observation window, and statistics of another window", () => {
    const { cache, stats } = randomPrefill({ ...shape, length: 200, stats: { windowQueries: 32 } });
    expect(() => createSnapKv(defaults).compress(cache, stats, kvBudget(0.1))).toThrow(RazorkvError);
    expect(() => createSnapKv(defaults).compress(cache, stats, kvBudget(0.1))).toThrow(
      /snapkv: kvBudget 0\.1 keeps 20 of 200 entries per head, but snapkv needs at least 32 \(its 32-token observation window is always kept\)/,
    );
    expect(() => createSnapKv({ ...defaults, window: 64 }).compress(cache, stats, kvBudget(0.5))).toThrow(
      /snapkv: needs attention of the last 64 queries, but the prefill collected a window of 32/,
    );
  });

  it("validates its parameters", async () => {
    const { parseParams } = await import("@razorkv/core");
    expect(() => parseParams(params, { kernelSize: 4 }, "@razorkv/policy-snapkv")).toThrow(/@razorkv\/policy-snapkv: params\.kernelSize: expected an odd kernel/);
  });
});
