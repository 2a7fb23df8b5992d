/**
 * The intervals of summary.json and the paired tests of the findings (stats.ts). Reference values: scipy.stats, the
 * JSON that test/paired-reference.py writes (scipy's binomtest, statsmodels' Wilson), a published worked example, and
 * for the bootstrap, cases whose answer is known by hand and the large-n normal limit.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  binomialTwoSidedHalf, confidenceInterval, mcnemarExact, mean, meanConfidenceInterval, mulberry32, newcombePairedInterval,
  pairedBootstrap, pairedTest, sampleStd, studentT975, wilsonInterval,
} from "./stats.js";

describe("confidence intervals", () => {
  it("t quantiles: table for small df, Cornish–Fisher beyond", () => {
    expect(studentT975(1)).toBe(12.7062);
    expect(studentT975(4)).toBe(2.7764);
    expect(studentT975(30)).toBe(2.0423);
    expect(studentT975(31)).toBeCloseTo(2.039513, 5); // scipy.stats.t.ppf(0.975, 31)
    expect(studentT975(100)).toBeCloseTo(1.983972, 5);
    expect(studentT975(100000)).toBeCloseTo(1.959984, 5);
  });
  it("Student-t interval of a mean (values from scipy.stats.t.interval)", () => {
    expect(mean([1, 2, 3, 4, 5])).toBe(3);
    expect(sampleStd([1, 2, 3, 4, 5])).toBeCloseTo(Math.sqrt(2.5), 12);
    const ci = meanConfidenceInterval([1, 2, 3, 4, 5]);
    expect(ci.lower).toBeCloseTo(1.036757, 3);
    expect(ci.upper).toBeCloseTo(4.963243, 3);
    const three = meanConfidenceInterval([0.2, 0.5, 0.9]);
    expect(three.lower).toBeCloseTo(-0.339067, 3);
    expect(three.upper).toBeCloseTo(1.405734, 3);
    expect(meanConfidenceInterval([0.7]).upper).toBe(Infinity);
  });
  it("Wilson interval of a proportion", () => {
    const w = wilsonInterval(8, 10);
    expect(w.mean).toBe(0.8);
    expect(w.lower).toBeCloseTo(0.490162, 6);
    expect(w.upper).toBeCloseTo(0.943318, 6);
    expect(wilsonInterval(0, 10).lower).toBe(0);
    expect(wilsonInterval(0, 10).upper).toBeCloseTo(0.277533, 6);
    expect(wilsonInterval(10, 10).lower).toBeCloseTo(0.722467, 6);
  });
  it("picks Wilson for binary scores and t otherwise", () => {
    expect(confidenceInterval([1, 0, 1, 1]).method).toBe("wilson");
    expect(confidenceInterval([1, 0.5, 1]).method).toBe("student-t");
  });
  it("clips a t interval to the metric's range", () => {
    // unclipped [-0.339, 1.406] (above): a share cannot leave [0, 1], an NLL can exceed 1 but not go below 0
    const unit = confidenceInterval([0.2, 0.5, 0.9]);
    expect([unit.lower, unit.upper]).toEqual([0, 1]);
    const nll = confidenceInterval([0.2, 0.5, 0.9], { low: 0, high: Infinity });
    expect(nll.lower).toBe(0);
    expect(nll.upper).toBeCloseTo(1.405734, 3);
    expect(confidenceInterval([0.7]).upper).toBe(1);
  });
});

interface ReferenceCase {
  readonly table: [number, number, number, number];
  readonly difference: number;
  readonly p: number;
  readonly newcombe: [number, number];
}
const reference = JSON.parse(readFileSync(new URL("../test/paired-reference.json", import.meta.url), "utf8")) as { cases: ReferenceCase[] };

/** Paired 0/1 scores with the table's counts of (1, 1), (1, 0), (0, 1), (0, 0), in a shuffled order. */
function pairsOf([both, aOnly, bOnly, neither]: readonly number[], seed = 5): { a: number[]; b: number[] } {
  const pairs = [
    ...Array.from({ length: both }, () => [1, 1]), ...Array.from({ length: aOnly }, () => [1, 0]),
    ...Array.from({ length: bOnly }, () => [0, 1]), ...Array.from({ length: neither }, () => [0, 0]),
  ];
  const rand = mulberry32(seed);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  return { a: pairs.map((p) => p[0]), b: pairs.map((p) => p[1]) };
}

/** Φ(x), the standard normal CDF (Abramowitz & Stegun 26.2.17, |error| < 7.5e-8). */
function normalCdf(x: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const upper = (Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI)) * poly;
  return x >= 0 ? 1 - upper : upper;
}

describe("exact McNemar test and Newcombe's interval (paired 0/1 scores)", () => {
  it("p equals scipy.stats.binomtest on the discordant pairs, the interval the reference script's, in every case", () => {
    expect(reference.cases.length).toBeGreaterThanOrEqual(10);
    for (const c of reference.cases) {
      const { a, b } = pairsOf(c.table);
      const t = mcnemarExact(a, b);
      const label = JSON.stringify(c.table);
      expect(t.method, label).toBe("mcnemar-exact");
      expect(t.n, label).toBe(c.table.reduce((x, y) => x + y, 0));
      expect([t.aOnly, t.bOnly], label).toEqual([c.table[1], c.table[2]]);
      expect(t.difference, label).toBeCloseTo(c.difference, 14);
      // relative: some p are 1e-280
      expect(Math.abs(t.p - c.p) / Math.max(c.p, 1e-300), `${label}: p ${t.p} vs scipy ${c.p}`).toBeLessThan(1e-9);
      expect(t.lower, label).toBeCloseTo(c.newcombe[0], 12);
      expect(t.upper, label).toBeCloseTo(c.newcombe[1], 12);
      expect(t.lower).toBeLessThanOrEqual(t.difference);
      expect(t.upper).toBeGreaterThanOrEqual(t.difference);
    }
  });

  it("reproduces the published worked example (Fagerland, Lydersen & Laake 2017, ch. 8: Cavo et al. 2012)", () => {
    const { lower, upper } = newcombePairedInterval(59, 6, 16, 80);
    expect(Number(lower.toFixed(4))).toBe(-0.1186);
    expect(Number(upper.toFixed(4))).toBe(-0.0046);
  });

  it("binomial tails by hand: 15 vs 5 discordant gives 2·(1+20+190+1140+4845+15504)/2^20", () => {
    expect(binomialTwoSidedHalf(15, 20)).toBeCloseTo((2 * 21700) / 2 ** 20, 15);
    expect(binomialTwoSidedHalf(5, 20)).toBe(binomialTwoSidedHalf(15, 20));
    expect(binomialTwoSidedHalf(0, 1)).toBe(1);
    expect(binomialTwoSidedHalf(0, 0)).toBe(1);
    expect(binomialTwoSidedHalf(0, 10)).toBeCloseTo(2 / 1024, 15);
  });

  it("no discordant pair: no difference, p = 1; refuses scores that are not 0/1 and unpaired arrays", () => {
    const t = mcnemarExact([1, 1, 0], [1, 1, 0]);
    expect([t.difference, t.p]).toEqual([0, 1]);
    expect(() => mcnemarExact([1, 0.5], [1, 0])).toThrow(/pair 1 is \(0\.5, 0\); McNemar needs 0\/1 scores/);
    expect(() => mcnemarExact([1], [1, 0])).toThrow(/A has 1 scores and B 2/);
    expect(() => mcnemarExact([], [])).toThrow(/no pairs/);
  });
});

describe("paired bootstrap (continuous scores)", () => {
  it("constant differences give a zero-width interval at that difference, and the smallest p the resamples can show", () => {
    const a = [0.9, 0.7, 0.65, 0.8, 0.95];
    const t = pairedBootstrap(a, a.map((x) => x - 0.25), { resamples: 999 });
    expect(t.method).toBe("paired-bootstrap");
    expect(t.difference).toBeCloseTo(0.25, 12);
    expect(t.lower).toBeCloseTo(0.25, 12);
    expect(t.upper).toBeCloseTo(0.25, 12);
    expect(t.p).toBeCloseTo(2 / 1000, 15);
    const same = pairedBootstrap(a, a);
    expect([same.difference, same.lower, same.upper, same.p]).toEqual([0, 0, 0, 1]);
  });

  it("two differences +1 and -1: resampled means -1, 0, 1 with chances 1/4, 1/2, 1/4, so [-1, 1] and p = 1", () => {
    const t = pairedBootstrap([1, 0], [0, 1]);
    expect([t.difference, t.lower, t.upper, t.p]).toEqual([0, -1, 1, 1]);
  });

  it("is a pure function of its seed", () => {
    const rand = mulberry32(3);
    const a = Array.from({ length: 40 }, () => rand());
    const b = a.map((x) => x - 0.05 + (rand() - 0.5) * 0.4);
    expect(pairedBootstrap(a, b)).toEqual(pairedBootstrap(a, b));
    expect(pairedBootstrap(a, b, { seed: 15 }).lower).not.toBe(pairedBootstrap(a, b).lower);
  });

  it("at large n agrees with the normal approximation: d̄ ± 1.96·s/√n and p = 2Φ(−|d̄|/(s/√n))", () => {
    const rand = mulberry32(99);
    const n = 4000;
    const b = Array.from({ length: n }, () => rand());
    const a = b.map((x) => x + 0.012 + (rand() - 0.5) * 1.2); // differences: uniform, sd 0.346
    const t = pairedBootstrap(a, b);
    const diffs = a.map((x, i) => x - b[i]);
    const m = mean(diffs);
    const se = sampleStd(diffs) / Math.sqrt(n);
    expect(t.difference).toBeCloseTo(m, 12);
    expect(Math.abs(t.lower - (m - 1.959964 * se))).toBeLessThan(0.1 * se);
    expect(Math.abs(t.upper - (m + 1.959964 * se))).toBeLessThan(0.1 * se);
    const pNormal = 2 * normalCdf(-Math.abs(m) / se);
    expect(pNormal).toBeGreaterThan(0.005); // a case where p is neither 0 nor 1
    expect(pNormal).toBeLessThan(0.2);
    expect(Math.abs(t.p - pNormal)).toBeLessThan(0.012);
  });

  it("pairedTest: McNemar for 0/1 scores on both sides, the bootstrap otherwise", () => {
    expect(pairedTest([1, 0, 1], [0, 0, 1]).method).toBe("mcnemar-exact");
    expect(pairedTest([1, 0, 1], [0.5, 0, 1]).method).toBe("paired-bootstrap");
  });
});
