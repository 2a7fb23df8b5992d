/**
 * StreamingLLM (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks", arXiv 2309.17453):
 * keep the first `sinks` tokens, which absorb attention mass whatever their content (the "attention sink", §3.1),
 * and a window of the most recent tokens; the budget decides the window. Under the "hold-budget" answer protocol
 * the window slides while decoding: the oldest non-sink entry is evicted whenever a head holds more than the budget
 * allows.
 */
import {
  decodeTargets, definePolicy, entriesToKeep, entriesToKeepOf, evictSlot, keepRecentAndTop, param, selectPerHead, toKvBudget,
  type CompressionPolicy, type ParamsOf,
} from "@razorkv/core";

export const params = {
  sinks: param.integer({
    default: 4,
    min: 0,
    doc: "Initial tokens always kept. The paper finds 4 enough to restore full-attention perplexity (Table 2); 0 makes this a plain sliding window.",
  }),
};
export type StreamingLlmParams = ParamsOf<typeof params>;

/** The selection: of `length` slots keep the first `sinks` and the last `keep − sinks` (score 1 for sinks, 0 elsewhere). */
export function streamingSlots(length: number, keep: number, sinks: number): number[] {
  const scores = Array.from({ length }, (_, slot) => (slot < sinks ? 1 : 0));
  return keepRecentAndTop(scores, keep, keep - Math.min(sinks, keep));
}

export function createStreamingLlm(p: StreamingLlmParams): CompressionPolicy {
  const name = "streamingllm";
  const floor = `${p.sinks} sinks + at least 1 recent token`;
  return {
    name,
    statsRequest: {},
    compress(fullCache, _stats, budget) {
      const keep = entriesToKeep(fullCache, budget, name, p.sinks + 1, floor);
      return selectPerHead(fullCache, (head) => streamingSlots(head.length, keep, p.sinks));
    },
    checkFeasible(n, budget, layout) {
      entriesToKeepOf(n, budget, name, p.sinks + 1, floor, layout);
    },
    // the window slides as the sequence grows (used under the "hold-budget" answer protocol only)
    decode: {
      statsRequest: {},
      start(cache, _prefill, budget) {
        const b = toKvBudget(budget, cache.nextPosition);
        return {
          afterForward() {
            // heads held at their sliding window are the model's: the budget counts them as they are
            const targets = decodeTargets(b, cache);
            cache.heads.forEach((head, i) => {
              if (cache.heldByWindow(i)) return;
              while (head.entryCount > targets[i] && head.length > p.sinks + 1) evictSlot(head, p.sinks);
            });
          },
        };
      },
    },
  };
}

export default definePolicy({
  name: "streamingllm",
  description: "StreamingLLM (arXiv 2309.17453): attention sinks + recent window",
  params,
  create: createStreamingLlm,
});
