import { checkPolicyConformance, defaultParams, kvBudget, parseParams, randomPrefill, RazorkvError } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import policy, { create, params } from "./index.js";

const shape = { numLayers: 2, numHeads: 6, numKvHeads: 3, headDim: 8 };

describe("__PACKAGE__", () => {
  it("realizes the nominal budget at 0.1…0.9 on several lengths, without touching the full cache", () => {
    checkPolicyConformance(policy.create(defaultParams(params)), {
      shape, lengths: [90, 157, 301], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    });
  });

  it("keeps what a brute-force reference keeps: the recent window and the smallest-norm keys", () => {
    const length = 61;
    const keep = Math.round(0.3 * length);
    const window = 8;
    const { cache, stats } = randomPrefill({ ...shape, length, seed: 3 });
    const out = create({ window }).compress(cache, stats, kvBudget(0.3));
    cache.heads.forEach((full, i) => {
      const norm = (s: number) => Math.hypot(...full.key(s));
      const older = Array.from({ length: length - window }, (_, s) => s).sort((a, b) => norm(a) - norm(b) || a - b);
      const expected = [...older.slice(0, keep - window), ...Array.from({ length: window }, (_, k) => length - window + k)].sort((a, b) => a - b);
      expect(Array.from(out.heads[i].positions.subarray(0, out.heads[i].length))).toEqual(expected);
    });
  });

  it("rejects an infeasible budget and bad parameters with clear errors", () => {
    const { cache, stats } = randomPrefill({ ...shape, length: 20 });
    expect(() => create({ window: 8 }).compress(cache, stats, kvBudget(0.01))).toThrow(RazorkvError);
    expect(() => parseParams(params, { window: -1 }, "__PACKAGE__")).toThrow(/params\.window: expected an integer ≥ 0, got -1/);
  });
});
