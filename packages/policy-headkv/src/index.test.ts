import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkPolicyConformance, kvBudget, parseHeadSelection, parseParams, prepare, randomPrefill, RazorkvError, type KvCache, type PolicyDefinition,
  type PreparationModel, type PreparationTokenizer,
} from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import headkv, {
  addStepScores, allocateHeadBudgets, buildPrompt, createHeadKv, headAllocation, headImportance, kvHeadShares, params, qaF1, scoreRetrievalReasoning,
  scoreShares, type HeadKvParams, type HeadKvScores, type R2Sample, type R2Settings,
} from "./index.js";

const p = (raw: Record<string, unknown> = {}): HeadKvParams => parseParams(params, raw, "headkv");

describe("the answer filter (LongBench qa_f1_score)", () => {
  it("token F1 after lower-casing, dropping punctuation and articles, by hand", () => {
    // prediction: favourite pastime of older one between nora and felix is painting old bridges (13, "the" ×2 gone);
    // reference: felixs favourite pastime is painting old bridges (7); shared 6: P 6/13, R 6/7, F1 = 72/120
    expect(qaF1("The favourite pastime of the older one between Nora and Felix is painting old bridges.", "Felix's favourite pastime is painting old bridges.")).toBeCloseTo(0.6, 12);
    expect(qaF1("An apple, a PEAR!", "pear apple")).toBe(1);
    expect(qaF1("nothing here", "Felix's favourite pastime")).toBe(0);
    // a repeated word counts as often as the reference has it: P 1/3, R 1/1
    expect(qaF1("old old old", "old")).toBeCloseTo(0.5, 12);
  });
});

describe("the retrieval-reasoning score (HeadKV §3.1)", () => {
  it("adds a_t[i] / k for the top-k slots inside the answer span, ties to the earlier slot, by hand", () => {
    const scores = [[0, 0, 0]];
    const probabilities = [[
      [0.1, 0.2, 0.4, 0.3], // top 2: slots 2, 3, both in [2, 4): (0.4 + 0.3) / 2
      [0.5, 0.1, 0.3, 0.1], // top 2: slots 0, 2; only 2 in the span: 0.3 / 2
      [0.25, 0.25, 0.25, 0.25], // top 2 of a tie: slots 0, 1, outside
    ]];
    addStepScores(scores, probabilities, [2, 4], 1, () => [0, 1, 2, 3]);
    expect(scores[0][0]).toBeCloseTo(0.35, 12);
    expect(scores[0][1]).toBeCloseTo(0.15, 12);
    expect(scores[0][2]).toBe(0);
    // slots map to positions: a sliding-window layer's slot 0 holding position 12
    const windowed = [[0]];
    addStepScores(windowed, [[[0.6, 0.3, 0.1]]], [12, 14], 1, () => [12, 13, 14]);
    expect(windowed[0][0]).toBeCloseTo(0.45, 12);
  });
});

describe("HeadKV's budget allocation (§3.2)", () => {
  const shares = [0.4, 0.3, 0.2, 0.1];

  it("b_h = B − ⌊B/β⌋ + s_h·⌊B/β⌋·H, largest remainder to the exact total, by hand", () => {
    // B = 10, β = 2: pool 5 per head, own 5: 5 + 20·s = 13, 11, 9, 7
    expect(allocateHeadBudgets(shares, 10, 2, 50)).toEqual([13, 11, 9, 7]);
    // β = 1.5: pool ⌊6.67⌋ = 6, own 4: 4 + 24·s = 13.6, 11.2, 8.8, 6.4 → floors 13, 11, 8, 6 (38) + the two largest remainders (.8, .6)
    expect(allocateHeadBudgets(shares, 10, 1.5, 50)).toEqual([14, 11, 9, 6]);
    // β = 1: all by score, 40·s; β large: the pool is empty, uniform SnapKV
    expect(allocateHeadBudgets(shares, 10, 1, 50)).toEqual([16, 12, 8, 4]);
    expect(allocateHeadBudgets(shares, 10, 100, 50)).toEqual([10, 10, 10, 10]);
  });

  it("caps a head at what it can hold and gives the excess to the others by score, by hand", () => {
    // β = 2 wants 13 of head 0, which holds 12: its 1 goes 0.3 : 0.2 : 0.1 → 11.5, 9.33, 7.17 → 12, 12, 9, 7
    expect(allocateHeadBudgets(shares, 10, 2, 12)).toEqual([12, 12, 9, 7]);
    expect(allocateHeadBudgets([1, 0, 0, 0], 10, 1, 12)).toEqual([12, 10, 9, 9]);
  });

  it("shares: normalized, ^temperature, normalized again; a KV head the sum of its query heads'", () => {
    expect(scoreShares([3, 1], 2).map((x) => Number(x.toFixed(12)))).toEqual([0.9, 0.1]);
    expect(scoreShares([0, 0, 0, 0])).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(kvHeadShares([[0.3, 0.1, 0, 0.6]], 2, 1).map((r) => r.map((x) => Number(x.toFixed(12))))).toEqual([[0.4, 0.6]]);
  });

  it("heads a sliding window holds whole take no part; the others share their budget", () => {
    // 2 layers × 2 KV heads, layer 0 held: layer 1's heads share 2·10 by 0.2 : 0.1 renormalized (2/3, 1/3), β = 2
    expect(headAllocation([[0.4, 0.3], [0.2, 0.1]], (i) => i < 2, 10, 2, 30)).toEqual([0, 0, 12, 8]);
  });
});

/** A word-level tokenizer: every whitespace-separated word an id, decode joins with spaces. */
function wordTokenizer(): PreparationTokenizer & { words: string[] } {
  const words: string[] = ["<bos>"];
  const ids = new Map<string, number>();
  const id = (w: string) => {
    if (!ids.has(w)) {
      ids.set(w, words.length);
      words.push(w);
    }
    return ids.get(w)!;
  };
  return {
    words, vocabSize: 5000, bosId: 0, eosId: null,
    encode: (text, options) => [...(options?.addSpecialTokens ? [0] : []), ...text.split(/\s+/).filter((w) => w !== "").map(id)],
    decode: (list) => list.map((i) => words[i]).join(" "),
    applyChatTemplate: (messages) => `<user> ${messages[0].content} </user> <assistant>`,
    isEndOfGeneration: () => false,
  };
}

describe("the scoring prompts", () => {
  const settings = { prompts: 5, contextTokens: 120, seed: 3, chat: true, maxNewTokens: 0 };

  it("are deterministic, alternate older/younger, put the needle at depths 0 … 1 and locate the answer sentence exactly", () => {
    const tok = wordTokenizer();
    for (let i = 0; i < 5; i++) {
      const prompt = buildPrompt(tok, settings, i);
      expect(buildPrompt(tok, settings, i)).toEqual(prompt);
      const text = tok.decode(prompt.ids);
      expect(tok.decode(prompt.ids.slice(...prompt.span))).toBe(prompt.answer);
      expect(prompt.depth).toBe(i / 4);
      expect(prompt.question).toContain(i % 2 === 0 ? "older one" : "younger one");
      // the answer is the asked person's fact
      const ages = new Map([...text.matchAll(/(\w+) is (\d+) years old\./g)].map((m) => [m[1], Number(m[2])]));
      expect(ages.size).toBe(2);
      const [name] = prompt.answer.split("'s");
      const other = [...ages.keys()].find((n) => n !== name)!;
      expect(ages.get(name)! > ages.get(other)!).toBe(i % 2 === 0);
      expect(text.startsWith("<bos> <user>")).toBe(true);
      expect(text.endsWith(`Question: ${prompt.question} </user> <assistant>`)).toBe(true);
      expect(prompt.ids.length).toBeGreaterThan(120);
    }
    // depth 0: the needle right after the template's opening; depth 1: right before the question
    expect(buildPrompt(tok, settings, 0).span[0]).toBeLessThan(3 + 25);
    const last = buildPrompt(tok, settings, 4);
    expect(tok.decode(last.ids.slice(last.span[1])).indexOf("Based on the content")).toBeLessThan(200);
    expect(buildPrompt(tok, { ...settings, seed: 4 }, 0).ids).not.toEqual(buildPrompt(tok, settings, 0).ids);
    const raw = buildPrompt(tok, { ...settings, chat: false }, 1);
    expect(raw.ids[0]).toBe(0);
    expect(tok.decode(raw.ids).endsWith("Answer:")).toBe(true);
  });
});

/**
 * A PreparationModel over the word tokenizer that "answers" prompt j with the answer sentence when j is even and
 * with "I do not know" when odd; in every layer query head 0 puts half its attention evenly on the answer span
 * and the rest evenly elsewhere, the other heads everything on slot 0.
 */
function scriptedModel(settings: R2Settings, digest = "d1") {
  const tok = wordTokenizer();
  const shape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, vocabSize: 5000, maxContext: 4096, layerWindows: [null, null], attentionScale: 0.5 };
  let prefills = 0;
  const model: PreparationModel = {
    ref: "scripted", digest, shape, tokenizer: tok,
    prefill(tokens) {
      const j = prefills++;
      const prompt = buildPrompt(tok, settings, j);
      expect(Array.from(tokens)).toEqual(prompt.ids.slice(0, -1));
      const script = tok.encode(j % 2 === 0 ? prompt.answer : "I do not know");
      let length = tokens.length;
      let step = 0;
      return {
        stats: [], logits: new Float32Array(0),
        sequence: {
          get length() {
            return length;
          },
          positions: () => Int32Array.from({ length }, (_, i) => i),
          extend(next) {
            expect(next.length).toBe(1);
            length++;
            const [start, end] = prompt.span;
            const k = end - start;
            const head0 = Float32Array.from({ length }, (_, s) => (s >= start && s < end ? 0.5 / k : 0.5 / (length - k)));
            const sink = Float32Array.from({ length }, (_, s) => (s === 0 ? 1 : 0));
            const logits = new Float32Array(5000);
            logits[script[Math.min(step++, script.length - 1)]] = 1;
            return { stats: [0, 1].map(() => ({ accumulated: [head0, sink, sink, sink] })), logits };
          },
        },
      };
    },
  };
  return Object.assign(model, { prefills: () => prefills });
}

describe("the preparation step", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-headkv-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const definition = headkv as unknown as PolicyDefinition;
  const small = { prompts: 4, contextTokens: 60, seed: 3, chat: true, maxNewTokens: 0 };

  it("scores each prompt: head 0's half on the k answer slots over the answer's k steps gives 0.5 · k / k, by hand", () => {
    const model = scriptedModel(small);
    const samples = scoreRetrievalReasoning(model, small);
    expect(samples.map((s) => s.f1)).toEqual([1, 0, 1, 0]);
    for (const s of samples) {
      // float32 attention probabilities
      expect(s.scores).toEqual([[0.5, 0, 0, 0], [0.5, 0, 0, 0]].map((r) => r.map((x) => expect.closeTo(x, 6))));
    }
    expect(samples[0].response).toBe(samples[0].answer);
    // a fixed number of decoding steps (the default 32; here 10): 0.5 per step over the k answer slots, 10 steps: 5/k
    const tok = wordTokenizer();
    const fixed = scoreRetrievalReasoning(scriptedModel({ ...small, maxNewTokens: 10 }), { ...small, maxNewTokens: 10 });
    fixed.forEach((s, j) => {
      const k = tok.encode(buildPrompt(tok, small, j).answer).length;
      expect(s.scores[1][0]).toBeCloseTo(5 / k, 6);
    });
  });

  it("inputs are the prompt settings; the F1 filter, β, temperature and SnapKV settings reuse one artefact", () => {
    const model = scriptedModel(small);
    expect(definition.prepare!.inputs(p(), model)).toEqual({ prompts: 12, contextTokens: 500, seed: 2410, chat: true, maxNewTokens: 32 });
    const raw = { prompts: 4, contextTokens: 60, seed: 3, maxNewTokens: 0 };
    const first = prepare(definition, p(raw), model, { cacheDir: dir })!;
    expect([first.fromCache, model.prefills()]).toEqual([false, 4]);
    const again = prepare(definition, p({ ...raw, beta: 5, minAnswerF1: 0, temperature: 2, window: 4 }), model, { cacheDir: dir })!;
    expect([again.fromCache, model.prefills()]).toEqual([true, 4]);
    expect(() => definition.prepare!.inputs(p({ contextTokens: 4000 }), model)).toThrow(
      "headkv: params.contextTokens: expected at most 3964 (the model's context of 4096 less 132 for needle, question and answer), got 4000",
    );
    const selection = parseHeadSelection(JSON.parse(JSON.stringify(definition.prepare!.headSelection!(first.artefact, p(raw)))), "selection");
    expect(selection.scores.map((s) => s.kind)).toEqual(["retrieval-reasoning", "budget share"]);
    // query head 0 of each layer holds every score: KV head 0 of each layer gets half the pool
    expect(selection.scores[1].values).toEqual([[0.5, 0], [0.5, 0]]);
    expect(selection.protected).toEqual([{ layer: 0, kvHead: 0 }, { layer: 1, kvHead: 0 }]);
    expect(selection.params).toMatchObject({ countedPrompts: 2, beta: 1.5 });
  });
});

// ---- the policy ----

const shape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 };

/** An artefact whose importance gives the four KV heads the shares 0.4, 0.3, 0.2, 0.1. */
function planted(samples?: R2Sample[]): HeadKvScores {
  const scores = [[0.2, 0.2, 0.15, 0.15], [0.1, 0.1, 0.05, 0.05]];
  return {
    model: "planted", numLayers: 2, numHeads: 4, numKvHeads: 2, settings: { prompts: 1, contextTokens: 60, seed: 1, chat: true, maxNewTokens: 0 },
    samples: samples ?? [{ depth: 0, question: "q", answer: "a", response: "a", f1: 1, scores }],
  };
}

/** Brute force: explicit softmax of the window's queries, summed, max-pooled (kernel 7), group mean, plain sort. */
function referenceKept(cache: KvCache, queries: Float32Array[], extra: number[], window: number): number[][] {
  const { numKvHeads: K, headDim: d } = cache;
  const n = cache.nextPosition;
  const H = queries[0].length / (n * d);
  const g = H / K;
  const prefix = n - window;
  const out: number[][] = [];
  for (let l = 0; l < cache.numLayers; l++) {
    for (let kv = 0; kv < K; kv++) {
      const head = cache.head(l, kv);
      const pooled: number[][] = [];
      for (let h = kv * g; h < (kv + 1) * g; h++) {
        const sum = new Array<number>(n).fill(0);
        for (let i = prefix; i < n; i++) {
          const q = queries[l].subarray((i * H + h) * d, (i * H + h + 1) * d);
          const logits = Array.from({ length: i + 1 }, (_, j) => head.key(j).reduce((a, k, x) => a + k * q[x], 0) / Math.sqrt(d));
          const m = Math.max(...logits);
          const z = logits.reduce((a, x) => a + Math.exp(x - m), 0);
          logits.forEach((x, j) => (sum[j] += Math.exp(x - m) / z));
        }
        pooled.push(Array.from({ length: prefix }, (_, j) => Math.max(...sum.slice(Math.max(0, j - 3), Math.min(prefix, j + 4)))));
      }
      const score = (j: number) => pooled.reduce((a, s) => a + s[j], 0) / g;
      const top = Array.from({ length: prefix }, (_, j) => j).sort((a, b) => score(b) - score(a) || a - b).slice(0, extra[l * K + kv]);
      out.push([...top, ...Array.from({ length: window }, (_, i) => prefix + i)].sort((a, b) => a - b));
    }
  }
  return out;
}

describe("policy-headkv", () => {
  const stats8 = { windowQueries: 8 };

  it("keeps, per head, its allocated top SnapKV slots plus the window, by hand and by brute force", () => {
    // n = 60, kvBudget 0.3: 18 entries per head on average, B = 18 − 8 = 10; β = 2 gives 13, 11, 9, 7 beyond the window
    const { cache, stats, queries } = randomPrefill({ ...shape, length: 60, seed: 5, stats: stats8 });
    const out = createHeadKv(p({ beta: 2 }), { prepared: planted() }).compress(cache, stats, kvBudget(0.3));
    expect(out.heads.map((h) => h.length)).toEqual([21, 19, 17, 15]);
    expect(out.heads.map((h) => Array.from(h.positions.slice(0, h.length)))).toEqual(referenceKept(cache, queries, [13, 11, 9, 7], 8));
    expect(out.realizedBudget()).toBeCloseTo(0.3, 12);
  });

  it("realizes the nominal budget at 0.1…0.9 on several lengths, with and without sliding-window layers", () => {
    const all = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    const rows = checkPolicyConformance(createHeadKv(p(), { prepared: planted() }), { shape, lengths: [57, 101, 263], budgets: all });
    expect(rows.length).toBe(26); // all but 57 tokens at 0.1: 6 entries per head, fewer than the window
    // β = 1 (all by score: the 0.4 head is capped at its prefix) and β = 5
    for (const beta of [1, 5]) checkPolicyConformance(createHeadKv(p({ beta }), { prepared: planted() }), { shape, lengths: [57, 131], budgets: all });
    checkPolicyConformance(createHeadKv(p(), { prepared: planted() }), {
      shape: { ...shape, layerWindows: [40, null] }, lengths: [57, 101], budgets: [0.4, 0.5, 0.7, 0.9],
    });
  });

  it("refuses in one line: an infeasible budget, no prepared scores, no prompt answered, another model, bad params", () => {
    const { cache, stats } = randomPrefill({ ...shape, length: 60, seed: 5, stats: stats8 });
    expect(() => createHeadKv(p(), { prepared: planted() }).compress(cache, stats, kvBudget(0.1))).toThrow(
      new RazorkvError("headkv: kvBudget 0.1 keeps 6 of 60 entries per head, but headkv needs at least 8 (its 8-token observation window is always kept); the smallest feasible kvBudget is 0.1250"),
    );
    expect(() => headkv.create(p(), { modelRef: "smollm2-135m-instruct" }).checkFeasible!(60, kvBudget(0.5))).toThrow(
      'headkv: no retrieval-reasoning scores were prepared for model "smollm2-135m-instruct"; `razorkv run` and `razorkv prepare --model <ref> --policy headkv` compute them',
    );
    const unanswered = planted([{ ...planted().samples[0], f1: 0.4 }, { ...planted().samples[0], f1: 0.25 }]);
    expect(() => createHeadKv(p(), { prepared: unanswered }).compress(cache, stats, kvBudget(0.5))).toThrow(
      'headkv: none of the 2 scoring prompts prepared for "planted" was answered with F1 > 0.5 (best 0.40), so no head has a retrieval-reasoning score; lower params.minAnswerF1 (0 counts every prompt) or raise params.prompts',
    );
    expect(() => createHeadKv(p({ minAnswerF1: 0.3 }), { prepared: unanswered }).compress(cache, stats, kvBudget(0.5))).not.toThrow();
    const { cache: other } = randomPrefill({ ...shape, numKvHeads: 1, length: 60, seed: 5 });
    expect(() => createHeadKv(p(), { prepared: planted() }).compress(other, stats, kvBudget(0.5))).toThrow(
      'headkv: the scores prepared for "planted" have 2 layers × 2 KV heads, the model\'s cache 2 × 1',
    );
    expect(() => createHeadKv(p(), { prepared: planted() }).compress(cache, { request: { windowQueries: 32 }, layers: stats.layers }, kvBudget(0.5))).toThrow(
      "headkv: needs attention of the last 8 queries, but the prefill collected a window of 32",
    );
    expect(() => p({ kernelSize: 4 })).toThrow(/params\.kernelSize: expected an odd kernel/);
    expect(() => p({ beta: 0.5 })).toThrow(/params\.beta/);
  });

  it("the importance is the mean over the prompts answered with F1 above the threshold", () => {
    const s = (f1: number, x: number): R2Sample => ({ depth: 0, question: "q", answer: "a", response: "r", f1, scores: [[x, 0, 0, 0], [0, 0, 0, x]] });
    const a = planted([s(0.6, 0.2), s(0.4, 5), s(0.9, 0.4)]);
    const { scores, counted } = headImportance(a, 0.5);
    expect(counted).toBe(2);
    expect(scores[0][0]).toBeCloseTo(0.3, 12);
    expect(scores[1][3]).toBeCloseTo(0.3, 12);
  });
});
