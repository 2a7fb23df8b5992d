/**
 * SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You are Looking for Before Generation", arXiv 2404.14469): the
 * last prompt tokens — the observation window — already attend to what generation will need (§3). Score every
 * earlier key by the window's summed softmax weight on it, pool the scores along positions so that a chosen key
 * brings its neighbours (clustering, §4.2), reduce over the GQA group, and keep the top-k keys plus the window.
 */
import {
  aggregateGroup, definePolicy, entriesToKeep, entriesToKeepOf, gqaAggregationParam, keepRecentAndTop, layerStat, param, requireWindow,
  selectPerHead, type CompressionPolicy, type GqaAggregation, type ParamsOf, pool1d } from "@razorkv/core";

export const params = {
  window: param.integer({
    default: 32,
    min: 1,
    doc: "Observation window: the last prompt tokens whose attention scores the rest; always kept. The authors' code uses 32; kvpress 64.",
  }),
  kernelSize: param.integer({
    default: 7,
    min: 1,
    check: (k) => (k % 2 === 1 ? null : "expected an odd kernel (same padding centres it on each position)"),
    doc: "Pooling kernel along positions, same padding: a selected key keeps its neighbours, which carry the rest of its information (§4.2). Authors: 7; kvpress: 5.",
  }),
  pooling: param.choice({
    choices: ["max", "avg"],
    default: "max",
    doc: "max (the authors' code) or avg (kvpress; zero padding counted in the mean, as PyTorch's avg_pool1d).",
  }),
  gqaAggregation: gqaAggregationParam,
};
export type SnapKvParams = ParamsOf<typeof params>;

/** SnapKV's pooling along positions, from core (one copy for every policy that pools). */
export { pool1d };

/**
 * The score: for the `prefix` keys before the window, each query head's window weights (`windowed`, one array
 * per query head of the layer) pooled along positions, then reduced over KV head `kvHead`'s group.
 */
export function snapKvScores(
  windowed: readonly ArrayLike<number>[],
  kvHead: number,
  numKvHeads: number,
  prefix: number,
  p: { kernelSize: number; pooling: "max" | "avg"; gqaAggregation: GqaAggregation },
): Float64Array {
  return aggregateGroup(windowed, kvHead, numKvHeads, p.gqaAggregation, (w) =>
    pool1d(Array.prototype.slice.call(w, 0, prefix) as number[], p.kernelSize, p.pooling),
  );
}

const windowKept = (window: number) => `its ${window}-token observation window is always kept`;

export function createSnapKv(p: SnapKvParams): CompressionPolicy {
  const name = "snapkv";
  return {
    name,
    statsRequest: { windowQueries: p.window },
    compress(fullCache, stats, budget) {
      requireWindow(stats, p.window, name);
      const n = fullCache.nextPosition;
      const window = Math.min(p.window, n);
      const keep = entriesToKeep(fullCache, budget, name, window, windowKept(window));
      return selectPerHead(fullCache, (_head, layer, kv) => {
        const scores = snapKvScores(layerStat(stats, layer, "windowed", name), kv, fullCache.numKvHeads, n - window, p);
        return keepRecentAndTop(scores, keep, window, n);
      });
    },
    checkFeasible(n, budget, layout) {
      const window = Math.min(p.window, n);
      entriesToKeepOf(n, budget, name, window, windowKept(window), layout);
    },
  };
}

export default definePolicy({
  name: "snapkv",
  description: "SnapKV (arXiv 2404.14469): observation-window attention, pooled, top-k per KV head + the window",
  params,
  create: createSnapKv,
});
