/**
 * `--dry-run`: the sweep's size and a time estimate from a short measurement of this machine (a 256-token prefill
 * and a few batched decode steps), scaled by the sweep's token counts. Prefill cost grows a little faster than
 * linearly with length (attention), so long-context sweeps run somewhat over the estimate.
 */
import { performance } from "node:perf_hooks";
import type { LanguageModel } from "@razorkv/model-zoo";
import type { Sample } from "./tasks/index.js";
import { segmentIds } from "./scheduler.js";

export interface Estimate {
  readonly samples: number;
  readonly cells: number;
  readonly prefillTokens: number;
  /** Answer tokens decoded per cell, over all samples (generation tokens at most, continuation tokens exactly). */
  readonly decodeSteps: number;
  readonly seconds: number;
}

export function estimateSweep(lm: LanguageModel, samples: readonly Sample[], cellCount: number, sharePrefill: boolean): Estimate {
  let prefillTokens = 0;
  let queryTokens = 0;
  let decodeSteps = 0;
  for (const s of samples) {
    const context = segmentIds(s.context, lm.tokenizer).length;
    const query = segmentIds(s.query, lm.tokenizer).length;
    const answer = s.target.kind === "generate" ? s.target.maxNewTokens : segmentIds(s.target.continuation, lm.tokenizer).length;
    prefillTokens += context;
    queryTokens += query;
    decodeSteps += answer;
  }
  const prefills = sharePrefill ? 1 : cellCount;
  const { prefillPerToken, stepFixed, stepPerRow } = measure(lm, Math.min(cellCount, 8));
  const batchesPerStep = sharePrefill ? 1 : cellCount;
  const rowsPerBatch = sharePrefill ? cellCount : 1;
  // the question goes to all cells in one pass (prefill-like rows); answers are decoded one token per step
  const seconds =
    prefills * prefillTokens * prefillPerToken + cellCount * queryTokens * prefillPerToken +
    decodeSteps * batchesPerStep * (stepFixed + rowsPerBatch * stepPerRow);
  return { samples: samples.length, cells: cellCount, prefillTokens: prefillTokens * prefills, decodeSteps, seconds };
}

function measure(lm: LanguageModel, batch: number): { prefillPerToken: number; stepFixed: number; stepPerRow: number } {
  const { model } = lm;
  const ids = Array.from({ length: 256 }, (_, i) => 1000 + ((i * 7919) % 20000));
  let t = performance.now();
  model.prefill(ids, { logits: "none" });
  const prefillPerToken = (performance.now() - t) / 1000 / ids.length;
  const time = (b: number) => {
    const caches = Array.from({ length: b }, () => model.prefill(ids.slice(0, 64), { logits: "none" }).cache);
    t = performance.now();
    for (let s = 0; s < 3; s++) model.decodeBatch(caches, caches.map(() => 1000 + s));
    return (performance.now() - t) / 1000 / 3;
  };
  const one = time(1);
  const many = batch > 1 ? time(batch) : one;
  const stepPerRow = batch > 1 ? Math.max(0, (many - one) / (batch - 1)) : one / 2;
  return { prefillPerToken, stepFixed: Math.max(0, one - stepPerRow), stepPerRow };
}
