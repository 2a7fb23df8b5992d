import { checkPolicyConformance, kvBudget, noStats, randomPrefill } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import full from "./index.js";

describe("policy-full", () => {
  const policy = full.create({});

  it("keeps every entry (realized budget 1) whatever the budget, without sharing storage", () => {
    const rows = checkPolicyConformance(policy, {
      shape: { numLayers: 2, numHeads: 6, numKvHeads: 3, headDim: 5 },
      lengths: [1, 37, 130],
      budgets: [0.1, 0.3, 0.5, 0.7, 0.9],
    });
    const windowed = checkPolicyConformance(policy, {
      shape: { numLayers: 2, numHeads: 6, numKvHeads: 3, headDim: 5, layerWindows: [16, null] },
      lengths: [1, 37, 130],
      budgets: [0.5],
    });
    for (const r of [...rows, ...windowed]) {
      expect(r.nominal).toBe(1);
      expect(r.realized).toBe(1);
    }
  });

  it("returns a copy the caller may append to", () => {
    const { cache } = randomPrefill({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4, length: 9 });
    const out = policy.compress(cache, noStats, kvBudget(0.5));
    out.heads[0].append(9, [1, 2, 3, 4], [1, 2, 3, 4]);
    expect(cache.heads[0].length).toBe(9);
  });
});
