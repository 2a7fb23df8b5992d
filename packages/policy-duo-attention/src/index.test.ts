import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkPolicyConformance, defaultParams, kvBudget, kvHeadScore, parseHeadSelection, parseParams, prepare, randomPrefill, RazorkvError,
  type AttentionObserver, type KvCache, type PolicyDefinition, type PreparationModel,
} from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import duo, {
  areaUnderCumulativeAttention, createDuoAttention, onTheFlyScores, params, parsePatternTable, readPattern, scoreOnTheFly,
  selectRetrievalHeads, type DuoAttentionParams, type DuoHeadScores,
} from "./index.js";

const here = dirname(fileURLToPath(import.meta.url));
const patternDir = join(here, "..", "test", "fixtures", "tiny-pattern");
const defaults = defaultParams(params);
const p = (raw: Record<string, unknown> = {}): DuoAttentionParams => parseParams(params, raw, "duo-attention");

/** Rotation of a 2-dim head by position · π/2 ("rotate half" with one frequency): what the hand-computed cases use. */
const quarterTurns = (v: Float32Array, heads: number, positions: ArrayLike<number>, inverse = false) => {
  for (let r = 0; r < positions.length; r++) {
    const angle = ((inverse ? -1 : 1) * positions[r] * Math.PI) / 2;
    for (let h = 0; h < heads; h++) {
      const i = (r * heads + h) * 2;
      const [a, b] = [v[i], v[i + 1]];
      v[i] = a * Math.cos(angle) - b * Math.sin(angle);
      v[i + 1] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
};

describe("on-the-fly head scores (kvpress duo_attention_on_the_fly)", () => {
  it("the area under the cumulative attention curve, by hand", () => {
    // cumulative 0.5, 0.75, 1 → mean 0.75; all mass on the last key: 1/n; all on the first: 1
    expect(areaUnderCumulativeAttention([0.5, 0.25, 0.25])).toBeCloseTo(0.75, 12);
    expect(areaUnderCumulativeAttention([0, 0, 0, 1])).toBeCloseTo(0.25, 12);
    expect(areaUnderCumulativeAttention([1, 0, 0, 0])).toBe(1);
  });

  it("scores a mean query against the mean key re-rotated at 0 … q_len − 1, by hand", () => {
    // one KV head, two query heads, d = 2, q_len = 4, scale 1. Head 0: q = (1, 0) rotated to position 3 is (0, −1);
    // k = (ln 2, 0) at j is ln 2 · (cos jπ/2, sin jπ/2), so the logits are 0, −ln 2, 0, ln 2: weights 2/9, 1/9, 2/9,
    // 4/9, cumulative 2/9, 3/9, 5/9, 1, area 19/36. Head 1: q = 0, uniform weights: area (1 + 2 + 3 + 4)/16 = 5/8.
    const s = onTheFlyScores(Float32Array.of(1, 0, 0, 0), Float32Array.of(Math.LN2, 0), 2, 1, 2, 4, 1, quarterTurns);
    expect(s[0]).toBeCloseTo(19 / 36, 6);
    expect(s[1]).toBeCloseTo(5 / 8, 6);
  });

  it("takes the mean query and key before RoPE from the prefill's observers, averaged over the texts", () => {
    // planted pre-RoPE vectors on 2 tokens (positions 0, 1): queries (0, 0) then (2, 0) — mean (1, 0) — and keys
    // (0, 0) then (2 ln 2, 0) — mean (ln 2, 0): the hand case above. The model stores them rotated; a step that
    // averaged the rotated vectors would see a query mean of (0, 1) instead.
    const prefills: number[] = [];
    const model = stubModel({
      numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 2,
      prefill(tokens, observers) {
        prefills.push(tokens.length);
        const queries = Float32Array.of(0, 0, 0, 0, 2, 0, 0, 0);
        const keys = Float32Array.of(0, 0, 2 * Math.LN2, 0);
        quarterTurns(queries, 2, [0, 1]);
        quarterTurns(keys, 1, [0, 1]);
        const cache = cacheOf(keys, 2);
        for (const o of observers) o.observe({ layer: 0, numHeads: 2, cache, queries, queryPositions: [0, 1], scale: 1 });
      },
    });
    const scores = scoreOnTheFly(model, { samples: 3, sampleTokens: 2, queryLength: 4, seed: 1 });
    expect(prefills).toEqual([2, 2, 2]);
    expect(scores[0][0]).toBeCloseTo(19 / 36, 5);
    expect(scores[0][1]).toBeCloseTo(5 / 8, 5);
  });

  it("refuses without the model's RoPE, in one line", () => {
    const model = { ...stubModel({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 2, prefill() {} }), rotary: undefined };
    expect(() => scoreOnTheFly(model, { samples: 1, sampleTokens: 2, queryLength: 4, seed: 1 })).toThrow(
      "duo-attention: needs the model's RoPE (PreparationModel.rotary), which the engine running stub does not expose",
    );
  });
});

describe("DuoAttention pattern files", () => {
  it("reads full_attention_heads.tsv from the directory or the file, clipped to [0, 1] as the authors and kvpress load it", () => {
    const expected = [[0.984375, 0], [0.25, 1], [1, 0.625]];
    expect(readPattern(patternDir).gates).toEqual(expected);
    expect(readPattern(join(patternDir, "full_attention_heads.tsv"))).toEqual({ source: join(patternDir, "full_attention_heads.tsv"), gates: expected });
    expect(p({ patternFile: patternDir }).patternFile?.gates).toEqual(expected);
  });

  it("names the file, line and column of what it cannot read", () => {
    expect(() => parsePatternTable("0.5\t0.25\n0.5\n", "x.tsv")).toThrow("x.tsv: line 2: expected 2 tab-separated gates (one per KV head), found 1");
    expect(() => parsePatternTable("0.5\tnan?\n", "x.tsv")).toThrow('x.tsv: line 1, column 2: expected a number, found "nan?"');
    expect(() => readPattern(join(patternDir, "missing"))).toThrow(`${join(patternDir, "missing")}: cannot read the DuoAttention pattern (ENOENT)`);
    expect(() => p({ patternFile: 3 })).toThrow(/params\.patternFile: expected a pattern directory or full_attention_heads\.tsv path, or null, got 3/);
  });

  it("selects the top share of KV heads by gate, ties to the earlier head", () => {
    // gates by index layer·2 + kv: 0.984, 0, 0.25, 1, 1, 0.625 — order 3, 4 (tie: earlier first), 0, 5, 2, 1
    const gates = readPattern(patternDir).gates;
    expect(selectRetrievalHeads(gates, 0.5)).toEqual([{ layer: 0, kvHead: 0 }, { layer: 1, kvHead: 1 }, { layer: 2, kvHead: 0 }]);
    expect(selectRetrievalHeads(gates, 0.2)).toEqual([{ layer: 1, kvHead: 1 }]);
    expect(selectRetrievalHeads(gates, 0)).toEqual([]);
  });
});

/** The cache of the tiny pattern's model shape (3 layers × 2 KV heads, 4 query heads). */
const shape = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 4 };

/** Slots each head of `cache` holds, as positions. */
const keptPositions = (cache: KvCache) => cache.heads.map((h) => Array.from(h.positions.slice(0, h.length)));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("policy-duo-attention", () => {
  const withPattern = (raw: Record<string, unknown>) => createDuoAttention(p({ patternFile: patternDir, sinks: 4, ...raw }));

  it("keeps the retrieval heads whole and sinks + the budget's window of the streaming heads, by hand", () => {
    // 6 KV heads, protectedFraction 1/3: heads 3 and 4 whole. n = 100 at kvBudget 0.5: 2·100 + 4·(4 + w) = 300,
    // w = 21: streaming heads keep positions 0…3 and 79…99.
    const { cache } = randomPrefill({ ...shape, length: 100, seed: 3 });
    const out = withPattern({ protectedFraction: 1 / 3 }).compress(cache, { request: {}, layers: [] }, kvBudget(0.5));
    const streaming = [...range(0, 4), ...range(79, 100)];
    expect(keptPositions(out)).toEqual([streaming, streaming, streaming, range(0, 100), range(0, 100), streaming]);
    expect(out.heads.every((h) => h.compensation === null)).toBe(true);
    expect(out.realizedBudget()).toBeCloseTo(0.5, 12);
  });

  it('mode "paper": sinks + recent whatever the budget, realizing and reporting p + (1 − p)·(sinks + recent)/N', () => {
    const { cache } = randomPrefill({ ...shape, length: 100, seed: 3 });
    const policy = withPattern({ protectedFraction: 1 / 3, mode: "paper", recent: 10 });
    const out = policy.compress(cache, { request: {}, layers: [] }, kvBudget(0.9));
    expect(keptPositions(out)[0]).toEqual([...range(0, 4), ...range(90, 100)]);
    // (2·100 + 4·14) / 600: kvpress's compression ratio (4/6)·(1 − 14/100) = 0.5733… is one minus this
    expect(policy.nominalBudget!(100, kvBudget(0.9), cache)).toBeCloseTo(256 / 600, 12);
    expect(out.realizedBudget()).toBeCloseTo(256 / 600, 12);
  });

  it("realizes the nominal budget at 0.1…0.9 on several lengths; infeasible cells refused alike by checkFeasible", () => {
    for (const [fraction, sinks] of [[1 / 3, 4], [0.5, 0], [0.2, 16]]) {
      const rows = checkPolicyConformance(withPattern({ protectedFraction: fraction, sinks }), {
        shape, lengths: [57, 101, 263], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
      });
      expect(rows.length).toBeGreaterThanOrEqual(12);
    }
    const paper = checkPolicyConformance(withPattern({ mode: "paper", recent: 32 }), { shape, lengths: [30, 101, 263], budgets: [0.5] });
    expect(paper.map((r) => r.nominal)).toEqual([1, (3 * 101 + 3 * 36) / (6 * 101), (3 * 263 + 3 * 36) / (6 * 263)]);
  });

  it("with sliding-window layers: held heads whole, the rest of the budget over the others (core's layout)", () => {
    checkPolicyConformance(withPattern({ protectedFraction: 1 / 3 }), {
      shape: { ...shape, layerWindows: [null, 40, null] }, lengths: [57, 101], budgets: [0.5, 0.6, 0.7, 0.8, 0.9],
    });
  });

  it("refuses infeasible budgets and missing scores in one line saying what would do", () => {
    const { cache } = randomPrefill({ ...shape, length: 100, seed: 3 });
    const stats = { request: {}, layers: [] };
    expect(() => withPattern({ protectedFraction: 1 / 3 }).compress(cache, stats, kvBudget(0.3))).toThrow(
      new RazorkvError(
        "duo-attention: kvBudget 0.3 is below the protected share 0.3333 (2 of 6 KV heads keep their whole cache): infeasible for this selection; raise the budget or lower protectedFraction",
      ),
    );
    expect(() => withPattern({ protectedFraction: 1 / 3, sinks: 64 }).checkFeasible!(100, kvBudget(0.5))).toThrow(
      "duo-attention: kvBudget 0.5 leaves 25.00 entries per compressed head of a 100-token sequence, too few for 64 sinks + 1 recent token; the smallest feasible kvBudget here is 0.7634",
    );
    const unprepared = duo.create(defaults, { modelRef: "smollm2-135m-instruct" });
    expect(() => unprepared.compress(cache, stats, kvBudget(0.5))).toThrow(
      'duo-attention: no head scores were prepared for model "smollm2-135m-instruct"; `razorkv run` and `razorkv prepare --model <ref> --policy duo-attention` compute them, or pass params.patternFile',
    );
    const { cache: other } = randomPrefill({ ...shape, numLayers: 2, length: 50, seed: 1 });
    expect(() => withPattern({}).compress(other, stats, kvBudget(0.8))).toThrow(
      `duo-attention: ${join(patternDir, "full_attention_heads.tsv")} has 3 layers × 2 KV heads, the model's cache 2 × 2`,
    );
  });
});

describe("the preparation step", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-duo-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const definition = duo as unknown as PolicyDefinition;

  /** A 3-layer stand-in whose every head sees planted pre-RoPE vectors: layer l's query head h has mean (h − l, 1). */
  const planted = (digest = "digest-1") => {
    let prefills = 0;
    const model = stubModel({
      ...shape, headDim: 2, digest,
      prefill(tokens, observers) {
        prefills++;
        const n = tokens.length;
        // every key (1, 0.5) before RoPE
        const cache = cacheOf(Float32Array.from({ length: n * 2 * 2 }, (_, i) => (i % 2 === 0 ? 1 : 0.5)), n, 2, 3);
        for (const head of cache.heads) quarterTurns(head.keys.subarray(0, n * 2), 1, range(0, n));
        for (let l = 0; l < 3; l++) {
          const queries = new Float32Array(n * 4 * 2);
          for (let t = 0; t < n; t++) for (let h = 0; h < 4; h++) queries.set([h - l, 1], (t * 4 + h) * 2);
          quarterTurns(queries, 4, range(0, n));
          for (const o of observers) o.observe({ layer: l, numHeads: 4, cache, queries, queryPositions: range(0, n), scale: 1 });
        }
      },
    });
    return Object.assign(model, { prefills: () => prefills });
  };

  it("on the fly: inputs are the scoring settings only; every protected share, window and mode reuses the artefact", () => {
    const model = planted();
    expect(definition.prepare!.inputs(p(), model)).toEqual({ source: "on-the-fly", samples: 16, sampleTokens: 512, queryLength: 500, seed: 42 });
    const first = prepare(definition, p({ samples: 2, sampleTokens: 5, queryLength: 4 }), model, { cacheDir: dir })!;
    expect(first.fromCache).toBe(false);
    expect(model.prefills()).toBe(2);
    const a = first.artefact as DuoHeadScores;
    // query head h of layer l: q = (h − l, 1), k = (1, 0.5), by the hand computation's route (onTheFlyScores)
    const k = Float32Array.of(1, 0.5, 1, 0.5);
    for (let l = 0; l < 3; l++) {
      const expected = onTheFlyScores(Float32Array.from([0, 1, 2, 3].flatMap((h) => [h - l, 1])), k, 4, 2, 2, 4, 1, quarterTurns);
      for (let h = 0; h < 4; h++) expect(a.scores[l][h]).toBeCloseTo(expected[h], 5);
    }
    const again = prepare(definition, p({ samples: 2, sampleTokens: 5, queryLength: 4, protectedFraction: 0.25, sinks: 0, mode: "paper" }), model, { cacheDir: dir })!;
    expect(again.fromCache).toBe(true);
    expect(model.prefills()).toBe(2);
    expect(prepare(definition, p({ samples: 2, sampleTokens: 5, queryLength: 4, seed: 7 }), model, { cacheDir: dir })!.fromCache).toBe(false);
    expect(() => definition.prepare!.inputs(p({ sampleTokens: 9000 }), model)).toThrow(
      "duo-attention: params.sampleTokens: expected at most the model's context of 8192 tokens, got 9000",
    );

    const selection = parseHeadSelection(JSON.parse(JSON.stringify(definition.prepare!.headSelection!(a, p({ protectedFraction: 0.5 })))), "selection");
    expect(selection.scores[0]).toMatchObject({ kind: "on-the-fly score", per: "query-head", groupReduce: "mean" });
    const kvScores = [0, 1, 2].flatMap((l) => [0, 1].map((kv) => kvHeadScore(selection, selection.scores[0], l, kv)));
    const top3 = kvScores.map((_, i) => i).sort((x, y) => kvScores[y] - kvScores[x] || x - y).slice(0, 3).sort((x, y) => x - y);
    expect(selection.protected).toEqual(top3.map((i) => ({ layer: Math.floor(i / 2), kvHead: i % 2 })));
    expect(selection.rule).toBe("top 50% of KV heads by on-the-fly score");
    // the policy keeps exactly those heads whole
    const { cache } = randomPrefill({ ...shape, length: 60, seed: 2 });
    const out = duo.create(p({ protectedFraction: 0.5, sinks: 4 }), { prepared: a }).compress(cache, { request: {}, layers: [] }, kvBudget(0.7));
    expect(out.heads.map((h, i) => (h.length === 60 ? i : -1)).filter((i) => i >= 0)).toEqual(top3);
  });

  it("from a pattern file: the gates are the inputs (an edited file is another artefact), no model run", () => {
    const model = planted();
    const first = prepare(definition, p({ patternFile: patternDir }), model, { cacheDir: dir })!;
    expect(model.prefills()).toBe(0);
    expect(first.artefact).toMatchObject({ source: "pattern", per: "kv-head", scores: [[0.984375, 0], [0.25, 1], [1, 0.625]] });
    const edited = join(dir, "edited.tsv");
    writeFileSync(edited, "0.5\t0.5\n0.5\t0.5\n0.5\t0.25\n");
    expect(prepare(definition, p({ patternFile: edited }), model, { cacheDir: dir })!.plan.path).not.toBe(first.plan.path);
    const selection = definition.prepare!.headSelection!(first.artefact, p({ patternFile: patternDir, protectedFraction: 1 / 3 }));
    expect(parseHeadSelection(selection, "s").protected).toEqual([{ layer: 1, kvHead: 1 }, { layer: 2, kvHead: 0 }]);
    expect(selection.scores[0]).toMatchObject({ kind: "gate", per: "kv-head" });
    const wrong = { ...model, shape: { ...model.shape, numKvHeads: 3, numHeads: 6 } };
    expect(() => definition.prepare!.inputs(p({ patternFile: patternDir }), wrong)).toThrow(
      `duo-attention: ${join(patternDir, "full_attention_heads.tsv")}: expected 3 layers × 3 KV heads of gates for this model, found 3 × 2`,
    );
  });
});

// ---- stand-ins ----

interface StubSpec {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  digest?: string;
  prefill(tokens: ArrayLike<number>, observers: readonly AttentionObserver[]): void;
}

/** A PreparationModel whose prefill hands planted views to the observers, and whose RoPE is `quarterTurns`. */
function stubModel(spec: StubSpec): PreparationModel {
  return {
    ref: "stub",
    digest: spec.digest ?? "digest",
    shape: { ...spec, vocabSize: 100, maxContext: 8192, layerWindows: Array.from({ length: spec.numLayers }, () => null), attentionScale: 1 },
    tokenizer: {
      vocabSize: 100, bosId: null, eosId: null,
      encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0) % 100),
      decode: () => "", applyChatTemplate: () => "", isEndOfGeneration: () => false,
    },
    rotary: { rotate: (_layer, v, heads, positions, inverse) => quarterTurns(v, heads, positions, inverse) },
    prefill(tokens, options = {}) {
      spec.prefill(tokens, options.observers ?? []);
      return { stats: [], logits: new Float32Array(0), sequence: {} as never };
    },
  };
}

/** A cache of `numLayers` layers whose every layer holds `keys` ([n × numKvHeads × 2]) at positions 0 … n − 1. */
function cacheOf(keys: Float32Array, n: number, numKvHeads = 1, numLayers = 1): KvCache {
  const { cache } = randomPrefill({ numLayers, numHeads: numKvHeads, numKvHeads, headDim: 2, length: n, seed: 1 });
  for (let l = 0; l < numLayers; l++) {
    for (let kv = 0; kv < numKvHeads; kv++) {
      const head = cache.head(l, kv);
      for (let t = 0; t < n; t++) head.keys.set(keys.subarray((t * numKvHeads + kv) * 2, (t * numKvHeads + kv) * 2 + 2), t * 2);
    }
  }
  return cache;
}
