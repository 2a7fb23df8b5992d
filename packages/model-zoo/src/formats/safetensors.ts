/**
 * Hugging Face checkpoints: config.json + safetensors (one file or shards listed by model.safetensors.index.json)
 * → `ModelWeights` under GGUF tensor names.
 *
 * safetensors layout: u64 little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {...} }`, then the data section; offsets
 * are relative to the data section (byte 8 + N), tensors are row-major and little-endian. HF checkpoints already
 * keep Q/K in the layout our RoPE expects, so nothing is permuted.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LlamaConfig, ModelWeights, RopeScaling, Tensor, WeightMatrix } from "../model/types.js";
import { GgmlType, dequantize } from "./dequant.js";
import { ModelFileError } from "./errors.js";
import { checkLlamaTensors, checkNoUnusedTensors, splitFusedTensors } from "./llama-tensors.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

const DTYPES: Readonly<Record<SafetensorsDtype, { bytes: number; ggml: number }>> = {
  F32: { bytes: 4, ggml: GgmlType.F32 },
  F16: { bytes: 2, ggml: GgmlType.F16 },
  BF16: { bytes: 2, ggml: GgmlType.BF16 },
};

/** Header lengths above this are not a safetensors file (the reference implementation refuses > 100 MB too). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  /** Name in the file (HF's). */
  readonly name: string;
  /**
   * For a part of a fused tensor (Phi-3's qkv_proj and gate_up_proj, split at load): the rows [begin, end) of
   * `name` it is; `shape`, `fileOffset` and `byteLength` are the part's.
   */
  readonly rows?: readonly [number, number];
  /** As written in the header; only F32, F16 and BF16 can be read. */
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly file: string;
  /** Absolute byte offset in `file`. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly fileSize: number;
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
}

export interface SafetensorsModel extends ModelWeights {
  /** The checkpoint directory. */
  readonly dir: string;
  /** The safetensors files, in the order they were opened. */
  readonly files: readonly string[];
  /** config.json as parsed. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  /** GGUF name → where the tensor is stored. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** A 2-D tensor in its stored dtype: F16/BF16 as their bytes (never widened to f32), F32 as f32; cached. */
  matrix(name: string): WeightMatrix;
  /** Drops the tensors decoded or read so far. */
  clearCache(): void;
}

/** Reads a safetensors header and checks every tensor's dtype size and extent against the file. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fileSize: number;
  try {
    fileSize = statSync(path).size;
  } catch (err) {
    throw new ModelFileError(path, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  if (fileSize < 8) throw new ModelFileError(path, `truncated: ${fileSize} bytes cannot hold a safetensors header`);
  const headerLength = Number(new DataView(readRange(path, 0, 8).buffer).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) {
    throw new ModelFileError(path, `not a safetensors file: header length ${headerLength} is implausible`);
  }
  if (8 + headerLength > fileSize) {
    throw new ModelFileError(path, `truncated: the header needs bytes up to ${8 + headerLength} but the file has ${fileSize}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(readRange(path, 8, headerLength))) as Record<string, unknown>;
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new Error("the header is not a JSON object");
    }
  } catch (err) {
    throw new ModelFileError(path, `unparsable safetensors header: ${(err as Error).message}`, { cause: err });
  }

  const dataOffset = 8 + headerLength;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offsets = entry.data_offsets;
    if (
      typeof entry.dtype !== "string" ||
      !Array.isArray(entry.shape) ||
      !entry.shape.every((d) => Number.isInteger(d) && d >= 0) ||
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      throw new ModelFileError(path, `unparsable safetensors header: bad entry for tensor ${name}`);
    }
    const [begin, end] = offsets as [number, number];
    const shape = entry.shape as number[];
    const size = DTYPES[entry.dtype as SafetensorsDtype]?.bytes;
    if (size !== undefined && shape.reduce((a, b) => a * b, 1) * size !== end - begin) {
      throw new ModelFileError(
        path,
        `tensor ${name}: ${entry.dtype} [${shape.join(", ")}] needs ${shape.reduce((a, b) => a * b, 1) * size} bytes but its offsets span ${end - begin}`,
      );
    }
    const fileOffset = dataOffset + begin;
    tensors.set(name, { name, dtype: entry.dtype, shape, file: path, fileOffset, byteLength: end - begin });
  }

  const overruns = [...tensors.values()]
    .filter((t) => t.fileOffset + t.byteLength > fileSize)
    .sort((a, b) => a.fileOffset - b.fileOffset);
  if (overruns.length > 0) {
    const first = overruns[0];
    const more = overruns.length > 1 ? ` (and ${overruns.length - 1} more tensors past the end)` : "";
    throw new ModelFileError(
      path,
      `truncated: tensor ${first.name} needs bytes up to ${first.fileOffset + first.byteLength} but the file has ${fileSize}${more}`,
    );
  }
  return { path, fileSize, dataOffset, metadata, tensors };
}

/**
 * HF (Llama / Mistral / Qwen2 / Qwen3 / Gemma 2/3 / Phi-3) tensor name → GGUF name; undefined for tensors the
 * forward pass does not use. Gemma's block has four norms, and its post_attention_layernorm is the norm *after*
 * attention (GGUF post_attention_norm), where Llama's is the one before the MLP (ffn_norm). Phi-3's fused
 * projections get the converter's names, `attn_qkv` and `ffn_up` (gate and up), and are split by the loader.
 */
export function hfToGgufName(name: string, architecture = "llama"): string | undefined {
  const fixed: Record<string, string> = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
  };
  if (Object.hasOwn(fixed, name)) return fixed[name];
  const layer = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (layer === null) return undefined;
  const [, index, part, kind] = layer;
  const projections: Record<string, string> = architecture === "phi3"
    ? { "self_attn.qkv_proj": "attn_qkv", "mlp.gate_up_proj": "ffn_up" }
    : {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.q_norm": "attn_q_norm",
        "self_attn.k_norm": "attn_k_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
      };
  const parts: Record<string, string> = {
    ...projections,
    "self_attn.o_proj": "attn_output",
    "mlp.down_proj": "ffn_down",
    input_layernorm: "attn_norm",
    ...(GEMMA_TYPES.includes(architecture)
      ? { post_attention_layernorm: "post_attention_norm", pre_feedforward_layernorm: "ffn_norm", post_feedforward_layernorm: "post_ffw_norm" }
      : { post_attention_layernorm: "ffn_norm" }),
  };
  return Object.hasOwn(parts, part) ? `blk.${index}.${parts[part]}.${kind}` : undefined;
}

/** config.json model types of the Gemma 2/3 text models. */
const GEMMA_TYPES: readonly string[] = ["gemma2", "gemma3_text"];

/**
 * The config.json keys each architecture's parser understands, or knows to be irrelevant to the log-probabilities;
 * any other key stops the load (one line naming the file and the key), so a field a new model family adds cannot
 * be ignored silently. A rule is `true` (any value) or a check returning the problem with the value.
 */
type KeyRule = true | ((value: unknown, json: Readonly<Record<string, unknown>>) => string | undefined);

const isNullish = (v: unknown) => v === undefined || v === null;
const mustBe = (expected: unknown, why: string): KeyRule => (v) =>
  isNullish(v) || v === expected ? undefined : `${JSON.stringify(v)} is not implemented (${why})`;

/** Keys of every architecture: read by the parser below, or bookkeeping with no effect on the forward pass. */
const COMMON_KEYS: Readonly<Record<string, KeyRule>> = {
  // read
  model_type: true, num_hidden_layers: true, hidden_size: true, intermediate_size: true, num_attention_heads: true,
  num_key_value_heads: true, head_dim: true, vocab_size: true, rms_norm_eps: true, max_position_embeddings: true,
  tie_word_embeddings: true, rope_theta: true, rope_scaling: true, rope_parameters: true,
  original_max_position_embeddings: true,
  // checked
  hidden_act: (v) => (isNullish(v) || v === "silu" || v === "swish" ? undefined : `${JSON.stringify(v)} is not implemented (SwiGLU needs silu)`),
  mlp_bias: mustBe(false, "biases on the MLP projections"),
  rope_interleaved: mustBe(false, "adjacent-pair RoPE on HF weights"),
  partial_rotary_factor: (v) => (isNullish(v) || v === 1 ? undefined : `${JSON.stringify(v)} is not implemented (RoPE on part of each head)`),
  attn_logit_softcapping: mustBe(null, "soft-capped attention logits"),
  final_logit_softcapping: mustBe(null, "soft-capped output logits"),
  use_mrope: mustBe(false, "multimodal RoPE"),
  is_encoder_decoder: mustBe(false, "encoder-decoder models"),
  // 4.x LlamaForCausalLM splits the same products into slices when > 1: the same math, summed in another order
  pretraining_tp: true,
  // bookkeeping, tokens, training-only and generation settings
  architectures: true, transformers_version: true, torch_dtype: true, dtype: true, _name_or_path: true,
  use_cache: true, bos_token_id: true, eos_token_id: true, pad_token_id: true, sep_token_id: true,
  decoder_start_token_id: true, initializer_range: true, attention_dropout: true, hidden_dropout: true,
  is_llama_config: true, "transformers.js_config": true, tokenizer_class: true, output_attentions: true,
  output_hidden_states: true, return_dict: true, torchscript: true, use_bfloat16: true, id2label: true,
  label2id: true, problem_type: true, task_specific_params: true, finetuning_task: true, prefix: true,
  chunk_size_feed_forward: true, is_decoder: true, add_cross_attention: true, cross_attention_hidden_size: true,
  tie_encoder_decoder: true, pruned_heads: true, tf_legacy_loss: true, _attn_implementation: true,
  _attn_implementation_autoset: true, attn_implementation: true, max_length: true, min_length: true,
  do_sample: true, early_stopping: true, num_beams: true, num_beam_groups: true, diversity_penalty: true,
  temperature: true, top_k: true, top_p: true, typical_p: true, repetition_penalty: true, length_penalty: true,
  no_repeat_ngram_size: true, encoder_no_repeat_ngram_size: true, bad_words_ids: true,
  num_return_sequences: true, output_scores: true, return_dict_in_generate: true, forced_bos_token_id: true,
  forced_eos_token_id: true, remove_invalid_values: true, exponential_decay_length_penalty: true,
  suppress_tokens: true, begin_suppress_tokens: true,
};

/** Qwen's optional sliding-window layers are not implemented (Mistral's and Gemma's are): refused below the context. */
const refuseWindow = (window: unknown, maxContext: number): string | undefined =>
  typeof window === "number" && window < maxContext
    ? `${window} is not implemented (Qwen's sliding-window layers below the context of ${maxContext} are refused)`
    : undefined;

const windowValue: KeyRule = (v) =>
  isNullish(v) || (Number.isInteger(v) && (v as number) > 0) ? undefined : `expected a positive integer or null, found ${JSON.stringify(v)}`;

const layerTypes: KeyRule = (v, json) => {
  if (isNullish(v)) return undefined;
  if (!Array.isArray(v) || !v.every((t) => t === "sliding_attention" || t === "full_attention")) {
    return `${JSON.stringify(v)} is not implemented (layer types other than sliding_attention and full_attention)`;
  }
  return v.length === Number(json["num_hidden_layers"]) ? undefined : `${v.length} entries for ${String(json["num_hidden_layers"])} layers`;
};

const softcap: KeyRule = (v) =>
  isNullish(v) || (typeof v === "number" && v > 0) ? undefined : `expected a positive number or null, found ${JSON.stringify(v)}`;

/** Keys of both Gemma text models (Gemma2Config, Gemma3TextConfig): read below, or without effect on the logits. */
const gemmaKeys: Readonly<Record<string, KeyRule>> = {
  query_pre_attn_scalar: (v) => (isNullish(v) || (typeof v === "number" && v > 0) ? undefined : `expected a positive number, found ${JSON.stringify(v)}`),
  sliding_window: windowValue,
  // gemma-2 checkpoints repeat the window here; transformers reads sliding_window only
  sliding_window_size: (v, json) =>
    isNullish(v) || v === json["sliding_window"] ? undefined : `${JSON.stringify(v)} differs from sliding_window ${JSON.stringify(json["sliding_window"])}`,
  layer_types: layerTypes,
  attn_logit_softcapping: softcap,
  final_logit_softcapping: softcap,
  hidden_activation: (v) =>
    isNullish(v) || v === "gelu_pytorch_tanh" ? undefined : `${JSON.stringify(v)} is not implemented (GeGLU with gelu_pytorch_tanh)`,
  // Gemma's MLP reads hidden_activation; 4.x configs also carry hidden_act, which it does not read
  hidden_act: true,
  attention_bias: mustBe(false, "biases on q/k/v/o projections"),
  use_bidirectional_attention: mustBe(false, "bidirectional attention"),
  cache_implementation: true,
};

/** Qwen2/Qwen3: a window applies only with use_sliding_window, and only to layers ≥ max_window_layers. */
const qwenWindowKeys: Readonly<Record<string, KeyRule>> = {
  use_sliding_window: true,
  max_window_layers: true,
  layer_types: true,
  sliding_window: (v, json) => {
    if (json["use_sliding_window"] !== true || isNullish(v)) return undefined;
    const layers = Number(json["num_hidden_layers"]);
    const types = Array.isArray(json["layer_types"])
      ? (json["layer_types"] as unknown[])
      : Array.from({ length: layers }, (_, i) => (i >= Number(json["max_window_layers"] ?? 28) ? "sliding_attention" : "full_attention"));
    if (!types.includes("sliding_attention")) return undefined;
    return refuseWindow(v, Number(json["max_position_embeddings"] ?? 32768));
  },
};

interface ArchitectureRules {
  /** transformers' defaults for fields the file may omit (each config class's own). */
  readonly defaults: { numKvHeads?: number; headDim?: number; rmsNormEps: number; maxContext: number };
  readonly keys: Readonly<Record<string, KeyRule>>;
  /** QKV biases: Qwen2 always, others when attention_bias (which also puts one on o_proj: refused for now). */
  readonly qkvBias: "always" | "never";
  readonly qkNorm: boolean;
}

/** Gemma config classes' defaults for the fields their parser reads (transformers 5.x Gemma2Config, Gemma3TextConfig). */
const GEMMA_DEFAULTS: Readonly<Record<string, {
  headDim: number; queryPreAttnScalar: number; slidingWindow: number; attnSoftcap: number | null; finalSoftcap: number | null;
  ropeTheta: number; localRopeTheta: number | null; pattern: number;
}>> = {
  gemma2: { headDim: 256, queryPreAttnScalar: 256, slidingWindow: 4096, attnSoftcap: 50, finalSoftcap: 30, ropeTheta: 10000, localRopeTheta: null, pattern: 2 },
  gemma3_text: { headDim: 256, queryPreAttnScalar: 256, slidingWindow: 4096, attnSoftcap: null, finalSoftcap: null, ropeTheta: 1_000_000, localRopeTheta: 10000, pattern: 6 },
};

const HF_ARCHITECTURES: Readonly<Record<string, ArchitectureRules>> = {
  llama: {
    defaults: { rmsNormEps: 1e-6, maxContext: 2048 },
    keys: {
      attention_bias: mustBe(false, "biases on q/k/v/o projections"),
      // LlamaAttention does not read it
      sliding_window: true,
    },
    qkvBias: "never",
    qkNorm: false,
  },
  mistral: {
    defaults: { numKvHeads: 8, rmsNormEps: 1e-6, maxContext: 4096 * 32 },
    keys: {
      // MistralAttention has no biases whatever it says (a bias tensor in the file is refused with the tensors)
      attention_bias: true,
      // every layer attends through it; MistralConfig's default (absent key) is 4096
      sliding_window: windowValue,
    },
    qkvBias: "never",
    qkNorm: false,
  },
  qwen2: {
    defaults: { numKvHeads: 32, rmsNormEps: 1e-6, maxContext: 32768 },
    // Qwen2Attention has q/k/v biases whatever attention_bias says
    keys: { ...qwenWindowKeys, attention_bias: true },
    qkvBias: "always",
    qkNorm: false,
  },
  qwen3: {
    defaults: { numKvHeads: 32, headDim: 128, rmsNormEps: 1e-6, maxContext: 32768 },
    keys: { ...qwenWindowKeys, attention_bias: mustBe(false, "biases on q/k/v/o projections") },
    qkvBias: "never",
    qkNorm: true,
  },
  gemma2: {
    defaults: { numKvHeads: 4, rmsNormEps: 1e-6, maxContext: 8192 },
    keys: gemmaKeys,
    qkvBias: "never",
    qkNorm: false,
  },
  gemma3_text: {
    defaults: { numKvHeads: 4, rmsNormEps: 1e-6, maxContext: 131_072 },
    keys: {
      ...gemmaKeys,
      rope_local_base_freq: true,
      // 4.x: the layer pattern (every n-th layer global); 5.x writes layer_types and a private copy of it
      sliding_window_pattern: (v) => (isNullish(v) || (Number.isInteger(v) && (v as number) > 0) ? undefined : `expected a positive integer, found ${JSON.stringify(v)}`),
      _sliding_window_pattern: true,
    },
    qkvBias: "never",
    qkNorm: true,
  },
  phi3: {
    // Phi3Config: num_key_value_heads defaults to num_attention_heads
    defaults: { rmsNormEps: 1e-5, maxContext: 4096 },
    keys: {
      // every layer attends through it (transformers 5.23 masks with it; llama.cpp switches Phi-3's window off)
      sliding_window: windowValue,
      // Phi3Attention has no biases whatever the (remote-code era) config says; a bias tensor is refused with the tensors
      attention_bias: true,
      // dropout: training only
      resid_pdrop: true,
      embd_pdrop: true,
      // the hub's Phi-3 configs point at Microsoft's copy of the modeling code; transformers runs its own
      // Phi3ForCausalLM unless trust_remote_code, and so do we: only that mapping is accepted
      auto_map: (v) =>
        typeof v === "object" && v !== null && Object.values(v).every((m) => typeof m === "string" && /^(configuration|modeling)_phi3\.Phi3\w+$/.test(m))
          ? undefined
          : `${JSON.stringify(v)} is not implemented (custom modeling code other than Phi-3's own, which transformers' built-in Phi3ForCausalLM replaces)`,
    },
    qkvBias: "never",
    qkNorm: false,
  },
};

/** The config.json model types this harness runs (SmolLM2 checkpoints say llama). */
export const HF_MODEL_TYPES: readonly string[] = Object.keys(HF_ARCHITECTURES);

/** Keys of the RoPE dict each rope_type understands (transformers' _validate_*_rope_parameters sets). */
const ROPE_KEYS: Readonly<Record<string, readonly string[]>> = {
  default: [],
  linear: ["factor"],
  // dynamic NTK scales from max_position_embeddings; transformers ignores an original_max_position_embeddings here
  dynamic: ["factor", "original_max_position_embeddings"],
  yarn: ["factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"],
  llama3: ["factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"],
  // factor only enters the attention factor (default max_position_embeddings / original)
  longrope: ["short_factor", "long_factor", "original_max_position_embeddings", "attention_factor", "factor"],
};

/**
 * The rope types each architecture runs. Phi3Config accepts default and longrope only, and renames the older
 * "su" and "yarn" to longrope (convert_rope_params_to_dict): for phi3 those mean LongRoPE, not YaRN.
 */
const ROPE_TYPES_OF: Readonly<Record<string, readonly string[]>> = { phi3: ["default", "longrope"] };
const GENERIC_ROPE_TYPES: readonly string[] = ["default", "linear", "dynamic", "yarn", "llama3"];
const ROPE_TYPE_ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = { phi3: { su: "longrope", yarn: "longrope" } };

/** Phi3Config's original_max_position_embeddings when config.json has none (it then overrides the dict's, see below). */
const PHI3_DEFAULT_ORIGINAL_CONTEXT = 4096;

/**
 * RoPE settings as transformers reads them: 4.x writes `rope_theta` and `rope_scaling` ({type | rope_type, …} or
 * null); 5.x writes `rope_parameters` ({rope_type, rope_theta, …}). `rope_scaling` wins when both are set
 * (convert_rope_params_to_dict), and a top-level original_max_position_embeddings wins over the dict's
 * (standardize_rope_params). `headDim` sizes LongRoPE's factor lists (one per frequency).
 */
function ropeFromHf(
  json: Readonly<Record<string, unknown>>,
  path: string,
  maxPositions: number,
  dict?: { readonly name: string; readonly value: unknown },
  headDim?: number,
): { theta: number; scaling: RopeScaling | undefined; maxContext: number } {
  const scalingKey = dict?.name ?? (json["rope_scaling"] ? "rope_scaling" : "rope_parameters");
  const raw = (dict ? dict.value : json[scalingKey]) ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ModelFileError(path, `${scalingKey}: expected an object or null, found ${JSON.stringify(raw)}`);
  }
  const params = raw as Record<string, unknown>;
  const key = (name: string) => `${scalingKey}.${name}`;
  const num = (name: string, fallback?: number): number => {
    const value = params[name];
    if (isNullish(value)) {
      if (fallback !== undefined) return fallback;
      throw new ModelFileError(path, `missing field ${key(name)}`);
    }
    if (typeof value !== "number") throw new ModelFileError(path, `field ${key(name)}: expected a number, found ${JSON.stringify(value)}`);
    return value;
  };
  const architecture = typeof json["model_type"] === "string" ? json["model_type"] : "llama";
  const aliases = ROPE_TYPE_ALIASES[architecture] ?? {};
  // 5.x keeps a 4.x "type" beside the rope_type it derived ("su" beside "longrope"): the same type after renaming
  const canonical = (t: unknown) => (typeof t === "string" && Object.hasOwn(aliases, t) ? aliases[t] : t);
  if (params["type"] !== undefined && params["rope_type"] !== undefined && canonical(params["type"]) !== canonical(params["rope_type"])) {
    throw new ModelFileError(path, `${key("type")} ${JSON.stringify(params["type"])} contradicts ${key("rope_type")} ${JSON.stringify(params["rope_type"])}`);
  }
  const written = params["rope_type"] ?? params["type"] ?? "default";
  const type = canonical(written);
  const implemented = ROPE_TYPES_OF[architecture] ?? GENERIC_ROPE_TYPES;
  if (typeof type !== "string" || !implemented.includes(type)) {
    const where = ROPE_TYPES_OF[architecture] ? ` for ${architecture}` : "";
    throw new ModelFileError(path, `${key("rope_type")} ${JSON.stringify(written)} is not implemented${where} (implemented: ${implemented.join(", ")})`);
  }
  for (const name of Object.keys(params)) {
    if (["type", "rope_type", "rope_theta"].includes(name) || ROPE_KEYS[type].includes(name)) continue;
    if (name === "partial_rotary_factor" && (isNullish(params[name]) || params[name] === 1)) continue;
    throw new ModelFileError(path, `${key(name)} is not implemented for rope_type ${type}`);
  }
  const topTheta = json["rope_theta"];
  if (!isNullish(topTheta) && typeof topTheta !== "number") {
    throw new ModelFileError(path, `field rope_theta: expected a number, found ${JSON.stringify(topTheta)}`);
  }
  const theta = num("rope_theta", (topTheta as number | null | undefined) ?? 10000);
  const topOriginal = json["original_max_position_embeddings"];
  const original = () =>
    typeof topOriginal === "number" ? topOriginal : num("original_max_position_embeddings", maxPositions);
  switch (type) {
    case "default":
      return { theta, scaling: undefined, maxContext: maxPositions };
    case "linear":
      return { theta, scaling: { type, factor: num("factor") }, maxContext: maxPositions };
    case "dynamic": {
      const factor = num("factor");
      // transformers has no limit; we stop where the factor says the model was meant to reach
      return { theta, scaling: { type, factor, originalContext: maxPositions }, maxContext: Math.max(maxPositions, Math.floor(maxPositions * factor)) };
    }
    case "llama3":
      return {
        theta,
        scaling: {
          type,
          factor: num("factor"),
          lowFreqFactor: num("low_freq_factor"),
          highFreqFactor: num("high_freq_factor"),
          originalContext: original(),
        },
        maxContext: maxPositions,
      };
    case "yarn": {
      const originalContext = original();
      const factor = num("factor", maxPositions / originalContext);
      const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const m = params["mscale"];
      const mAll = params["mscale_all_dim"];
      const attentionFactor = !isNullish(params["attention_factor"])
        ? num("attention_factor")
        : m && mAll
          ? mscale(factor, num("mscale")) / mscale(factor, num("mscale_all_dim"))
          : mscale(factor);
      const truncate = params["truncate"];
      if (!isNullish(truncate) && typeof truncate !== "boolean") {
        throw new ModelFileError(path, `field ${key("truncate")}: expected a boolean, found ${JSON.stringify(truncate)}`);
      }
      return {
        theta,
        scaling: {
          type,
          factor,
          originalContext,
          // transformers: `get("beta_fast") or 32`, so 0 means the default too
          betaFast: num("beta_fast", 32) || 32,
          betaSlow: num("beta_slow", 1) || 1,
          attentionFactor,
          truncate: truncate !== false,
        },
        maxContext: maxPositions,
      };
    }
    case "longrope": {
      // Phi3Config always has original_max_position_embeddings (default 4096) and standardize_rope_params writes it
      // over the dict's: a different value in the dict is ignored by transformers, so we refuse it rather than guess
      const originalContext = typeof topOriginal === "number" ? topOriginal : PHI3_DEFAULT_ORIGINAL_CONTEXT;
      const inDict = params["original_max_position_embeddings"];
      if (!isNullish(inDict) && inDict !== originalContext) {
        const top = typeof topOriginal === "number" ? `original_max_position_embeddings ${originalContext}` : `Phi3Config's default original_max_position_embeddings ${originalContext} (the key is absent)`;
        throw new ModelFileError(path, `${key("original_max_position_embeddings")} ${JSON.stringify(inDict)} differs from ${top}, which transformers uses instead`);
      }
      const factors = (name: string): number[] => {
        const value = params[name];
        if (!Array.isArray(value) || !value.every((x) => typeof x === "number")) {
          throw new ModelFileError(path, `field ${key(name)}: expected a list of numbers, found ${isNullish(value) ? "none" : JSON.stringify(value).slice(0, 40)}`);
        }
        if (headDim !== undefined && value.length !== headDim / 2) {
          throw new ModelFileError(path, `field ${key(name)}: ${value.length} factors, expected ${headDim / 2} (one per frequency of a head of ${headDim})`);
        }
        return value as number[];
      };
      const shortFactor = factors("short_factor");
      const longFactor = factors("long_factor");
      // _compute_longrope_parameters: factor defaults to max_position_embeddings / original
      const factor = num("factor", maxPositions / originalContext);
      const attentionFactor = !isNullish(params["attention_factor"])
        ? num("attention_factor")
        : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalContext));
      return { theta, scaling: { type, shortFactor, longFactor, originalContext, attentionFactor }, maxContext: maxPositions };
    }
  }
  throw new Error("unreachable");
}

/**
 * `LlamaConfig` from an HF config.json (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, Gemma2Config,
 * Gemma3TextConfig, Phi3Config fields, as transformers 4.x and 5.x write them), with each config class's defaults
 * where a field is absent. Every key must be one the architecture's rules know; a value we do not implement stops
 * the load with the file and the key.
 * `hasLmHead` says whether the checkpoint stores lm_head.weight.
 */
export function llamaConfigFromHf(
  json: Readonly<Record<string, unknown>>,
  path: string,
  shapes: { vocabSize?: number; hasLmHead: boolean },
): LlamaConfig {
  const field = (key: string, fallback?: number): number => {
    const value = json[key];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new ModelFileError(path, `missing field ${key}`);
    }
    if (typeof value !== "number") {
      throw new ModelFileError(path, `field ${key}: expected a number, found ${JSON.stringify(value)}`);
    }
    return value;
  };
  const architecture = typeof json["model_type"] === "string" ? json["model_type"] : "llama";
  const rules = HF_ARCHITECTURES[architecture];
  if (rules === undefined) {
    throw new ModelFileError(path, `model_type ${architecture} is not one this harness runs (${HF_MODEL_TYPES.join(", ")})`);
  }
  for (const [key, value] of Object.entries(json)) {
    const rule = rules.keys[key] ?? COMMON_KEYS[key];
    if (rule === undefined) throw new ModelFileError(path, `key ${key} is not implemented for ${architecture} models (not known to leave the computation unchanged)`);
    const problem = rule === true ? undefined : rule(value, json);
    if (problem !== undefined) throw new ModelFileError(path, `${key}: ${problem}`);
  }
  const gemma = GEMMA_DEFAULTS[architecture];
  const hiddenSize = field("hidden_size");
  const numHeads = field("num_attention_heads");
  const numKvHeads = field("num_key_value_heads", rules.defaults.numKvHeads ?? numHeads);
  const headDim = field("head_dim", gemma?.headDim ?? rules.defaults.headDim ?? hiddenSize / numHeads);
  if (!Number.isInteger(headDim)) {
    throw new ModelFileError(path, `hidden_size ${hiddenSize} is not divisible by ${numHeads} heads`);
  }
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFileError(path, `${numHeads} attention heads are not a multiple of ${numKvHeads} key/value heads`);
  }
  const tieValue = json["tie_word_embeddings"];
  if (!isNullish(tieValue) && typeof tieValue !== "boolean") {
    throw new ModelFileError(path, `field tie_word_embeddings: expected a boolean, found ${JSON.stringify(tieValue)}`);
  }
  // transformers' default is false, except Gemma's config classes (true: their hub configs omit the key)
  const tie = isNullish(tieValue) ? gemma !== undefined : tieValue;
  // untied without lm_head.weight, transformers would draw a random output layer
  if (tie !== true && !shapes.hasLmHead) {
    throw new ModelFileError(path, `tie_word_embeddings is ${tieValue === false ? "false" : "absent (false)"} but the checkpoint has no lm_head.weight`);
  }
  const maxPositions = field("max_position_embeddings", rules.defaults.maxContext);
  const numLayers = field("num_hidden_layers");
  const layerWindows = windowsFromHf(json, architecture, numLayers, gemma?.slidingWindow, maxPositions);
  // Gemma 3: the global layers' RoPE (scaled) and the local layers' own base (unscaled), per layer type
  const perType = gemma?.localRopeTheta != null ? gemmaRope(json, path, maxPositions, gemma.ropeTheta, gemma.localRopeTheta) : null;
  const rope = perType?.global ?? ropeFromHf(gemma ? { rope_theta: gemma.ropeTheta, ...json } : json, path, maxPositions, undefined, headDim);
  const gemmaFields = gemma
    ? {
        sandwichNorms: true,
        mlpActivation: "gelu-tanh" as const,
        // transformers: torch.tensor(hidden ** 0.5) (float32), then .to(embedding dtype): rounded by the loader
        embeddingScale: Math.fround(Math.sqrt(hiddenSize)),
        attentionScale: Math.fround(field("query_pre_attn_scalar", gemma.queryPreAttnScalar) ** -0.5),
        ...optionalCap("attentionSoftcap", json["attn_logit_softcapping"], gemma.attnSoftcap, "attn_logit_softcapping"),
        ...optionalCap("finalSoftcap", json["final_logit_softcapping"], gemma.finalSoftcap, "final_logit_softcapping"),
        ...(perType ? { localRope: { theta: perType.local.theta, ...(perType.local.scaling ? { scaling: perType.local.scaling } : {}) } } : {}),
      }
    : {};
  return {
    architecture,
    numLayers,
    hiddenSize,
    intermediateSize: field("intermediate_size"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: field("vocab_size", shapes.vocabSize),
    rmsNormEps: field("rms_norm_eps", rules.defaults.rmsNormEps),
    ropeTheta: rope.theta,
    maxContext: rope.maxContext,
    tiedEmbeddings: tie === true,
    qkvBias: rules.qkvBias === "always",
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(rules.qkNorm ? { qkNorm: true } : {}),
    ...(layerWindows ? { layerWindows } : {}),
    ...gemmaFields,
  };
}

/** `{ [name]: cap }` for a soft cap given (or defaulted) as a positive number; nothing when null. */
function optionalCap(name: "attentionSoftcap" | "finalSoftcap", value: unknown, fallback: number | null, _key: string): Record<string, number> {
  const cap = value === undefined ? fallback : (value as number | null);
  return cap === null ? {} : { [name]: cap };
}

/**
 * Per layer, its sliding window or null, as transformers builds the mask: Mistral puts `sliding_window` (absent:
 * 4096) on every layer; Phi-3 too (absent: none); Gemma on the layers `layer_types` calls sliding_attention, or when
 * absent every layer but each `sliding_window_pattern`-th (Gemma 2: every other, starting with layer 0; Gemma 3: five
 * of six). Null when no layer has a window. Phi-3.5's window (262144) is longer than its context (131072): a window
 * of at least `maxPositions` never masks anything, so the model is one of full attention.
 */
function windowsFromHf(
  json: Readonly<Record<string, unknown>>,
  architecture: string,
  numLayers: number,
  gemmaWindow: number | undefined,
  maxPositions: number,
): (number | null)[] | null {
  if (architecture === "mistral") {
    const w = Object.hasOwn(json, "sliding_window") ? (json["sliding_window"] as number | null) : 4096;
    return w === null ? null : Array.from({ length: numLayers }, () => w);
  }
  if (architecture === "phi3") {
    const w = json["sliding_window"];
    return typeof w === "number" && w < maxPositions ? Array.from({ length: numLayers }, () => w) : null;
  }
  if (gemmaWindow === undefined) return null;
  const w = isNullish(json["sliding_window"]) ? (json["sliding_window"] === null ? null : gemmaWindow) : (json["sliding_window"] as number);
  if (w === null) return null;
  const pattern = Number(json["sliding_window_pattern"] ?? GEMMA_DEFAULTS[architecture].pattern);
  const types = Array.isArray(json["layer_types"])
    ? (json["layer_types"] as string[])
    : Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern !== 0 ? "sliding_attention" : "full_attention"));
  return types.map((t) => (t === "sliding_attention" ? w : null));
}

/**
 * Gemma 3's RoPE per layer type. 5.x: `rope_parameters` = { full_attention: {…}, sliding_attention: {…} }. 4.x:
 * `rope_theta` and `rope_scaling` for the global layers, `rope_local_base_freq` for the local ones (unscaled).
 */
function gemmaRope(
  json: Readonly<Record<string, unknown>>,
  path: string,
  maxPositions: number,
  globalTheta: number,
  localTheta: number,
): { global: ReturnType<typeof ropeFromHf>; local: ReturnType<typeof ropeFromHf> } {
  const params = json["rope_parameters"];
  if (params && typeof params === "object" && !Array.isArray(params) && ("full_attention" in params || "sliding_attention" in params)) {
    const p = params as Record<string, unknown>;
    for (const name of Object.keys(p)) {
      if (name !== "full_attention" && name !== "sliding_attention") throw new ModelFileError(path, `rope_parameters.${name} is not implemented (layer types other than sliding_attention and full_attention)`);
    }
    return {
      global: ropeFromHf({ rope_theta: globalTheta }, path, maxPositions, { name: "rope_parameters.full_attention", value: p["full_attention"] }),
      local: ropeFromHf({ rope_theta: localTheta }, path, maxPositions, { name: "rope_parameters.sliding_attention", value: p["sliding_attention"] }),
    };
  }
  const local = json["rope_local_base_freq"];
  if (!isNullish(local) && typeof local !== "number") throw new ModelFileError(path, `field rope_local_base_freq: expected a number, found ${JSON.stringify(local)}`);
  return {
    global: ropeFromHf({ rope_theta: globalTheta, ...json }, path, maxPositions),
    local: { theta: (local as number | undefined) ?? localTheta, scaling: undefined, maxContext: maxPositions },
  };
}

/** Opens a checkpoint directory: config.json plus model.safetensors or the shards of model.safetensors.index.json. */
export async function openSafetensors(dir: string): Promise<SafetensorsModel> {
  const configPath = join(dir, "config.json");
  const hfConfig = readJson(configPath) as Record<string, unknown>;

  const indexPath = join(dir, "model.safetensors.index.json");
  let files: string[];
  let weightMap: Record<string, string> | undefined;
  if (existsSync(indexPath)) {
    weightMap = (readJson(indexPath) as { weight_map?: Record<string, string> }).weight_map;
    if (weightMap === undefined || typeof weightMap !== "object") {
      throw new ModelFileError(indexPath, "no weight_map object");
    }
    files = [...new Set(Object.values(weightMap))].map((f) => join(dir, f));
  } else if (existsSync(join(dir, "model.safetensors"))) {
    files = [join(dir, "model.safetensors")];
  } else {
    throw new ModelFileError(dir, "no model.safetensors or model.safetensors.index.json");
  }
  for (const file of files) {
    if (!existsSync(file)) throw new ModelFileError(file, "listed in model.safetensors.index.json but missing");
  }

  const byHfName = new Map<string, SafetensorsEntry>();
  for (const file of files) {
    for (const [name, entry] of readSafetensorsHeader(file).tensors) byHfName.set(name, entry);
  }
  if (weightMap !== undefined) {
    for (const [name, file] of Object.entries(weightMap)) {
      if (!byHfName.has(name)) {
        throw new ModelFileError(join(dir, file), `tensor ${name}, listed in the index, is not in the file`);
      }
    }
  }

  const embedding = byHfName.get("model.embed_tokens.weight");
  const config = llamaConfigFromHf(hfConfig, configPath, {
    vocabSize: embedding?.shape[0],
    hasLmHead: byHfName.has("lm_head.weight"),
  });

  const stored = new Map<string, SafetensorsEntry>();
  for (const [name, entry] of byHfName) {
    // rotary tables some older checkpoints saved: recomputed from the config, never read
    if (/\.rotary_emb\.inv_freq$/.test(name)) continue;
    const ggufName = hfToGgufName(name, config.architecture);
    if (ggufName === undefined) {
      throw new ModelFileError(entry.file, `tensor ${name} is not part of the ${config.architecture} forward pass implemented here; refusing to ignore it`);
    }
    // tied: transformers ties lm_head to the embedding after loading, so a stored copy is not read
    if (ggufName === "output.weight" && config.tiedEmbeddings) continue;
    stored.set(ggufName, entry);
  }
  // Phi-3: qkv_proj and gate_up_proj become q/k/v and gate/up, views of their rows (row-major: contiguous bytes)
  const entries = splitFusedTensors(dir, config, stored, (e) => e.shape, (e, part) => {
    const bytes = DTYPES[e.dtype as SafetensorsDtype]?.bytes;
    if (bytes === undefined) throw new ModelFileError(e.file, `tensor ${e.name} has dtype ${e.dtype}; supported: ${Object.keys(DTYPES).join(", ")}`);
    const rowBytes = e.shape[1] * bytes;
    return {
      ...e,
      rows: [part.begin, part.end] as const,
      shape: [part.end - part.begin, e.shape[1]],
      fileOffset: e.fileOffset + part.begin * rowBytes,
      byteLength: (part.end - part.begin) * rowBytes,
    };
  });
  checkLlamaTensors(dir, config, (name) => entries.get(name)?.shape);
  checkNoUnusedTensors(dir, config, entries.keys());
  for (const entry of entries.values()) {
    if (!Object.hasOwn(DTYPES, entry.dtype)) {
      throw new ModelFileError(entry.file, `tensor ${entry.name} has dtype ${entry.dtype}; supported: ${Object.keys(DTYPES).join(", ")}`);
    }
  }
  // Gemma's embedding scale is a float32 tensor cast to the embedding's dtype before the product
  const embeddingDtype = entries.get("token_embd.weight")?.dtype as SafetensorsDtype | undefined;
  const finalConfig = config.embeddingScale !== undefined && embeddingDtype !== undefined
    ? { ...config, embeddingScale: roundToDtype(config.embeddingScale, embeddingDtype) }
    : config;
  return new SafetensorsWeights(dir, files, hfConfig, finalConfig, entries);
}

/** `x` (a float32 value) rounded to `dtype` as torch's `.to(dtype)` rounds: to nearest, ties to even. */
export function roundToDtype(x: number, dtype: SafetensorsDtype): number {
  const f32 = new Float32Array([x]);
  const bits = new Uint32Array(f32.buffer);
  if (dtype === "F32") return f32[0];
  if (dtype === "BF16") {
    const b = bits[0];
    bits[0] = (((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16) >>> 0;
    return f32[0];
  }
  // F16: keep 11 significant bits (normal range; Gemma's scales are far from the limits)
  const exponent = Math.floor(Math.log2(Math.abs(f32[0])));
  const ulp = 2 ** (exponent - 10);
  const q = f32[0] / ulp;
  const r = Math.round(q);
  const even = Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : r;
  return Math.fround(even * ulp);
}

class SafetensorsWeights implements SafetensorsModel {
  private readonly cache = new Map<string, Tensor>();
  private readonly matrices = new Map<string, WeightMatrix>();
  readonly source: string;

  constructor(
    readonly dir: string,
    readonly files: readonly string[],
    readonly hfConfig: Readonly<Record<string, unknown>>,
    readonly config: LlamaConfig,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
  ) {
    this.source = dir;
  }

  tensorNames(): readonly string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  tensor(name: string): Tensor {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const entry = this.entries.get(name);
    if (entry === undefined) throw new ModelFileError(this.dir, `no tensor named ${name}`);
    const bytes = readRange(entry.file, entry.fileOffset, entry.byteLength);
    const nElements = entry.shape.reduce((a, b) => a * b, 1);
    const stored = entry.rows ? `${entry.name} rows ${entry.rows[0]}–${entry.rows[1] - 1}` : entry.name;
    const data = dequantize(DTYPES[entry.dtype as SafetensorsDtype].ggml, bytes, nElements, `${name} (${stored})`);
    // Gemma's RMSNorm multiplies by (1 + weight), in float32 (Gemma2RMSNorm: 1.0 + weight.float()); the pass
    // multiplies by the stored weight, as llama.cpp's converter stores Gemma's norms (+1 added)
    if (this.config.sandwichNorms && name.endsWith("norm.weight")) for (let i = 0; i < data.length; i++) data[i] = Math.fround(1 + data[i]);
    const tensor: Tensor = { name, shape: entry.shape, data };
    this.cache.set(name, tensor);
    return tensor;
  }

  matrix(name: string): WeightMatrix {
    const cached = this.matrices.get(name);
    if (cached !== undefined) return cached;
    const entry = this.entries.get(name);
    if (entry === undefined) throw new ModelFileError(this.dir, `no tensor named ${name}`);
    if (entry.shape.length !== 2) throw new ModelFileError(entry.file, `tensor ${name} has shape [${entry.shape.join(", ")}], expected a matrix`);
    const [rows, cols] = entry.shape;
    const dtype = entry.dtype as SafetensorsDtype;
    // 16-bit weights stay 16-bit (the kernels' F16/BF16 paths); f32 is read as f32
    const matrix: WeightMatrix = dtype === "F32"
      ? { kind: "f32", name, rows, cols, data: this.tensor(name).data }
      : {
          kind: "blocks", name, rows, cols, type: DTYPES[dtype].ggml, typeName: dtype,
          bytes: readRange(entry.file, entry.fileOffset, entry.byteLength), rowBytes: cols * DTYPES[dtype].bytes,
        };
    this.matrices.set(name, matrix);
    return matrix;
  }

  clearCache(): void {
    this.cache.clear();
    this.matrices.clear();
  }
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ModelFileError(path, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(path, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function readRange(path: string, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, bytes, done, length - done, offset + done);
      if (n === 0) {
        throw new ModelFileError(path, `truncated: reading stopped at byte ${offset + done} of ${offset + length}`);
      }
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}
