/**
 * H2O, Heavy-Hitter Oracle (Zhang et al. 2023, arXiv 2306.14048): a few keys collect most of the attention over
 * the whole sequence ("heavy hitters", §3); keep those and a window of recent tokens. A key's score is its
 * accumulated softmax weight over every query that saw it (§4, eq. 2's greedy score). While decoding the score
 * keeps accumulating with each new query, and whenever a head holds more than the budget allows, its
 * lowest-scored entry outside the recent window is evicted (the paper's greedy eviction, Algorithm 1).
 */
import {
  aggregateGroup, decodeTargets, definePolicy, entriesToKeep, entriesToKeepOf, evictSlot, gqaAggregationParam, keepRecentAndTop, layerStat,
  param, selectPerHead, toKvBudget, type CompressionPolicy, type GqaAggregation, type HeadCache, type KvCache,
  type LayerAttentionStats, type ParamsOf, type PrefillStats,
} from "@razorkv/core";

export const params = {
  heavyFraction: param.number({
    default: 0.5,
    min: 0,
    max: 1,
    doc: "Share of each head's budget given to heavy hitters; the rest is the recent window. The paper's experiments split the cache evenly (§5).",
  }),
  normalization: param.choice({
    choices: ["sum", "mean"],
    default: "sum",
    doc: "sum: the paper's accumulated attention. mean: divided by the number of queries that saw the key (kvpress), which removes the advantage early keys get from being seen by more queries.",
  }),
  gqaAggregation: gqaAggregationParam,
};
export type H2oParams = ParamsOf<typeof params>;

/** Recent-window size of a head that keeps `keep` entries. */
export function recentCount(keep: number, heavyFraction: number): number {
  return keep - Math.round(keep * heavyFraction);
}

/**
 * The score: per slot of KV head `kvHead`, the accumulated attention of its query heads (`accumulated`, one array
 * per query head of the layer, indexed by slot), divided by the number of queries that saw the key when
 * `normalization` is "mean" (queries at positions ≥ the key's position, up to `sequenceLength` − 1), then
 * reduced over the GQA group.
 */
export function heavyHitterScores(
  accumulated: readonly ArrayLike<number>[],
  head: HeadCache,
  kvHead: number,
  numKvHeads: number,
  sequenceLength: number,
  p: { normalization: "sum" | "mean"; gqaAggregation: GqaAggregation },
): Float64Array {
  const normalize = (s: ArrayLike<number>) =>
    p.normalization === "sum" ? s : Array.from(s, (x, slot) => x / (sequenceLength - head.positions[slot]));
  return aggregateGroup(accumulated, kvHead, numKvHeads, p.gqaAggregation, normalize);
}

export function createH2o(p: H2oParams): CompressionPolicy {
  const name = "h2o";
  return {
    name,
    statsRequest: { accumulated: true },
    compress(fullCache, stats, budget) {
      const keep = entriesToKeep(fullCache, budget, name);
      const n = fullCache.nextPosition;
      return selectPerHead(fullCache, (head, layer, kv) => {
        const scores = heavyHitterScores(layerStat(stats, layer, "accumulated", name), head, kv, fullCache.numKvHeads, n, p);
        return keepRecentAndTop(scores, keep, recentCount(keep, p.heavyFraction));
      });
    },
    checkFeasible(n, budget, layout) {
      entriesToKeepOf(n, budget, name, 1, undefined, layout);
    },
    // Algorithm 1: keep accumulating and evicting so each head holds kvBudget of the growing sequence (used under
    // the "hold-budget" answer protocol only)
    decode: { statsRequest: { accumulated: true }, start: (cache, prefill, budget) => new H2oDecodeSession(cache, prefill, toKvBudget(budget, cache.nextPosition), p) },
  };
}

/**
 * Decode-time state: for every head, each query head's accumulated weight on each slot (raw sums, aligned with the
 * head's slots, whose positions are kept beside them). Each forward adds the new queries' weights — the forward
 * collects them with `accumulated: true`, indexed by slot after the step's append and the model's sliding-window
 * trim — and then the head evicts down to its share of kvBudget · the uncompressed cache (core's decodeTargets).
 */
export class H2oDecodeSession {
  /** sums[layer * numKvHeads + kvHead][query head within the group][slot] */
  private readonly sums: number[][][];
  /** positions[head][slot]: the positions `sums` are aligned with. */
  private readonly positions: number[][];

  constructor(
    private readonly cache: KvCache,
    prefill: PrefillStats,
    private readonly kvBudget: number,
    private readonly p: H2oParams,
  ) {
    this.positions = cache.heads.map((head) => Array.from(head.positions.subarray(0, head.length)));
    this.sums = cache.heads.map((head, i) => {
      // a head held at its sliding window is never evicted from (and its prefill statistics are not by position)
      if (cache.heldByWindow(i)) return [];
      const layer = Math.floor(i / cache.numKvHeads);
      const perQuery = groupOf(layerStat(prefill, layer, "accumulated", "h2o"), i % cache.numKvHeads, cache.numKvHeads);
      // the full cache had slot = position
      return perQuery.map((acc) => Array.from(head.positions.subarray(0, head.length), (position) => acc[position]));
    });
  }

  afterForward(stats: readonly LayerAttentionStats[] | null): void {
    const c = this.cache;
    const targets = decodeTargets(this.kvBudget, c);
    c.heads.forEach((head, i) => {
      // held at its sliding window: the model's, counted as it is (once held, always held: the window only binds more)
      if (c.heldByWindow(i) || this.sums[i].length === 0) return;
      const layer = Math.floor(i / c.numKvHeads);
      const step = stats?.[layer]?.accumulated;
      if (!step) throw new Error("h2o: the decode forward must collect { accumulated: true } statistics (decode.statsRequest)");
      const sums = this.sums[i];
      const positions = this.positions[i];
      // the model's window trim drops the oldest slots; the step appended new ones after the last
      let dropped = 0;
      while (dropped < positions.length && positions[dropped] < head.positions[0]) dropped++;
      if (dropped > 0) {
        positions.splice(0, dropped);
        for (const perQuery of sums) perQuery.splice(0, dropped);
      }
      while (positions.length < head.length) positions.push(head.positions[positions.length]);
      groupOf(step, i % c.numKvHeads, c.numKvHeads).forEach((weights, g) => {
        while (sums[g].length < head.length) sums[g].push(0);
        for (let s = 0; s < head.length; s++) sums[g][s] += weights[s];
      });
      const target = targets[i];
      const recent = recentCount(target, this.p.heavyFraction);
      while (head.entryCount > target) {
        const scores = heavyHitterScores(sums, head, 0, 1, c.nextPosition, this.p);
        let victim = 0;
        for (let s = 1; s < head.length - recent; s++) if (scores[s] < scores[victim]) victim = s;
        evictSlot(head, victim);
        positions.splice(victim, 1);
        for (const perQuery of sums) perQuery.splice(victim, 1);
      }
    });
  }
}

function groupOf<T>(perQueryHead: readonly T[], kvHead: number, numKvHeads: number): T[] {
  const g = perQueryHead.length / numKvHeads;
  return perQueryHead.slice(kvHead * g, (kvHead + 1) * g);
}

export default definePolicy({
  name: "h2o",
  description: "H2O (arXiv 2306.14048): heavy hitters by accumulated attention + recent window, evicting while decoding",
  params,
  create: createH2o,
});
