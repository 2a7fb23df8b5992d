import { describe, expect, it } from "vitest";
import {
  assertRealizedBudget, budgetMissPerHead, compressionRatio, entriesPerHead, kvBudget, parseBudget, toKvBudget, tokenBudget,
} from "./budget.js";
import { HeadCache, KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";
import { mulberry32, randomArray } from "./testing/random.js";

describe("budget conversion", () => {
  it("converts every kind to a kvBudget", () => {
    expect(toKvBudget(kvBudget(0.3), 100)).toBe(0.3);
    expect(toKvBudget(compressionRatio(0.75), 100)).toBeCloseTo(0.25, 12);
    expect(toKvBudget(compressionRatio(0), 100)).toBe(1);
    expect(toKvBudget(tokenBudget(37), 101)).toBeCloseTo(37 / 101, 12);
    expect(toKvBudget(tokenBudget(101), 101)).toBe(1);
  });

  it("rejects budgets that keep nothing or more than everything, naming the field", () => {
    const cases: [ReturnType<typeof kvBudget>, RegExp][] = [
      [kvBudget(0), /budget\.kvBudget: .*\(0, 1\], got 0/],
      [kvBudget(-0.2), /budget\.kvBudget: .*got -0\.2/],
      [kvBudget(1.01), /budget\.kvBudget: .*got 1\.01/],
      [kvBudget(Number.NaN), /budget\.kvBudget: expected a number/],
      [compressionRatio(1), /budget\.compressionRatio: .*keeps nothing/],
      [compressionRatio(-0.1), /budget\.compressionRatio: .*got -0\.1/],
      [tokenBudget(0), /budget\.tokens: expected a positive whole number/],
      [tokenBudget(2.5), /budget\.tokens: expected a positive whole number/],
      [tokenBudget(600), /budget\.tokens: 600 tokens per head exceed the sequence length 512/],
    ];
    for (const [budget, message] of cases) {
      expect(() => toKvBudget(budget, 512)).toThrow(RazorkvError);
      expect(() => toKvBudget(budget, 512)).toThrow(message);
    }
    expect(() => toKvBudget(kvBudget(0.5), 0)).toThrow(/at least one token/);
  });

  it("parses the manifest forms", () => {
    expect(parseBudget(0.4, "m")).toEqual(kvBudget(0.4));
    expect(parseBudget({ compressionRatio: 0.6 }, "m")).toEqual(compressionRatio(0.6));
    expect(parseBudget({ tokens: 128 }, "m")).toEqual(tokenBudget(128));
    expect(() => parseBudget({ ratio: 0.5 }, "exp.yaml: budgets[1]")).toThrow(/exp\.yaml: budgets\[1\]: a budget is/);
    expect(() => parseBudget({ kvBudget: 0.5, tokens: 3 }, "m")).toThrow(RazorkvError);
  });

  it("keeps round(kvBudget · N) entries per head", () => {
    expect(entriesPerHead(0.5, 7)).toBe(4);
    expect(entriesPerHead(0.1, 13)).toBe(1);
    expect(entriesPerHead(1, 13)).toBe(13);
  });
});

describe("assertRealizedBudget", () => {
  const rand = mulberry32(3);
  const n = 40;
  const full = () =>
    new KvCache(
      { numLayers: 2, numKvHeads: 3, headDim: 4 },
      Array.from({ length: 6 }, () => {
        const h = new HeadCache(4);
        for (let p = 0; p < n; p++) h.append(p, randomArray(rand, 4), randomArray(rand, 4));
        return h;
      }),
      n,
    );

  it("accepts a miss of up to one entry per head and rejects more, saying by how much", () => {
    const cache = full();
    // nominal 0.5 = 20 entries per head; keep 21 in every head: +1 per head
    const over = cache.mapHeads((h) => h.select(Array.from({ length: 21 }, (_, i) => i)));
    expect(budgetMissPerHead(over, 0.5)).toBeCloseTo(1, 12);
    expect(() => assertRealizedBudget(over, 0.5)).not.toThrow();
    const tooMany = cache.mapHeads((h, l) => h.select(Array.from({ length: l === 0 ? 22 : 21 }, (_, i) => i)));
    expect(() => assertRealizedBudget(tooMany, 0.5, "cell snapkv@0.5")).toThrow(RazorkvError);
    expect(() => assertRealizedBudget(tooMany, 0.5, "cell snapkv@0.5")).toThrow(/cell snapkv@0\.5: realized kvBudget 0\.5375 misses the nominal 0\.5000 by 1\.50 entries per head/);
    // a compensation slot counts as an entry
    const withSlot = cache.mapHeads((h) => h.select([0, 1, 2], h.foldDropped([0, 1, 2])));
    expect(withSlot.realizedBudget()).toBeCloseTo(4 / 40, 12);
    expect(() => assertRealizedBudget(withSlot, 0.1)).not.toThrow();
  });
});
