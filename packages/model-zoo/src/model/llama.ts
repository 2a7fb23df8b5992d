/**
 * The Llama-family forward pass (Llama 2/3.x, Mistral, Qwen2/2.5, Qwen3, SmolLM, Gemma 2/3 text): pre-norm decoder
 * blocks of RMSNorm → attention (RoPE with its long-context scaling, GQA, optional QKV bias, optional per-head q/k
 * RMSNorm before RoPE, optional sliding window and logit soft-capping) → [RMSNorm] → residual → RMSNorm → gated MLP
 * (SwiGLU, or Gemma's GeGLU) → [RMSNorm] → residual, then a final RMSNorm and the output projection (tied to the
 * embedding or not, Gemma 2's output soft-capping). The bracketed norms are Gemma's sandwich norms.
 *
 * Every token's keys and values go into a core `KvCache`, so each head's cache is ours to shape between calls:
 * prefill fills it, a policy compresses it, decode appends to it and attends over whatever it holds. The cache of a
 * sliding-window layer is the model's own business: after every forward the pass drops what no later query of that
 * layer can attend (core's `trimToWindows`), so such a head holds the last min(N, W) positions (DESIGN §3).
 */
import { KvCache, RazorkvError, trimToWindows, type AttentionStatsRequest, type CacheLayout, type LayerAttentionStats } from "@razorkv/core";
import { matmulWeight, matmulWeightsDot, typescriptBackend, weightRow, type ComputeBackend, type QuantPath } from "./backend.js";
import { checkNoUnusedTensors } from "../formats/llama-tensors.js";
import { addBias, addInPlace, gegluTanh, softcapInPlace } from "./ops.js";
import { Rope } from "./rope.js";
import type { LlamaConfig, ModelWeights, WeightMatrix } from "./types.js";

export interface ForwardOptions {
  /** Attention statistics to collect over this call's queries (H2O, SnapKV). */
  readonly stats?: AttentionStatsRequest;
  /** Which positions get logits: the last one (default), all of them, or none. */
  readonly logits?: "last" | "all" | "none";
  /**
   * Multiply every row of quantized matrices through f32 panels (the prefill's "dequant" path), single-token
   * segments included. For teacher-forced scoring, whose log-probs must stay the f32 model's within rounding (a
   * decode step's 8-bit activations move a mean NLL by ~0.01–0.02 nats). Default false: decode steps take "dot".
   */
  readonly exactProducts?: boolean;
}

/** decodeBatch's result: logits [B × vocabSize] and, when asked, per sequence its per-layer statistics. */
export interface BatchResult {
  readonly logits: Float32Array;
  readonly stats: LayerAttentionStats[][] | null;
}

export interface ForwardResult {
  /** [rows × vocabSize]: one row for "last", one per token for "all", empty for "none". */
  readonly logits: Float32Array;
  /** Per layer, when `stats` was asked for. */
  readonly stats: LayerAttentionStats[] | null;
}

interface LayerWeights {
  attnNorm: Float32Array;
  wq: WeightMatrix;
  wk: WeightMatrix;
  wv: WeightMatrix;
  wo: WeightMatrix;
  bq: Float32Array | null;
  bk: Float32Array | null;
  bv: Float32Array | null;
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  postAttnNorm: Float32Array | null;
  ffnNorm: Float32Array;
  postFfnNorm: Float32Array | null;
  wGate: WeightMatrix;
  wUp: WeightMatrix;
  wDown: WeightMatrix;
}

/**
 * Rows per ubatch of a chunked forward (forwardChunked): llama.cpp's default n_ubatch.
 *
 * When a forward is chunked (LlamaModelOptions.prefillChunkRows): by default only when its row buffers would take
 * more than CHUNK_ABOVE_WEIGHT_SHARE of the weights' bytes, i.e. when the pass's transient memory, not the model,
 * would dominate. Chunking is not free on the dequant path: every chunk decodes every weight matrix again, and a
 * 1B-shaped Q4_K_M prefill of 2048 tokens ran 5–8% slower in 512-row chunks (BENCHMARKS.md, "Resident memory of a 2K
 * generate"). So a 1B model's 2K prompt (buffers 226 MB, 28% of its weights) runs whole, while SmolLM2-135M's (52 MB, 57% of
 * 92 MB) and any model's long context (an 8B model's 32K prompt: 6.7 GB of buffers) run in ubatches.
 */
export const PREFILL_UBATCH_ROWS = 512;
/** See PREFILL_UBATCH_ROWS. */
const CHUNK_ABOVE_WEIGHT_SHARE = 1 / 3;
/** Slots a multi-token forward reserves past its rows in every head, for the decode steps that follow. */
const DECODE_HEADROOM = 64;

export interface LlamaModelOptions {
  /**
   * Rows per chunk of a long stats-free forward: a forward of more rows runs in chunks of at most this many.
   * Default: PREFILL_UBATCH_ROWS when the row buffers of the whole forward would exceed a third of the weights'
   * bytes, else one run. Infinity: always one run.
   */
  readonly prefillChunkRows?: number;
  /**
   * The arithmetic of a prefill's products with quantized weights (the rows of multi-token segments):
   * - "f32" (default): W decoded to f32 panels and the f32 GEMM: transformers' float result within rounding (the
   *   parity tests' 1e-3).
   * - "int8": llama.cpp-style 8-bit activations — each row of x quantized to 8 bits per block and integer dot
   *   products, as a decode step already computes (kernels-cpu's "int8" path: an AVX-512 VNNI GEMM for Q8_0, Q4_0,
   *   Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K, about twice the f32 path's products on this project's machine; the
   *   per-row dot kernels for the other block types, and on a CPU without VNNI). A prefill's logits then move
   *   within the 8-bit bound of the activations; BENCHMARKS.md ("Prefill with 8-bit products") gives the NLL it
   *   costs. F32, F16 and BF16 matrices stay f32. ForwardOptions.exactProducts still forces f32. Needs the native
   *   backend (throws RazorkvError on the TypeScript one, which computes in f32 only).
   */
  readonly prefillProducts?: PrefillProducts;
}

/** LlamaModelOptions.prefillProducts. */
export type PrefillProducts = "f32" | "int8";

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly backend: ComputeBackend;
  private readonly embedding: WeightMatrix;
  private readonly outputNorm: Float32Array;
  private readonly output: WeightMatrix;
  private readonly layers: LayerWeights[];
  private readonly rope: Rope;
  /** RoPE of the sliding-window layers when it differs (Gemma 3), else `rope`. */
  private readonly localRope: Rope;
  private readonly windows: readonly (number | null)[];
  /** LlamaModelOptions.prefillChunkRows, or null for the default rule (see PREFILL_UBATCH_ROWS). */
  private readonly prefillChunkRows: number | null;
  /** LlamaModelOptions.prefillProducts. */
  readonly prefillProducts: PrefillProducts;
  /** Bytes of the weight matrices (the tied embedding once): what a forward's row buffers are weighed against. */
  private readonly weightBytes: number;

  constructor(weights: ModelWeights, backend: ComputeBackend = typescriptBackend, options: LlamaModelOptions = {}) {
    const c = weights.config;
    const chunkRows = options.prefillChunkRows;
    if (chunkRows !== undefined && !(chunkRows >= 2)) {
      throw new Error(`LlamaModel: prefillChunkRows must be at least 2 (a one-row chunk would decode), got ${chunkRows}`);
    }
    this.prefillChunkRows = chunkRows ?? null;
    const products = options.prefillProducts ?? "f32";
    if (products !== "f32" && products !== "int8") throw new Error(`LlamaModel: prefillProducts must be "f32" or "int8", got ${JSON.stringify(products)}`);
    // the TypeScript reference multiplies in f32 whatever it is asked: an int8 model on it would be an f32 model
    // under an int8 label (and an int8 row key)
    if (products === "int8" && !backend.quantMatmul) {
      throw new RazorkvError(`LlamaModel: prefillProducts "int8" needs the native kernels (kernels-cpu); the ${backend.name} backend multiplies in f32`);
    }
    this.prefillProducts = products;
    // a tensor the pass would not read means a model we do not implement, not a harmless extra
    if (weights.tensorNames) checkNoUnusedTensors(weights.source ?? "model", c, weights.tensorNames());
    this.config = c;
    this.backend = backend;
    const t = (name: string, shape: number[]): Float32Array => {
      const tensor = weights.tensor(name);
      const size = shape.reduce((a, b) => a * b, 1);
      if (tensor.data.length !== size) {
        throw new Error(`tensor ${name}: expected shape [${shape.join(", ")}] (${size} values), found [${tensor.shape.join(", ")}]`);
      }
      return tensor.data;
    };
    // matrices in their stored type when the weights can give it (quantized blocks stay blocks), else f32
    const m = (name: string, rows: number, cols: number): WeightMatrix => {
      if (!weights.matrix) return { kind: "f32", name, rows, cols, data: t(name, [rows, cols]) };
      const w = weights.matrix(name);
      if (w.rows !== rows || w.cols !== cols) throw new Error(`tensor ${name}: expected shape [${rows}, ${cols}], found [${w.rows}, ${w.cols}]`);
      return w;
    };
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    this.embedding = m("token_embd.weight", c.vocabSize, c.hiddenSize);
    this.outputNorm = t("output_norm.weight", [c.hiddenSize]);
    this.output = c.tiedEmbeddings ? this.embedding : m("output.weight", c.vocabSize, c.hiddenSize);
    this.layers = [];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `blk.${l}.`;
      this.layers.push({
        attnNorm: t(p + "attn_norm.weight", [c.hiddenSize]),
        wq: m(p + "attn_q.weight", qDim, c.hiddenSize),
        wk: m(p + "attn_k.weight", kvDim, c.hiddenSize),
        wv: m(p + "attn_v.weight", kvDim, c.hiddenSize),
        wo: m(p + "attn_output.weight", c.hiddenSize, qDim),
        bq: c.qkvBias ? t(p + "attn_q.bias", [qDim]) : null,
        bk: c.qkvBias ? t(p + "attn_k.bias", [kvDim]) : null,
        bv: c.qkvBias ? t(p + "attn_v.bias", [kvDim]) : null,
        qNorm: c.qkNorm ? t(p + "attn_q_norm.weight", [c.headDim]) : null,
        kNorm: c.qkNorm ? t(p + "attn_k_norm.weight", [c.headDim]) : null,
        postAttnNorm: c.sandwichNorms ? t(p + "post_attention_norm.weight", [c.hiddenSize]) : null,
        ffnNorm: t(p + "ffn_norm.weight", [c.hiddenSize]),
        postFfnNorm: c.sandwichNorms ? t(p + "post_ffw_norm.weight", [c.hiddenSize]) : null,
        wGate: m(p + "ffn_gate.weight", c.intermediateSize, c.hiddenSize),
        wUp: m(p + "ffn_up.weight", c.intermediateSize, c.hiddenSize),
        wDown: m(p + "ffn_down.weight", c.hiddenSize, c.intermediateSize),
      });
    }
    const matrices = new Set([this.embedding, this.output, ...this.layers.flatMap((w) => [w.wq, w.wk, w.wv, w.wo, w.wGate, w.wUp, w.wDown])]);
    this.weightBytes = [...matrices].reduce((n, w) => n + (w.kind === "f32" ? w.data.byteLength : w.bytes.byteLength), 0);
    this.rope = new Rope(c.headDim, c.ropeTheta, c.ropeScaling);
    this.localRope = c.localRope ? new Rope(c.headDim, c.localRope.theta, c.localRope.scaling) : this.rope;
    this.windows = c.layerWindows ?? Array.from({ length: c.numLayers }, () => null);
    if (this.windows.length !== c.numLayers) throw new Error(`config: ${this.windows.length} layer windows for ${c.numLayers} layers`);
  }

  /** The cache's layers and sliding windows, for budget arithmetic before any prefill (a dry run's checkFeasible). */
  get cacheLayout(): CacheLayout {
    const c = this.config;
    return { numLayers: c.numLayers, numKvHeads: c.numKvHeads, layerWindows: this.windows };
  }

  /** An empty cache shaped for this model (sliding-window layers included). */
  newCache(): KvCache {
    const c = this.config;
    return new KvCache({ numLayers: c.numLayers, numKvHeads: c.numKvHeads, headDim: c.headDim, layerWindows: c.layerWindows });
  }

  /** Full-attention prefill of `tokens` into a fresh cache. */
  prefill(tokens: ArrayLike<number>, options: ForwardOptions = {}): ForwardResult & { cache: KvCache } {
    const cache = this.newCache();
    return { cache, ...this.forward(cache, tokens, options) };
  }

  /** One greedy-decoding step: appends `token` to the cache and returns its next-token logits. */
  decode(cache: KvCache, token: number): Float32Array {
    return this.forward(cache, [token]).logits;
  }

  /**
   * Runs `tokens` at positions cache.nextPosition … +tokens.length−1, appending their keys and values to every
   * head of the cache and attending over what each head holds (compressed or not).
   */
  forward(cache: KvCache, tokens: ArrayLike<number>, options: ForwardOptions = {}): ForwardResult {
    if (tokens.length === 0) throw new Error("forward: no tokens");
    const rows = options.stats || this.trimWouldDropCompensation(cache) ? Infinity : this.chunkRows(tokens.length);
    // at least two rows a chunk: a one-row chunk would take the decode path (prefillChunkRows 2 on 5 tokens: 2, 1, 2)
    const chunks = Math.max(1, Math.min(Math.ceil(tokens.length / rows), Math.floor(tokens.length / 2)));
    if (chunks === 1) {
      const { logits, stats } = this.run([{ cache, tokens }], options);
      return { logits, stats: stats ? stats[0] : null };
    }
    return { logits: this.forwardChunked(cache, tokens, chunks, options), stats: null };
  }

  /**
   * True when a head of a sliding-window layer carries a compensation slot. The window trim after each run drops
   * such a slot (core's dropBefore), which the later rows of one run would still attend: such a forward runs whole.
   */
  private trimWouldDropCompensation(cache: KvCache): boolean {
    const H = this.config.numKvHeads;
    return cache.heads.some((head, i) => head.compensation !== null && this.windows[Math.floor(i / H)] !== null);
  }

  /** Rows per chunk of a stats-free forward of `n` rows (Infinity: one run); see PREFILL_UBATCH_ROWS. */
  private chunkRows(n: number): number {
    if (this.prefillChunkRows !== null) return this.prefillChunkRows;
    const c = this.config;
    // x, normed, proj [H]; q, attn [heads·d]; k, v [kvHeads·d]; gate, up [F]: f32, per row (run's buffers)
    const rowBytes = 4 * (3 * c.hiddenSize + 2 * c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim + 2 * c.intermediateSize);
    return n * rowBytes > CHUNK_ABOVE_WEIGHT_SHARE * this.weightBytes ? PREFILL_UBATCH_ROWS : Infinity;
  }

  /**
   * A long stats-free forward in `chunks` runs of (nearly) equal length, each appending to the cache and attending
   * over all it holds, as llama.cpp splits a batch into ubatches: the per-row buffers of a pass (25 KB a row for
   * SmolLM2-135M, 110 KB for a 1B model) then cover one chunk, not the whole prompt. Every row is still computed as
   * in one run: matrix products are per row, attention is causal by position over the cache. The chunks are equal so
   * that none is a single token, which would take the decode path's 8-bit activations. Every full-attention head is
   * reserved up front for the whole run plus DECODE_HEADROOM slots, so neither a chunk nor the first decode steps
   * regrow (and copy) it. RoPE's length-dependent scalings (dynamic NTK, LongRoPE) see the whole run's length in every
   * chunk, as in one run. The tokens and the context are checked before anything is written, so a refused forward
   * leaves the cache as it was, as one run does.
   */
  private forwardChunked(cache: KvCache, tokens: ArrayLike<number>, chunks: number, options: ForwardOptions): Float32Array {
    const c = this.config;
    const n = tokens.length;
    this.checkSegment(cache, tokens);
    const ropeLength = cache.nextPosition + n;
    for (let l = 0; l < c.numLayers; l++) {
      if (this.windows[l] !== null) continue; // trimmed to the window after every chunk
      for (let kv = 0; kv < c.numKvHeads; kv++) {
        const head = cache.head(l, kv);
        head.reserve(head.length + n + DECODE_HEADROOM);
      }
    }
    const mode = options.logits ?? "last";
    const all = mode === "all" ? new Float32Array(n * c.vocabSize) : null;
    let logits: Float32Array = new Float32Array(0);
    const buffers = new PassBuffers();
    for (let i = 0, start = 0; i < chunks; i++) {
      const end = Math.round(((i + 1) * n) / chunks);
      const part = Array.prototype.slice.call(tokens, start, end) as number[];
      const last = i === chunks - 1;
      const chunkMode = all ? "all" : last ? mode : "none";
      logits = this.run([{ cache, tokens: part, ropeLength }], { ...options, logits: chunkMode }, buffers).logits;
      all?.set(logits, start * c.vocabSize);
      start = end;
    }
    return all ?? logits;
  }

  /**
   * One decode step for several independent sequences at once (e.g. the cells of a sweep, each with its own
   * compressed cache): the weight matrices are read once for the whole batch. Returns [B × vocabSize] logits.
   */
  decodeBatch(caches: readonly KvCache[], tokens: readonly number[], options: Omit<ForwardOptions, "logits"> = {}): BatchResult {
    return this.extendBatch(caches, tokens.map((t) => [t]), options);
  }

  /**
   * Continues several caches by a run of tokens each (lengths may differ), in one pass whose matrix products see
   * all rows together — a question fed to every cell of a sweep costs one large GEMM instead of one per token.
   * Returns each sequence's last-position logits ([B × vocabSize]) and, when asked, its statistics.
   */
  extendBatch(caches: readonly KvCache[], tokens: readonly (readonly number[])[], options: Omit<ForwardOptions, "logits"> = {}): BatchResult {
    if (caches.length !== tokens.length) throw new Error(`extendBatch: ${caches.length} caches but ${tokens.length} token runs`);
    if (caches.length === 0) throw new Error("extendBatch: empty batch");
    if (new Set(caches).size !== caches.length) throw new Error("extendBatch: the same cache appears twice in one batch");
    if (tokens.some((t) => t.length === 0)) throw new Error("extendBatch: an empty token run");
    return this.run(caches.map((cache, i) => ({ cache, tokens: tokens[i] })), { ...options, logits: "segment-last" });
  }

  /** Throws unless `tokens` are vocabulary ids that fit in the model's context after what `cache` holds. */
  private checkSegment(cache: KvCache, tokens: ArrayLike<number>): void {
    const c = this.config;
    if (cache.nextPosition + tokens.length > c.maxContext) {
      throw new Error(`forward: ${cache.nextPosition + tokens.length} tokens exceed the model's context of ${c.maxContext}`);
    }
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`forward: token id ${id} outside the vocabulary of ${c.vocabSize}`);
    }
  }

  /**
   * The pass itself over a batch of segments: each segment is a run of tokens continuing one cache. Rows of all
   * segments go through the matrix products together; attention is per segment, over that segment's cache (one
   * `attendStep` call per layer for the single-token segments of a decode step, when the backend has it).
   *
   * Quantized matrices: rows of multi-token segments (a prefill, a question fed to a cell) take the "dequant" path
   * (W decoded to f32 panels, the f32 GEMM: transformers' float result within rounding, which the parity tests hold
   * to 1e-3; "int8" when LlamaModelOptions.prefillProducts asks for it), rows of single-token segments (a decode step) the "dot" path (8-bit activations, integer dots, as
   * llama.cpp decodes; each row's bits independent of the rest of the batch). Multi-token segments are laid out
   * first so each group is one contiguous block of rows. A segment's `ropeLength` is the sequence length RoPE's
   * length-dependent scalings see (default: its last position + 1; a chunk of a longer forward passes the forward's).
   */
  private run(
    segments: readonly { cache: KvCache; tokens: ArrayLike<number>; ropeLength?: number }[],
    options: { stats?: AttentionStatsRequest; logits?: ForwardOptions["logits"] | "segment-last"; exactProducts?: boolean },
    buffers: PassBuffers = new PassBuffers(),
  ): BatchResult {
    const c = this.config;
    const H = c.hiddenSize;
    const d = c.headDim;
    const qDim = c.numHeads * d;
    const kvDim = c.numKvHeads * d;
    const F = c.intermediateSize;
    const order = [
      ...segments.map((_, i) => i).filter((i) => segments[i].tokens.length > 1),
      ...segments.map((_, i) => i).filter((i) => segments[i].tokens.length === 1),
    ];
    const layout = order.map((index) => {
      const { cache, tokens, ropeLength } = segments[index];
      this.checkSegment(cache, tokens);
      const start = cache.nextPosition;
      return { index, cache, tokens, ropeLength: ropeLength ?? start + tokens.length, positions: Int32Array.from({ length: tokens.length }, (_, i) => start + i) };
    });
    const T = layout.reduce((n, s) => n + s.tokens.length, 0);
    // rows [0, P) belong to multi-token segments, [P, T) to single-token ones
    const P = options.exactProducts ? T : layout.reduce((n, s) => n + (s.tokens.length > 1 ? s.tokens.length : 0), 0);
    const backend = this.backend;
    // the quantized products' path for prefill rows
    const prefillPath: QuantPath = this.prefillProducts === "int8" && !options.exactProducts ? "int8" : "dequant";
    // outs[i] = input · ws[i]ᵀ over the T rows: the prefill rows [0, P) on the prefill path one matrix at a time, the
    // decode rows [P, T) on the dot path in one call for all the matrices (they share the input: Q, K, V; gate, up)
    const mm = (ws: readonly WeightMatrix[], input: Float32Array, outs: readonly Float32Array[], K: number): void => {
      if (P > 0) ws.forEach((w, i) => matmulWeight(backend, w, input.subarray(0, P * K), outs[i].subarray(0, P * w.rows), P, prefillPath));
      if (T > P) {
        const decodeOuts = ws.map((w, i) => outs[i].subarray(P * w.rows, T * w.rows));
        matmulWeightsDot(backend, ws, input.subarray(P * K, T * K), decodeOuts, T - P);
      }
    };

    const x = buffers.take("x", T * H);
    let row = 0;
    for (const s of layout) {
      for (let i = 0; i < s.tokens.length; i++, row++) {
        weightRow(backend, this.embedding, s.tokens[i], x.subarray(row * H, (row + 1) * H));
      }
    }
    // Gemma: × √hidden (already rounded to the embedding's dtype); each product rounds to float32, as torch's
    if (c.embeddingScale !== undefined) for (let i = 0; i < x.length; i++) x[i] *= c.embeddingScale;
    const normed = buffers.take("normed", T * H);
    const q = buffers.take("q", T * qDim);
    const k = buffers.take("k", T * kvDim);
    const v = buffers.take("v", T * kvDim);
    const attn = buffers.take("attn", T * qDim);
    const proj = buffers.take("proj", T * H);
    const gate = buffers.take("gate", T * F);
    const up = buffers.take("up", T * F);
    const stats: LayerAttentionStats[][] | null = options.stats ? segments.map(() => []) : null;
    // the single-token segments' attention goes to attendStep in one call per layer
    const stepped = backend.attendStep ? layout.filter((s) => s.tokens.length === 1) : [];
    const firstStepped = layout.length - stepped.length;

    for (let l = 0; l < c.numLayers; l++) {
      const w = this.layers[l];
      backend.rmsNorm(x, w.attnNorm, normed, T, c.rmsNormEps);
      mm([w.wq, w.wk, w.wv], normed, [q, k, v], H);
      if (w.bq && w.bk && w.bv) {
        addBias(q, w.bq, T);
        addBias(k, w.bk, T);
        addBias(v, w.bv, T);
      }
      if (w.qNorm && w.kNorm) {
        // Qwen3: each head's q and k normalized over headDim (rows of headDim values) before RoPE
        backend.rmsNorm(q, w.qNorm, q, T * c.numHeads, c.rmsNormEps);
        backend.rmsNorm(k, w.kNorm, k, T * c.numKvHeads, c.rmsNormEps);
      }
      const rope = this.windows[l] !== null ? this.localRope : this.rope;
      row = 0;
      for (const s of layout) {
        // per sequence: dynamic NTK scales by the length this sequence reaches, whatever the rest of the batch
        const n = s.tokens.length;
        rope.apply(q.subarray(row * qDim, (row + n) * qDim), c.numHeads, s.positions, s.ropeLength);
        rope.apply(k.subarray(row * kvDim, (row + n) * kvDim), c.numKvHeads, s.positions, s.ropeLength);
        row += n;
      }
      const scaling = {
        ...(c.attentionScale !== undefined ? { scale: c.attentionScale } : {}),
        ...(c.attentionSoftcap !== undefined ? { softcap: c.attentionSoftcap } : {}),
      };
      row = 0;
      for (const [position, s] of layout.entries()) {
        const n = s.tokens.length;
        for (let kv = 0; kv < c.numKvHeads; kv++) {
          const head = s.cache.head(l, kv);
          // a prompt leaves room for the first decode steps, which would otherwise regrow (copy) every head at once
          head.reserve(head.length + n + (n > 1 ? DECODE_HEADROOM : 0));
          for (let i = 0; i < n; i++) head.append(s.positions[i], k, v, ((row + i) * c.numKvHeads + kv) * d);
        }
        if (position < firstStepped) {
          const layerStats = backend.attend({
            cache: s.cache, layer: l, numHeads: c.numHeads,
            queries: q.subarray(row * qDim, (row + n) * qDim), queryPositions: s.positions,
            out: attn.subarray(row * qDim, (row + n) * qDim), stats: options.stats, ...scaling,
          });
          if (stats) stats[s.index].push(layerStats);
        }
        row += n;
      }
      if (stepped.length > 0 && backend.attendStep) {
        const base = T - stepped.length;
        const results = backend.attendStep({
          layer: l, numHeads: c.numHeads, ...scaling,
          sequences: stepped.map((s, i) => ({
            cache: s.cache, queryPositions: s.positions,
            queries: q.subarray((base + i) * qDim, (base + i + 1) * qDim),
            out: attn.subarray((base + i) * qDim, (base + i + 1) * qDim),
            ...(options.stats ? { stats: options.stats } : {}),
          })),
        });
        if (stats) stepped.forEach((s, i) => stats[s.index].push(results[i]));
      }
      mm([w.wo], attn, [proj], qDim);
      if (w.postAttnNorm) backend.rmsNorm(proj, w.postAttnNorm, proj, T, c.rmsNormEps);
      addInPlace(x, proj);

      backend.rmsNorm(x, w.ffnNorm, normed, T, c.rmsNormEps);
      mm([w.wGate, w.wUp], normed, [gate, up], H);
      if (c.mlpActivation === "gelu-tanh") (backend.gegluTanh ?? gegluTanh)(gate, up);
      else backend.swiglu(gate, up);
      mm([w.wDown], gate, [proj], F);
      if (w.postFfnNorm) backend.rmsNorm(proj, w.postFfnNorm, proj, T, c.rmsNormEps);
      addInPlace(x, proj);
    }
    for (const s of layout) {
      s.cache.nextPosition += s.tokens.length;
      // sliding-window layers keep only what a later query can attend; the statistics follow the slots
      const trimmed = trimToWindows(s.cache, stats?.[s.index]);
      if (stats && trimmed) stats[s.index] = trimmed;
    }

    const mode = options.logits ?? "last";
    if (mode === "none") return { logits: new Float32Array(0), stats };
    // rows of x whose logits are wanted, in segment order
    const rows: number[] = [];
    if (mode === "all") for (let r = 0; r < T; r++) rows.push(r);
    else if (mode === "last") rows.push(T - 1);
    else {
      const lastRow = new Array<number>(segments.length);
      row = 0;
      for (const s of layout) lastRow[s.index] = (row += s.tokens.length) - 1;
      rows.push(...lastRow);
    }
    const finalIn = new Float32Array(rows.length * H);
    rows.forEach((r, i) => finalIn.set(x.subarray(r * H, (r + 1) * H), i * H));
    const finalNormed = new Float32Array(rows.length * H);
    backend.rmsNorm(finalIn, this.outputNorm, finalNormed, rows.length, c.rmsNormEps);
    const logits = new Float32Array(rows.length * c.vocabSize);
    // the output projection follows the rows' own kind: a prefill's path, a decode step's "dot"
    if (mode === "segment-last") {
      // per segment: its last row is a prefill row when the segment is multi-token
      const multi = segments.map((sg) => options.exactProducts === true || sg.tokens.length > 1);
      const M = rows.length;
      const prefill = multi.map((m, i) => (m ? i : -1)).filter((i) => i >= 0);
      const decode = multi.map((m, i) => (m ? -1 : i)).filter((i) => i >= 0);
      for (const [group, groupPath] of [[prefill, prefillPath], [decode, "dot"]] as const) {
        if (group.length === 0) continue;
        const inRows = group.length === M ? finalNormed : gather(finalNormed, group, H);
        const outRows = group.length === M ? logits : new Float32Array(group.length * c.vocabSize);
        matmulWeight(backend, this.output, inRows, outRows, group.length, groupPath);
        if (outRows !== logits) group.forEach((g, i) => logits.set(outRows.subarray(i * c.vocabSize, (i + 1) * c.vocabSize), g * c.vocabSize));
      }
    } else matmulWeight(backend, this.output, finalNormed, logits, rows.length, T > 1 || options.exactProducts ? prefillPath : "dot");
    if (c.finalSoftcap !== undefined) softcapInPlace(logits, c.finalSoftcap);
    return { logits, stats };
  }
}

/**
 * The per-row buffers of one pass (hidden states, q/k/v, attention output, MLP), by name. Each run of a chunked
 * forward takes them from the same object, so the chunks reuse one set instead of each leaving its own to the
 * garbage collector, which frees them only at its next collection (two or three chunks' worth would be resident at
 * once). Every buffer is fully written before it is read in a pass, so reuse needs no clearing.
 */
class PassBuffers {
  private readonly arrays = new Map<string, Float32Array>();

  /** A buffer of `length` floats: the first `length` of the one kept under `name`, grown when too short. */
  take(name: string, length: number): Float32Array {
    let kept = this.arrays.get(name);
    if (kept === undefined || kept.length < length) {
      kept = new Float32Array(length);
      this.arrays.set(name, kept);
    }
    return kept.length === length ? kept : kept.subarray(0, length);
  }
}

/** Rows `rows` of x ([· × width]) gathered into a new array. */
function gather(x: Float32Array, rows: readonly number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(x.subarray(r * width, (r + 1) * width), i * width));
  return out;
}
