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
 *   <out>/heads/*.json    HeadSelection: the heads a head-level policy protected and the per-head scores it chose
 *                         them by, one file per distinct selection (<model>@<first policy label>.json), `usedBy` the
 *                         policy labels that used it. Any policy may write one; the report draws every file.
 *   <out>/prepared/<policy>/*.json  the per-model artefacts the policies' preparation steps made (a head profile, …),
 *                         byte copies of the cache files; kept for reproduction, not read by the report
 */

export type Mode = "query-agnostic" | "query-aware";

/** Metrics where a lower score is better (NLL in nats per token; its exponential, perplexity). */
export function lowerIsBetter(metric: string): boolean {
  return metric === "nll" || metric === "ppl" || metric === "perplexity";
}

/**
 * How the question and the answer meet a compressed cache (DESIGN §2, step 4), one setting for every cell of a sweep:
 * - "append" (default; kvpress's convention): compress the prefill, then append the question (query-agnostic
 *   mode) and the answer for every policy; nothing is evicted after compression.
 * - "hold-budget": every policy holds its kvBudget while the question and the answer are fed, evicting as it
 *   grows (H2O's and StreamingLLM's decode rules); a policy that has no decode-time eviction cannot hold a budget
 *   below 1, so its cells are infeasible rows rather than a comparison at unequal memory.
 */
export type AnswerProtocol = "append" | "hold-budget";
export const ANSWER_PROTOCOLS: readonly AnswerProtocol[] = ["append", "hold-budget"];

/**
 * The arithmetic of a row's prefill products with quantized weights (the manifest's prefillProducts): "f32"
 * (transformers' result within rounding) or "int8" (llama.cpp-style 8-bit activations). A row written before the
 * field existed was f32, and reads as such.
 */
export type PrefillProducts = "f32" | "int8";
export const PREFILL_PRODUCTS: readonly PrefillProducts[] = ["f32", "int8"];

/** A stored row as the current schema reads it: one from before prefillProducts existed gets "f32". */
export function withPrefillProducts<R extends object>(row: R): R & { prefillProducts: unknown } {
  return "prefillProducts" in row && row.prefillProducts !== undefined ? (row as R & { prefillProducts: unknown }) : { ...row, prefillProducts: "f32" };
}

/** What identifies a row and the cell it belongs to, whether or not it could be scored. */
interface RowIdentity {
  readonly experiment: string;
  /**
   * Hex SHA-256 over everything that can change the row (model file digest, policy name, params and budget, task
   * type and params, the sample's content, mode, answer protocol, seed, and the harness's row version): the
   * results store's key. Rerunning an edited manifest recomputes exactly the rows whose key changed.
   */
  readonly key: string;
  readonly model: string;
  /** SHA-256 of the model's weights file (the GGUF, or the safetensors files in name order). */
  readonly modelDigest: string;
  readonly task: string;
  readonly sampleId: string;
  readonly mode: Mode;
  readonly protocol: AnswerProtocol;
  readonly prefillProducts: PrefillProducts;
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
  /** The kvBudget the cell asked for, as a fraction of the prefilled (compressed) tokens' entries (DESIGN §3). */
  readonly budgetNominal: number;
  readonly metric: string;
}

/** A sample the cell answered and scored. */
export interface ScoredRow extends RowIdentity {
  readonly status: "ok";
  /** Tokens prefilled and compressed: the context (query-agnostic) or context + question (query-aware). */
  readonly prefillTokens: number;
  /**
   * Realized kvBudget measured from the cache itself (entries held over all layers and KV heads, compensation slots
   * included, divided by heads × tokens seen so far): right after compression, when the first answer token is
   * predicted (the question is in the cache), and after the last answer token.
   */
  readonly budgetRealized: number;
  readonly budgetAnswer: number;
  readonly budgetEnd: number;
  /** Bytes of keys and values held at 2 bytes per element: after compression, at the first answer token, at the end; and the full prefill cache's. */
  readonly kvBytes: number;
  readonly kvBytesAnswer: number;
  readonly kvBytesEnd: number;
  readonly kvBytesFull: number;
  /** The sample's score under `metric` (for "nll" lower is better; every other metric is in [0, 1]). */
  readonly score: number;
  /** The whole decoded answer for generation tasks (special tokens skipped); empty otherwise. */
  readonly prediction: string;
  /** Wall time of this sample's shared prefill (the same for every cell of the sample) and of this cell's decode. */
  readonly prefillMs: number;
  readonly decodeMs: number;
  readonly decodeTokens: number;
}

/**
 * A (cell × sample) that cannot be run as asked — a budget below what the policy can keep on this sample, a record
 * too short for an observation window, a prompt longer than the model's context. It is a result: the sweep goes on,
 * and the summary and the report count and show these rows.
 */
export interface InfeasibleRow extends RowIdentity {
  readonly status: "infeasible";
  /** One line naming the task, the sample and the cell, what was asked and why it cannot be done. */
  readonly reason: string;
}

export type ResultRow = ScoredRow | InfeasibleRow;

export function isScored(row: ResultRow): row is ScoredRow {
  return row.status === "ok";
}

/** Every column results.csv has, in order: the deterministic fields (timings live in results.jsonl only). */
export const RESULT_COLUMNS = [
  "experiment", "key", "model", "modelDigest", "task", "sampleId", "mode", "protocol", "prefillProducts", "targetLength", "promptTokens",
  "prefillTokens", "depth", "policy", "policyParams", "policyLabel", "cell", "status", "reason", "budgetNominal",
  "budgetRealized", "budgetAnswer", "budgetEnd", "kvBytes", "kvBytesAnswer", "kvBytesEnd", "kvBytesFull", "metric",
  "score", "prediction", "decodeTokens",
] as const;

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
  /** Mean realized kvBudget when the first answer token is predicted: the memory the cell answered with. */
  readonly budgetAnswerMean: number;
  readonly kvBytesMean: number;
  /** Samples of this cell recorded as infeasible (InfeasibleRow), not counted in n. */
  readonly infeasible: number;
}

/** A cell none of whose samples could be run: it has no mean, only the count and the first reason. */
export interface InfeasibleCell {
  readonly model: string;
  readonly task: string;
  readonly mode: Mode;
  readonly policyLabel: string;
  readonly budgetNominal: number;
  readonly metric: string;
  readonly infeasible: number;
  readonly reason: string;
}

export interface Summary {
  readonly experiment: string;
  readonly cells: readonly SummaryCell[];
  /** Cells with no scored sample at all (every sample infeasible). */
  readonly infeasibleCells: readonly InfeasibleCell[];
}

export const HEAD_SELECTION_FORMAT = "razorkv.head-selection/1";

/** One kind of per-head score of a head selection. */
export interface HeadScore {
  readonly kind: string;
  readonly description: string;
  /** `values[layer]` has one entry per query head (numHeads) or per KV head (numKvHeads). */
  readonly per: "query-head" | "kv-head";
  /** How the method reduces a query-head group to its KV head's score (absent: mean). */
  readonly groupReduce?: "max" | "mean";
  readonly values: number[][];
}

/**
 * A head-level policy's selection, as core's `HeadSelection` (core/src/head-selection.ts) writes it: the file format
 * the report reads, declared here so the report depends on no package (a result folder renders anywhere).
 */
export interface HeadSelection {
  readonly format: typeof HEAD_SELECTION_FORMAT;
  readonly policy: string;
  /** What the selection is, e.g. "RazorAttention retrieval heads": the chart's title. */
  readonly title: string;
  /** How the scores were measured and what a protected head keeps: the chart's caption. */
  readonly description: string;
  /** How the protected set follows from the scores. */
  readonly rule: string;
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly scores: HeadScore[];
  readonly protected: { layer: number; kvHead: number }[];
  readonly params: Record<string, unknown>;
  /** The policy labels that used this selection. */
  readonly usedBy: string[];
}
