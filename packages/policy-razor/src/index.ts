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
 */
import {
  definePolicy, describeBudget, param, RazorkvError, requireFullCache, selectPerHead, toKvBudget, type Budget,
  type CompressionPolicy, type ParamsOf, type PolicyContext,
} from "@razorkv/core";
import { cachedProfile, parseProfile, readProfile, selectRetrievalHeads, type HeadProfile } from "./profile.js";

export * from "./calibration.js";
export * from "./profile.js";

export const params = {
  profile: param.custom<HeadProfile | "auto">({
    default: "auto",
    doc: 'The head profile: "auto" (the cached profile of the model being evaluated, made by `razorkv calibrate`), a path to a profile JSON, or the profile object itself.',
    parse: (value) => {
      if (value === "auto") return "auto";
      if (typeof value === "string") return readProfile(value);
      if (value && typeof value === "object") return parseProfile(value, "profile");
      throw new Error(`expected "auto", a profile JSON path or a profile object, got ${JSON.stringify(value)}`);
    },
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

/**
 * Budget mode: solve p·N + (1 − p)(N0 + window + c) = kvBudget·N for the window (c = 1 with compensation), in whole
 * tokens; the realized budget then misses by at most half a token per compressed head.
 */
export function budgetWindow(kvBudget: number, n: number, totalHeads: number, protectedCount: number, p: Pick<RazorParams, "sinks" | "compensation">, budget?: Budget): number {
  const share = protectedCount / totalHeads;
  const label = budget ? describeBudget(budget) : `kvBudget ${kvBudget}`;
  const c = p.compensation ? 1 : 0;
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

export function createRazor(p: RazorParams, context: PolicyContext = {}): CompressionPolicy {
  const name = "razor";
  let profile: HeadProfile | null = p.profile === "auto" ? null : p.profile;
  // "auto" is resolved on first use, so a manifest can list razor before the profile exists for other models
  const getProfile = (): HeadProfile => {
    if (profile) return profile;
    if (!context.modelRef) throw new RazorkvError('razor: params.profile is "auto" but no model reference was given; pass params.profile (a profile JSON path)');
    return (profile = cachedProfile(context.modelRef));
  };
  const plan = (n: number, budget: Budget): RazorPlan => {
    const prof = getProfile();
    const totalHeads = prof.numLayers * prof.numKvHeads;
    const protectedHeads = new Set(selectRetrievalHeads(prof, p).map((r) => r.layer * prof.numKvHeads + r.kvHead));
    const window =
      p.mode === "paper"
        ? Math.min(n - p.sinks, Math.max(p.paperMinWindow, Math.round(n / p.paperCompression)))
        : budgetWindow(toKvBudget(budget, n), n, totalHeads, protectedHeads.size, p, budget);
    return { protectedHeads, totalHeads, window: Math.max(0, window) };
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
      const { protectedHeads, window } = plan(n, budget);
      return selectPerHead(
        fullCache,
        (head, layer, kv) =>
          protectedHeads.has(layer * fullCache.numKvHeads + kv) ? razorSlots(head.length, head.length, 0) : razorSlots(head.length, p.sinks, window),
        { compensation: p.compensation },
      );
    },
    checkFeasible(n, budget) {
      plan(n, budget);
    },
    nominalBudget(n, budget) {
      if (p.mode === "budget") return toKvBudget(budget, n);
      const { protectedHeads, totalHeads, window } = plan(n, budget);
      const compressed = totalHeads - protectedHeads.size;
      return (protectedHeads.size * n + compressed * compressedHeadEntries(n, p.sinks, window, p.compensation)) / (totalHeads * n);
    },
  };
}

export default definePolicy({
  name: "razor",
  description: "RazorAttention (arXiv 2407.15891): full cache on retrieval heads; sinks + window + compensation token elsewhere",
  params,
  create: createRazor,
});
