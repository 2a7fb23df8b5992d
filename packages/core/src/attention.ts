/**
 * Reference attention over a (possibly compressed) KV cache, in plain TypeScript. Every native and CUDA kernel is
 * tested against these functions; they favour clarity over speed.
 *
 * Shapes (row-major, f32):
 *   queries  [C × numHeads × headDim]   C new tokens, already rotated (RoPE) at `queryPositions`
 *   out      [C × numHeads × headDim]
 * The new tokens' keys and values must already be appended to the cache (a token attends to itself).
 * Query head h reads KV head floor(h / (numHeads / numKvHeads)) (GQA).
 * Query c sees every slot whose position ≤ queryPositions[c] (causal by original position), plus the head's
 * compensation slot, which stands for dropped past tokens and is always visible. In a layer with a sliding window W
 * (the cache's `window(layer)`), it sees only positions in (queryPositions[c] − W, queryPositions[c]]: the banded
 * mask of transformers' sliding-window layers (`kv_idx > q_idx − sliding_window`).
 */
import type { KvCache } from "./cache.js";

/** Attention statistics a policy may ask the prefill to collect (DESIGN §2). */
export interface AttentionStatsRequest {
  /** H2O: per query head, the sum over all queries of each key's softmax weight. */
  readonly accumulated?: boolean;
  /** SnapKV: per query head, the sum over the last `windowQueries` queries of each key's softmax weight. */
  readonly windowQueries?: number;
  /**
   * RazorAttention calibration (arXiv 2407.15891 §3.2): the input repeats a block of `period` tokens that starts at
   * position `firstPosition`. For every query at position i ≥ firstPosition + period, the echo score sums its
   * weights on earlier copies of the same token (positions i − m·period, m ≥ 1, not before firstPosition) and the
   * induction score its weights on the tokens that followed those copies (i − m·period + 1). Per query head, the
   * mean over those queries.
   */
  readonly repeatedSequence?: { readonly period: number; readonly firstPosition: number };
}

/** One layer's statistics: per query head a Float32Array indexed by slot of that head's KV head. */
export interface LayerAttentionStats {
  readonly accumulated?: Float32Array[];
  readonly windowed?: Float32Array[];
  /** Per query head, with `repeatedSequence`: mean echo and induction weight. */
  readonly echo?: Float64Array;
  readonly induction?: Float64Array;
}

export interface AttentionArgs {
  readonly cache: KvCache;
  readonly layer: number;
  readonly numHeads: number;
  readonly queries: Float32Array;
  readonly queryPositions: ArrayLike<number>;
  readonly out: Float32Array;
  /** Softmax scale; 1/√headDim by default. */
  readonly scale?: number;
  /** Gemma 2's attention logit soft-capping: each logit x becomes cap · tanh(x / cap). Absent: none. */
  readonly softcap?: number;
  readonly stats?: AttentionStatsRequest;
}

export function attendReference(args: AttentionArgs): LayerAttentionStats {
  const { cache, layer, numHeads, queries, queryPositions, out } = args;
  const d = cache.headDim;
  const numKv = cache.numKvHeads;
  if (numHeads % numKv !== 0) throw new Error(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKv}`);
  const group = numHeads / numKv;
  const C = queryPositions.length;
  if (queries.length !== C * numHeads * d) throw new Error(`queries has ${queries.length} values, expected ${C}×${numHeads}×${d}`);
  if (out.length !== queries.length) throw new Error(`out has ${out.length} values, expected ${queries.length}`);
  const scale = args.scale ?? 1 / Math.sqrt(d);
  const window = cache.window(layer);
  const softcap = args.softcap ?? null;
  const wantAcc = args.stats?.accumulated === true;
  const windowQueries = args.stats?.windowQueries ?? 0;
  const repeat = args.stats?.repeatedSequence;
  const echo = repeat ? new Float64Array(numHeads) : null;
  const induction = repeat ? new Float64Array(numHeads) : null;
  const accumulated: Float32Array[] = [];
  const windowed: Float32Array[] = [];

  for (let h = 0; h < numHeads; h++) {
    const head = cache.head(layer, Math.floor(h / group));
    const acc = wantAcc ? new Float32Array(head.length) : null;
    const win = windowQueries > 0 ? new Float32Array(head.length) : null;
    if (acc) accumulated.push(acc);
    if (win) windowed.push(win);
    if (repeat && (head.compensation || (head.length > 0 && head.positions[head.length - 1] !== head.length - 1))) {
      throw new Error("repeatedSequence statistics need an uncompressed cache (slot = position)");
    }
    const comp = head.compensation;
    const compBias = comp ? Math.log(comp.count) : 0;
    const logits = new Float64Array(head.length + 1);
    let visible = 0;
    let first = 0; // first slot inside the query's window (0 without one)
    let repeatQueries = 0;
    for (let c = 0; c < C; c++) {
      const qBase = (c * numHeads + h) * d;
      const qPos = queryPositions[c];
      // slots are sorted by position: the visible set is a prefix that only grows with qPos
      if (c > 0 && qPos < queryPositions[c - 1]) visible = first = 0;
      while (visible < head.length && head.positions[visible] <= qPos) visible++;
      if (window !== null) while (first < visible && head.positions[first] <= qPos - window) first++;
      let max = -Infinity;
      for (let s = first; s < visible; s++) {
        let dot = 0;
        const kBase = s * d;
        for (let i = 0; i < d; i++) dot += queries[qBase + i] * head.keys[kBase + i];
        logits[s] = softcap === null ? dot * scale : softcap * Math.tanh((dot * scale) / softcap);
        if (logits[s] > max) max = logits[s];
      }
      if (comp) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += queries[qBase + i] * comp.key[i];
        logits[visible] = (softcap === null ? dot * scale : softcap * Math.tanh((dot * scale) / softcap)) + compBias;
        if (logits[visible] > max) max = logits[visible];
      }
      const n = visible + (comp ? 1 : 0);
      let sum = 0;
      for (let s = first; s < n; s++) {
        logits[s] = Math.exp(logits[s] - max);
        sum += logits[s];
      }
      const oBase = qBase;
      for (let i = 0; i < d; i++) out[oBase + i] = 0;
      const inWindow = c >= C - windowQueries;
      for (let s = first; s < visible; s++) {
        const p = logits[s] / sum;
        const vBase = s * d;
        for (let i = 0; i < d; i++) out[oBase + i] += p * head.values[vBase + i];
        if (acc) acc[s] += p;
        if (win && inWindow) win[s] += p;
      }
      if (comp) {
        const p = logits[visible] / sum;
        for (let i = 0; i < d; i++) out[oBase + i] += p * comp.value[i];
      }
      if (repeat && echo && induction && qPos >= repeat.firstPosition + repeat.period) {
        // calibration runs on an uncompressed cache, where slot = position
        // slots before `first` are outside a sliding window: weight 0
        for (let j = qPos - repeat.period; j >= repeat.firstPosition; j -= repeat.period) {
          if (j >= first) echo[h] += logits[j] / sum;
          if (j + 1 >= first) induction[h] += logits[j + 1] / sum;
        }
        repeatQueries++;
      }
    }
    if (echo && induction && repeatQueries > 0) {
      echo[h] /= repeatQueries;
      induction[h] /= repeatQueries;
    }
  }
  return {
    ...(wantAcc ? { accumulated } : {}),
    ...(windowQueries > 0 ? { windowed } : {}),
    ...(echo && induction ? { echo, induction } : {}),
  };
}

/**
 * What the model does after every forward over `cache` (prefill, extend, decode): drops from each head of a
 * sliding-window layer the positions no later query can attend (`KvCache.trimToWindows`), and the same leading slots
 * from that forward's statistics (`stats`, per layer), so that they stay indexed by slot of the cache as it now is.
 */
export function trimToWindows(cache: KvCache, stats?: LayerAttentionStats[] | null): LayerAttentionStats[] | null {
  const dropped = cache.trimToWindows();
  if (!dropped || !stats) return stats ?? null;
  return stats.map((layerStats, layer) => {
    const dropOf = (perQueryHead: Float32Array[]): Float32Array[] => {
      const group = perQueryHead.length / cache.numKvHeads;
      return perQueryHead.map((a, h) => {
        const drop = dropped[layer * cache.numKvHeads + Math.floor(h / group)];
        return drop === 0 ? a : a.slice(drop);
      });
    };
    return {
      ...layerStats,
      ...(layerStats.accumulated ? { accumulated: dropOf(layerStats.accumulated) } : {}),
      ...(layerStats.windowed ? { windowed: dropOf(layerStats.windowed) } : {}),
    };
  });
}
