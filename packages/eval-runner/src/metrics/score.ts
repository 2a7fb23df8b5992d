import type { ContinuationTarget, GenerationMetric, GenerationTarget } from "../tasks/types.js";
import { meanNll, tokenAccuracy } from "./likelihood.js";
import { containsMatch, exactMatch, rougeL, tokenF1 } from "./text-metrics.js";

const GENERATION_METRICS: Record<GenerationMetric, (prediction: string, references: readonly string[]) => number> = {
  exact: exactMatch,
  contains: containsMatch,
  "token-f1": tokenF1,
  "rouge-l": rougeL,
};

/**
 * Score of a greedy generation against a `GenerationTarget`, in [0, 1] (higher is better). `decoded` is the
 * generated text alone (no prompt), decoded with special tokens skipped; surrounding whitespace is ignored.
 */
export function scoreGeneration(target: GenerationTarget, decoded: string): number {
  const metric = GENERATION_METRICS[target.metric];
  if (metric === undefined) throw new Error(`scoreGeneration: unknown metric "${target.metric as string}"`);
  return metric(decoded.trim(), target.answers);
}

/** What the runner observes while teacher-forcing a continuation: one entry per continuation token. */
export interface ContinuationObservation {
  /** Natural-log probability the model gave each target token. */
  readonly targetLogProbs: ArrayLike<number>;
  /** The model's argmax token at each position (before seeing the target token there). */
  readonly greedyIds: ArrayLike<number>;
  /** The continuation's token ids. */
  readonly targetIds: ArrayLike<number>;
}

/**
 * Score of a `ContinuationTarget`: mean NLL in nats (lower is better; perplexity = exp of it) for `nll`, the
 * fraction of greedily predicted tokens (higher is better) for `token-accuracy`.
 */
export function scoreContinuation(target: ContinuationTarget, observed: ContinuationObservation): number {
  if (observed.targetLogProbs.length !== observed.targetIds.length) {
    throw new Error(
      `scoreContinuation: ${observed.targetLogProbs.length} log-probabilities for ${observed.targetIds.length} continuation tokens`,
    );
  }
  switch (target.metric) {
    case "nll":
      return meanNll(observed.targetLogProbs);
    case "token-accuracy":
      return tokenAccuracy(observed.greedyIds, observed.targetIds);
  }
}

/** Whether a higher score is better, for plots and summaries. */
export function higherIsBetter(metric: GenerationMetric | ContinuationTarget["metric"]): boolean {
  return metric !== "nll";
}
