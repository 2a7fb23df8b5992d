/**
 * HeadKV-R2 (Fu, Cai, Asi, Xiong, Dong, Xiao 2024, "Not All Heads Matter: A Head-Level KV Cache Compression Method
 * with Integrated Retrieval and Reasoning", arXiv 2410.19258). Heads differ in how much of the context they need, so
 * the KV budget is split between heads by importance instead of evenly: each head's importance is its
 * retrieval-reasoning score (§3.1, r2.ts), measured once per model on prompts that need both retrieving a fact and
 * reasoning about it (prompts.ts); each head keeps a fixed part of the base budget and shares a pool in proportion to
 * its score (§3.2, allocation.ts); inside a head, what it keeps is SnapKV's choice (§3.3): the last `window` prompt
 * tokens, and the earlier keys their attention weights most, pooled along positions.
 *
 * Budget: the base B is what uniform SnapKV keeps beyond the window at the same kvBudget (core's `entriesToKeep`), so
 * the heads together hold exactly the nominal budget; GQA: a KV head's share is the sum of its query heads' shares
 * (the authors allocate per query head over repeated KV heads).
 */
import {
  aggregateGroup, checkHeadCounts, definePolicy, entriesToKeep, entriesToKeepOf, gqaAggregationParam, HEAD_SELECTION_FORMAT, keepRecentAndTop, layerStat, param,
  RazorkvError, requireWindow, selectPerHead, type CacheLayout, type CompressionPolicy, type GqaAggregation, type HeadSelection, type ParamsOf,
  type PolicyContext, type PreparationStep, pool1d } from "@razorkv/core";
import { allocateHeadBudgets, scoreShares } from "./allocation.js";
import type { R2Settings } from "./prompts.js";
import { scoreRetrievalReasoning, type R2Sample } from "./r2.js";

export * from "./allocation.js";
export * from "./f1.js";
export * from "./prompts.js";
export * from "./r2.js";

export const params = {
  window: param.integer({
    default: 8,
    min: 1,
    doc: "SnapKV observation window inside each head: the last prompt tokens, always kept, whose attention scores the rest. HeadKV's code: 8 (run_longbench.py).",
  }),
  kernelSize: param.integer({
    default: 7,
    min: 1,
    check: (k) => (k % 2 === 1 ? null : "expected an odd kernel (same padding centres it on each position)"),
    doc: "Pooling kernel along positions, same padding (SnapKV §4.2). HeadKV's code: 7.",
  }),
  pooling: param.choice({
    choices: ["max", "avg"],
    default: "max",
    doc: "max (HeadKV's code, maxpool) or avg (zero padding counted in the mean, as PyTorch's avg_pool1d).",
  }),
  gqaAggregation: gqaAggregationParam,
  beta: param.number({
    default: 1.5,
    min: 1,
    doc:
      "β: each head keeps B − ⌊B/β⌋ of the base budget B and the rest, ⌊B/β⌋ per head, is pooled and shared by score (§3.2). β → 1: all by score; " +
      "large β: uniform SnapKV. HeadKV's code: 1.5 by default (run_longbench.py); the paper tunes β in {1.005, 1.01, 1.1, 1.2, 1.5, 2, 5, 10}.",
  }),
  temperature: param.number({
    default: 1,
    min: 0,
    doc: "Shares ∝ score^temperature (HeadKV's `temp`; 1 in every published run). 0: equal shares.",
  }),
  minAnswerF1: param.number({
    default: 0.5,
    min: 0,
    max: 1,
    doc: "A scoring prompt counts only when the answer's token F1 exceeds this (the authors: F1 × 100 > 50). 0 counts every prompt answered with any word right.",
  }),
  prompts: param.integer({
    default: 12,
    min: 1,
    doc: "Scoring prompts (alternately asking for the older and the younger one, needle at evenly spaced depths). The authors: 100 (5 lengths × 10 depths × 2 needles); 12 take minutes for a 135M model on two CPU cores (README.md).",
  }),
  contextTokens: param.integer({
    default: 500,
    min: 16,
    doc: "Haystack tokens per scoring prompt. The authors: 0 … 10 000 in 5 steps; 500 keep the step within minutes on a CPU.",
  }),
  seed: param.integer({
    default: 2410,
    min: 0,
    doc: "Seed of the scoring prompts (names, pastimes, ages, haystack).",
  }),
  maxNewTokens: param.integer({
    default: 32,
    min: 0,
    doc:
      "Most tokens decoded per scoring prompt (stopping earlier at a newline or the end of the turn). The authors stop after as many tokens as " +
      "the answer sentence has (0 here): Llama-3-8B-Instruct answers with the sentence itself, SmolLM2-135M-Instruct restates the question " +
      "first and would be cut off before the answer, so the default lets it finish.",
  }),
  chat: param.boolean({
    default: true,
    doc:
      "Wrap each scoring prompt in the model's chat template (one user turn). The authors complete a raw prompt (\"…Question: q\\nAnswer:\"); " +
      "SmolLM2-135M-Instruct ends its turn at once on that, so the default asks as a chat. false: the raw prompt.",
  }),
};
export type HeadKvParams = ParamsOf<typeof params>;

const NAME = "headkv";

/** The preparation artefact: the scored prompts of one model. */
export interface HeadKvScores {
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly settings: R2Settings;
  readonly samples: readonly R2Sample[];
}

/** Validates a parsed artefact; a RazorkvError names `source` and the field. */
export function parseHeadKvScores(value: unknown, source: string): HeadKvScores {
  const fail = (field: string, expected: string): never => {
    throw new RazorkvError(`${source}: ${field}: expected ${expected}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) fail("artefact", "a HeadKV score object");
  const v = value as Record<string, unknown>;
  if (typeof v.model !== "string") fail("model", "a string");
  const { numLayers: L, numHeads: H, numKvHeads: K } = checkHeadCounts(v, fail);
  if (!v.settings || typeof v.settings !== "object") fail("settings", "the scoring settings");
  if (!Array.isArray(v.samples)) fail("samples", "an array of scored prompts");
  (v.samples as unknown[]).forEach((s, i) => {
    const e = (s ?? {}) as Record<string, unknown>;
    if (typeof e.f1 !== "number" || !(e.f1 >= 0 && e.f1 <= 1)) fail(`samples[${i}].f1`, "a number in [0, 1]");
    if (typeof e.response !== "string" || typeof e.answer !== "string") fail(`samples[${i}]`, "response and answer strings");
    if (!Array.isArray(e.scores) || e.scores.length !== L) fail(`samples[${i}].scores`, `an array of ${L} layers`);
    (e.scores as unknown[]).forEach((row, l) => {
      if (!Array.isArray(row) || row.length !== H || row.some((x) => typeof x !== "number" || !Number.isFinite(x) || x < 0)) {
        fail(`samples[${i}].scores[${l}]`, `${H} non-negative numbers (one per query head)`);
      }
    });
  });
  return value as HeadKvScores;
}

/** The retrieval-reasoning score per [layer][query head]: the mean over the prompts answered with F1 > `minAnswerF1`. */
export function headImportance(a: HeadKvScores, minAnswerF1: number): { scores: number[][]; counted: number } {
  const counted = a.samples.filter((s) => s.f1 > minAnswerF1);
  const scores = Array.from({ length: a.numLayers }, (_, l) =>
    Array.from({ length: a.numHeads }, (_, h) => (counted.length === 0 ? 0 : counted.reduce((sum, s) => sum + s.scores[l][h], 0) / counted.length)),
  );
  return { scores, counted: counted.length };
}

/** Per [layer][KV head], its share of the pool: the sum of its query heads' normalized shares (scoreShares). */
export function kvHeadShares(importance: readonly (readonly number[])[], numKvHeads: number, temperature: number): number[][] {
  const H = importance[0].length;
  const g = H / numKvHeads;
  const shares = scoreShares(importance.flat(), temperature);
  return importance.map((_, l) =>
    Array.from({ length: numKvHeads }, (_, kv) => shares.slice(l * H + kv * g, l * H + (kv + 1) * g).reduce((a, b) => a + b, 0)),
  );
}

/** SnapKV's pooling along positions, from core (one copy for every policy that pools). */
export { pool1d };

/**
 * SnapKV's score inside a head (SnapKV §4; HeadKV §3.3): of the `prefix` slots before the window, each query head's
 * summed window attention (`windowed`, one array per query head of the layer) pooled along positions, reduced over
 * KV head `kvHead`'s group. (The authors average over the window instead of summing: the same order.)
 */
export function snapScores(
  windowed: readonly ArrayLike<number>[], kvHead: number, numKvHeads: number, prefix: number,
  p: { kernelSize: number; pooling: "max" | "avg"; gqaAggregation: GqaAggregation },
): Float64Array {
  return aggregateGroup(windowed, kvHead, numKvHeads, p.gqaAggregation, (w) => pool1d(Array.prototype.slice.call(w, 0, prefix) as number[], p.kernelSize, p.pooling));
}

/**
 * Entries beyond the window each head keeps (index layer · numKvHeads + kvHead; 0 for heads the model holds at a
 * sliding window, which stay whole): the free heads share `base` each on average, allocated by `shares` [L][K]
 * (allocation.ts) and capped at the `capacity` before the window.
 */
export function headAllocation(shares: readonly (readonly number[])[], held: (head: number) => boolean, base: number, beta: number, capacity: number): number[] {
  const flat = shares.flat();
  const free = flat.map((_, i) => i).filter((i) => !held(i));
  const total = free.reduce((a, i) => a + flat[i], 0);
  const freeShares = free.map((i) => (total > 0 ? flat[i] / total : 1 / free.length));
  const budgets = allocateHeadBudgets(freeShares, base, beta, capacity);
  const out = new Array<number>(flat.length).fill(0);
  free.forEach((i, j) => (out[i] = budgets[j]));
  return out;
}

/** The preparation inputs of `p`: what the scores depend on besides the model file. */
function r2Settings(p: HeadKvParams): R2Settings {
  return { prompts: p.prompts, contextTokens: p.contextTokens, seed: p.seed, chat: p.chat, maxNewTokens: p.maxNewTokens };
}

/**
 * The preparation step: the retrieval-reasoning scores of every scoring prompt (r2.ts). Inputs are the prompt
 * settings; the F1 filter, β, temperature and the SnapKV settings only change how the policy uses the artefact.
 */
export const r2Step: PreparationStep<typeof params, HeadKvScores> = {
  description: "HeadKV-R2 head scores: greedy answers to retrieval-reasoning needle prompts, attention on the answer sentence per head and step",
  version: 1,
  inputs(p, model) {
    // needle, question and template take a hundred tokens or so, the answer maxNewTokens (the authors' at most 50)
    const room = 100 + (p.maxNewTokens || 50);
    if (p.contextTokens + room > model.shape.maxContext) {
      throw new RazorkvError(
        `${NAME}: params.contextTokens: expected at most ${model.shape.maxContext - room} (the model's context of ${model.shape.maxContext} less ${room} for needle, question and answer), got ${p.contextTokens}`,
      );
    }
    return { ...r2Settings(p) };
  },
  run(model, inputs, log) {
    const settings = inputs as unknown as R2Settings;
    const { numLayers, numHeads, numKvHeads } = model.shape;
    return { model: model.ref, numLayers, numHeads, numKvHeads, settings, samples: scoreRetrievalReasoning(model, settings, log) };
  },
  parse: parseHeadKvScores,
  headSelection: (a, p) => headSelectionOf(a, p),
};

/** The scores and budget shares as core's HeadSelection; outlined: the KV heads given more than the mean share. */
export function headSelectionOf(a: HeadKvScores, p: HeadKvParams): HeadSelection {
  const { scores, counted } = headImportance(a, p.minAnswerF1);
  const shares = kvHeadShares(scores, a.numKvHeads, p.temperature);
  const mean = 1 / (a.numLayers * a.numKvHeads);
  const above = shares.flatMap((row, layer) => row.map((s, kvHead) => ({ layer, kvHead, s }))).filter((x) => x.s > mean + 1e-12);
  const s = a.settings;
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: NAME,
    title: "HeadKV-R2 head budgets",
    description:
      `Retrieval-reasoning score (arXiv 2410.19258 §3.1) on ${s.prompts} generated needle prompts of ${s.contextTokens} haystack tokens` +
      `${s.chat ? " asked as a chat" : ""}: attention of each decoding step's top-k slots on the answer sentence, mean over the ${counted} prompts ` +
      `answered with F1 > ${p.minAnswerF1}. Every KV head keeps a SnapKV selection; its size is B − ⌊B/β⌋ plus its share of a pool of ⌊B/β⌋ per head ` +
      `(β = ${p.beta}), the share ∝ score${p.temperature === 1 ? "" : `^${p.temperature}`} summed over the KV head's query heads. Outlined: heads above the mean share.`,
    rule: `budget ∝ retrieval-reasoning score (β = ${p.beta}); outlined: above the mean share`,
    model: a.model,
    numLayers: a.numLayers,
    numHeads: a.numHeads,
    numKvHeads: a.numKvHeads,
    scores: [
      { kind: "retrieval-reasoning", description: "mean attention of the answer's decoding steps on the answer sentence (top-k slots)", per: "query-head", groupReduce: "mean", values: scores },
      { kind: "budget share", description: "share of the pooled budget the KV head receives", per: "kv-head", values: shares },
    ],
    protected: above.map(({ layer, kvHead }) => ({ layer, kvHead })),
    params: { ...s, beta: p.beta, temperature: p.temperature, minAnswerF1: p.minAnswerF1, countedPrompts: counted, window: p.window },
  };
}

const windowKept = (window: number) => `its ${window}-token observation window is always kept`;

export function createHeadKv(p: HeadKvParams, context: PolicyContext = {}): CompressionPolicy {
  const prepared = context.prepared as HeadKvScores | undefined;
  let shares: number[][] | null = null;
  /** The KV heads' pool shares for a cache of `layout`'s shape, or the refusal when there are none. */
  const sharesFor = (layout?: CacheLayout): number[][] => {
    if (!prepared) {
      throw new RazorkvError(
        `${NAME}: no retrieval-reasoning scores were prepared for ${context.modelRef ? `model "${context.modelRef}"` : "this model"}; ` +
          "`razorkv run` and `razorkv prepare --model <ref> --policy headkv` compute them",
      );
    }
    if (layout && (layout.numLayers !== prepared.numLayers || layout.numKvHeads !== prepared.numKvHeads)) {
      throw new RazorkvError(
        `${NAME}: the scores prepared for "${prepared.model}" have ${prepared.numLayers} layers × ${prepared.numKvHeads} KV heads, the model's cache ${layout.numLayers} × ${layout.numKvHeads}`,
      );
    }
    if (!shares) {
      const { scores, counted } = headImportance(prepared, p.minAnswerF1);
      if (counted === 0) {
        const best = Math.max(0, ...prepared.samples.map((s) => s.f1));
        throw new RazorkvError(
          `${NAME}: none of the ${prepared.samples.length} scoring prompts prepared for "${prepared.model}" was answered with F1 > ${p.minAnswerF1} ` +
            `(best ${best.toFixed(2)}), so no head has a retrieval-reasoning score; lower params.minAnswerF1 (0 counts every prompt) or raise params.prompts`,
        );
      }
      shares = kvHeadShares(scores, prepared.numKvHeads, p.temperature);
    }
    return shares;
  };
  return {
    name: NAME,
    statsRequest: { windowQueries: p.window },
    compress(fullCache, stats, budget) {
      const kvShares = sharesFor(fullCache);
      requireWindow(stats, p.window, NAME);
      const n = fullCache.nextPosition;
      const window = Math.min(p.window, n);
      const keep = entriesToKeep(fullCache, budget, NAME, window, windowKept(window));
      const extra = headAllocation(kvShares, (i) => fullCache.heldByWindow(i), keep - window, p.beta, n - window);
      const K = fullCache.numKvHeads;
      return selectPerHead(fullCache, (_head, layer, kv) => {
        const scores = snapScores(layerStat(stats, layer, "windowed", NAME), kv, K, n - window, p);
        return keepRecentAndTop(scores, extra[layer * K + kv] + window, window, n);
      });
    },
    checkFeasible(n, budget, layout) {
      sharesFor(layout);
      const window = Math.min(p.window, n);
      entriesToKeepOf(n, budget, NAME, window, windowKept(window), layout);
    },
  };
}

export default definePolicy({
  name: NAME,
  description: "HeadKV-R2 (arXiv 2410.19258): per-head budgets from retrieval-reasoning scores, SnapKV selection inside each head",
  params,
  create: createHeadKv,
  prepare: r2Step,
});
