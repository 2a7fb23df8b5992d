/**
 * __NAME__: <what the method keeps and why, in two sentences; the paper: authors, year, title, arXiv id, and the
 * section or equation the score comes from>.
 *
 * This file starts as a working example so the package builds and its tests pass from the first minute: keep the
 * keys with the smallest L2 norm, which draw the most attention (Devoto et al. 2024, "A Simple and Effective L2
 * Norm-Based Strategy for KV Cache Compression", arXiv 2406.11430), plus a window of recent tokens. Replace
 * `scores` and `params` with the method's own; docs/adding-a-policy.md walks through the rest.
 *
 * A method that measures the model once before any sample (a head-level method choosing which heads keep their
 * whole cache, a calibration) adds a `prepare` step to the definition below: docs/adding-a-policy.md, section 6,
 * and packages/policy-random-heads, the smallest package that has one (its artefact, `headSelection` for the report,
 * and the layout from core's protectedHeadsPolicy).
 */
import {
  definePolicy, entriesToKeep, keepRecentAndTop, param, selectPerHead, type CompressionPolicy, type HeadCache, type ParamsOf,
} from "@razorkv/core";

/** Every parameter: its default, and why it exists (the paper's value and where it is stated). */
export const params = {
  window: param.integer({
    default: 8,
    min: 0,
    doc: "Most recent tokens always kept: generation conditions on them whatever their score.",
  }),
};
export type Params = ParamsOf<typeof params>;

/** The score: one number per slot of one KV head, higher = more worth keeping. Here: minus the key's L2 norm. */
export function scores(head: HeadCache): Float64Array {
  const out = new Float64Array(head.length);
  for (let slot = 0; slot < head.length; slot++) {
    let sumOfSquares = 0;
    for (const x of head.key(slot)) sumOfSquares += x * x;
    out[slot] = -Math.sqrt(sumOfSquares);
  }
  return out;
}

export function create(p: Params): CompressionPolicy {
  const name = "__NAME__";
  return {
    name,
    // a score that needs attention asks here: { accumulated: true } (H2O) or { windowQueries: n } (SnapKV);
    // compress then reads layerStat(stats, layer, "accumulated", name) and reduces it with aggregateGroup
    statsRequest: {},
    compress(fullCache, _stats, budget) {
      const keep = entriesToKeep(fullCache, budget, name);
      return selectPerHead(fullCache, (head) => keepRecentAndTop(scores(head), keep, Math.min(p.window, keep)));
    },
  };
}

export default definePolicy({
  name: "__NAME__",
  description: "__NAME__: <one line, with the paper's arXiv id>",
  params,
  create,
});
