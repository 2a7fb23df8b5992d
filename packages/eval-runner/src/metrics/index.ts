export { normalizeAnswer, normalizedWords, squadNormalize } from "./normalize.js";
export { containsAllFraction, containsMatch, exactMatch, lcsLength, rougeL, tokenF1 } from "./text-metrics.js";
export {
  classificationScore,
  codeSimScore,
  countScore,
  longBenchFirstLine,
  qaF1Score,
  retrievalScore,
  retrievalZhScore,
  rougeScore,
} from "./longbench.js";
export { fuzzRatio, sequenceMatcherRatio } from "./difflib.js";
export { rulerMatchAll, rulerMatchPart, rulerMetricOfTask, rulerPostprocess } from "./ruler.js";
export { meanNll, perplexity, pooledMeanNll, tokenAccuracy } from "./likelihood.js";
export { GENERATION_METRIC_NAMES, higherIsBetter, scoreGeneration, scoreContinuation } from "./score.js";
export type { ContinuationObservation } from "./score.js";
