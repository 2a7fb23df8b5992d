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
 */
import {
  definePolicy, describeBudget, param, RazorkvError, requireFullCache, selectPerHead, toKvBudget, windowSplit, type Budget,
  type CacheLayout, type CompressionPolicy, type ParamsOf, type PolicyContext, type PreparationStep,
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

/** The selection of a compressed head: the first `sinks` slots and the last `window` of `length`. */
export function razorSlots(length: number, sinks: number, window: number): number[] {
  if (sinks + window >= length) return Array.from({ length }, (_, s) => s);
  return [...Array.from({ length: sinks }, (_, s) => s), ...Array.from({ length: window }, (_, i) => length - window + i)];
}

/** Entries a compressed head holds: sinks + window, plus the slot when anything was dropped and compensation is on. */
export function compressedHeadEntries(length: number, sinks: number, window: number, compensation: boolean): number {
  return sinks + window >= length ? length : sinks + window + (compensation ? 1 : 0);
}

/** A KvCache-independent description of what the policy does to a sequence of N tokens. */
export interface RazorPlan {
  readonly protectedHeads: ReadonlySet<number>;
  readonly totalHeads: number;
  readonly window: number;
}

/** How a sequence of n tokens splits the heads: held at their sliding window, protected, compressed (see file comment). */
export interface HeadSplit {
  /** Entries the uncompressed cache holds: Σ over heads of min(n, window). */
  readonly full: number;
  /** Entries of the heads held at a window shorter than n (left as the model holds them). */
  readonly held: number;
  /** Protected heads that hold all n tokens. */
  readonly protectedFree: number;
  /** Heads compressed to sinks + window (+ slot). */
  readonly compressed: number;
}

/** The split for a plan's protected set (indexes layer·numKvHeads + kvHead) over `layout`'s sliding windows. */
export function headSplit(n: number, layout: CacheLayout, protectedHeads: ReadonlySet<number>): HeadSplit {
  const { full, held } = windowSplit(n, layout);
  let protectedFree = 0;
  let compressed = 0;
  for (let l = 0; l < layout.numLayers; l++) {
    const w = layout.layerWindows?.[l] ?? null;
    if (w !== null && w < n) continue;
    for (let kv = 0; kv < layout.numKvHeads; kv++) {
      if (protectedHeads.has(l * layout.numKvHeads + kv)) protectedFree++;
      else compressed++;
    }
  }
  return { full, held, protectedFree, compressed };
}

/**
 * Budget mode: solve p·N + (1 − p)(N0 + window + c) = kvBudget·N for the window (c = 1 with compensation), in whole
 * tokens; the realized budget then misses by at most half a token per compressed head. With `split` (a model with
 * sliding windows), held + P_f·N + C_f·(N0 + window + c) = kvBudget·full instead.
 */
export function budgetWindow(
  kvBudget: number, n: number, totalHeads: number, protectedCount: number, p: Pick<RazorParams, "sinks" | "compensation">,
  budget?: Budget, split?: HeadSplit,
): number {
  const label = budget ? describeBudget(budget) : `kvBudget ${kvBudget}`;
  const c = p.compensation ? 1 : 0;
  if (split && split.held > 0) return windowedBudgetWindow(kvBudget, n, split, p, label);
  const share = protectedCount / totalHeads;
  if (protectedCount === totalHeads) {
    if (kvBudget < 1) throw new RazorkvError(`razor: ${label} is infeasible: all ${totalHeads} KV heads are protected (full cache, kvBudget 1)`);
    return n;
  }
  if (kvBudget < share) {
    throw new RazorkvError(
      `razor: ${label} is below the protected share ${share.toFixed(4)} (${protectedCount} of ${totalHeads} KV heads keep their whole cache): ` +
        `infeasible for this selection; raise the budget or lower inductionFraction/echoFraction`,
    );
  }
  const perHead = (kvBudget * totalHeads * n - protectedCount * n) / (totalHeads - protectedCount);
  const window = Math.round(perHead - p.sinks - c);
  if (window < 1) {
    const least = (protectedCount * n + (totalHeads - protectedCount) * (p.sinks + c + 0.5)) / (totalHeads * n);
    throw new RazorkvError(
      `razor: ${label} leaves ${perHead.toFixed(2)} entries per compressed head of a ${n}-token sequence, too few for ${p.sinks} sinks` +
        `${c ? " + the compensation slot" : ""} + 1 recent token; ` +
        (least <= 1 ? `the smallest feasible kvBudget here is ${(Math.ceil(least * 1e4 - 1e-9) / 1e4).toFixed(4)}` : "no budget below 1 is feasible here"),
    );
  }
  return Math.min(window, n - p.sinks);
}

/** budgetWindow when sliding-window layers hold part of the cache at their window (split.held > 0). */
function windowedBudgetWindow(kvBudget: number, n: number, split: HeadSplit, p: Pick<RazorParams, "sinks" | "compensation">, label: string): number {
  const { full, held, protectedFree, compressed } = split;
  const c = p.compensation ? 1 : 0;
  const fixed = held + protectedFree * n;
  const heads = `${protectedFree} protected heads keep ${n} entries each and the sliding-window layers hold ${held}: ${fixed} of ${full} entries`;
  if (compressed === 0) {
    if (kvBudget * full < full - 1e-9) throw new RazorkvError(`razor: ${label} is infeasible: ${heads}, nothing is left to compress (kvBudget 1 only)`);
    return n;
  }
  if (kvBudget * full < fixed) {
    throw new RazorkvError(
      `razor: ${label} is below what the protected heads and the sliding-window layers hold (${heads}, kvBudget ${(fixed / full).toFixed(4)}): ` +
        `infeasible for this selection; raise the budget or lower inductionFraction/echoFraction`,
    );
  }
  const perHead = (kvBudget * full - fixed) / compressed;
  const window = Math.round(perHead - p.sinks - c);
  if (window < 1) {
    const least = (fixed + compressed * (p.sinks + c + 0.5)) / full;
    throw new RazorkvError(
      `razor: ${label} leaves ${perHead.toFixed(2)} entries per compressed head of a ${n}-token sequence once ${heads}, too few for ${p.sinks} sinks` +
        `${c ? " + the compensation slot" : ""} + 1 recent token; ` +
        (least <= 1 ? `the smallest feasible kvBudget here is ${(Math.ceil(least * 1e4 - 1e-9) / 1e4).toFixed(4)}` : "no budget below 1 is feasible here"),
    );
  }
  return Math.min(window, n - p.sinks);
}

export function createRazor(p: RazorParams, context: PolicyContext = {}): CompressionPolicy {
  const name = "razor";
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
  const plan = (n: number, budget: Budget, layout?: CacheLayout): RazorPlan & { split?: HeadSplit } => {
    const prof = getProfile();
    const totalHeads = prof.numLayers * prof.numKvHeads;
    const protectedHeads = new Set(selectRetrievalHeads(prof, p).map((r) => r.layer * prof.numKvHeads + r.kvHead));
    const split = layout ? headSplit(n, layout, protectedHeads) : undefined;
    const window =
      p.mode === "paper"
        ? Math.min(n - p.sinks, Math.max(p.paperMinWindow, Math.round(n / p.paperCompression)))
        : budgetWindow(toKvBudget(budget, n), n, totalHeads, protectedHeads.size, p, budget, split);
    return { protectedHeads, totalHeads, window: Math.max(0, window), split };
  };
  return {
    name,
    statsRequest: {},
    compress(fullCache, _stats, budget) {
      const n = requireFullCache(fullCache, name);
      const prof = getProfile();
      if (prof.numLayers !== fullCache.numLayers || prof.numKvHeads !== fullCache.numKvHeads) {
        throw new RazorkvError(
          `razor: the head profile of "${prof.model}" has ${prof.numLayers} layers × ${prof.numKvHeads} KV heads, the model's cache ` +
            `${fullCache.numLayers} × ${fullCache.numKvHeads}; calibrate this model`,
        );
      }
      const { protectedHeads, window } = plan(n, budget, fullCache);
      // heads held at their sliding window are left whole by selectPerHead, protected or not
      return selectPerHead(
        fullCache,
        (head, layer, kv) =>
          protectedHeads.has(layer * fullCache.numKvHeads + kv) ? razorSlots(head.length, head.length, 0) : razorSlots(head.length, p.sinks, window),
        { compensation: p.compensation },
      );
    },
    checkFeasible(n, budget, layout) {
      plan(n, budget, layout);
    },
    nominalBudget(n, budget, layout) {
      if (p.mode === "budget") return toKvBudget(budget, n);
      const { protectedHeads, totalHeads, window, split } = plan(n, budget, layout);
      const entries = compressedHeadEntries(n, p.sinks, window, p.compensation);
      if (split && split.held > 0) return (split.held + split.protectedFree * n + split.compressed * entries) / split.full;
      const compressed = totalHeads - protectedHeads.size;
      return (protectedHeads.size * n + compressed * entries) / (totalHeads * n);
    },
  };
}

export default definePolicy({
  name: "razor",
  description: "RazorAttention (arXiv 2407.15891): full cache on retrieval heads; sinks + window + compensation token elsewhere",
  params,
  create: createRazor,
  prepare: calibrationStep,
});
