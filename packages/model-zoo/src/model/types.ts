/**
 * What a model file yields, whatever its format: a Llama-family config and f32 weights in Hugging Face layout.
 *
 * Tensor names are GGUF's (`token_embd.weight`, `blk.{i}.attn_q.weight`, …); the safetensors loader maps HF names
 * onto them. Shapes are PyTorch's, outermost first: a linear layer is [out, in], row-major. Q and K projections are
 * in HF's layout (RoPE rotates dimension i with i + headDim/2): the GGUF loader undoes llama.cpp's interleaving
 * permutation for llama-architecture files, so the forward pass has one RoPE.
 */
export interface LlamaConfig {
  /** GGUF `general.architecture` or HF `model_type`: llama, mistral, qwen2, smollm… (all run the same pass). */
  readonly architecture: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxContext: number;
  /** Output projection shares the token embedding (no `output.weight`). */
  readonly tiedEmbeddings: boolean;
  /** Qwen2-style biases on the Q, K and V projections (`blk.{i}.attn_{q,k,v}.bias`). */
  readonly qkvBias: boolean;
  /**
   * How RoPE's frequencies are rescaled for long contexts (Llama 3.1+, YaRN, …); absent for the original RoPE.
   * Optional so that a config written before scaling existed still means the same model.
   */
  readonly ropeScaling?: RopeScaling;
  /** Qwen3: RMSNorm over each head of q and k before RoPE (`blk.{i}.attn_{q,k}_norm.weight`, [headDim]). */
  readonly qkNorm?: boolean;
  /**
   * Per layer, its sliding window W (a query at p attends to positions (p − W, p], transformers' convention) or null
   * for full attention: Mistral (every layer), Gemma 2 (even layers), Gemma 3 (five of six). Absent: all full.
   */
  readonly layerWindows?: readonly (number | null)[];
  /**
   * RoPE of the sliding-window layers when it differs from the others' (Gemma 3: `rope_local_base_freq`, unscaled,
   * while the global layers carry the long-context scaling). Absent: every layer uses ropeTheta / ropeScaling.
   */
  readonly localRope?: { readonly theta: number; readonly scaling?: RopeScaling };
  /**
   * Gemma 2/3 blocks: RMSNorm also on the attention output and on the MLP output before each residual add
   * (`blk.{i}.post_attention_norm.weight`, `blk.{i}.post_ffw_norm.weight`; `ffn_norm` is the pre-MLP norm).
   * Norm weights are stored as the multiplier (Gemma's 1 + w, which its GGUF already holds).
   */
  readonly sandwichNorms?: boolean;
  /** The gated MLP's activation: SwiGLU's silu (default) or GeGLU's tanh-approximated gelu (gelu_pytorch_tanh). */
  readonly mlpActivation?: "silu" | "gelu-tanh";
  /** Multiplies the token embedding (Gemma: √hidden, rounded to the embedding's dtype as transformers does). */
  readonly embeddingScale?: number;
  /** Softmax scale of attention logits; absent: 1/√headDim (Gemma: query_pre_attn_scalar^−½). */
  readonly attentionScale?: number;
  /** Gemma 2: attention logits x → cap · tanh(x / cap) before the softmax. */
  readonly attentionSoftcap?: number;
  /** Gemma 2: output logits x → cap · tanh(x / cap). */
  readonly finalSoftcap?: number;
}

/**
 * RoPE scaling, as transformers' `ROPE_INIT_FUNCTIONS` (modeling_rope_utils.py) computes it; every field is already
 * resolved (defaults applied), so the tables need nothing else from the file. `originalContext` is the context the
 * model was pretrained with.
 */
export type RopeScaling =
  /** Position interpolation (Chen et al. 2023): every frequency divided by `factor`. */
  | { readonly type: "linear"; readonly factor: number }
  /**
   * Dynamic NTK (bloc97, emozilla 2023): past `originalContext` tokens the base grows with the sequence length,
   * base · (factor · len / originalContext − (factor − 1))^(d / (d − 2)). transformers uses the length of the call
   * (largest position + 1), so keys already cached keep the rotation they were written with.
   */
  | { readonly type: "dynamic"; readonly factor: number; readonly originalContext: number }
  /** YaRN (Peng et al. 2023, eq. 15–20): a ramp between interpolated and original frequencies, cos/sin scaled. */
  | {
      readonly type: "yarn";
      readonly factor: number;
      readonly originalContext: number;
      readonly betaFast: number;
      readonly betaSlow: number;
      /** Multiplies cos and sin (so attention logits by its square): 0.1·ln(factor) + 1 unless the file says. */
      readonly attentionFactor: number;
      /** Round the correction range outward to whole dimensions (transformers' default, llama.cpp's only way). */
      readonly truncate: boolean;
    }
  /** Llama 3.1 (`_compute_llama3_parameters`): low frequencies divided by factor, a smooth band in between. */
  | {
      readonly type: "llama3";
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalContext: number;
    }
  /** llama.cpp's `rope_freqs.weight`: frequency i divided by factors[i] (how GGUF stores Llama 3.1's scaling). */
  | { readonly type: "frequency-factors"; readonly factors: readonly number[] }
  /**
   * LongRoPE (Ding et al. 2024, arXiv 2402.13753), as Phi-3/3.5 use it (transformers' `_compute_longrope_parameters`
   * and `dynamic_rope_update`): frequency i is divided by shortFactor[i] in a call whose sequence reaches at most
   * `originalContext` tokens (largest position + 1), by longFactor[i] in a longer one; cos and sin are multiplied by
   * `attentionFactor` either way. The choice is per call, as transformers' forward makes it: keys already cached keep
   * the rotation they were written with when a later call crosses the threshold. (transformers' generate() instead
   * drops the cache once and prefills everything again with the long factors; llama.cpp picks one list for the whole
   * run from its context size n_ctx.)
   */
  | {
      readonly type: "longrope";
      /** [headDim/2] divisors while the sequence is within the original context. */
      readonly shortFactor: readonly number[];
      /** [headDim/2] divisors once it is longer. */
      readonly longFactor: readonly number[];
      readonly originalContext: number;
      /** √(1 + ln(factor) / ln(originalContext)) for factor = maxContext / originalContext > 1, unless the file says. */
      readonly attentionFactor: number;
    };

export interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * A weight matrix [rows × cols] (PyTorch's [out, in]) in the type the forward pass multiplies by: f32 values, or
 * the raw blocks of a GGML type as the file stores them (issue #19: quantized weights stay quantized in memory and
 * the kernels compute from the blocks). Each row is cols / blockSize whole blocks, so rows [a, b) are the bytes
 * [a·rowBytes, b·rowBytes): row views (Phi-3's fused projections, the embedding lookup) need no decoding.
 */
export type WeightMatrix = F32Matrix | BlockMatrix;

export interface F32Matrix {
  readonly kind: "f32";
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  /** [rows × cols], row-major. */
  readonly data: Float32Array;
}

export interface BlockMatrix {
  readonly kind: "blocks";
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  /** ggml type id (formats/dequant.ts `GgmlType`): F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K–Q6_K, IQ4_NL, IQ4_XS. */
  readonly type: number;
  readonly typeName: string;
  /** [rows × rowBytes] bytes in ggml's block layout (ggml-common.h; decoders in formats/dequant.ts). */
  readonly bytes: Uint8Array;
  /** Bytes of one row: cols / blockSize · typeSize. */
  readonly rowBytes: number;
}

export interface ModelWeights {
  readonly config: LlamaConfig;
  /** The file or directory the weights come from, for errors. */
  readonly source?: string;
  /**
   * Every tensor name the file holds, when the format lists them: the model refuses a file holding tensors its
   * forward pass would silently ignore (a q/k norm, an output bias…).
   */
  tensorNames?(): readonly string[];
  /** Looks a tensor up by its GGUF name, decoded to f32; throws a clear error naming the tensor and the file when absent. */
  tensor(name: string): Tensor;
  /**
   * A 2-D weight in its stored type (quantized blocks, f16/bf16 kept as such, f32 as f32), without an f32 copy of a
   * quantized tensor; throws like `tensor` when absent or not 2-D. Absent: the forward pass reads `tensor(name)`.
   */
  matrix?(name: string): WeightMatrix;
  has(name: string): boolean;
}
