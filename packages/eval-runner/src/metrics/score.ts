import type { ContinuationTarget, GenerationMetric, GenerationTarget } from "../tasks/types.js";
import { meanNll, tokenAccuracy } from "./likelihood.js";
import {
  classificationScore,
  codeSimScore,
  countScore,
  longBenchFirstLine,
  qaF1Score,
  retrievalScore,
  retrievalZhScore,
  rougeScore,
} from "./longbench.js";
import { rulerMatchAll, rulerMatchPart } from "./ruler.js";
import { containsMatch, exactMatch, maxOverReferences, rougeL, tokenF1 } from "./text-metrics.js";

type GenerationScorer = (prediction: string, target: GenerationTarget) => number;

/** A LongBench metric: the max of a (prediction, reference) scorer over the answers, on the text as generated. */
function longBench(score: (prediction: string, reference: string) => number): GenerationScorer {
  return (prediction, target) => maxOverReferences(target.answers, (answer) => score(prediction, answer));
}

const GENERATION_METRICS: Record<GenerationMetric, GenerationScorer> = {
  exact: (p, t) => exactMatch(p.trim(), t.answers),
  contains: (p, t) => containsMatch(p.trim(), t.answers),
  "token-f1": (p, t) => tokenF1(p.trim(), t.answers),
  "rouge-l": (p, t) => rougeL(p.trim(), t.answers),
  "longbench-qa-f1": longBench(qaF1Score),
  "longbench-rouge": longBench(rougeScore),
  "longbench-classification": (prediction, target) => {
    const classes = target.allClasses;
    if (classes === undefined || classes.length === 0) {
      throw new Error(`scoreGeneration: metric "longbench-classification" needs the target's allClasses (the record's all_classes)`);
    }
    return maxOverReferences(target.answers, (answer) => classificationScore(prediction, answer, classes));
  },
  "longbench-retrieval": longBench(retrievalScore),
  "longbench-retrieval-zh": longBench(retrievalZhScore),
  "longbench-count": longBench(countScore),
  "longbench-code-sim": longBench(codeSimScore),
  "ruler-match-all": (p, t) => rulerMatchAll(p, t.answers),
  "ruler-match-part": (p, t) => rulerMatchPart(p, t.answers),
};

/** The metric names `GenerationTarget.metric` accepts, for parameter checks and messages. */
export const GENERATION_METRIC_NAMES = Object.keys(GENERATION_METRICS) as GenerationMetric[];

/**
 * Score of a greedy generation against a `GenerationTarget`, in [0, 1] (higher is better). `decoded` is the
 * generated text alone (no prompt), decoded with special tokens skipped.
 *
 * With `firstLineOnly`, the first line after leading newlines is scored (LongBench's eval.py). Then the generic
 * metrics ignore surrounding whitespace; the LongBench metrics see the text as LongBench's eval.py does, unstripped
 * (it matters to ROUGE's sentence split and to code lines' indentation); the RULER metrics apply RULER's
 * postprocess_pred.
 */
export function scoreGeneration(target: GenerationTarget, decoded: string): number {
  const metric = GENERATION_METRICS[target.metric];
  if (metric === undefined) throw new Error(`scoreGeneration: unknown metric "${target.metric as string}"`);
  return metric(target.firstLineOnly === true ? longBenchFirstLine(decoded) : decoded, target);
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
