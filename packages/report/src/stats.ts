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

/*
 * Paired comparisons. Every cell of a task is run on the same samples (the same sampleId under every policy and
 * budget), so "A scores higher than B" is a question about the per-sample differences, not about two independent
 * means: pairing removes the between-sample variance (a hard needle is hard for every policy), which is most of it.
 * - 0/1 scores: the exact McNemar test (McNemar 1947), i.e. the two-sided exact binomial test of the discordant pairs
 *   (A right and B wrong vs A wrong and B right) against 1/2, and Newcombe's hybrid score interval for the difference
 *   of paired proportions (Newcombe 1998, Stat Med 17:2635, method 10), which stays inside [−1, 1] and keeps its
 *   coverage at small n and near 0 or 1, where the Wald interval of the differences fails.
 * - Continuous scores: a paired bootstrap of the mean difference (Efron & Tibshirani 1993, ch. 13: resample the
 *   per-sample differences with replacement), percentile interval, from a fixed seed so a report is deterministic.
 */

export type PairedMethod = "mcnemar-exact" | "paired-bootstrap";

export interface PairedTest {
  readonly method: PairedMethod;
  /** Pairs compared (samples scored in both cells). */
  readonly n: number;
  /** Means of A and of B over the paired samples, and the mean of A − B (their difference). */
  readonly meanA: number;
  readonly meanB: number;
  readonly difference: number;
  /** 95% interval of the mean difference: Newcombe method 10 (McNemar) or bootstrap percentile. */
  readonly lower: number;
  readonly upper: number;
  /** Two-sided p-value of "no difference". */
  readonly p: number;
  /** McNemar: pairs where only A scored 1, and where only B did. */
  readonly aOnly?: number;
  readonly bOnly?: number;
  /** Bootstrap: resamples drawn and the seed of the generator. */
  readonly resamples?: number;
  readonly seed?: number;
}

/** How a report names each test, and why its interval is the one it is. */
export const PAIRED_METHOD_NAMES: Record<PairedMethod, string> = {
  "mcnemar-exact": "exact McNemar test; Newcombe (1998) method-10 interval",
  "paired-bootstrap": "paired bootstrap; percentile interval",
};

function checkPaired(name: string, a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new Error(`${name}: A has ${a.length} scores and B ${b.length}: pairs need one of each`);
  if (a.length === 0) throw new Error(`${name}: no pairs`);
  for (const [side, xs] of [["A", a], ["B", b]] as const) {
    const i = xs.findIndex((x) => !Number.isFinite(x));
    if (i >= 0) throw new Error(`${name}: ${side}[${i}] is ${xs[i]}, not a finite score`);
  }
}

/**
 * Two-sided exact binomial p-value of `k` successes in `n` trials at probability 1/2: 2·P(X ≤ min(k, n − k)), at
 * most 1. The distribution is symmetric, so this equals the "sum of every outcome no more likely than k" rule of
 * scipy.stats.binomtest. Terms are summed in log space: 2^−n underflows past n ≈ 1074.
 */
export function binomialTwoSidedHalf(k: number, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new Error(`binomialTwoSidedHalf: n must be an integer ≥ 0, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`binomialTwoSidedHalf: k must be an integer in [0, ${n}], got ${k}`);
  const m = Math.min(k, n - k);
  // m = n/2 (even n) or (n−1)/2 (odd n): the lower tail holds half the mass or more
  if (2 * m + 1 >= n) return 1;
  const logTerms: number[] = [];
  let logChoose = 0; // log C(n, i)
  for (let i = 0; i <= m; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i);
    logTerms.push(logChoose - n * Math.LN2);
  }
  const top = Math.max(...logTerms);
  const tail = Math.exp(top) * logTerms.reduce((s, t) => s + Math.exp(t - top), 0);
  return Math.min(1, 2 * tail);
}

/**
 * Newcombe's method 10 for the difference pA − pB of two paired proportions, from the 2×2 table of pairs: `both`
 * (A = 1, B = 1), `aOnly` (1, 0), `bOnly` (0, 1), `neither` (0, 0). It combines the Wilson intervals [lA, uA] and
 * [lB, uB] of the two marginal proportions, corrected by the correlation φ of the pairs:
 *   L = D − √((pA − lA)² − 2φ(pA − lA)(uB − pB) + (uB − pB)²),  U = D + √((uA − pA)² − 2φ(uA − pA)(pB − lB) + (pB − lB)²)
 * where φ estimates the correlation of the pairs from A = both·neither − aOnly·bOnly and the margins' product M:
 * (A − n/2)/√M when A > n/2, 0 when 0 ≤ A ≤ n/2, A/√M when A < 0, and 0 when a margin is 0 (Newcombe's continuity
 * correction of φ; the Wilson intervals themselves are uncorrected). This is the interval of Fagerland, Lydersen &
 * Laake, "Statistical Analysis of Contingency Tables" (2017) §8.5 ("Newcombe square-and-add"), whose worked example
 * (59, 6, 16, 80) gives −0.0621 [−0.1186, −0.0046]; stats.test.ts checks it.
 */
export function newcombePairedInterval(both: number, aOnly: number, bOnly: number, neither: number): { lower: number; upper: number } {
  const n = both + aOnly + bOnly + neither;
  const pA = (both + aOnly) / n;
  const pB = (both + bOnly) / n;
  const wa = wilsonInterval(both + aOnly, n);
  const wb = wilsonInterval(both + bOnly, n);
  const margins = (both + aOnly) * (bOnly + neither) * (both + bOnly) * (aOnly + neither);
  const cross = both * neither - aOnly * bOnly;
  const phi = margins === 0 ? 0 : cross > n / 2 ? (cross - n / 2) / Math.sqrt(margins) : cross < 0 ? cross / Math.sqrt(margins) : 0;
  const dlA = pA - wa.lower, duA = wa.upper - pA, dlB = pB - wb.lower, duB = wb.upper - pB;
  const d = pA - pB;
  const delta = Math.sqrt(Math.max(0, dlA * dlA - 2 * phi * dlA * duB + duB * duB));
  const eps = Math.sqrt(Math.max(0, duA * duA - 2 * phi * duA * dlB + dlB * dlB));
  return { lower: Math.max(-1, d - delta), upper: Math.min(1, d + eps) };
}

/** Exact McNemar test of paired 0/1 scores (a[i] and b[i] from the same sample), with Newcombe's interval. */
export function mcnemarExact(a: readonly number[], b: readonly number[]): PairedTest {
  checkPaired("mcnemarExact", a, b);
  let both = 0, aOnly = 0, bOnly = 0, neither = 0;
  for (let i = 0; i < a.length; i++) {
    if ((a[i] !== 0 && a[i] !== 1) || (b[i] !== 0 && b[i] !== 1)) {
      throw new Error(`mcnemarExact: pair ${i} is (${a[i]}, ${b[i]}); McNemar needs 0/1 scores (use pairedBootstrap)`);
    }
    if (a[i] === 1) {
      if (b[i] === 1) both++;
      else aOnly++;
    } else if (b[i] === 1) bOnly++;
    else neither++;
  }
  const n = a.length;
  const { lower, upper } = newcombePairedInterval(both, aOnly, bOnly, neither);
  return {
    method: "mcnemar-exact", n, meanA: (both + aOnly) / n, meanB: (both + bOnly) / n, difference: (aOnly - bOnly) / n,
    lower, upper, p: binomialTwoSidedHalf(aOnly, aOnly + bOnly), aOnly, bOnly,
  };
}

/**
 * mulberry32 (Tommy Ettinger, 2017; public domain): a 32-bit state generator, uniform in [0, 1). The same generator as
 * @razorkv/core's testing/random.ts, copied because the report depends on nothing at run time but its chart libraries.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The q-quantile of sorted values, interpolating linearly between order statistics (numpy's default, Hyndman & Fan type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export interface BootstrapOptions {
  /** Resamples of the pairs; 10,000 puts the Monte Carlo error of a 2.5% quantile well below the interval's width. */
  readonly resamples?: number;
  /** Seed of mulberry32: a fixed seed makes the report a pure function of its results. */
  readonly seed?: number;
}

export const BOOTSTRAP_RESAMPLES = 10_000;
export const BOOTSTRAP_SEED = 14;

/**
 * Paired bootstrap of mean(a − b): resample the n per-sample differences with replacement `resamples` times; the
 * interval is the 2.5% and 97.5% percentiles of the resampled means. The p-value inverts that interval (the smallest
 * two-sided level whose percentile interval excludes 0): 2·min(#{mean* ≤ 0}, #{mean* ≥ 0}), counted as (1 + count) /
 * (1 + resamples) so that it is never 0 (Davison & Hinkley 1997, eq. 4.11): 2/(resamples + 1) is the smallest p it
 * can show.
 */
export function pairedBootstrap(a: readonly number[], b: readonly number[], options: BootstrapOptions = {}): PairedTest {
  checkPaired("pairedBootstrap", a, b);
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const seed = options.seed ?? BOOTSTRAP_SEED;
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`pairedBootstrap: resamples must be an integer ≥ 1, got ${resamples}`);
  const n = a.length;
  const diffs = Float64Array.from(a, (x, i) => x - b[i]);
  const rand = mulberry32(seed);
  const means = new Float64Array(resamples);
  let atOrBelow = 0, atOrAbove = 0;
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += diffs[Math.floor(rand() * n)];
    const m = sum / n;
    means[r] = m;
    if (m <= 0) atOrBelow++;
    if (m >= 0) atOrAbove++;
  }
  means.sort();
  const difference = mean(Array.from(diffs));
  return {
    method: "paired-bootstrap", n, meanA: mean(a), meanB: mean(b), difference,
    lower: quantileSorted(means, 0.025), upper: quantileSorted(means, 0.975),
    p: Math.min(1, (2 * (1 + Math.min(atOrBelow, atOrAbove))) / (1 + resamples)), resamples, seed,
  };
}

/** McNemar when every score of both sides is 0 or 1 (as `confidenceInterval` picks Wilson), the paired bootstrap otherwise. */
export function pairedTest(a: readonly number[], b: readonly number[], options: BootstrapOptions = {}): PairedTest {
  const binary = (xs: readonly number[]) => xs.every((x) => x === 0 || x === 1);
  return binary(a) && binary(b) ? mcnemarExact(a, b) : pairedBootstrap(a, b, options);
}
