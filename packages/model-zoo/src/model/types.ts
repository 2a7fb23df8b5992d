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
}

export interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface ModelWeights {
  readonly config: LlamaConfig;
  /** Looks a tensor up by its GGUF name; throws a clear error naming the tensor and the file when absent. */
  tensor(name: string): Tensor;
  has(name: string): boolean;
}
