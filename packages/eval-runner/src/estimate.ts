/**
 * `--dry-run`: the sweep's size and a time estimate from a short measurement of this machine, scaled by the sweep's
 * token counts. Both costs are fitted, not assumed linear: prefill time a·L + b·L² (the attention term matters at
 * 8K), and a decode step fixed + per cell (c + d·cached tokens), measured with 64- and 1024-token caches.
 * Generation is counted at its maximum length, so sweeps whose answers stop early at end-of-sequence (needles,
 * passkeys) finish sooner: the estimate is an upper bound there (BENCHMARKS.md compares it with real runs).
 */
import { performance } from "node:perf_hooks";
import type { Budget, KvCache } from "@razorkv/core";
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

/** Seconds on this machine, fitted from a few timed calls (see the file comment). */
export interface CostModel {
  /** Prefill of L tokens: a·L + b·L². */
  readonly prefillLinear: number;
  readonly prefillQuadratic: number;
  /** One batched decode step: stepFixed + Σ over rows of (rowFixed + rowPerToken · cached tokens). */
  readonly stepFixed: number;
  readonly rowFixed: number;
  readonly rowPerToken: number;
}

/** The share of the full cache a budget keeps, for the decode estimate (a token budget is taken as the full cache). */
function keptFraction(budget: Budget): number {
  return budget.kind === "kvBudget" ? budget.value : budget.kind === "compressionRatio" ? 1 - budget.value : 1;
}

export function estimateSweep(lm: LanguageModel, samples: readonly Sample[], budgets: readonly Budget[], sharePrefill: boolean): Estimate {
  return estimateWith(measureCosts(lm), lm, samples, budgets, sharePrefill);
}

export function estimateWith(cost: CostModel, lm: LanguageModel, samples: readonly Sample[], budgets: readonly Budget[], sharePrefill: boolean): Estimate {
  const cells = budgets.length;
  const kept = budgets.reduce((s, b) => s + keptFraction(b), 0);
  const prefill = (tokens: number) => cost.prefillLinear * tokens + cost.prefillQuadratic * tokens * tokens;
  let seconds = 0;
  let prefillTokens = 0;
  let decodeSteps = 0;
  for (const s of samples) {
    const context = segmentIds(s.context, lm.tokenizer).length;
    const query = segmentIds(s.query, lm.tokenizer, true).length;
    const answer = s.target.kind === "generate" ? s.target.maxNewTokens : segmentIds(s.target.continuation, lm.tokenizer, true).length;
    const prefills = sharePrefill ? 1 : cells;
    prefillTokens += context * prefills;
    decodeSteps += answer;
    // the question goes to every cell in one pass (prefill-like rows); answers are decoded one token per step
    const rowsPerStep = cost.rowFixed * cells + cost.rowPerToken * context * kept;
    seconds += prefills * prefill(context) + cells * query * cost.prefillLinear;
    seconds += answer * ((sharePrefill ? 1 : cells) * cost.stepFixed + rowsPerStep);
  }
  return { samples: samples.length, cells, prefillTokens, decodeSteps, seconds };
}

function measureCosts(lm: LanguageModel): CostModel {
  const { model } = lm;
  const ids = (n: number) => Array.from({ length: n }, (_, i) => 1000 + ((i * 7919) % 20000));
  const timePrefill = (n: number): { seconds: number; cache: KvCache } => {
    const t = performance.now();
    const { cache } = model.prefill(ids(n), { logits: "none" });
    return { seconds: (performance.now() - t) / 1000, cache };
  };
  timePrefill(64); // the first call pays for thread start-up and page faults; not a per-token cost
  const short = timePrefill(256);
  const long = timePrefill(1024);
  // t/L = a + b·L through the two points
  const b = Math.max(0, (long.seconds / 1024 - short.seconds / 256) / (1024 - 256));
  const a = Math.max(0, short.seconds / 256 - b * 256);

  const small = model.prefill(ids(64), { logits: "none" }).cache;
  const step = (cache: KvCache, rows: number) => {
    const caches = Array.from({ length: rows }, () => cache.clone());
    const t = performance.now();
    for (let s = 0; s < 3; s++) model.decodeBatch(caches, caches.map(() => 1000 + s));
    return (performance.now() - t) / 1000 / 3;
  };
  const one = step(small, 1);
  const eightSmall = step(small, 8);
  const eightLong = step(long.cache, 8);
  const rowPerToken = Math.max(0, (eightLong - eightSmall) / (8 * (1024 - 64)));
  const rowFixed = Math.max(0, (eightSmall - one) / 7 - rowPerToken * 64);
  const stepFixed = Math.max(0, one - rowFixed - rowPerToken * 64);
  return { prefillLinear: a, prefillQuadratic: b, stepFixed, rowFixed, rowPerToken };
}
