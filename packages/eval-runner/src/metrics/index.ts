export { normalizeAnswer, normalizedWords } from "./normalize.js";
export { containsAllFraction, containsMatch, exactMatch, lcsLength, rougeL, tokenF1 } from "./text-metrics.js";
export { meanNll, perplexity, pooledMeanNll, tokenAccuracy } from "./likelihood.js";
export { higherIsBetter, scoreContinuation, scoreGeneration } from "./score.js";
export type { ContinuationObservation } from "./score.js";
