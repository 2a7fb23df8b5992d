import { describe, expect, it } from "vitest";
import { kvBudget, tokenBudget } from "./budget.js";
import { RazorkvError } from "./errors.js";
import { noStats } from "./policy.js";
import {
  compressedHeadEntries, headSplit, protectedHeadsKvBudget, protectedHeadsPolicy, protectedHeadsWindow, sinksAndWindow,
} from "./protected-heads.js";
import { checkPolicyConformance } from "./testing/conformance.js";
import { randomPrefill } from "./testing/prefill.js";

const names = { policy: "toy", protectedParams: "toyFraction" };
const shape = { numLayers: 4, numHeads: 10, numKvHeads: 5, headDim: 4 }; // 20 KV heads
/** Heads 1, 7 and 18 protected (3 of 20). */
const chosen = new Set([1, 7, 18]);
const toy = (options: { sinks?: number; compensation?: boolean; fixedWindow?: (n: number) => number } = {}) =>
  protectedHeadsPolicy({
    ...names, sinks: options.sinks ?? 4, compensation: options.compensation ?? true,
    protectedHeads: () => ({ heads: chosen, totalHeads: 20 }),
    ...(options.fixedWindow ? { fixedWindow: options.fixedWindow } : {}),
  });
const slots = (h: { positions: Int32Array; length: number }) => Array.from(h.positions.subarray(0, h.length));

describe("protected-heads layout", () => {
  it("a compressed head keeps its sinks and its last window; all of it when they overlap", () => {
    expect(sinksAndWindow(10, 2, 3)).toEqual([0, 1, 7, 8, 9]);
    expect(sinksAndWindow(10, 0, 3)).toEqual([7, 8, 9]);
    expect(sinksAndWindow(5, 2, 3)).toEqual([0, 1, 2, 3, 4]);
    expect(compressedHeadEntries(10, 2, 3, true)).toBe(6);
    expect(compressedHeadEntries(10, 2, 3, false)).toBe(5);
    expect(compressedHeadEntries(5, 2, 3, true)).toBe(5); // nothing dropped: no slot
  });

  it("solves P·N + (T − P)(N0 + window + c) = kvBudget·T·N for the window (hand-computed)", () => {
    // T = 20, P = 3, N = 1000, kvBudget 0.3: (6000 − 3000)/17 = 176.47 per compressed head − 4 sinks − 1 slot = 171.47 → 171
    expect(protectedHeadsWindow(0.3, 1000, 20, 3, { ...names, sinks: 4, compensation: true })).toBe(171);
    expect(protectedHeadsWindow(0.3, 1000, 20, 3, { ...names, sinks: 4, compensation: false })).toBe(172);
    // realized: (3·1000 + 17·(4 + 171 + 1)) / 20000 = 0.2996, within half an entry per compressed head
    expect(protectedHeadsKvBudget(1000, 171, 3, 20, { sinks: 4, compensation: true })).toBeCloseTo((3000 + 17 * 176) / 20000, 15);
  });

  it("sliding windows: held heads count at W, the equation over the rest (hand-computed split)", () => {
    const layout = { numLayers: 4, numKvHeads: 5, layerWindows: [64, null, 64, null] };
    // layers 0 and 2 hold 64 of 400 tokens (10 heads, 640 entries); of the other 10 heads, 7 (layer 1) and 18 (layer 3) are protected
    const split = headSplit(400, layout, chosen);
    expect(split).toEqual({ full: 640 + 10 * 400, held: 640, protectedFree: 2, compressed: 8 });
    // kvBudget 0.5 of 4640 = 2320; minus 640 held and 800 protected = 880 over 8 heads = 110 → window 110 − 4 − 1 = 105
    expect(protectedHeadsWindow(0.5, 400, 20, 3, { ...names, sinks: 4, compensation: true }, undefined, split)).toBe(105);
  });

  it("compresses: protected heads whole, the others sinks + window + the slot of exactly the dropped entries", () => {
    const length = 123;
    const { cache } = randomPrefill({ ...shape, length, seed: 4 });
    const out = toy().compress(cache, noStats, kvBudget(0.4));
    const window = protectedHeadsWindow(0.4, length, 20, 3, { ...names, sinks: 4, compensation: true });
    out.heads.forEach((h, i) => {
      if (chosen.has(i)) {
        expect(slots(h)).toEqual(slots(cache.heads[i]));
        expect(h.compensation).toBeNull();
      } else {
        expect(slots(h)).toEqual([0, 1, 2, 3, ...Array.from({ length: window }, (_, k) => length - window + k)]);
        expect(h.compensation?.count).toBe(length - 4 - window);
        const dropped = Array.from({ length: length - 4 - window }, (_, k) => 4 + k);
        expect(h.compensation!.key[0]).toBeCloseTo(dropped.reduce((a, s) => a + cache.heads[i].key(s)[0], 0) / dropped.length, 5);
      }
    });
  });

  it("meets the budget at 0.2…0.9 on odd lengths, with and without windows, the slot, a fixed window", () => {
    checkPolicyConformance(toy(), { shape, lengths: [57, 101, 263], budgets: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] });
    checkPolicyConformance(toy({ compensation: false, sinks: 2 }), { shape, lengths: [61, 300], budgets: [0.2, 0.5, 0.9] });
    checkPolicyConformance(toy(), { shape: { ...shape, layerWindows: [64, null, 64, null] }, lengths: [50, 150, 333], budgets: [0.3, 0.5, 0.7, 0.9] });
    const fixed = checkPolicyConformance(toy({ fixedWindow: (n) => Math.round(n / 5) }), { shape, lengths: [50, 400], budgets: [0.3, 0.9] });
    // a fixed window ignores the budget: the nominal budget is what it realizes
    for (const r of fixed) expect(r.realized).toBeCloseTo(r.nominal, 12);
    expect(fixed[2].nominal).toBeCloseTo((3 * 400 + 17 * (4 + 80 + 1)) / (20 * 400), 12);
  });

  it("refuses infeasible budgets naming the policy and what to lower, the same way in a dry run", () => {
    const { cache } = randomPrefill({ ...shape, length: 200 });
    const policy = toy();
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(RazorkvError);
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(
      "toy: kvBudget 0.1 is below the protected share 0.1500 (3 of 20 KV heads keep their whole cache): infeasible for this selection; raise the budget or lower toyFraction",
    );
    // (3·200 + 17·(4 + 1 + 0.5)) / 4000 = 0.17338 → 0.1734
    expect(() => policy.checkFeasible!(200, kvBudget(0.16))).toThrow(
      "toy: kvBudget 0.16 leaves 2.35 entries per compressed head of a 200-token sequence, too few for 4 sinks + the compensation slot + 1 recent token; the smallest feasible kvBudget here is 0.1734",
    );
    expect(() => policy.compress(cache, noStats, kvBudget(0.1734))).not.toThrow();
    expect(() => policy.compress(cache, noStats, tokenBudget(300))).toThrow(/budget\.tokens: 300 tokens per head exceed the sequence length 200/);
    const all = protectedHeadsPolicy({ ...names, sinks: 4, compensation: true, protectedHeads: () => ({ heads: new Set(Array.from({ length: 20 }, (_, i) => i)), totalHeads: 20 }) });
    expect(() => all.checkFeasible!(200, kvBudget(0.9))).toThrow("toy: kvBudget 0.9 is infeasible: all 20 KV heads are protected (full cache, kvBudget 1)");
  });

  it("passes the layout to the selection, whose refusal is the policy's", () => {
    const seen: unknown[] = [];
    const policy = protectedHeadsPolicy({
      ...names, sinks: 4, compensation: true,
      protectedHeads(layout) {
        seen.push(layout && { numLayers: layout.numLayers, numKvHeads: layout.numKvHeads });
        if (!layout) throw new RazorkvError("toy: no layout, no selection");
        return { heads: chosen, totalHeads: layout.numLayers * layout.numKvHeads };
      },
    });
    const { cache } = randomPrefill({ ...shape, length: 40 });
    policy.compress(cache, noStats, kvBudget(0.5));
    policy.checkFeasible!(40, kvBudget(0.5), { numLayers: 4, numKvHeads: 5 });
    expect(seen).toEqual([{ numLayers: 4, numKvHeads: 5 }, { numLayers: 4, numKvHeads: 5 }]);
    expect(() => policy.checkFeasible!(40, kvBudget(0.5))).toThrow("toy: no layout, no selection");
    // budget mode: the nominal budget is the budget, whatever the selection
    expect(policy.nominalBudget!(40, kvBudget(0.5))).toBe(0.5);
  });
});
