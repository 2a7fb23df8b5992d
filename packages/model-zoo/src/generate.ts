/** Greedy generation and sequence log-likelihood on top of the forward pass. */
import type { KvCache } from "@razorkv/core";
import type { LlamaModel } from "./model/llama.js";
import { argmax, logProbability } from "./model/ops.js";

export interface GreedyOptions {
  readonly maxNewTokens: number;
  /** Stops after emitting a token for which this is true (the token is included). */
  readonly isEnd?: (id: number) => boolean;
}

/**
 * Greedy continuation from a cache whose last forward returned `logits`. Appends the generated tokens to the cache
 * (the last one is appended only if generation continues past it, as in any decode loop).
 */
export function continueGreedy(model: LlamaModel, cache: KvCache, logits: Float32Array, options: GreedyOptions): number[] {
  const out: number[] = [];
  let next = argmax(logits);
  for (let i = 0; i < options.maxNewTokens; i++) {
    out.push(next);
    if (options.isEnd?.(next) || i === options.maxNewTokens - 1) break;
    next = argmax(model.decode(cache, next));
  }
  return out;
}

export function generateGreedy(model: LlamaModel, promptIds: number[], options: GreedyOptions): number[] {
  const { cache, logits } = model.prefill(promptIds);
  return continueGreedy(model, cache, logits, options);
}

/** Natural-log probability of each token ids[1…] given its prefix: one full-attention forward pass. */
export function tokenLogProbs(model: LlamaModel, ids: number[]): Float64Array {
  if (ids.length < 2) throw new Error(`need at least 2 tokens to score, got ${ids.length}`);
  const { logits } = model.prefill(ids, { logits: "all" });
  const V = model.config.vocabSize;
  const out = new Float64Array(ids.length - 1);
  for (let t = 0; t + 1 < ids.length; t++) out[t] = logProbability(logits.subarray(t * V, (t + 1) * V), ids[t + 1]);
  return out;
}
