/**
 * Means and 95% confidence intervals over samples, for the report's error bars.
 *
 * Two intervals, because the scores come in two kinds:
 * - Continuous scores (token F1, ROUGE-L, NLL, token accuracy): the Student-t interval mean ± t(0.975, n−1)·s/√n.
 *   It is the textbook interval for a mean with unknown variance and is exact for normal data; with the small
 *   sample counts of a sweep cell (often 5–30) the normal 1.96 would be visibly too narrow (t = 2.26 at n = 10).
 * - Binary scores (exact/contains match, passkey, needle): the Wilson score interval (Wilson 1927; Brown, Cai &
 *   DasGupta 2001 recommend it for small n). The t/Wald interval collapses to zero width at 0% or 100% accuracy,
 *   which is exactly where full-cache retrieval sits, and undercovers near the ends.
 * `confidenceInterval` picks Wilson when every value is 0 or 1, the t interval otherwise, and clips the interval to the
 * metric's range: a t interval of scores in [0, 1] near 0 would otherwise claim a negative accuracy.
 */

export interface ConfidenceInterval {
  readonly n: number;
  readonly mean: number;
  readonly lower: number;
  readonly upper: number;
  readonly method: "student-t" | "wilson";
}

/**
 * Two-sided 95% quantiles t(0.975, df) for df = 1..30 (scipy.stats.t.ppf, 4 decimals). Beyond 30 the
 * Cornish–Fisher expansion around the normal quantile (Abramowitz & Stegun 26.7.5) is accurate to < 1e-4.
 */
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448,
  2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
  2.0452, 2.0423,
];

/** z(0.975), the two-sided 95% normal quantile. */
export const Z975 = 1.959963984540054;

/** t(0.975, df): the multiplier of the standard error in a two-sided 95% Student-t interval. */
export function studentT975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`studentT975: degrees of freedom must be an integer ≥ 1, got ${df}`);
  if (df <= T975.length) return T975[df - 1];
  const z = Z975;
  const z2 = z * z;
  const g1 = (z2 * z + z) / 4;
  const g2 = (5 * z2 * z2 * z + 16 * z2 * z + 3 * z) / 96;
  const g3 = (3 * z2 ** 3 * z + 19 * z2 * z2 * z + 17 * z2 * z - 15 * z) / 384;
  const g4 = (79 * z2 ** 4 * z + 776 * z2 ** 3 * z + 1482 * z2 * z2 * z - 1920 * z2 * z - 945 * z) / 92160;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new Error("mean: no values");
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation (n − 1 in the denominator). */
export function sampleStd(values: readonly number[]): number {
  if (values.length < 2) throw new Error(`sampleStd: needs at least 2 values, got ${values.length}`);
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

/** Student-t 95% interval of the mean. With one value the interval is unbounded (lower −∞, upper +∞). */
export function meanConfidenceInterval(values: readonly number[]): ConfidenceInterval {
  const m = mean(values);
  const n = values.length;
  if (n === 1) return { n, mean: m, lower: -Infinity, upper: Infinity, method: "student-t" };
  const half = (studentT975(n - 1) * sampleStd(values)) / Math.sqrt(n);
  return { n, mean: m, lower: m - half, upper: m + half, method: "student-t" };
}

/** Wilson score 95% interval of a proportion `successes / n`. */
export function wilsonInterval(successes: number, n: number): ConfidenceInterval {
  if (!Number.isInteger(n) || n < 1) throw new Error(`wilsonInterval: n must be an integer ≥ 1, got ${n}`);
  if (successes < 0 || successes > n) throw new Error(`wilsonInterval: successes must lie in [0, ${n}], got ${successes}`);
  const z = Z975;
  const p = successes / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return { n, mean: p, lower: Math.max(0, centre - half), upper: Math.min(1, centre + half), method: "wilson" };
}

/** The values a metric can take: [0, ∞) for NLL and perplexity, [0, 1] for every other (schema.ts ResultRow.score). */
export interface MetricRange {
  readonly low: number;
  readonly high: number;
}

export const UNIT_RANGE: MetricRange = { low: 0, high: 1 };

/** Wilson for all-binary scores, Student t otherwise (see the file comment), clipped to `range`. */
export function confidenceInterval(values: readonly number[], range: MetricRange = UNIT_RANGE): ConfidenceInterval {
  if (values.length === 0) throw new Error("confidenceInterval: no values");
  if (values.every((v) => v === 0 || v === 1)) {
    return wilsonInterval(values.reduce<number>((s, v) => s + v, 0), values.length);
  }
  const ci = meanConfidenceInterval(values);
  return { ...ci, lower: Math.max(range.low, ci.lower), upper: Math.min(range.high, ci.upper) };
}
