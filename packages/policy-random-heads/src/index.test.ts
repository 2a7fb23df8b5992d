import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkPolicyConformance, defaultParams, kvBudget, kvHeadScore, mulberry32, noStats, parseHeadSelection, parseParams, prepare, randomPrefill,
  RazorkvError, serializeArtefact, type PolicyDefinition, type PreparationModel,
} from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import policy, { createRandomHeads, drawOrder, params, randomHeads, type RandomHeadsParams } from "./index.js";

const shape = { numLayers: 4, numHeads: 6, numKvHeads: 3, headDim: 4 }; // 12 KV heads; 15% → round(1.8) = 2 protected
const p = (overrides: Partial<RandomHeadsParams> = {}): RandomHeadsParams => ({ ...defaultParams(params), ...overrides });
const slots = (h: { positions: Int32Array; length: number }) => Array.from(h.positions.subarray(0, h.length));
const key = (heads: { layer: number; kvHead: number }[]) => heads.map((r) => `${r.layer}.${r.kvHead}`).join(" ");

describe("policy-random-heads: the draw", () => {
  it("is a Fisher–Yates shuffle driven by mulberry32 (hand-worked on 4 heads)", () => {
    // i = 3, 2, 1: swap order[i] with order[⌊r·(i + 1)⌋], r the generator's next value
    const r = mulberry32(7);
    const [r1, r2, r3] = [r(), r(), r()];
    const expected = [0, 1, 2, 3];
    const swap = (i: number, j: number) => ([expected[i], expected[j]] = [expected[j], expected[i]]);
    swap(3, Math.floor(r1 * 4));
    swap(2, Math.floor(r2 * 3));
    swap(1, Math.floor(r3 * 2));
    expect(drawOrder(4, 7)).toEqual(expected);
    expect([...drawOrder(90, 3)].sort((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });

  it("protects round(fraction · heads), razor's count: 14 of SmolLM2-135M's 90 at the default 15%, 5/23/36 at 5/25/40%", () => {
    expect(randomHeads(30, 3, p()).length).toBe(14);
    expect([0.05, 0.25, 0.4].map((f) => randomHeads(30, 3, p({ protectedFraction: f })).length)).toEqual([5, 23, 36]);
    expect(randomHeads(30, 3, p({ protectedFraction: 0 }))).toEqual([]);
  });

  it("same seed, same heads; another seed, other heads; one seed's sets are nested across fractions", () => {
    expect(randomHeads(30, 3, p({ seed: 5 }))).toEqual(randomHeads(30, 3, p({ seed: 5 })));
    const sets = new Set(Array.from({ length: 20 }, (_, seed) => key(randomHeads(30, 3, p({ seed })))));
    expect(sets.size).toBe(20); // two equal 14-of-90 draws have probability 1/C(90,14) ≈ 1e-16
    const small = randomHeads(30, 3, p({ seed: 9, protectedFraction: 0.05 }));
    const large = key(randomHeads(30, 3, p({ seed: 9, protectedFraction: 0.4 })));
    for (const r of small) expect(large).toContain(`${r.layer}.${r.kvHead}`);
  });

  it("is uniform: over 4000 seeds every head is protected Binomial(4000, 3/20) times, within 5 standard deviations", () => {
    const seeds = 4000;
    const counts = new Array(20).fill(0);
    const firsts = new Array(20).fill(0);
    for (let seed = 0; seed < seeds; seed++) {
      for (const r of randomHeads(4, 5, p({ seed }))) counts[r.layer * 5 + r.kvHead]++;
      firsts[drawOrder(20, seed)[0]]++;
    }
    const mean = (seeds * 3) / 20;
    const sd = Math.sqrt(seeds * 0.15 * 0.85); // 22.6
    for (const c of counts) expect(Math.abs(c - mean)).toBeLessThan(5 * sd);
    // and the first head drawn: Binomial(4000, 1/20)
    for (const c of firsts) expect(Math.abs(c - seeds / 20)).toBeLessThan(5 * Math.sqrt(seeds * 0.05 * 0.95));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(seeds * 3);
  });
});

describe("policy-random-heads: the cache", () => {
  it("keeps the drawn heads whole and gives the others sinks + window + the compensation slot", () => {
    const length = 101;
    const { cache } = randomPrefill({ ...shape, length, seed: 2 });
    const drawn = new Set(randomHeads(4, 3, p({ seed: 11 })).map((r) => r.layer * 3 + r.kvHead));
    expect(drawn.size).toBe(2);
    const out = createRandomHeads(p({ seed: 11 })).compress(cache, noStats, kvBudget(0.4));
    // (0.4 · 12 · 101 − 2 · 101) / 10 = 28.28 per compressed head → window 28 − 4 − 1 = 23
    out.heads.forEach((h, i) => {
      if (drawn.has(i)) expect(slots(h)).toEqual(slots(cache.heads[i]));
      else {
        expect(slots(h)).toEqual([0, 1, 2, 3, ...Array.from({ length: 23 }, (_, k) => length - 23 + k)]);
        expect(h.compensation?.count).toBe(length - 4 - 23);
      }
    });
  });

  it("realizes the nominal budget at 0.2…0.9 on odd lengths, at every protected share the sweep uses, with and without windows", () => {
    for (const protectedFraction of [0.05, 0.15, 0.25, 0.4]) {
      checkPolicyConformance(policy.create(p({ protectedFraction, seed: 3 })), { shape, lengths: [57, 101, 263], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] });
    }
    checkPolicyConformance(policy.create(p({ compensation: false, sinks: 2 })), { shape, lengths: [61, 300], budgets: [0.2, 0.5, 0.9] });
    checkPolicyConformance(policy.create(p()), { shape: { ...shape, layerWindows: [32, null, 32, null] }, lengths: [50, 150], budgets: [0.3, 0.6, 0.9] });
  });

  it("refuses a budget below the protected share and one too small for sinks + slot, saying what is feasible", () => {
    const { cache } = randomPrefill({ ...shape, length: 200 });
    const policy = createRandomHeads(p());
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(RazorkvError);
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(
      "random-heads: kvBudget 0.1 is below the protected share 0.1667 (2 of 12 KV heads keep their whole cache): infeasible for this selection; raise the budget or lower protectedFraction",
    );
    // (2·200 + 10·(4 + 1 + 0.5)) / 2400 = 455 / 2400 = 0.189583 → rounded up 0.1896
    expect(() => policy.checkFeasible!(200, kvBudget(0.18), cache)).toThrow(
      "random-heads: kvBudget 0.18 leaves 3.20 entries per compressed head of a 200-token sequence, too few for 4 sinks + the compensation slot + 1 recent token; the smallest feasible kvBudget here is 0.1896",
    );
    expect(() => parseParams(params, { protectedFraction: 1.5 }, "@razorkv/policy-random-heads")).toThrow("@razorkv/policy-random-heads: params.protectedFraction: expected a number in [0, 1], got 1.5");
  });
});

describe("policy-random-heads: preparation and head selection", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-random-heads-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const definition = policy as unknown as PolicyDefinition;
  const stub = {
    ref: "tiny", digest: "d1",
    shape: { numLayers: 4, numHeads: 6, numKvHeads: 3, headDim: 4, vocabSize: 100, maxContext: 512, layerWindows: [null, null, null, null], attentionScale: 0.5 },
    tokenizer: {} as PreparationModel["tokenizer"],
    prefill: () => {
      throw new Error("random-heads must not run the model");
    },
  } satisfies PreparationModel;

  it("records the shape without running the model, once per model file whatever the seed or fraction", () => {
    const first = prepare(definition, p(), stub, { cacheDir: dir })!;
    expect(first.artefact).toEqual({ model: "tiny", numLayers: 4, numHeads: 6, numKvHeads: 3 });
    expect(readFileSync(first.plan.path, "utf8")).toBe(serializeArtefact(first.artefact));
    expect(prepare(definition, p({ seed: 4, protectedFraction: 0.4 }), stub, { cacheDir: dir })!.fromCache).toBe(true);
  });

  it("exports the draw as a HeadSelection: the protected heads are the top of the 'random draw' score", () => {
    const artefact = { model: "tiny", numLayers: 4, numHeads: 6, numKvHeads: 3 };
    const selection = parseHeadSelection(JSON.parse(JSON.stringify(definition.prepare!.headSelection!(artefact, p({ seed: 6, protectedFraction: 0.25 })))), "sel");
    expect(selection.protected).toEqual(randomHeads(4, 3, { seed: 6, protectedFraction: 0.25 }));
    expect(selection.protected.length).toBe(3);
    expect(selection.rule).toBe("the first 3 of 12 KV heads drawn (round(25% of 12)), seed 6");
    const score = selection.scores[0];
    const ranked = Array.from({ length: 12 }, (_, i) => ({ layer: Math.floor(i / 3), kvHead: i % 3 }))
      .sort((a, b) => kvHeadScore(selection, score, b.layer, b.kvHead) - kvHeadScore(selection, score, a.layer, a.kvHead));
    expect(key(ranked.slice(0, 3).sort((a, b) => a.layer * 3 + a.kvHead - (b.layer * 3 + b.kvHead)))).toBe(key([...selection.protected]));
  });

  it("draws from the cache's shape, checks it against the prepared one, and without either says how to prepare", () => {
    const { cache } = randomPrefill({ ...shape, length: 40 });
    const prepared = { model: "tiny", numLayers: 4, numHeads: 6, numKvHeads: 3 };
    const withShape = createRandomHeads(p(), { modelRef: "tiny", prepared }).compress(cache, noStats, kvBudget(0.5));
    expect(withShape.heads.map((h) => h.length)).toEqual(createRandomHeads(p()).compress(cache, noStats, kvBudget(0.5)).heads.map((h) => h.length));
    const other = randomPrefill({ numLayers: 2, numHeads: 6, numKvHeads: 3, headDim: 4, length: 40 }).cache;
    expect(() => createRandomHeads(p(), { prepared }).compress(other, noStats, kvBudget(0.5))).toThrow(
      'random-heads: prepared for "tiny" with 4 layers × 3 KV heads, but the model\'s cache has 2 × 3; prepare this model',
    );
    expect(() => createRandomHeads(p(), { modelRef: "m" }).checkFeasible!(40, kvBudget(0.5))).toThrow(
      /^random-heads: no model shape to draw the heads from for model "m"; `razorkv run` and `razorkv prepare --model <ref> --policy random-heads` record it$/,
    );
    expect(createRandomHeads(p(), { prepared }).nominalBudget!(40, kvBudget(0.5))).toBe(0.5);
  });
});
