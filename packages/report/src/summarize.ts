/**
 * Means and 95% intervals per cell (stats.ts): the runner writes summary.json with `summarizeRows`, and the report
 * recomputes it for a folder without one (a run still in progress).
 */
import { lowerIsBetter, type ResultRow, type Summary, type SummaryCell } from "./schema.js";
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
 * One SummaryCell per (model, task, mode, policyLabel, budgetNominal, metric), in order of first appearance.
 * `experiment` defaults to the first row's.
 */
export function summarizeRows(rows: readonly ResultRow[], experiment = rows[0]?.experiment ?? ""): Summary {
  const groups = groupBy(rows, (r) => JSON.stringify([r.model, r.task, r.mode, r.policyLabel, r.budgetNominal, r.metric]));
  const cells = [...groups.values()].map((g): SummaryCell => {
    const first = g[0];
    const ci = confidenceInterval(g.map((r) => r.score), metricRange(first.metric));
    return {
      model: first.model,
      task: first.task,
      mode: first.mode,
      policyLabel: first.policyLabel,
      policy: first.policy,
      policyParams: first.policyParams,
      budgetNominal: first.budgetNominal,
      metric: first.metric,
      n: g.length,
      mean: ci.mean,
      ciLow: ci.lower,
      ciHigh: ci.upper,
      budgetRealizedMean: mean(g.map((r) => r.budgetRealized)),
      kvBytesMean: mean(g.map((r) => r.kvBytes)),
    };
  });
  return { experiment, cells };
}
