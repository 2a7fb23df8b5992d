/**
 * Means and 95% intervals per cell, recomputed from result rows. The runner's summary.json is the canonical copy;
 * this is the fallback for a folder without one (a run still in progress) and uses the same conventions
 * (schema.ts SummaryCell): the Wilson score interval when every score is 0 or 1 (it stays informative at 0% and 100%,
 * where full-cache retrieval sits), the Student-t interval of the mean otherwise (cells hold 5–30 samples, where the
 * normal 1.96 is visibly too narrow). One sample gives an unbounded t interval (−∞, +∞).
 */
import type { ResultRow, Summary, SummaryCell } from "./schema.js";

const Z975 = 1.959963984540054;

/** t(0.975, df) for df = 1..30 (4 decimals, standard tables). */
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314,
  2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/** Two-sided 95% t quantile; beyond the table, the first two Cornish–Fisher terms around z (error < 1e-3 at df > 30). */
export function tQuantile975(df: number): number {
  if (df <= T975.length) return T975[Math.max(1, Math.round(df)) - 1];
  const z = Z975;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

export interface Interval {
  readonly mean: number;
  readonly low: number;
  readonly high: number;
}

export function wilson(successes: number, n: number): Interval {
  const p = successes / n;
  const z2 = Z975 * Z975;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (Z975 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { mean: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export function studentT(values: readonly number[]): Interval {
  const n = values.length;
  const mean = values.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return { mean, low: -Infinity, high: Infinity };
  const variance = values.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1);
  const half = (tQuantile975(n - 1) * Math.sqrt(variance)) / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half };
}

/** Wilson for all-binary scores, Student t otherwise. */
export function interval95(values: readonly number[]): Interval {
  if (values.every((x) => x === 0 || x === 1)) return wilson(values.filter((x) => x === 1).length, values.length);
  return studentT(values);
}

/** One SummaryCell per (model, task, mode, policyLabel, budgetNominal, metric), in order of first appearance. */
export function summarizeRows(rows: readonly ResultRow[]): Summary {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.model, r.task, r.mode, r.policyLabel, r.budgetNominal, r.metric]);
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const cells = [...groups.values()].map((g): SummaryCell => {
    const first = g[0];
    const ci = interval95(g.map((r) => r.score));
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
      ciLow: ci.low,
      ciHigh: ci.high,
      budgetRealizedMean: mean(g.map((r) => r.budgetRealized)),
      kvBytesMean: mean(g.map((r) => r.kvBytes)),
    };
  });
  return { experiment: rows[0]?.experiment ?? "", cells };
}
