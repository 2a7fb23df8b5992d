/**
 * The artefact of DuoAttention's preparation step — one score per head, from a pattern file or computed on the fly
 * (scores.ts) — and the split it gives: the top share of KV heads by score are retrieval heads (whole cache), the
 * rest streaming heads (sinks + recent window). Exported as core's HeadSelection, which the report draws.
 */
import { checkHeadCounts, HEAD_SELECTION_FORMAT, RazorkvError, type HeadRef, type HeadSelection } from "@razorkv/core";

/** Where the scores came from. */
export type ScoreSource = "on-the-fly" | "pattern";

/** The preparation artefact (plain JSON, cached per model file and inputs). */
export interface DuoHeadScores {
  /** The model the scores belong to. */
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly source: ScoreSource;
  /** "query-head": [L][numHeads] on-the-fly scores (a KV head's is its group's mean); "kv-head": [L][numKvHeads] gates. */
  readonly per: "query-head" | "kv-head";
  readonly scores: number[][];
  /** The preparation inputs the scores were computed from. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** Validates a parsed artefact; a RazorkvError names `source` and the field. */
export function parseDuoHeadScores(value: unknown, source: string): DuoHeadScores {
  const fail = (field: string, expected: string): never => {
    throw new RazorkvError(`${source}: ${field}: expected ${expected}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) fail("artefact", "a DuoAttention head-score object");
  const v = value as Record<string, unknown>;
  if (typeof v.model !== "string") fail("model", "a string");
  const { numLayers: L, numHeads: H, numKvHeads: K } = checkHeadCounts(v, fail);
  if (v.source !== "on-the-fly" && v.source !== "pattern") fail("source", '"on-the-fly" or "pattern"');
  if (v.per !== "query-head" && v.per !== "kv-head") fail("per", '"query-head" or "kv-head"');
  const width = v.per === "query-head" ? H : K;
  if (!Array.isArray(v.scores) || v.scores.length !== L) fail("scores", `an array of ${L} layers`);
  (v.scores as unknown[]).forEach((row, l) => {
    if (!Array.isArray(row) || row.length !== width || row.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
      fail(`scores[${l}]`, `${width} finite numbers (one per ${v.per})`);
    }
  });
  if (!v.settings || typeof v.settings !== "object" || Array.isArray(v.settings)) fail("settings", "an object");
  return value as DuoHeadScores;
}

/** [layer][kvHead]: the KV head's score — its gate, or the mean of its query heads' on-the-fly scores (kvpress). */
export function kvHeadScores(a: Pick<DuoHeadScores, "numHeads" | "numKvHeads" | "per" | "scores">): number[][] {
  if (a.per === "kv-head") return a.scores.map((row) => [...row]);
  const g = a.numHeads / a.numKvHeads;
  return a.scores.map((row) =>
    Array.from({ length: a.numKvHeads }, (_, kv) => row.slice(kv * g, (kv + 1) * g).reduce((s, x) => s + x, 0) / g),
  );
}

/**
 * The retrieval heads: of the T = layers × KV heads, the round(protectedFraction · T) with the highest score; ties go
 * to the earlier (layer, KV head). kvpress marks the round(head_compression_ratio · T) lowest as streaming heads, the
 * same split with head_compression_ratio = 1 − protectedFraction up to rounding. Returned in (layer, kvHead) order.
 */
export function selectRetrievalHeads(kvScores: readonly (readonly number[])[], protectedFraction: number): HeadRef[] {
  const K = kvScores[0]?.length ?? 0;
  const flat = kvScores.flatMap((row) => [...row]);
  const count = Math.round(protectedFraction * flat.length);
  return flat
    .map((_, i) => i)
    .sort((a, b) => flat[b] - flat[a] || a - b)
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((i) => ({ layer: Math.floor(i / K), kvHead: i % K }));
}

/** What `headSelectionOf` needs of the policy's parameters. */
export interface SelectionParams {
  readonly protectedFraction: number;
  readonly sinks: number;
  readonly recent: number;
  readonly mode: "budget" | "paper";
}

/** The selection as core's HeadSelection: the scores, and the KV heads kept whole. */
export function headSelectionOf(a: DuoHeadScores, p: SelectionParams): HeadSelection {
  const percent = `${Number((p.protectedFraction * 100).toFixed(2))}%`;
  const onTheFly = a.source === "on-the-fly";
  const kind = onTheFly ? "on-the-fly score" : "gate";
  const s = a.settings as Record<string, unknown>;
  const measured = onTheFly
    ? `Scores without training as kvpress computes them: per layer, each head's mean query and key before RoPE over ${s.samples} generated texts of ` +
      `${s.sampleTokens} tokens, re-rotated at positions 0…${Number(s.queryLength) - 1}; the last query's attention, area under its cumulative curve ` +
      "(high: mass on early positions), a KV head the mean of its query heads."
    : `DuoAttention's learned gates (arXiv 2410.10819 §3.2) from ${String(s.file)}.`;
  const streaming = p.mode === "paper" ? `${p.sinks} sinks + the ${p.recent} most recent tokens` : `${p.sinks} sinks + a recent window sized to the budget`;
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: "duo-attention",
    title: "DuoAttention retrieval heads",
    description: `${measured} Retrieval heads (outlined) keep their whole cache; streaming heads keep ${streaming}.`,
    rule: `top ${percent} of KV heads by ${kind}`,
    model: a.model,
    numLayers: a.numLayers,
    numHeads: a.numHeads,
    numKvHeads: a.numKvHeads,
    scores: [
      onTheFly
        ? { kind, description: "area under the cumulative attention of the mean query over the mean key (kvpress)", per: "query-head", groupReduce: "mean", values: a.scores }
        : { kind, description: "learned gate α of the KV head, clipped to [0, 1]", per: "kv-head", values: a.scores },
    ],
    protected: selectRetrievalHeads(kvHeadScores(a), p.protectedFraction),
    params: { ...a.settings, protectedFraction: p.protectedFraction, sinks: p.sinks, recent: p.recent, mode: p.mode },
  };
}
