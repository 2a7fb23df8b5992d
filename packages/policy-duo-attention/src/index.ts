/**
 * DuoAttention (Xiao, Tang, Zuo, Guo, Yang, Tang, Fu, Han 2024, "DuoAttention: Efficient Long-Context LLM Inference
 * with Retrieval and Streaming Heads", arXiv 2410.10819). Only some KV heads — retrieval heads — need the whole
 * context; the others — streaming heads — attend to the attention sinks and the recent tokens, so they keep a
 * constant-size cache (§3). The paper learns a gate α per KV head by distillation on synthetic passkey data (§3.2) and
 * deploys the heads above a quantile of α as retrieval heads (§3.3).
 *
 * Here the split comes from one score per head: DuoAttention's published gates when `patternFile` is given
 * (pattern.ts), otherwise scores computed without training in the preparation step exactly as kvpress's
 * DuoAttentionPress does when it has no pattern for the model (scores.ts). The top `protectedFraction` of KV heads by
 * score keep everything; every other KV head keeps `sinks` initial tokens and a recent window, no compensation slot
 * (DuoAttention drops the middle span). The layout is core's protected-heads layout (protectedHeadsPolicy), shared with
 * RazorAttention and the other head-selecting methods, so at one budget they differ in the selection alone.
 *
 * Budget. `mode: "budget"` (sweeps): the recent window meets the sweep's kvBudget,
 *   p·N + (1 − p)·(sinks + window) = kvBudget·N   (p the protected share of KV heads),
 * solved in whole tokens (within half an entry per streaming head). `mode: "paper"`: the paper's and kvpress's fixed
 * sizes (sinks + `recent`); the policy then realizes p + (1 − p)·min(1, (sinks + recent)/N) whatever the sweep asks,
 * which is 1 − kvpress's reported compression ratio (streaming share × (1 − (sink + recent)/N)), and reports it as
 * the row's nominal budget.
 */
import {
  definePolicy, param, protectedHeadsPolicy, RazorkvError, type CompressionPolicy, type ParamsOf, type PolicyContext,
  type PreparationStep,
} from "@razorkv/core";
import { checkPatternShape, readPattern, type DuoPattern } from "./pattern.js";
import { scoreOnTheFly, type OnTheFlySettings } from "./scores.js";
import { headSelectionOf, kvHeadScores, parseDuoHeadScores, selectRetrievalHeads, type DuoHeadScores } from "./selection.js";

export * from "./pattern.js";
export * from "./scores.js";
export * from "./selection.js";
export { prose } from "./text.js";

export const params = {
  patternFile: param.custom<DuoPattern | null>({
    default: null,
    doc:
      "A DuoAttention head pattern: its directory (attn_patterns/<model>/<run>/ of github.com/mit-han-lab/duo-attention) or its " +
      "full_attention_heads.tsv (layers × KV heads of learned gates, clipped to [0, 1] as the authors and kvpress load it). " +
      "Absent (null): scores computed without training by the preparation step, as kvpress does for models without a pattern.",
    parse: (value) => {
      if (value === null) return null;
      if (typeof value === "string" && value !== "") return readPattern(value);
      throw new Error(`expected a pattern directory or full_attention_heads.tsv path, or null, got ${JSON.stringify(value)}`);
    },
  }),
  protectedFraction: param.number({
    default: 0.5,
    min: 0,
    max: 1,
    doc:
      "Share of KV heads kept whole as retrieval heads (1 − kvpress's head_compression_ratio, 1 − the authors' sparsity). " +
      "Paper: 50% for GQA models (Llama-3-8B), 25% for MHA (Llama-2-7B) — scripts/run_niah.sh; SmolLM2 is GQA.",
  }),
  sinks: param.integer({
    default: 64,
    min: 0,
    doc: "Initial tokens every streaming head keeps (attention sinks). The authors deploy 64 (scripts/niah.sh, longbench.sh); kvpress 128.",
  }),
  recent: param.integer({
    default: 256,
    min: 1,
    doc: 'Recent window of a streaming head in mode "paper". The authors and kvpress: 256. In mode "budget" the window is solved from the budget instead.',
  }),
  mode: param.choice({
    choices: ["budget", "paper"],
    default: "budget",
    doc:
      "budget: the recent window meets the sweep's kvBudget (equal memory for every method). paper: fixed sinks + recent, as DuoAttention and " +
      "kvpress deploy it; the realized budget is recorded as the row's nominal.",
  }),
  samples: param.integer({
    default: 16,
    min: 1,
    doc: "On-the-fly scoring: texts the scores are averaged over. kvpress: 50 BookSum chapters; 16 generated texts of 512 tokens took 100 s for SmolLM2-135M on two busy CPU cores.",
  }),
  sampleTokens: param.integer({
    default: 512,
    min: 2,
    doc: "On-the-fly scoring: tokens per text over which the mean query and key are taken. kvpress: the whole chapter (thousands of tokens).",
  }),
  queryLength: param.integer({
    default: 500,
    min: 1,
    doc: "On-the-fly scoring: q_len, the positions the mean key is placed at (and the query at the last). kvpress: 500.",
  }),
  seed: param.integer({
    default: 42,
    min: 0,
    doc: "On-the-fly scoring: seed of the generated texts (text i uses seed + i). kvpress samples BookSum with random_state 42.",
  }),
};
export type DuoAttentionParams = ParamsOf<typeof params>;

const NAME = "duo-attention";

/** The on-the-fly inputs of `p` (what the scores depend on besides the model file). */
function onTheFlySettings(p: DuoAttentionParams): OnTheFlySettings {
  return { samples: p.samples, sampleTokens: p.sampleTokens, queryLength: p.queryLength, seed: p.seed };
}

/**
 * The preparation step: the head scores of the model, from the pattern file or on the fly. Inputs hold what the scores
 * depend on — the gates (so an edited file is another artefact) or the on-the-fly settings — and nothing about how the
 * policy uses them: every protected fraction, window and mode reuses one artefact.
 */
export const headScoreStep: PreparationStep<typeof params, DuoHeadScores> = {
  description: "DuoAttention head scores: the pattern file's gates, or kvpress's on-the-fly scores (mean query and key before RoPE over generated texts)",
  version: 1,
  inputs(p, model) {
    if (p.patternFile) {
      checkPatternShape(p.patternFile, model.shape.numLayers, model.shape.numKvHeads, NAME);
      return { source: "pattern", file: p.patternFile.source, gates: p.patternFile.gates };
    }
    if (p.sampleTokens > model.shape.maxContext) {
      throw new RazorkvError(`${NAME}: params.sampleTokens: expected at most the model's context of ${model.shape.maxContext} tokens, got ${p.sampleTokens}`);
    }
    return { source: "on-the-fly", ...onTheFlySettings(p) };
  },
  run(model, inputs, log) {
    const { numLayers, numHeads, numKvHeads } = model.shape;
    const shape = { model: model.ref, numLayers, numHeads, numKvHeads };
    if (inputs.source === "pattern") {
      return { ...shape, source: "pattern", per: "kv-head", scores: inputs.gates as number[][], settings: { source: "pattern", file: inputs.file } };
    }
    return { ...shape, source: "on-the-fly", per: "query-head", scores: scoreOnTheFly(model, inputs as unknown as OnTheFlySettings, log), settings: inputs };
  },
  parse: parseDuoHeadScores,
  headSelection: (artefact, p) => headSelectionOf(artefact, p),
};

export function createDuoAttention(p: DuoAttentionParams, context: PolicyContext = {}): CompressionPolicy {
  const prepared = context.prepared as DuoHeadScores | undefined;
  // without a prepared artefact (a parameter check before any model is loaded, a direct call) a pattern file still
  // gives the scores; on-the-fly scores need the model, so compress refuses until they are prepared
  const scores = prepared ? kvHeadScores(prepared) : p.patternFile ? p.patternFile.gates : null;
  const source = prepared ? `the head scores prepared for "${prepared.model}"` : p.patternFile ? p.patternFile.source : "";
  let heads: Set<number> | null = null;
  return protectedHeadsPolicy({
    policy: NAME,
    protectedParams: "protectedFraction",
    sinks: p.sinks,
    compensation: false,
    protectedHeads(layout) {
      if (!scores) {
        throw new RazorkvError(
          `${NAME}: no head scores were prepared for ${context.modelRef ? `model "${context.modelRef}"` : "this model"}; ` +
            "`razorkv run` and `razorkv prepare --model <ref> --policy duo-attention` compute them, or pass params.patternFile",
        );
      }
      const L = scores.length;
      const K = scores[0].length;
      if (layout && (layout.numLayers !== L || layout.numKvHeads !== K)) {
        throw new RazorkvError(`${NAME}: ${source} has ${L} layers × ${K} KV heads, the model's cache ${layout.numLayers} × ${layout.numKvHeads}`);
      }
      heads ??= new Set(selectRetrievalHeads(scores, p.protectedFraction).map((r) => r.layer * K + r.kvHead));
      return { heads, totalHeads: L * K };
    },
    ...(p.mode === "paper" ? { fixedWindow: () => p.recent } : {}),
  });
}

export default definePolicy({
  name: NAME,
  description: "DuoAttention (arXiv 2410.10819): retrieval heads keep the whole cache, streaming heads sinks + a recent window",
  params,
  create: createDuoAttention,
  prepare: headScoreStep,
});
