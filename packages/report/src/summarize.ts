/**
 * Means and 95% intervals per cell (stats.ts): the runner writes summary.json with `summarizeRows`, and the report
 * recomputes it for a folder without one (a run still in progress).
 */
import {
  isScored, lowerIsBetter, type InfeasibleCell, type InfeasibleRow, type ResultRow, type Summary, type SummaryCell,
} from "./schema.js";
import { confidenceInterval, mean, UNIT_RANGE, type MetricRange } from "./stats.js";

/** `items` grouped by `key`, groups and their items in first-seen order. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Summary cells of one task: grouped by (model, mode, task, metric), in first-seen order. */
export function cellsByTask(summary: Summary): SummaryCell[][] {
  return [...groupBy(summary.cells, (c) => JSON.stringify([c.model, c.mode, c.task, c.metric])).values()];
}

/**
 * The full-cache references among one task's cells (`cellsByTask`): the policies that ran at the task's largest
 * budget and at no other.
 */
export function referenceCells(cells: readonly SummaryCell[]): SummaryCell[] {
  const max = Math.max(...cells.map((c) => c.budgetNominal));
  const runs = groupBy(cells, (c) => c.policyLabel);
  return cells.filter((c) => c.budgetNominal === max && runs.get(c.policyLabel)!.length === 1);
}

/** NLL and perplexity are unbounded above; every other metric is a share or an F-score in [0, 1]. */
export function metricRange(metric: string): MetricRange {
  return lowerIsBetter(metric) ? { low: 0, high: Infinity } : UNIT_RANGE;
}

/**
 * One SummaryCell per (model, task, mode, policyLabel, budgetNominal, metric) with at least one scored sample, in order
 * of first appearance: mean and interval over the scored rows, `infeasible` the count of the cell's InfeasibleRows. A
 * cell none of whose samples could be run is an InfeasibleCell instead (count and first reason): it has no mean.
 * `experiment` defaults to the first row's.
 */
export function summarizeRows(rows: readonly ResultRow[], experiment = rows[0]?.experiment ?? ""): Summary {
  const groups = groupBy(rows, (r) => JSON.stringify([r.model, r.task, r.mode, r.policyLabel, r.budgetNominal, r.metric]));
  const cells: SummaryCell[] = [];
  const infeasibleCells: InfeasibleCell[] = [];
  for (const g of groups.values()) {
    const first = g[0];
    const scored = g.filter(isScored);
    const infeasible = g.length - scored.length;
    if (scored.length === 0) {
      const reason = g.find((r): r is InfeasibleRow => r.status === "infeasible")?.reason ?? "";
      infeasibleCells.push({
        model: first.model, task: first.task, mode: first.mode, policyLabel: first.policyLabel, budgetNominal: first.budgetNominal,
        metric: first.metric, infeasible, reason,
      });
      continue;
    }
    const ci = confidenceInterval(scored.map((r) => r.score), metricRange(first.metric));
    cells.push({
      model: first.model,
      task: first.task,
      mode: first.mode,
      policyLabel: first.policyLabel,
      policy: first.policy,
      policyParams: first.policyParams,
      budgetNominal: first.budgetNominal,
      metric: first.metric,
      n: scored.length,
      mean: ci.mean,
      ciLow: ci.lower,
      ciHigh: ci.upper,
      budgetRealizedMean: mean(scored.map((r) => r.budgetRealized)),
      budgetAnswerMean: mean(scored.map((r) => r.budgetAnswer)),
      kvBytesMean: mean(scored.map((r) => r.kvBytes)),
      infeasible,
    });
  }
  return { experiment, cells, infeasibleCells };
}
