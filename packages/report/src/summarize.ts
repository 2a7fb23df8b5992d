/**
 * Means and 95% intervals per cell (stats.ts): the runner writes summary.json with `summarizeRows`, and the report
 * recomputes it for a folder without one (a run still in progress).
 */
import { lowerIsBetter, type ResultRow, type Summary, type SummaryCell } from "./schema.js";
import { confidenceInterval, mean, UNIT_RANGE, type MetricRange } from "./stats.js";

/** NLL and perplexity are unbounded above; every other metric is a share or an F-score in [0, 1]. */
export function metricRange(metric: string): MetricRange {
  return lowerIsBetter(metric) ? { low: 0, high: Infinity } : UNIT_RANGE;
}

/**
 * One SummaryCell per (model, task, mode, policyLabel, budgetNominal, metric), in order of first appearance.
 * `experiment` defaults to the first row's.
 */
export function summarizeRows(rows: readonly ResultRow[], experiment = rows[0]?.experiment ?? ""): Summary {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.model, r.task, r.mode, r.policyLabel, r.budgetNominal, r.metric]);
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
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
