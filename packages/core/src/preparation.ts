/**
 * Per-model preparation (DESIGN §3): a step a policy runs once per model before any sample — RazorAttention's head
 * calibration, a retrieval-head score measured on needle prompts, DuoAttention's on-the-fly head scores — through a
 * narrow view of the model that core defines here. The runner (the only package that knows both the engine and the
 * policies) adapts its model to `PreparationModel`, runs the step when no cached artefact matches (prepared-cache.ts),
 * and hands the artefact to the policy as `PolicyContext.prepared`. A policy never imports the engine.
 *
 * What the view offers, and which method needs it:
 *   - `shape`, `tokenizer`: build inputs (random ids in a range, a needle prompt, a chat turn) — every method.
 *   - `prefill(ids, { stats })`: one full-attention prefill collecting core's built-in statistics (attention.ts:
 *     `repeatedSequence` for RazorAttention's echo/induction scores, `accumulated`, `windowQueries`).
 *   - `prefill(ids, { observers })`: statistics a policy defines itself — each observer sees, per layer, the
 *     queries after RoPE, the cache's keys after RoPE and the softmax scale (`AttentionView`; `attentionWeights`
 *     gives one query head's softmax over the slots exactly as the reference attention computes it).
 *   - `sequence.extend([token], { stats: { accumulated: true } })`: one greedy decode step that returns, per layer and
 *     query head, the new query's attention probabilities over every slot (`positions` maps slots to positions), so a
 *     retrieval-head score (Wu et al. 2024: does the head's argmax key hold the token just generated?) or HeadKV's
 *     retrieval-reasoning score is a loop over `extend` and the returned logits.
 *   - `rotary` (when the engine exposes it): RoPE as the model applies it, to undo or redo the rotation of observed
 *     queries and keys — DuoAttention's on-the-fly scores (kvpress, duo_attention_press.py) average queries and keys
 *     before RoPE and re-rotate the means at positions 0 … q_len − 1.
 * The artefact a step returns must be plain JSON (it is cached and copied into the results folder), and a function of
 * the model file and the step's `inputs` only: those two are the cache key.
 */
import type { AttentionStatsRequest, LayerAttentionStats } from "./attention.js";
import type { KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";
import type { HeadSelection } from "./head-selection.js";
import type { ParamsOf, ParamsSchema } from "./params.js";

/** The model's dimensions a preparation step may build inputs from. */
export interface ModelShape {
  readonly numLayers: number;
  /** Query heads per layer. */
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** Longest sequence the model accepts, in tokens. */
  readonly maxContext: number;
  /** Per layer its sliding window W (a query at p sees (p − W, p]) or null for full attention (DESIGN §3). */
  readonly layerWindows: readonly (number | null)[];
  /** Softmax scale of attention logits (1/√headDim unless the model says otherwise, e.g. Gemma). */
  readonly attentionScale: number;
}

/** One conversation turn, as chat templates receive it. */
export interface PreparationChatMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * Text ↔ ids with the model's own tokenizer (the subset of model-zoo's Tokenizer a step needs). `encode` parses
 * control-token strings unless `parseSpecialTokens` is false; pass false for any text the step did not write itself
 * (a haystack, a needle), as the runner does for documents.
 */
export interface PreparationTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  encode(text: string, options?: { addSpecialTokens?: boolean; parseSpecialTokens?: boolean }): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** The model's chat template rendered to text (encode it with parseSpecialTokens); throws when it has none. */
  applyChatTemplate(messages: PreparationChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /** True for EOS and the end-of-turn tokens a chat model stops on. */
  isEndOfGeneration(id: number): boolean;
}

/**
 * One layer of one forward, as an `AttentionObserver` sees it, after the new tokens' keys and values were appended
 * to the cache and before the layer's output is used. Read-only: an observer must not modify the cache or the arrays.
 */
export interface AttentionView {
  readonly layer: number;
  readonly numHeads: number;
  /** Keys after RoPE per (layer, KV head), `cache.head(layer, kv).positions[slot]` their positions. */
  readonly cache: KvCache;
  /** [C × numHeads × headDim]: the C new queries after RoPE (and after q-norm where the model has one). */
  readonly queries: Float32Array;
  /** [C]: their positions. */
  readonly queryPositions: ArrayLike<number>;
  /** Softmax scale of the logits. */
  readonly scale: number;
  /** Logit soft-capping (Gemma 2): x → cap · tanh(x / cap) before the softmax. Absent: none. */
  readonly softcap?: number;
}

/** A statistic a policy defines itself: called once per layer of every forward it is passed to. */
export interface AttentionObserver {
  observe(view: AttentionView): void;
}

export interface ObserveOptions {
  /** Core's built-in statistics (attention.ts), per layer and query head. */
  readonly stats?: AttentionStatsRequest;
  /** The policy's own statistics. */
  readonly observers?: readonly AttentionObserver[];
  /** Which positions get next-token logits: the last (default), all, or none. */
  readonly logits?: "last" | "all" | "none";
}

export interface ForwardObservation {
  /** Per layer, what `stats` asked for (indexed by slot of the cache, as attention.ts); empty when nothing was. */
  readonly stats: readonly LayerAttentionStats[];
  /** [rows × vocabSize] next-token logits: one row for "last", one per token for "all", none for "none". */
  readonly logits: Float32Array;
}

/** A prefilled sequence that can be continued token by token (a greedy decode, a question fed after a context). */
export interface PreparedSequence {
  /** Tokens seen so far. */
  readonly length: number;
  /**
   * Runs `tokens` at the next positions over everything the sequence holds (nothing is compressed), returning what
   * `options` asked for. With `stats: { accumulated: true }` and one token, `stats[layer].accumulated[h][slot]` is
   * query head h's attention probability of the new token on that slot.
   */
  extend(tokens: ArrayLike<number>, options?: ObserveOptions): ForwardObservation;
  /** The position each slot of (layer, kvHead) holds: slot = position except in sliding-window layers. */
  positions(layer: number, kvHead: number): Int32Array;
}

/** RoPE as the model applies it (HF "rotate half" layout, long-context scaling included). */
export interface RotaryEmbedding {
  /**
   * Rotates `vectors` [n × numHeads × headDim] in place as layer `layer` rotates queries and keys at `positions` [n];
   * `inverse` undoes that rotation (a vector observed after RoPE → the vector before it).
   */
  rotate(layer: number, vectors: Float32Array, numHeads: number, positions: ArrayLike<number>, inverse?: boolean): void;
}

/** What a preparation step's `inputs` may look at without running the model. */
export interface PreparationModelInfo {
  /** The model reference as the manifest gave it; labels artefacts. */
  readonly ref: string;
  /** SHA-256 of the model file(s) (model-zoo's `modelDigest`, the same as result rows carry). */
  readonly digest: string;
  readonly shape: ModelShape;
  readonly tokenizer: PreparationTokenizer;
}

/** The narrow model interface of a preparation step. */
export interface PreparationModel extends PreparationModelInfo {
  /** Full-attention prefill of `tokens` into a fresh cache. */
  prefill(tokens: ArrayLike<number>, options?: ObserveOptions): ForwardObservation & { readonly sequence: PreparedSequence };
  /** Absent when the engine does not expose its RoPE; a step that needs it says so (`requireRotary`). */
  readonly rotary?: RotaryEmbedding;
}

/**
 * A policy's per-model preparation step (`PolicyDefinition.prepare`). `A` is the artefact: plain JSON.
 *
 *   const inputs = step.inputs(params, model);         // null: these params need no preparation
 *   const artefact = cached(digest, inputs) ?? step.run(model, inputs);
 *   const policy = definition.create(params, { modelRef, prepared: artefact });
 */
export interface PreparationStep<S extends ParamsSchema = ParamsSchema, A = unknown> {
  /** One line for logs, e.g. "head calibration: one prefill of random tokens repeated 4 times". */
  readonly description: string;
  /** Bumped when `run` computes something else for the same inputs; part of the cache key. */
  readonly version: number;
  /**
   * Everything besides the model file that determines the artefact, with defaults resolved against the model (a
   * block length from its context, a BOS id from its tokenizer), as plain JSON; null when these params need no
   * preparation (e.g. an artefact given explicitly in the manifest). Throws a RazorkvError for inputs the model
   * cannot take. Parameters that only change how the policy uses the artefact (how many heads it protects) belong
   * in `create` and `headSelection`, not here: the cached artefact serves them all.
   */
  inputs(params: ParamsOf<S>, model: PreparationModelInfo): Record<string, unknown> | null;
  /** Computes the artefact. Must depend on `model` and `inputs` only. */
  run(model: PreparationModel, inputs: Record<string, unknown>, log?: (line: string) => void): A;
  /** Validates an artefact read back from JSON (a cache file); a RazorkvError names `source` and the field. */
  parse(value: unknown, source: string): A;
  /**
   * For head-level methods: the per-(layer, KV head) scores and the protected set this policy (with `params`)
   * derives from the artefact, in the one shape the report draws for any policy (head-selection.ts).
   */
  headSelection?(artefact: A, params: ParamsOf<S>): HeadSelection;
}

/** The model's RoPE, or a RazorkvError naming `who` when the engine does not expose it. */
export function requireRotary(model: PreparationModel, who: string): RotaryEmbedding {
  if (!model.rotary) throw new RazorkvError(`${who}: needs the model's RoPE (PreparationModel.rotary), which the engine running ${model.ref} does not expose`);
  return model.rotary;
}

/**
 * Query head `head`'s softmax weights for the view's query `query` over every slot of its KV head (GQA: head h reads
 * KV head ⌊h / (numHeads / numKvHeads)⌋), as the reference attention computes them (attention.ts): causal by
 * position, the layer's sliding window, soft-capping, and the compensation slot, whose weight is the last entry when
 * the head has one. Slots a query cannot see weigh 0. Float64, summing to 1.
 */
export function attentionWeights(view: AttentionView, query: number, head: number): Float64Array {
  const { cache, layer, numHeads, queries, queryPositions, scale } = view;
  const d = cache.headDim;
  const group = numHeads / cache.numKvHeads;
  if (!Number.isInteger(group)) throw new Error(`attentionWeights: numHeads ${numHeads} is not a multiple of numKvHeads ${cache.numKvHeads}`);
  if (query < 0 || query >= queryPositions.length) throw new Error(`attentionWeights: query ${query} outside [0, ${queryPositions.length})`);
  if (head < 0 || head >= numHeads) throw new Error(`attentionWeights: head ${head} outside [0, ${numHeads})`);
  const kv = cache.head(layer, Math.floor(head / group));
  const comp = kv.compensation;
  const weights = new Float64Array(kv.length + (comp ? 1 : 0));
  const qPos = queryPositions[query];
  const window = cache.window(layer);
  const qBase = (query * numHeads + head) * d;
  const logit = (key: ArrayLike<number>, base: number) => {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += queries[qBase + i] * key[base + i];
    const x = dot * scale;
    return view.softcap === undefined ? x : view.softcap * Math.tanh(x / view.softcap);
  };
  let max = -Infinity;
  const visible: number[] = [];
  for (let s = 0; s < kv.length; s++) {
    const p = kv.positions[s];
    if (p > qPos || (window !== null && p <= qPos - window)) continue;
    weights[s] = logit(kv.keys, s * d);
    visible.push(s);
    if (weights[s] > max) max = weights[s];
  }
  if (comp) {
    weights[kv.length] = logit(comp.key, 0) + Math.log(comp.count);
    visible.push(kv.length);
    if (weights[kv.length] > max) max = weights[kv.length];
  }
  let sum = 0;
  for (const s of visible) sum += weights[s] = Math.exp(weights[s] - max);
  for (const s of visible) weights[s] /= sum;
  return weights;
}
