import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  attendReference, checkPolicyConformance, defaultParams, kvBudget, mulberry32, noStats, parseParams, randomArray, randomPrefill,
  RazorkvError, tokenBudget, type KvCache,
} from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import razor, { budgetWindow, createRazor, params, razorSlots, type HeadProfile, type RazorParams } from "./index.js";
import { selectRetrievalHeads } from "./profile.js";

/** A profile of random scores for a model of `numLayers` × `numKvHeads` KV heads (`numHeads` query heads). */
function randomProfile(numLayers: number, numHeads: number, numKvHeads: number, seed = 1): HeadProfile {
  const rand = mulberry32(seed);
  const m = () => Array.from({ length: numLayers }, () => Array.from({ length: numHeads }, () => rand()));
  const scores = { numLayers, numHeads, numKvHeads, echo: m(), induction: m() };
  const params = { blockLength: 10, repeats: 4, seed: 1, tokenRange: [0, 10] as const, bosId: null, inductionFraction: 0.14, echoFraction: 0.01 };
  return { model: "random", ...scores, retrieval: selectRetrievalHeads(scores, params), params };
}

const shape = { numLayers: 4, numHeads: 10, numKvHeads: 5, headDim: 4 }; // 20 KV heads
const profile = randomProfile(4, 10, 5);
const p = (overrides: Partial<RazorParams> = {}): RazorParams => ({ ...defaultParams(params), profile, ...overrides });
const positions = (cache: KvCache, i: number) => Array.from(cache.heads[i].positions.subarray(0, cache.heads[i].length));

describe("policy-razor: budget", () => {
  it("realizes the nominal budget at 0.1…0.9 on several lengths (5% protected)", () => {
    const policy = razor.create(p({ inductionFraction: 0.05, echoFraction: 0 }));
    checkPolicyConformance(policy, { shape, lengths: [150, 333, 1001], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] });
  });

  it("with sliding-window layers: held heads whole (protected or not), the window solved over the rest, paper mode's nominal too", () => {
    const windowedShape = { ...shape, layerWindows: [64, null, 64, null] };
    checkPolicyConformance(razor.create(p()), { shape: windowedShape, lengths: [50, 150, 333], budgets: [0.3, 0.5, 0.7, 0.9] });
    const paper = razor.create(p({ mode: "paper", paperMinWindow: 16, paperCompression: 5 }));
    const rows = checkPolicyConformance(paper, { shape: windowedShape, lengths: [50, 400], budgets: [0.3] });
    for (const r of rows) expect(r.realized).toBeCloseTo(r.nominal, 12);
    // 400 tokens: layers 0 and 2 hold 64 each; below what they and the protected heads hold, a one-line refusal
    expect(() => razor.create(p()).checkFeasible!(400, kvBudget(0.1), { numLayers: 4, numKvHeads: 5, layerWindows: [64, null, 64, null] })).toThrow(
      /^razor: kvBudget 0\.1 is below what the protected heads and the sliding-window layers hold \(\d+ protected heads keep 400 entries each and the sliding-window layers hold 640: \d+ of 4640 entries, kvBudget 0\.\d{4}\): infeasible for this selection; raise the budget or lower inductionFraction\/echoFraction$/,
    );
  });

  it("realizes it with the paper's 15% protected, without the compensation slot, and in paper mode", () => {
    checkPolicyConformance(razor.create(p()), { shape, lengths: [97, 420], budgets: [0.2, 0.35, 0.5, 0.65, 0.8, 0.95] });
    checkPolicyConformance(razor.create(p({ compensation: false, sinks: 2 })), { shape, lengths: [61, 300], budgets: [0.2, 0.5, 0.9] });
    // paper mode ignores the budget: its nominal budget is what max(S0, N/C) keeps
    const paper = razor.create(p({ mode: "paper", paperMinWindow: 16, paperCompression: 5 }));
    const rows = checkPolicyConformance(paper, { shape, lengths: [50, 400], budgets: [0.3, 0.9] });
    for (const r of rows) expect(r.realized).toBeCloseTo(r.nominal, 12);
    // N = 400: window = max(16, 80) = 80; 3 of 20 heads protected
    const protectedCount = selectRetrievalHeads(profile, { inductionFraction: 0.14, echoFraction: 0.01 }).length;
    expect(protectedCount).toBe(3);
    expect(rows[2].nominal).toBeCloseTo((3 * 400 + 17 * (4 + 80 + 1)) / (20 * 400), 12);
  });

  it("solves p·N + (1 − p)(N0 + window + 1) = kvBudget·N for the window", () => {
    // 3 of 20 heads protected, N = 1000, kvBudget 0.3: (0.3·20·1000 − 3·1000)/17 = 176.47 → window = 176 − 4 − 1 ≈ 171
    expect(budgetWindow(0.3, 1000, 20, 3, { sinks: 4, compensation: true })).toBe(171);
    expect(budgetWindow(0.3, 1000, 20, 3, { sinks: 4, compensation: false })).toBe(172);
  });

  it("rejects a budget below the protected share, and one too small for sinks + slot, saying so", () => {
    const { cache } = randomPrefill({ ...shape, length: 200 });
    const policy = createRazor(p());
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(RazorkvError);
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(
      /razor: kvBudget 0\.1 is below the protected share 0\.1500 \(3 of 20 KV heads keep their whole cache\): infeasible/,
    );
    expect(() => policy.compress(cache, noStats, kvBudget(0.16))).toThrow(
      /razor: kvBudget 0\.16 leaves 2\.35 entries per compressed head of a 200-token sequence, too few for 4 sinks \+ the compensation slot \+ 1 recent token; the smallest feasible kvBudget here is 0\.1734/,
    );
    expect(() => policy.compress(cache, noStats, kvBudget(0.1734))).not.toThrow();
    expect(() => policy.compress(cache, noStats, tokenBudget(300))).toThrow(/budget\.tokens: 300 tokens per head exceed the sequence length 200/);
  });
});

describe("policy-razor: per-head caches", () => {
  const length = 123;
  const { cache } = randomPrefill({ ...shape, length, seed: 4 });
  const chosen = new Set(selectRetrievalHeads(profile, { inductionFraction: 0.14, echoFraction: 0.01 }).map((r) => r.layer * 5 + r.kvHead));

  it("leaves protected heads untouched and gives the others exactly sinks + window + the compensation slot", () => {
    const out = createRazor(p()).compress(cache, noStats, kvBudget(0.4));
    const window = budgetWindow(0.4, length, 20, 3, { sinks: 4, compensation: true });
    expect(chosen.size).toBe(3);
    out.heads.forEach((h, i) => {
      const full = cache.heads[i];
      if (chosen.has(i)) {
        expect(h.length).toBe(length);
        expect(h.compensation).toBeNull();
        expect(h.keys.subarray(0, length * 4)).toEqual(full.keys.subarray(0, length * 4));
        expect(h.values.subarray(0, length * 4)).toEqual(full.values.subarray(0, length * 4));
        expect(positions(out, i)).toEqual(positions(cache, i));
        return;
      }
      expect(positions(out, i)).toEqual(razorSlots(length, 4, window));
      expect(positions(out, i)).toEqual([0, 1, 2, 3, ...Array.from({ length: window }, (_, k) => length - window + k)]);
      // the slot holds the means of exactly the dropped keys and values
      const dropped = Array.from({ length: length - 4 - window }, (_, k) => 4 + k);
      expect(h.compensation?.count).toBe(dropped.length);
      for (let x = 0; x < 4; x++) {
        expect(h.compensation!.key[x]).toBeCloseTo(dropped.reduce((a, s) => a + full.key(s)[x], 0) / dropped.length, 5);
        expect(h.compensation!.value[x]).toBeCloseTo(dropped.reduce((a, s) => a + full.value(s)[x], 0) / dropped.length, 5);
      }
    });
  });

  it("without compensation keeps exactly sinks + window, and the protected set follows the fractions", () => {
    const out = createRazor(p({ compensation: false, inductionFraction: 0.25, echoFraction: 0.1, sinks: 3 })).compress(cache, noStats, kvBudget(0.6));
    const wide = new Set(selectRetrievalHeads(profile, { inductionFraction: 0.25, echoFraction: 0.1 }).map((r) => r.layer * 5 + r.kvHead));
    const window = budgetWindow(0.6, length, 20, wide.size, { sinks: 3, compensation: false });
    out.heads.forEach((h, i) => {
      expect(h.compensation).toBeNull();
      expect(h.length).toBe(wide.has(i) ? length : 3 + window);
    });
  });

  it("decoding appends to the compressed heads and attends the slot as its dropped tokens' mean", () => {
    const out = createRazor(p()).compress(cache, noStats, kvBudget(0.3));
    const rand = mulberry32(8);
    for (const h of out.heads) h.append(length, randomArray(rand, 4), randomArray(rand, 4));
    out.nextPosition = length + 1;
    const q = randomArray(rand, shape.numHeads * 4, 2);
    const o = new Float32Array(q.length);
    attendReference({ cache: out, layer: 1, numHeads: shape.numHeads, queries: q, queryPositions: [length], out: o });
    expect(o.every(Number.isFinite)).toBe(true);
    expect(out.realizedBudget()).toBeLessThan(0.33);
  });
});

describe("policy-razor: the profile parameter", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-razor-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes a path or an object, and says what is wrong with either", () => {
    const path = join(dir, "p.json");
    writeFileSync(path, JSON.stringify(profile));
    expect(parseParams(params, { profile: path }, "@razorkv/policy-razor").profile).toEqual(profile);
    expect(() => parseParams(params, { profile: join(dir, "missing.json") }, "@razorkv/policy-razor")).toThrow(
      /@razorkv\/policy-razor: params\.profile: .*missing\.json: cannot read the head profile \(ENOENT\)/,
    );
    expect(() => parseParams(params, { profile: { ...profile, numKvHeads: 3 } }, "@razorkv/policy-razor")).toThrow(/params\.profile: profile: numHeads: expected a multiple of numKvHeads 3/);
  });

  it('"auto" takes the profile the runner prepared, and without one says how to make it', () => {
    const { cache } = randomPrefill({ ...shape, length: 50 });
    expect(() => createRazor(p({ profile: "auto" }), { modelRef: "tiny-model" }).compress(cache, noStats, kvBudget(0.5))).toThrow(
      /^razor: params\.profile is "auto" but no head profile was prepared for model "tiny-model"; `razorkv run` and `razorkv calibrate --model <ref>` calibrate it/,
    );
    const prepared = createRazor(p({ profile: "auto" }), { modelRef: "tiny-model", prepared: profile }).compress(cache, noStats, kvBudget(0.5));
    expect(prepared.heads.map((h) => h.length)).toEqual(createRazor(p()).compress(cache, noStats, kvBudget(0.5)).heads.map((h) => h.length));
  });

  it("calibration input: each field checked, unknown fields refused", () => {
    expect(parseParams(params, { calibration: { blockLength: 100, seed: 3 } }, "r").calibration).toEqual({ blockLength: 100, seed: 3 });
    expect(() => parseParams(params, { calibration: { blockLength: 1 } }, "r")).toThrow(/r: params\.calibration: blockLength: expected an integer ≥ 2, got 1/);
    expect(() => parseParams(params, { calibration: { tokenRange: [5, 6] } }, "r")).toThrow(/params\.calibration: tokenRange: expected \[first, end\)/);
    expect(() => parseParams(params, { calibration: { block: 3 } }, "r")).toThrow(/params\.calibration: unknown field "block"/);
  });

  it("refuses a profile of another model shape", () => {
    const { cache } = randomPrefill({ numLayers: 2, numHeads: 10, numKvHeads: 5, headDim: 4, length: 40 });
    expect(() => createRazor(p()).compress(cache, noStats, kvBudget(0.5))).toThrow(/profile of "random" has 4 layers × 5 KV heads, the model's cache 2 × 5/);
  });
});
