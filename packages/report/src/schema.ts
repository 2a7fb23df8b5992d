/**
 * The files an experiment writes, as the report reads them. The runner (eval-runner) writes them with these types;
 * the report depends on nothing else, so it can render results from any machine or any version that kept the format.
 *
 *   <out>/results.jsonl   one ResultRow per line, appended as each (cell × sample) completes
 *   <out>/results.csv     the same rows without the wall-clock columns (csv-stringify, RESULT_COLUMNS order, sweep
 *                         order): a pure function of manifest + seed + machine kind, so a rerun or a resumed run
 *                         reproduces it byte for byte
 *   <out>/summary.json    Summary: mean and 95% interval per cell
 *   <out>/manifest.yaml   the manifest as run
 *   <out>/profiles/*.json RazorAttention head profiles used (HeadProfile, policy-razor): <model>.json is the calibrated
 *                         selection; <model>@<policy label>.json the selection of a variant that re-selected from the
 *                         same scores with other fractions (an ablation of the protected share)
 */

export type Mode = "query-agnostic" | "query-aware";

/** Metrics where a lower score is better (NLL in nats per token; its exponential, perplexity). */
export function lowerIsBetter(metric: string): boolean {
  return metric === "nll" || metric === "ppl" || metric === "perplexity";
}

export interface ResultRow {
  readonly experiment: string;
  readonly model: string;
  readonly task: string;
  readonly sampleId: string;
  readonly mode: Mode;
  /** Context length the task aimed at, and the tokens the prompt really had (context + query). */
  readonly targetLength: number;
  readonly promptTokens: number;
  /** Needle depth in [0, 1] for needle tasks; null otherwise. */
  readonly depth: number | null;
  /** Policy short name (e.g. "razor") and its parameters as canonical JSON; `cell` identifies policy+params+budget. */
  readonly policy: string;
  readonly policyParams: string;
  /** A label for the policy variant, unique within an experiment (e.g. "razor" or "razor-no-comp"). */
  readonly policyLabel: string;
  readonly cell: string;
  /** The kvBudget the cell asked for and the one measured from the compressed cache (DESIGN §3). */
  readonly budgetNominal: number;
  readonly budgetRealized: number;
  /** Bytes of keys and values the compressed and the full cache hold at 2 bytes per element. */
  readonly kvBytes: number;
  readonly kvBytesFull: number;
  readonly metric: string;
  /** The sample's score under `metric` (for "nll" lower is better; every other metric is in [0, 1]). */
  readonly score: number;
  /** The decoded answer for generation tasks (truncated to 200 characters); empty otherwise. */
  readonly prediction: string;
  /** Wall time of this sample's shared prefill (the same for every cell of the sample) and of this cell's decode. */
  readonly prefillMs: number;
  readonly decodeMs: number;
  readonly decodeTokens: number;
}

/** Column order of results.csv: every deterministic field (timings live in results.jsonl only). */
export const RESULT_COLUMNS: readonly (keyof ResultRow)[] = [
  "experiment", "model", "task", "sampleId", "mode", "targetLength", "promptTokens", "depth", "policy",
  "policyParams", "policyLabel", "cell", "budgetNominal", "budgetRealized", "kvBytes", "kvBytesFull", "metric",
  "score", "prediction", "decodeTokens",
];

export interface SummaryCell {
  readonly model: string;
  readonly task: string;
  readonly mode: Mode;
  readonly policyLabel: string;
  readonly policy: string;
  readonly policyParams: string;
  readonly budgetNominal: number;
  readonly metric: string;
  readonly n: number;
  readonly mean: number;
  /** 95% interval: Wilson for 0/1 scores, Student t otherwise. */
  readonly ciLow: number;
  readonly ciHigh: number;
  readonly budgetRealizedMean: number;
  readonly kvBytesMean: number;
}

export interface Summary {
  readonly experiment: string;
  readonly cells: readonly SummaryCell[];
}

/** RazorAttention head profile as policy-razor writes it (`razorkv calibrate`). */
export interface HeadProfile {
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly echo: number[][];
  readonly induction: number[][];
  readonly retrieval: { layer: number; kvHead: number }[];
  readonly params: Record<string, unknown>;
}
