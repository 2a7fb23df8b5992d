/**
 * Grouped-query attention aggregation (DESIGN §3). The cache lives per KV head, but attention statistics come per
 * query head: query head h reads KV head floor(h / group), group = numHeads / numKvHeads. A policy that scores
 * query heads reduces each group to one score per slot before it chooses, here and nowhere else.
 */
import { param, type ChoiceParam } from "./params.js";

/**
 * How the query heads of a group combine. `mean` (default, as kvpress and SnapKV's GQA port do): a slot matters
 * as much as the group's average use of it. `max`: a slot any one head relies on is kept (conservative).
 */
export type GqaAggregation = "mean" | "max";

/** The parameter every group-scoring policy offers, so manifests spell it the same way. */
export const gqaAggregationParam: ChoiceParam<GqaAggregation> = param.choice({
  choices: ["mean", "max"],
  default: "mean",
  doc: "How scores of the query heads sharing one KV head combine (DESIGN §3): mean (kvpress) or max (keep what any head needs).",
});

export function groupSize(numHeads: number, numKvHeads: number): number {
  if (!Number.isInteger(numHeads) || !Number.isInteger(numKvHeads) || numKvHeads <= 0 || numHeads % numKvHeads !== 0) {
    throw new Error(`GQA: numHeads ${numHeads} is not a positive multiple of numKvHeads ${numKvHeads}`);
  }
  return numHeads / numKvHeads;
}

/** The query heads that read KV head `kvHead`. */
export function queryHeadsOf(kvHead: number, numHeads: number, numKvHeads: number): number[] {
  const g = groupSize(numHeads, numKvHeads);
  return Array.from({ length: g }, (_, i) => kvHead * g + i);
}

/**
 * One score per slot for KV head `kvHead`: the `mode` over its query heads of `perQueryHead[h][slot]`.
 * `perQueryHead` holds all numHeads query heads of one layer (as `LayerAttentionStats` does); `transform`, when
 * given, maps each query head's score first (e.g. a pooling that must happen per head, before the group reduces).
 */
export function aggregateGroup(
  perQueryHead: readonly ArrayLike<number>[],
  kvHead: number,
  numKvHeads: number,
  mode: GqaAggregation = "mean",
  transform?: (scores: ArrayLike<number>, queryHead: number) => ArrayLike<number>,
): Float64Array {
  const heads = queryHeadsOf(kvHead, perQueryHead.length, numKvHeads);
  let out: Float64Array | null = null;
  for (const h of heads) {
    const s = transform ? transform(perQueryHead[h], h) : perQueryHead[h];
    if (!out) out = new Float64Array(s.length).fill(mode === "max" ? -Infinity : 0);
    if (s.length !== out.length) throw new Error(`GQA: query head ${h} has ${s.length} scores, head ${heads[0]} has ${out.length}`);
    for (let i = 0; i < s.length; i++) {
      if (mode === "max") out[i] = Math.max(out[i], s[i]);
      else out[i] += s[i];
    }
  }
  if (!out) return new Float64Array(0);
  if (mode === "mean") for (let i = 0; i < out.length; i++) out[i] /= heads.length;
  return out;
}
