/**
 * What `--dry-run` can know before anything runs: every (cell × sample) that will be an infeasible row, from the
 * prefill length and the model's cache layout (sliding windows) alone — the policies' `checkFeasible`, the same check
 * `compress` makes — and the model's context.
 */
import { checkFeasible, RazorkvError } from "@razorkv/core";
import type { LanguageModel } from "@razorkv/model-zoo";
import type { Cell } from "./scheduler.js";
import { segmentIds } from "./scheduler.js";
import type { Sample } from "./tasks/index.js";
import type { Mode } from "@razorkv/report";

export interface SampleUnit {
  readonly task: string;
  readonly sample: Sample;
  readonly mode: Mode;
}

/** One cell's infeasible samples: how many, and the reason of the first. */
export interface InfeasibleCellReport {
  readonly cell: string;
  readonly task: string;
  readonly mode: Mode;
  readonly samples: number;
  readonly firstReason: string;
}

export function findInfeasible(lm: LanguageModel, units: readonly SampleUnit[], cells: readonly Cell[]): InfeasibleCellReport[] {
  const found = new Map<string, { cell: string; task: string; mode: Mode; samples: number; firstReason: string }>();
  for (const u of units) {
    const context = segmentIds(u.sample.context, lm.tokenizer).length;
    const query = segmentIds(u.sample.query, lm.tokenizer, true).length;
    const target = u.sample.target;
    const answer = target.kind === "generate" ? target.maxNewTokens : segmentIds(target.continuation, lm.tokenizer, true).length;
    const prefill = u.mode === "query-aware" ? context + query : context;
    const tooLong =
      context + query + answer > lm.model.config.maxContext
        ? `${context + query} prompt tokens + ${answer} answer tokens exceed the model's context of ${lm.model.config.maxContext}`
        : null;
    for (const cell of cells) {
      let reason = tooLong;
      if (reason === null) {
        try {
          checkFeasible(cell.policy, prefill, cell.budget, lm.model.cacheLayout);
        } catch (error) {
          if (!(error instanceof RazorkvError)) throw error;
          reason = error.message;
        }
      }
      if (reason === null) continue;
      const id = JSON.stringify([u.task, u.mode, cell.id]);
      const entry = found.get(id);
      if (entry) entry.samples++;
      else found.set(id, { cell: cell.id, task: u.task, mode: u.mode, samples: 1, firstReason: `sample ${u.sample.id}: ${reason}` });
    }
  }
  return [...found.values()];
}
