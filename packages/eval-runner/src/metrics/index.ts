export { normalizeAnswer, normalizedWords } from "./normalize.js";
export { containsAllFraction, containsMatch, exactMatch, lcsLength, rougeL, tokenF1 } from "./text-metrics.js";
export { meanNll, perplexity, pooledMeanNll, tokenAccuracy } from "./likelihood.js";
export {
  confidenceInterval,
  mean,
  meanConfidenceInterval,
  sampleStd,
  studentT975,
  wilsonInterval,
  Z975,
} from "./stats.js";
export type { ConfidenceInterval } from "./stats.js";
export { higherIsBetter, scoreContinuation, scoreGeneration } from "./score.js";
export type { ContinuationObservation } from "./score.js";
