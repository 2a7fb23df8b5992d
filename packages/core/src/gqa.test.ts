import { describe, expect, it } from "vitest";
import { aggregateGroup, groupSize, queryHeadsOf } from "./gqa.js";
import { mulberry32 } from "./testing/random.js";

describe("GQA aggregation", () => {
  it("maps query heads to KV heads as the attention does (h → floor(h / group))", () => {
    expect(groupSize(9, 3)).toBe(3);
    expect(queryHeadsOf(2, 9, 3)).toEqual([6, 7, 8]);
    expect(() => groupSize(9, 2)).toThrow(/not a positive multiple/);
  });

  it("reduces each group by mean (default) or max, on random scores with odd sizes", () => {
    const rand = mulberry32(11);
    const numHeads = 15;
    const numKv = 5;
    const len = 23;
    const perHead = Array.from({ length: numHeads }, () => Float32Array.from({ length: len }, () => rand()));
    for (let kv = 0; kv < numKv; kv++) {
      const mean = aggregateGroup(perHead, kv, numKv);
      const max = aggregateGroup(perHead, kv, numKv, "max");
      for (let s = 0; s < len; s++) {
        const group = [0, 1, 2].map((i) => perHead[kv * 3 + i][s]);
        expect(mean[s]).toBeCloseTo((group[0] + group[1] + group[2]) / 3, 12);
        expect(max[s]).toBe(Math.max(...group));
      }
    }
  });

  it("applies a per-head transform before the group reduces", () => {
    const perHead = [Float32Array.of(1, 2), Float32Array.of(3, 4)];
    const out = aggregateGroup(perHead, 0, 1, "mean", (s, h) => Array.from(s, (x) => x * (h + 1)));
    expect(Array.from(out)).toEqual([(1 + 6) / 2, (2 + 8) / 2]);
  });
});
