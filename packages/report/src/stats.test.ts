/** The intervals of summary.json (stats.ts); reference values from scipy.stats. */
import { describe, expect, it } from "vitest";
import { confidenceInterval, mean, meanConfidenceInterval, sampleStd, studentT975, wilsonInterval } from "./stats.js";

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
