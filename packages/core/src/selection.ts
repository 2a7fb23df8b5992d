/**
 * Cache surgery shared by every policy: how many entries a budget keeps, top-k by score with a protected recent
 * window, building a compressed cache from per-head slot choices, and evicting one entry while decoding.
 * A policy package supplies only the scores or the slot choice; everything else is here, written once.
 *
 * Tie-breaking is part of the contract, so that a brute-force reference can reproduce a policy's choice exactly:
 * among equal scores the earlier slot (earlier position) wins when keeping, and loses first when evicting.
 */
import { describeBudget, entriesPerHead, toKvBudget, type Budget } from "./budget.js";
import { fullEntriesOf, HeadCache, KvCache, type CacheLayout } from "./cache.js";
import { RazorkvError } from "./errors.js";

/**
 * The sequence length of a full prefill cache: every head holds slots 0 … N−1 at positions 0 … N−1, no compensation
 * slot — except the heads of a sliding-window layer, which hold exactly the last min(N, W) positions (all the model
 * keeps). Policies score by slot = position, so anything else is a runner bug; `policy` names the caller.
 */
export function requireFullCache(cache: KvCache, policy: string): number {
  const n = cache.nextPosition;
  for (let i = 0; i < cache.heads.length; i++) {
    const h = cache.heads[i];
    const w = cache.window(Math.floor(i / cache.numKvHeads));
    const held = w === null ? n : Math.min(n, w);
    if (h.length !== held || h.compensation || (held > 0 && (h.positions[0] !== n - held || h.positions[held - 1] !== n - 1))) {
      throw new Error(
        `${policy}: compress expects the full prefill cache (every head holding positions ${n - held}…${n - 1}` +
          `${w === null ? "" : `, the last ${held} of a ${w}-token window`}); head ${i} holds ${h.length} entries${h.compensation ? " and a compensation slot" : ""}`,
      );
    }
  }
  if (n === 0) throw new RazorkvError(`${policy}: cannot compress an empty cache`);
  return n;
}

/**
 * Entries per compressible head a uniform policy keeps: round(kvBudget · N) without sliding windows. Heads the model
 * holds at a window shorter than N are left as they are (`selectPerHead` copies them whole): they count in the
 * budget at their min(N, W) entries, and what the budget leaves after them is spread evenly over the other heads.
 * A RazorkvError when that is below `minimum` (the policy's own floor, e.g. sinks + 1, explained by `why`), saying
 * which budget would be feasible.
 */
export function entriesToKeep(fullCache: KvCache, budget: Budget, policy: string, minimum = 1, why = "at least one entry"): number {
  return entriesToKeepOf(requireFullCache(fullCache, policy), budget, policy, minimum, why, fullCache);
}

/**
 * `entriesToKeep` for a sequence of `sequenceLength` tokens, without a cache: what a policy's `checkFeasible` calls,
 * so that a dry run and a run reject the same cells with the same words. `layout` gives the model's layers and
 * sliding windows; absent, every layer attends to the whole sequence.
 */
export function entriesToKeepOf(
  sequenceLength: number,
  budget: Budget,
  policy: string,
  minimum = 1,
  why = "at least one entry",
  layout?: CacheLayout,
): number {
  const n = sequenceLength;
  const b = toKvBudget(budget, n);
  const split = layout ? windowSplit(n, layout) : null;
  if (!split || split.heldHeads === 0) {
    const keep = entriesPerHead(b, n);
    if (keep < minimum) {
      const feasible = minimum > n ? `no budget is feasible for ${n} tokens` : `the smallest feasible kvBudget is ${ceil4((minimum - 0.5) / n)}`;
      throw new RazorkvError(
        `${policy}: ${describeBudget(budget)} keeps ${keep} of ${n} entries per head, but ${policy} needs at least ${minimum} (${why}); ${feasible}`,
      );
    }
    return keep;
  }
  const { full, held, heldHeads, freeHeads } = split;
  const windows = `the sliding-window layers hold ${held} of the ${full} entries at ${n} tokens (kvBudget ${(held / full).toFixed(4)})`;
  if (freeHeads === 0) {
    // every layer's window binds: the model already holds only its windows, and nothing is left to compress
    if ((1 - b) * full > heldHeads + 1e-9) {
      throw new RazorkvError(`${policy}: ${describeBudget(budget)} is below what the model itself holds: every layer attends through a sliding window shorter than ${n} tokens, so only kvBudget 1 is feasible`);
    }
    return n;
  }
  // per compressible head: (b·full − held) / freeHeads, written so that no window gives round(b·n) exactly
  const keep = Math.min(n, Math.max(0, Math.round(b * n - ((1 - b) * held) / freeHeads)));
  if (keep < minimum) {
    const reason = b * full < held ? `${describeBudget(budget)} is below what the model itself holds: ${windows}` :
      `${describeBudget(budget)} keeps ${keep} of ${n} entries per full-attention head once ${windows}, but ${policy} needs at least ${minimum} (${why})`;
    const feasible = minimum > n ? `no budget is feasible for ${n} tokens` : `the smallest feasible kvBudget is ${ceil4((freeHeads * (minimum - 0.5) + held) / full)}`;
    throw new RazorkvError(`${policy}: ${reason}; ${feasible}`);
  }
  return keep;
}

/** How the uncompressed cache of an `n`-token sequence splits between heads held at their window and the others. */
export interface WindowSplit {
  /** Entries of the uncompressed cache: Σ over heads of min(n, window). */
  readonly full: number;
  /** Entries of the heads whose layer's window is shorter than n (each holds its W): left as the model holds them. */
  readonly held: number;
  readonly heldHeads: number;
  /** Heads holding all n positions: what a policy compresses. */
  readonly freeHeads: number;
}

export function windowSplit(n: number, layout: CacheLayout): WindowSplit {
  let held = 0;
  let heldHeads = 0;
  let freeHeads = 0;
  for (let l = 0; l < layout.numLayers; l++) {
    const w = layout.layerWindows?.[l] ?? null;
    if (w !== null && w < n) {
      held += w * layout.numKvHeads;
      heldHeads += layout.numKvHeads;
    } else freeHeads += layout.numKvHeads;
  }
  return { full: fullEntriesOf(n, layout), held, heldHeads, freeHeads };
}

/** The `k` slots of [from, to) with the highest scores (ties: earlier slot first), in increasing slot order. */
export function topKSlots(scores: ArrayLike<number>, k: number, from = 0, to = scores.length): number[] {
  const candidates: number[] = [];
  for (let s = from; s < to; s++) candidates.push(s);
  if (k >= candidates.length) return candidates;
  if (k <= 0) return [];
  candidates.sort((a, b) => scores[b] - scores[a] || a - b);
  return candidates.slice(0, k).sort((a, b) => a - b);
}

/**
 * The selection shared by H2O, SnapKV and StreamingLLM: of `length` slots keep the last `recent` and the
 * `keep − recent` highest-scored of the others (`scores` indexed by slot; entries of the recent window are ignored).
 */
export function keepRecentAndTop(scores: ArrayLike<number>, keep: number, recent: number, length = scores.length): number[] {
  if (keep >= length) return Array.from({ length }, (_, s) => s);
  const r = Math.max(0, Math.min(recent, keep));
  const top = topKSlots(scores, keep - r, 0, length - r);
  for (let s = length - r; s < length; s++) top.push(s);
  return top;
}

export interface SelectOptions {
  /** Fold the dropped entries of each head into its compensation slot (DESIGN §3). Default false. */
  readonly compensation?: boolean;
}

/**
 * A new cache whose head (layer, kvHead) keeps the slots `choose` returns (strictly increasing) of the same head of
 * `cache`; `cache` itself is not modified. Returning every slot keeps the head whole (as a copy). Heads the model
 * holds at a sliding window shorter than the sequence (`KvCache.heldByWindow`) are copied whole without asking
 * `choose`: they hold only what the model will still attend, and the budget counts them at that (`entriesToKeep`).
 */
export function selectPerHead(
  cache: KvCache,
  choose: (head: HeadCache, layer: number, kvHead: number) => ArrayLike<number>,
  options: SelectOptions = {},
): KvCache {
  return cache.mapHeads((head, layer, kvHead) => {
    if (cache.heldByWindow(layer * cache.numKvHeads + kvHead)) return head.clone();
    const slots = choose(head, layer, kvHead);
    return head.select(slots, options.compensation ? head.foldDropped(slots) : null);
  });
}

/** Removes slot `slot` from `head` in place (decode-time eviction); later slots move down by one. */
export function evictSlot(head: HeadCache, slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= head.length) {
    throw new Error(`evictSlot: slot ${slot} outside [0, ${head.length})`);
  }
  const d = head.headDim;
  head.positions.copyWithin(slot, slot + 1, head.length);
  head.keys.copyWithin(slot * d, (slot + 1) * d, head.length * d);
  head.values.copyWithin(slot * d, (slot + 1) * d, head.length * d);
  head.length--;
}

/** Entries a decoding head may hold to keep `kvBudget` of a sequence that has grown to `sequenceLength`. */
export function decodeTarget(kvBudgetValue: number, sequenceLength: number): number {
  return entriesPerHead(kvBudgetValue, sequenceLength);
}

/**
 * Per head (index as `cache.heads`), the entries it may hold for the cache to keep `kvBudget` of what its
 * uncompressed cache would hold now. Heads the model holds at their sliding window (`KvCache.heldByWindow`) are left
 * as they are (their own count); what they hold beyond kvBudget of their window comes evenly off the others, whose
 * target is kvBudget · min(length, window) less that. Without windows: round(kvBudget · length) for every head.
 */
export function decodeTargets(kvBudgetValue: number, cache: KvCache): number[] {
  const n = cache.nextPosition;
  let held = 0;
  let heldCap = 0;
  let free = 0;
  cache.heads.forEach((head, i) => {
    if (cache.heldByWindow(i)) {
      held += head.entryCount;
      heldCap += cache.window(Math.floor(i / cache.numKvHeads)) ?? n;
    } else free++;
  });
  // zero without held heads, so that round(b·n + 0) is round(b·n) exactly
  const deficit = free === 0 ? 0 : (kvBudgetValue * heldCap - held) / free;
  return cache.heads.map((head, i) => {
    if (cache.heldByWindow(i)) return head.entryCount;
    const w = cache.window(Math.floor(i / cache.numKvHeads));
    const cap = w === null ? n : Math.min(n, w);
    return Math.min(cap, Math.max(0, Math.round(kvBudgetValue * cap + deficit)));
  });
}

/** Rounded up to 4 decimals, so that the value an error suggests is itself feasible. */
function ceil4(x: number): string {
  return (Math.ceil(x * 1e4 - 1e-9) / 1e4).toFixed(4);
}
