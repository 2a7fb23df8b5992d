/** Likelihood-based scores of a teacher-forced continuation. */

/** Mean negative log-likelihood (nats per token) of the observed tokens, from their natural-log probabilities. */
export function meanNll(logProbs: ArrayLike<number>): number {
  if (logProbs.length === 0) throw new Error("meanNll: no log-probabilities to average");
  let sum = 0;
  for (let i = 0; i < logProbs.length; i++) sum -= logProbs[i];
  return sum / logProbs.length;
}

/** Perplexity = exp(mean NLL in nats). */
export function perplexity(meanNllNats: number): number {
  return Math.exp(meanNllNats);
}

/**
 * Token-weighted mean NLL over several scored spans: the corpus-level quantity whose exp is the corpus perplexity.
 * Averaging per-span perplexities instead would over-weight short, badly predicted spans.
 */
export function pooledMeanNll(spans: readonly { meanNll: number; tokens: number }[]): number {
  let sum = 0;
  let tokens = 0;
  for (const s of spans) {
    sum += s.meanNll * s.tokens;
    tokens += s.tokens;
  }
  if (tokens === 0) throw new Error("pooledMeanNll: the spans hold no tokens");
  return sum / tokens;
}

/** Fraction of positions where the greedy prediction equals the target token. */
export function tokenAccuracy(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  if (predicted.length !== target.length) {
    throw new Error(`tokenAccuracy: ${predicted.length} predictions for ${target.length} target tokens`);
  }
  if (target.length === 0) throw new Error("tokenAccuracy: no target tokens");
  let hits = 0;
  for (let i = 0; i < target.length; i++) if (predicted[i] === target[i]) hits++;
  return hits / target.length;
}
