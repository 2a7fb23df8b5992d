/**
 * RazorAttention (Tang et al. 2024, "RazorAttention: Efficient KV Cache Compression Through Retrieval Heads",
 * arXiv 2407.15891). A few heads — echo and induction heads, found once per model by calibration (calibration.ts) —
 * retrieve from anywhere in the context: they keep their whole cache. Every other KV head keeps N0 attention sinks
 * and a recent window, and folds what it drops into one compensation token (k̂, v̂) = the means of the dropped keys
 * and values, attended with logit q·k̂/√d + ln N_d (§3.3, eq. 4–5; DESIGN §3). Compression happens once, after
 * prefill; decoded tokens are appended and nothing more is evicted.
 *
 * Window (DESIGN §4). Paper mode: max(S0, N/C) (Algorithm 1). Budget mode, for sweeps: with p the protected share
 * of KV heads, the window that meets kvBudget from p·N + (1 − p)(N0 + window + 1) = kvBudget·N (the 1 is the
 * compensation slot), rounded to whole tokens. A budget below p cannot be met without protecting fewer heads,
 * which would be a different method: it is an error.
 *
 * Sliding-window layers (Mistral, Gemma; DESIGN §3): a head the model already holds at a window shorter than the
 * sequence is left as it is, protected or not, and counts at its W entries; the equation becomes
 * held + P_f·N + C_f·(N0 + window + 1) = kvBudget·full, over the heads that hold all N tokens (P_f protected, C_f
 * compressed) and full = Σ min(N, W) (core's `windowSplit`).
 *
 * The layout and its budget arithmetic are core's (protected-heads.ts), shared with every head-level method; this
 * package supplies the calibration and the selection.
 */
import {
  definePolicy, param, protectedHeadsPolicy, protectedHeadsWindow, RazorkvError, sinksAndWindow, type Budget, type CompressionPolicy,
  type HeadSplit, type ParamsOf, type PolicyContext, type PreparationStep,
} from "@razorkv/core";
import { calibrate, resolveCalibration, type CalibrationParams } from "./calibration.js";
import { headSelectionOf, parseProfile, readProfile, selectRetrievalHeads, type HeadProfile } from "./profile.js";

export * from "./calibration.js";
export * from "./profile.js";

export const params = {
  profile: param.custom<HeadProfile | "auto">({
    default: "auto",
    doc:
      'The head profile: "auto" (calibrated on the model being evaluated by the preparation step — `razorkv run` or ' +
      "`razorkv calibrate` — and cached per model file), a path to a profile JSON, or the profile object itself.",
    parse: (value) => {
      if (value === "auto") return "auto";
      if (typeof value === "string") return readProfile(value);
      if (value && typeof value === "object") return parseProfile(value, "profile");
      throw new Error(`expected "auto", a profile JSON path or a profile object, got ${JSON.stringify(value)}`);
    },
  }),
  calibration: param.custom<CalibrationInput>({
    default: {},
    doc:
      'The calibration input of profile "auto" (calibration.ts): { blockLength, repeats, seed, tokenRange }, each optional. ' +
      "Defaults: K = min(2500, ⌊(context − 1)/4⌋) (paper: 2500), 4 copies (paper), seed 2407, ids in [min(1000, V/4), min(V, 20000)).",
    parse: parseCalibrationInput,
  }),
  inductionFraction: param.number({
    default: 0.14,
    min: 0,
    max: 1,
    doc: "Share of all KV heads protected for the highest induction scores. Paper: 14% (§4.1); with echo ≈ 15% protected.",
  }),
  echoFraction: param.number({
    default: 0.01,
    min: 0,
    max: 1,
    doc: "Share protected for the highest echo scores. Paper: 1%; the ablation of §4.4 shows echo heads matter although few.",
  }),
  sinks: param.integer({
    default: 4,
    min: 0,
    doc: "N0, initial tokens every compressed head keeps: attention sinks (Xiao et al. 2023). Paper: 4.",
  }),
  compensation: param.boolean({
    default: true,
    doc: "Fold the dropped tokens into one compensation slot per compressed head (§3.3). Off: plain dropping, the paper's ablation (Fig. 6).",
  }),
  mode: param.choice({
    choices: ["budget", "paper"],
    default: "budget",
    doc: "budget: the window meets the sweep's kvBudget exactly. paper: window = max(S0, N/C) whatever the budget (Algorithm 1); the realized budget is recorded as nominal.",
  }),
  paperMinWindow: param.integer({
    default: 4000,
    min: 0,
    doc: "S0 of paper mode: the smallest window. The paper's long-context value is in the thousands; short contexts need a smaller one.",
  }),
  paperCompression: param.number({
    default: 5,
    min: 1,
    doc: "C of paper mode: a compressed head keeps N/C recent tokens. Paper: 5 (kept fraction ≈ p + (1 − p)/C ≈ 0.32).",
  }),
};
export type RazorParams = ParamsOf<typeof params>;

/** The part of the calibration settings a manifest may set: what the calibration prefill sees. */
export type CalibrationInput = Pick<CalibrationParams, "blockLength" | "repeats" | "seed" | "tokenRange">;

function parseCalibrationInput(value: unknown): CalibrationInput {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error(`expected an object { blockLength?, repeats?, seed?, tokenRange? }, got ${JSON.stringify(value)}`);
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).filter((k) => !["blockLength", "repeats", "seed", "tokenRange"].includes(k));
  if (unknown.length > 0) throw new Error(`unknown field "${unknown[0]}" (expected blockLength, repeats, seed, tokenRange)`);
  const integer = (k: string, min: number) => {
    if (v[k] !== undefined && (!Number.isInteger(v[k]) || (v[k] as number) < min)) throw new Error(`${k}: expected an integer ≥ ${min}, got ${JSON.stringify(v[k])}`);
  };
  integer("blockLength", 2);
  integer("repeats", 2);
  integer("seed", 0);
  const r = v.tokenRange;
  if (r !== undefined && (!Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isInteger(x) && x >= 0) || r[1] - r[0] < 2)) {
    throw new Error(`tokenRange: expected [first, end) with 0 ≤ first and end − first ≥ 2, got ${JSON.stringify(r)}`);
  }
  return v as CalibrationInput;
}

/**
 * Calibration as core's per-model preparation step (DESIGN §3–4): the artefact is the head profile of the model, with
 * the paper's selection (14% + 1%) in `retrieval`; each policy re-selects from its scores with its own fractions, so
 * an ablation of the protected share reuses the same calibration. Inputs: the resolved calibration settings (block
 * length from the model's context, BOS from its tokenizer), without the fractions.
 */
export const calibrationStep: PreparationStep<typeof params, HeadProfile> = {
  description: "RazorAttention head calibration: one full-attention prefill of BOS + K random tokens repeated 4 times, echo and induction score per head",
  version: 1,
  inputs(p, model) {
    if (p.profile !== "auto") return null;
    const s = resolveCalibration(model.shape, { ...p.calibration, bosId: model.tokenizer.bosId ?? null });
    return { blockLength: s.blockLength, repeats: s.repeats, seed: s.seed, tokenRange: [...s.tokenRange], bosId: s.bosId };
  },
  run(model, inputs) {
    return calibrate(model, model.ref, inputs as CalibrationParams);
  },
  parse: parseProfile,
  headSelection: (profile, p) => headSelectionOf(profile, p),
};

/** How errors name the policy and the parameters that set its protected share. */
const names = { policy: "razor", protectedParams: "inductionFraction/echoFraction" } as const;

/** The selection of a compressed head: the first `sinks` slots and the last `window` of `length` (core's `sinksAndWindow`). */
export const razorSlots = sinksAndWindow;

/**
 * Budget mode: solve p·N + (1 − p)(N0 + window + c) = kvBudget·N for the window (c = 1 with compensation), in whole
 * tokens; the realized budget then misses by at most half a token per compressed head. With `split` (a model with
 * sliding windows), held + P_f·N + C_f·(N0 + window + c) = kvBudget·full instead. Core's `protectedHeadsWindow`, with
 * RazorAttention's names in its errors.
 */
export function budgetWindow(
  kvBudget: number, n: number, totalHeads: number, protectedCount: number, p: Pick<RazorParams, "sinks" | "compensation">,
  budget?: Budget, split?: HeadSplit,
): number {
  return protectedHeadsWindow(kvBudget, n, totalHeads, protectedCount, { ...p, ...names }, budget, split);
}

export function createRazor(p: RazorParams, context: PolicyContext = {}): CompressionPolicy {
  const profile = p.profile === "auto" ? ((context.prepared as HeadProfile | undefined) ?? null) : p.profile;
  // "auto" without a prepared profile fails on use, not here: the runner checks every policy's params before it has
  // loaded (and calibrated) any model
  const getProfile = (): HeadProfile => {
    if (profile) return profile;
    throw new RazorkvError(
      `razor: params.profile is "auto" but no head profile was prepared for ${context.modelRef ? `model "${context.modelRef}"` : "this model"}; ` +
        "`razorkv run` and `razorkv calibrate --model <ref>` calibrate it, or pass params.profile (a profile JSON path)",
    );
  };
  // the layout: core's protected-heads cache layout (sinks + window + compensation slot off the protected heads)
  return protectedHeadsPolicy({
    ...names,
    sinks: p.sinks,
    compensation: p.compensation,
    protectedHeads(layout) {
      const prof = getProfile();
      if (layout && (prof.numLayers !== layout.numLayers || prof.numKvHeads !== layout.numKvHeads)) {
        throw new RazorkvError(
          `razor: the head profile of "${prof.model}" has ${prof.numLayers} layers × ${prof.numKvHeads} KV heads, the model's cache ` +
            `${layout.numLayers} × ${layout.numKvHeads}; calibrate this model`,
        );
      }
      const heads = new Set(selectRetrievalHeads(prof, p).map((r) => r.layer * prof.numKvHeads + r.kvHead));
      return { heads, totalHeads: prof.numLayers * prof.numKvHeads };
    },
    ...(p.mode === "paper"
      ? { fixedWindow: (n: number) => Math.min(n - p.sinks, Math.max(p.paperMinWindow, Math.round(n / p.paperCompression))) }
      : {}),
  });
}

export default definePolicy({
  name: "razor",
  description: "RazorAttention (arXiv 2407.15891): full cache on retrieval heads; sinks + window + compensation token elsewhere",
  params,
  create: createRazor,
  prepare: calibrationStep,
});
