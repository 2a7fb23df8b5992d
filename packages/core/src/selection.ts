/**
 * Cache surgery shared by every policy: how many entries a budget keeps, top-k by score with a protected recent
 * window, building a compressed cache from per-head slot choices, and evicting one entry while decoding.
 * A policy package supplies only the scores or the slot choice; everything else is here, written once.
 *
 * Tie-breaking is part of the contract, so that a brute-force reference can reproduce a policy's choice exactly:
 * among equal scores the earlier slot (earlier position) wins when keeping, and loses first when evicting.
 */
import { describeBudget, entriesPerHead, toKvBudget, type Budget } from "./budget.js";
import { HeadCache, KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";

/**
 * The sequence length of a full prefill cache (every head holds slots 0 … N−1 at positions 0 … N−1, no
 * compensation slot). Policies score by slot = position, so anything else is a runner bug; `policy` names the caller.
 */
export function requireFullCache(cache: KvCache, policy: string): number {
  const n = cache.nextPosition;
  for (let i = 0; i < cache.heads.length; i++) {
    const h = cache.heads[i];
    if (h.length !== n || h.compensation || (n > 0 && (h.positions[0] !== 0 || h.positions[n - 1] !== n - 1))) {
      throw new Error(
        `${policy}: compress expects the full prefill cache (every head holding positions 0…${n - 1}); ` +
          `head ${i} holds ${h.length} entries${h.compensation ? " and a compensation slot" : ""}`,
      );
    }
  }
  if (n === 0) throw new RazorkvError(`${policy}: cannot compress an empty cache`);
  return n;
}

/**
 * Entries per head a uniform policy keeps: round(kvBudget · N). A RazorkvError when that is below `minimum`
 * (the policy's own floor, e.g. sinks + 1, explained by `why`), saying which budget would be feasible.
 */
export function entriesToKeep(fullCache: KvCache, budget: Budget, policy: string, minimum = 1, why = "at least one entry"): number {
  return entriesToKeepOf(requireFullCache(fullCache, policy), budget, policy, minimum, why);
}

/**
 * `entriesToKeep` for a sequence of `sequenceLength` tokens, without a cache: what a policy's `checkFeasible` calls,
 * so that a dry run and a run reject the same cells with the same words.
 */
export function entriesToKeepOf(sequenceLength: number, budget: Budget, policy: string, minimum = 1, why = "at least one entry"): number {
  const n = sequenceLength;
  const b = toKvBudget(budget, n);
  const keep = entriesPerHead(b, n);
  if (keep < minimum) {
    const feasible = minimum > n ? `no budget is feasible for ${n} tokens` : `the smallest feasible kvBudget is ${ceil4((minimum - 0.5) / n)}`;
    throw new RazorkvError(
      `${policy}: ${describeBudget(budget)} keeps ${keep} of ${n} entries per head, but ${policy} needs at least ${minimum} (${why}); ${feasible}`,
    );
  }
  return keep;
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
 * `cache`; `cache` itself is not modified. Returning every slot keeps the head whole (as a copy).
 */
export function selectPerHead(
  cache: KvCache,
  choose: (head: HeadCache, layer: number, kvHead: number) => ArrayLike<number>,
  options: SelectOptions = {},
): KvCache {
  return cache.mapHeads((head, layer, kvHead) => {
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

/** Rounded up to 4 decimals, so that the value an error suggests is itself feasible. */
function ceil4(x: number): string {
  return (Math.ceil(x * 1e4 - 1e-9) / 1e4).toFixed(4);
}
