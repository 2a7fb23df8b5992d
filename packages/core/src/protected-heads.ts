/**
 * The cache layout of head-level methods, written once: a set of protected KV heads keeps its whole cache; every
 * other KV head keeps N0 = `sinks` initial tokens (attention sinks) + the most recent `window` tokens and, with
 * `compensation` on, folds the dropped span into one compensation slot (mean key and value, logit + ln n_dropped;
 * DESIGN §3). RazorAttention (Tang et al. 2024, arXiv 2407.15891, §3.3 and Algorithm 1) introduced it with echo and
 * induction heads protected; any method that only decides *which* heads to protect (random heads, retrieval heads
 * by Wu et al. 2024's score, DuoAttention's retrieval heads with compensation off) reuses it, so that a comparison at
 * one budget differs in the selection alone.
 *
 * Budget arithmetic (DESIGN §4, budget mode). Over T = layers × KV heads of which P are protected, on N tokens:
 *   P·N + (T − P)·(N0 + window + c) = kvBudget · T·N        (c = 1 with the compensation slot, else 0)
 * solved for the window and rounded to whole tokens, so the realized budget misses the nominal by at most half an
 * entry per compressed head (core's tolerance is one per head). With sliding-window layers (Mistral, Gemma), heads
 * the model already holds at a window W < N are left as they are, protected or not, and count at their W entries:
 *   held + P_f·N + C_f·(N0 + window + c) = kvBudget · full
 * over the heads that hold all N tokens (P_f protected, C_f compressed), full = Σ min(N, W) (`windowSplit`).
 * A budget below the protected share cannot be met without protecting fewer heads — another selection, so a
 * RazorkvError, never a silent change.
 *
 *   const policy = protectedHeadsPolicy({
 *     name: "random-heads", sinks: 4, compensation: true, protectedParams: "protectedFraction",
 *     protectedHeads: (layout) => ({ heads: drawn(layout), totalHeads: layout.numLayers * layout.numKvHeads }),
 *   });
 *
 * Heads are indexed as in `KvCache.heads`: layer · numKvHeads + kvHead.
 */
import { describeBudget, toKvBudget, type Budget } from "./budget.js";
import type { CacheLayout, KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";
import type { CompressionPolicy } from "./policy.js";
import { requireFullCache, selectPerHead, windowSplit } from "./selection.js";

/** What a compressed (non-protected) head keeps besides its recent window. */
export interface CompressedHeadOptions {
  /** N0: the first tokens every compressed head keeps (attention sinks, Xiao et al. 2023). RazorAttention: 4. */
  readonly sinks: number;
  /** Fold the dropped span of each compressed head into one compensation slot (DESIGN §3). */
  readonly compensation: boolean;
}

/** How errors name the policy and the parameters that set its protected share. */
export interface ProtectedHeadsNames {
  /** The policy's short name, the first word of every error: "razor". */
  readonly policy: string;
  /** The parameters a user lowers to protect fewer heads, named in the refusal of a budget below the protected share. */
  readonly protectedParams: string;
}

/**
 * The slots a compressed head keeps of `length`: the first `sinks` and the last `window`, increasing; every slot
 * when the two overlap. (A protected head is `sinksAndWindow(length, length, 0)`: all of them.)
 */
export function sinksAndWindow(length: number, sinks: number, window: number): number[] {
  if (sinks + window >= length) return Array.from({ length }, (_, s) => s);
  return [...Array.from({ length: sinks }, (_, s) => s), ...Array.from({ length: window }, (_, i) => length - window + i)];
}

/** Entries a compressed head of `length` tokens holds: sinks + window, plus the slot when anything was dropped and compensation is on. */
export function compressedHeadEntries(length: number, sinks: number, window: number, compensation: boolean): number {
  return sinks + window >= length ? length : sinks + window + (compensation ? 1 : 0);
}

/** How a sequence of n tokens splits the heads: held at their sliding window, protected, compressed. */
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

/** The split of `layout`'s heads on n tokens for the protected set `protectedHeads` (indexes layer · numKvHeads + kvHead). */
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
 * Budget mode: the recent window of every compressed head that makes `protectedCount` whole heads of `totalHeads`
 * plus the compressed ones hold `kvBudget` of an n-token cache (file comment), in whole tokens, at most n − sinks.
 * With `split` (a model with sliding windows; `headSplit`) the windowed equation. `budget` only names the budget in
 * errors (default: "kvBudget <value>").
 *
 * Errors (RazorkvError, starting with `names.policy`): a budget below the protected share (naming
 * `names.protectedParams` to lower); one that leaves fewer than sinks + slot + 1 entries per compressed head (with
 * the smallest feasible kvBudget); below 1 when every head is protected.
 */
export function protectedHeadsWindow(
  kvBudget: number, n: number, totalHeads: number, protectedCount: number, options: CompressedHeadOptions & ProtectedHeadsNames,
  budget?: Budget, split?: HeadSplit,
): number {
  const { policy, protectedParams } = options;
  const label = budget ? describeBudget(budget) : `kvBudget ${kvBudget}`;
  const c = options.compensation ? 1 : 0;
  if (split && split.held > 0) return windowedBudgetWindow(kvBudget, n, split, options, label);
  const share = protectedCount / totalHeads;
  if (protectedCount === totalHeads) {
    if (kvBudget < 1) throw new RazorkvError(`${policy}: ${label} is infeasible: all ${totalHeads} KV heads are protected (full cache, kvBudget 1)`);
    return n;
  }
  if (kvBudget < share) {
    throw new RazorkvError(
      `${policy}: ${label} is below the protected share ${share.toFixed(4)} (${protectedCount} of ${totalHeads} KV heads keep their whole cache): ` +
        `infeasible for this selection; raise the budget or lower ${protectedParams}`,
    );
  }
  const perHead = (kvBudget * totalHeads * n - protectedCount * n) / (totalHeads - protectedCount);
  const window = Math.round(perHead - options.sinks - c);
  if (window < 1) {
    const least = (protectedCount * n + (totalHeads - protectedCount) * (options.sinks + c + 0.5)) / (totalHeads * n);
    throw new RazorkvError(
      `${policy}: ${label} leaves ${perHead.toFixed(2)} entries per compressed head of a ${n}-token sequence, too few for ${options.sinks} sinks` +
        `${c ? " + the compensation slot" : ""} + 1 recent token; ` +
        (least <= 1 ? `the smallest feasible kvBudget here is ${ceil4(least)}` : "no budget below 1 is feasible here"),
    );
  }
  return Math.min(window, n - options.sinks);
}

/** protectedHeadsWindow when sliding-window layers hold part of the cache at their window (split.held > 0). */
function windowedBudgetWindow(kvBudget: number, n: number, split: HeadSplit, options: CompressedHeadOptions & ProtectedHeadsNames, label: string): number {
  const { policy, protectedParams, sinks } = options;
  const { full, held, protectedFree, compressed } = split;
  const c = options.compensation ? 1 : 0;
  const fixed = held + protectedFree * n;
  const heads = `${protectedFree} protected heads keep ${n} entries each and the sliding-window layers hold ${held}: ${fixed} of ${full} entries`;
  if (compressed === 0) {
    if (kvBudget * full < full - 1e-9) throw new RazorkvError(`${policy}: ${label} is infeasible: ${heads}, nothing is left to compress (kvBudget 1 only)`);
    return n;
  }
  if (kvBudget * full < fixed) {
    throw new RazorkvError(
      `${policy}: ${label} is below what the protected heads and the sliding-window layers hold (${heads}, kvBudget ${(fixed / full).toFixed(4)}): ` +
        `infeasible for this selection; raise the budget or lower ${protectedParams}`,
    );
  }
  const perHead = (kvBudget * full - fixed) / compressed;
  const window = Math.round(perHead - sinks - c);
  if (window < 1) {
    const least = (fixed + compressed * (sinks + c + 0.5)) / full;
    throw new RazorkvError(
      `${policy}: ${label} leaves ${perHead.toFixed(2)} entries per compressed head of a ${n}-token sequence once ${heads}, too few for ${sinks} sinks` +
        `${c ? " + the compensation slot" : ""} + 1 recent token; ` +
        (least <= 1 ? `the smallest feasible kvBudget here is ${ceil4(least)}` : "no budget below 1 is feasible here"),
    );
  }
  return Math.min(window, n - sinks);
}

/**
 * A new cache from the full prefill cache `fullCache`: protected heads (indexes layer · numKvHeads + kvHead) whole,
 * every other head its first `sinks` and last `window` slots (+ the compensation slot). Heads the model holds at a
 * sliding window shorter than the sequence are copied whole, protected or not (`selectPerHead`). `fullCache` is not
 * modified.
 */
export function compressProtectedHeads(fullCache: KvCache, protectedHeads: ReadonlySet<number>, window: number, options: CompressedHeadOptions): KvCache {
  return selectPerHead(
    fullCache,
    (head, layer, kv) =>
      protectedHeads.has(layer * fullCache.numKvHeads + kv) ? sinksAndWindow(head.length, head.length, 0) : sinksAndWindow(head.length, options.sinks, window),
    { compensation: options.compensation },
  );
}

/**
 * The kvBudget the layout realizes on n tokens with a window fixed in advance (not solved from a budget, e.g.
 * RazorAttention's paper mode max(S0, N/C)): (P·N + (T − P)·entries) / (T·N), entries = `compressedHeadEntries`;
 * with `split` (sliding windows) (held + P_f·N + C_f·entries) / full.
 */
export function protectedHeadsKvBudget(
  n: number, window: number, protectedCount: number, totalHeads: number, options: CompressedHeadOptions, split?: HeadSplit,
): number {
  const entries = compressedHeadEntries(n, options.sinks, window, options.compensation);
  if (split && split.held > 0) return (split.held + split.protectedFree * n + split.compressed * entries) / split.full;
  const compressed = totalHeads - protectedCount;
  return (protectedCount * n + compressed * entries) / (totalHeads * n);
}

/** The protected set of a head-level policy for one model. */
export interface ProtectedHeadSet {
  /** Indexes layer · numKvHeads + kvHead. */
  readonly heads: ReadonlySet<number>;
  /** Layers × KV heads of the model the set was chosen for. */
  readonly totalHeads: number;
}

/** A head-level policy in this layout: what it decides (the protected set), and the layout's settings. */
export interface ProtectedHeadsPolicySpec extends CompressedHeadOptions, ProtectedHeadsNames {
  /**
   * The protected KV heads. `layout` is the full cache `compress` was given (check the selection was made for its
   * model shape), or the model's layout of a dry run / nominal-budget question; absent when the runner has none.
   * Throws a RazorkvError when the policy cannot choose (no prepared artefact, another model's shape).
   */
  protectedHeads(layout?: CacheLayout): ProtectedHeadSet;
  /**
   * A window fixed by the sequence length instead of solved from the budget (RazorAttention's paper mode). The policy
   * then realizes its own budget, which `nominalBudget` reports. Absent: budget mode, the window meets the budget.
   */
  fixedWindow?(n: number): number;
}

/**
 * A CompressionPolicy in this layout: `compress` (the full prefill cache → protected heads whole, the others sinks +
 * window + slot), `checkFeasible` (the same refusals from the length and layout alone) and `nominalBudget` (the budget
 * in budget mode; what the fixed window realizes otherwise). No prefill statistics, no decode hook: compression happens
 * once, after prefill, and decoded tokens are appended (RazorAttention §3.3).
 */
export function protectedHeadsPolicy(spec: ProtectedHeadsPolicySpec): CompressionPolicy {
  const name = spec.policy;
  const plan = (n: number, budget: Budget, layout?: CacheLayout) => {
    const { heads, totalHeads } = spec.protectedHeads(layout);
    const split = layout ? headSplit(n, layout, heads) : undefined;
    const window = spec.fixedWindow ? spec.fixedWindow(n) : protectedHeadsWindow(toKvBudget(budget, n), n, totalHeads, heads.size, spec, budget, split);
    return { heads, totalHeads, window: Math.max(0, window), split };
  };
  return {
    name,
    statsRequest: {},
    compress(fullCache, _stats, budget) {
      const n = requireFullCache(fullCache, name);
      const { heads, window } = plan(n, budget, fullCache);
      return compressProtectedHeads(fullCache, heads, window, spec);
    },
    checkFeasible(n, budget, layout) {
      plan(n, budget, layout);
    },
    nominalBudget(n, budget, layout) {
      if (!spec.fixedWindow) return toKvBudget(budget, n);
      const { heads, totalHeads, window, split } = plan(n, budget, layout);
      return protectedHeadsKvBudget(n, window, heads.size, totalHeads, spec, split);
    },
  };
}

/** Rounded up to 4 decimals, so that the value an error suggests is itself feasible. */
function ceil4(x: number): string {
  return (Math.ceil(x * 1e4 - 1e-9) / 1e4).toFixed(4);
}
