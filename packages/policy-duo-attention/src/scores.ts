/**
 * DuoAttention head scores without training, as kvpress computes them when no pattern file is given
 * (kvpress/presses/duo_attention_press.py, `duo_attention_on_the_fly`). DuoAttention itself (Xiao et al. 2024,
 * arXiv 2410.10819, §3.1–3.2) learns one gate per KV head by distillation on synthetic passkey data; kvpress replaces
 * that with a cheap proxy:
 *
 *   1. run the model over a text and take, per layer, the mean query of each query head and the mean key of each KV
 *      head over the text's tokens, both before RoPE (after q/k-norm where the model has one);
 *   2. place the mean key at every position 0 … q_len − 1 and the mean query at q_len − 1, apply RoPE;
 *   3. the last query's softmax over those q_len keys (scale 1/√d) is a head's attention profile with the content
 *      averaged out: what is left is its positional preference. Its score is the area under the cumulative curve,
 *      mean_j Σ_{i ≤ j} a_i — near 1 for a head whose mass sits on the first positions, near 1/q_len for one that
 *      looks only at the most recent key;
 *   4. per KV head, the mean over its query heads; averaged over the texts.
 *
 * The heads with the lowest scores become streaming heads (kvpress: `argsort(scores)[:n_pruned]`), the others keep
 * their whole cache as retrieval heads.
 */
import type { AttentionObserver, AttentionView, PreparationModel, RotaryEmbedding } from "@razorkv/core";
import { requireRotary } from "@razorkv/core";
import { prose } from "./text.js";

/** mean_j Σ_{i ≤ j} weights[i]: kvpress's "area under the cumulated attention curve" of one attention row. */
export function areaUnderCumulativeAttention(weights: ArrayLike<number>): number {
  let cumulative = 0;
  let area = 0;
  for (let j = 0; j < weights.length; j++) {
    cumulative += weights[j];
    area += cumulative;
  }
  return area / weights.length;
}

/** Rotates [n × heads × headDim] vectors in place as the model's RoPE does at `positions` (one layer's rotary). */
export type Rotate = (vectors: Float32Array, heads: number, positions: ArrayLike<number>) => void;

/**
 * One layer's on-the-fly score per query head (steps 2–3 of the file comment).
 *
 * @param meanQuery [numHeads × headDim]: each query head's mean query before RoPE.
 * @param meanKey [numKvHeads × headDim]: each KV head's mean key before RoPE.
 * @param queryLength q_len: the keys sit at 0 … q_len − 1, the query at q_len − 1 (kvpress: 500).
 * @param scale softmax scale of the logits (kvpress: 1/√headDim).
 * @param rotate the layer's RoPE.
 * @returns [numHeads] scores in (0, 1]: query head h reads KV head ⌊h / (numHeads / numKvHeads)⌋ (GQA).
 */
export function onTheFlyScores(
  meanQuery: Float32Array, meanKey: Float32Array, numHeads: number, numKvHeads: number, headDim: number,
  queryLength: number, scale: number, rotate: Rotate,
): Float64Array {
  const d = headDim;
  const group = numHeads / numKvHeads;
  if (!Number.isInteger(group)) throw new Error(`onTheFlyScores: numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (meanQuery.length !== numHeads * d || meanKey.length !== numKvHeads * d) {
    throw new Error(`onTheFlyScores: expected ${numHeads}×${d} query and ${numKvHeads}×${d} key values, got ${meanQuery.length} and ${meanKey.length}`);
  }
  const query = meanQuery.slice();
  rotate(query, numHeads, [queryLength - 1]);
  const keys = new Float32Array(queryLength * numKvHeads * d);
  for (let j = 0; j < queryLength; j++) keys.set(meanKey, j * numKvHeads * d);
  rotate(keys, numKvHeads, Array.from({ length: queryLength }, (_, j) => j));
  const out = new Float64Array(numHeads);
  const logits = new Float64Array(queryLength);
  for (let h = 0; h < numHeads; h++) {
    const kv = Math.floor(h / group);
    let max = -Infinity;
    for (let j = 0; j < queryLength; j++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += query[h * d + i] * keys[(j * numKvHeads + kv) * d + i];
      logits[j] = dot * scale;
      if (logits[j] > max) max = logits[j];
    }
    let sum = 0;
    for (let j = 0; j < queryLength; j++) sum += logits[j] = Math.exp(logits[j] - max);
    for (let j = 0; j < queryLength; j++) logits[j] /= sum;
    out[h] = areaUnderCumulativeAttention(logits);
  }
  return out;
}

/**
 * Accumulates, per layer, the mean query of each query head and the mean key of each KV head of a forward, both taken
 * back to before RoPE with the model's own rotary (step 1). A forward may reach a layer in several chunks: each call's
 * new keys are the last C slots of every head (appended before the observer runs, trimmed to a sliding window only
 * after the forward).
 */
export class MeanQueryKeyObserver implements AttentionObserver {
  readonly querySums: Float64Array[] = [];
  readonly keySums: Float64Array[] = [];
  readonly counts: number[] = [];
  /** The softmax scale each layer's attention used. */
  readonly scales: number[] = [];

  constructor(private readonly rotary: RotaryEmbedding) {}

  observe(view: AttentionView): void {
    const { layer, numHeads, cache, queries, queryPositions } = view;
    const d = cache.headDim;
    const C = queryPositions.length;
    const q = queries.slice(0, C * numHeads * d);
    this.rotary.rotate(layer, q, numHeads, queryPositions, true);
    const qs = (this.querySums[layer] ??= new Float64Array(numHeads * d));
    for (let r = 0; r < C; r++) for (let x = 0; x < numHeads * d; x++) qs[x] += q[r * numHeads * d + x];
    const ks = (this.keySums[layer] ??= new Float64Array(cache.numKvHeads * d));
    for (let kv = 0; kv < cache.numKvHeads; kv++) {
      const head = cache.head(layer, kv);
      const first = head.length - C;
      const k = head.keys.slice(first * d, head.length * d);
      this.rotary.rotate(layer, k, 1, head.positions.slice(first, head.length), true);
      for (let r = 0; r < C; r++) for (let i = 0; i < d; i++) ks[kv * d + i] += k[r * d + i];
    }
    this.counts[layer] = (this.counts[layer] ?? 0) + C;
    this.scales[layer] = view.scale;
  }

  /** Layer `layer`'s means as float32 ([numHeads × d], [numKvHeads × d]). */
  means(layer: number): { query: Float32Array; key: Float32Array } {
    const n = this.counts[layer];
    if (!n) throw new Error(`MeanQueryKeyObserver: layer ${layer} was never observed`);
    return { query: Float32Array.from(this.querySums[layer], (x) => x / n), key: Float32Array.from(this.keySums[layer], (x) => x / n) };
  }
}

/** The on-the-fly scoring input, defaults resolved (index.ts `params`). */
export interface OnTheFlySettings {
  /** Texts averaged over (kvpress: 50 BookSum chapters). */
  readonly samples: number;
  /** Tokens of each text (kvpress: the whole chapter). */
  readonly sampleTokens: number;
  /** q_len (kvpress: 500). */
  readonly queryLength: number;
  /** Seed of the first text; text i uses seed + i. */
  readonly seed: number;
}

/** Text i's token ids: `sampleTokens` ids of generated prose, with BOS when the tokenizer adds it. */
export function sampleIds(model: Pick<PreparationModel, "tokenizer">, settings: OnTheFlySettings, i: number): number[] {
  for (let chars = settings.sampleTokens * 6; ; chars *= 2) {
    const ids = model.tokenizer.encode(prose(settings.seed + i, chars), { addSpecialTokens: true, parseSpecialTokens: false });
    if (ids.length >= settings.sampleTokens) return ids.slice(0, settings.sampleTokens);
  }
}

/**
 * Steps 1–4 on `model`: per layer and query head, the on-the-fly score averaged over the texts ([numLayers][numHeads];
 * a KV head's is the mean of its group's). Needs the model's RoPE (`PreparationModel.rotary`).
 */
export function scoreOnTheFly(model: PreparationModel, settings: OnTheFlySettings, log?: (line: string) => void): number[][] {
  const rotary = requireRotary(model, "duo-attention");
  const { numLayers: L, numHeads: H, numKvHeads: K, headDim: d } = model.shape;
  const totals = Array.from({ length: L }, () => new Float64Array(H));
  for (let i = 0; i < settings.samples; i++) {
    const observer = new MeanQueryKeyObserver(rotary);
    model.prefill(sampleIds(model, settings, i), { observers: [observer], logits: "none" });
    for (let l = 0; l < L; l++) {
      const { query, key } = observer.means(l);
      const s = onTheFlyScores(query, key, H, K, d, settings.queryLength, observer.scales[l], (v, heads, positions) => rotary.rotate(l, v, heads, positions));
      for (let h = 0; h < H; h++) totals[l][h] += s[h] / settings.samples;
    }
    log?.(`duo-attention: on-the-fly scores, text ${i + 1} of ${settings.samples}`);
  }
  return totals.map((row) => Array.from(row));
}
