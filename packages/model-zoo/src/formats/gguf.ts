/**
 * GGUF files → `ModelWeights` (Llama family).
 *
 * File layout (GGUF v2/v3, little-endian): "GGUF" magic, version, tensor count, metadata key/values, tensor infos
 * (name, ne[] innermost first, ggml type, offset relative to the data section), padding to `general.alignment`
 * (default 32), then the data section. gguf-header.ts parses everything up to the data section (long metadata arrays,
 * the tokenizer's, only when they are first read); tensor data is read here, by offset, only when a tensor is asked
 * for.
 *
 * Every tensor's extent is checked against the file size when the file is opened, so a truncated download fails
 * before any compute, with the first tensor that runs past the end named.
 *
 * Q and K: llama.cpp's converter reorders the rows of attn_q / attn_k for llama-architecture models so that ggml's
 * adjacent-pair RoPE matches HF's rotate-half RoPE. We use HF's RoPE, so those rows are put back in HF order on
 * read (`ggufRowsToHf`), for the f32 tensors and for the raw quantized bytes alike.
 *
 * Phi-3 stores fused projections (`attn_qkv`, and `ffn_up` holding gate then up): the model sees them as the
 * separate attn_q/k/v and ffn_gate/ffn_up tensors, views of the stored rows (a row of any ggml type is whole
 * blocks, so a run of rows is a run of bytes). `tensorInfos` lists the file as stored; `tensor`, `rawTensor`, `has`
 * and `tensorNames` see the split names.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { LlamaConfig, ModelWeights, RopeScaling, Tensor, WeightMatrix } from "../model/types.js";
import {
  GgmlType,
  SUPPORTED_TYPE_NAMES,
  dequantize,
  ggmlByteSize,
  ggmlTypeName,
  ggmlTypeTraits,
  isDequantizable,
} from "./dequant.js";
import { ModelFileError } from "./errors.js";
import { HEADER_FIELDS, parseGgufHeader, type ParsedGgufHeader } from "./gguf-header.js";
import { WeightArena } from "./weight-arena.js";
import { checkLlamaTensors, llamaTensorShapes, splitFusedTensors } from "./llama-tensors.js";

const GGUF_MAGIC = "GGUF";

/** Architectures this harness runs with one forward pass (DESIGN §5): RMSNorm, RoPE, GQA, a gated MLP. */
export const LLAMA_FAMILY_ARCHITECTURES: readonly string[] = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"];

/**
 * Gemma as llama.cpp runs it (src/models/gemma2.cpp, gemma3.cpp): the layer pattern when the file has no
 * `attention.sliding_window_pattern` (every n-th layer global), and the local layers' RoPE base when it has no
 * `rope.freq_base_swa` (Gemma 2: the global base; Gemma 3: llama_hparams' default 10000).
 */
const GGUF_GEMMA: Readonly<Record<string, { pattern: number; localTheta: number | "global"; defaultWindow: number | null; layers27b: number }>> = {
  gemma2: { pattern: 2, localTheta: "global", defaultWindow: 4096, layers27b: 46 },
  gemma3: { pattern: 6, localTheta: 10000, defaultWindow: null, layers27b: 62 },
};

/**
 * Architectures whose converter permuted Q/K rows (convert_hf_to_gguf's LlamaModel.permute). Qwen2 and Qwen3 are
 * converted without the permutation: llama.cpp runs them with NeoX (rotate-half) RoPE, which is already HF's layout.
 */
const PERMUTED_QK_ARCHITECTURES: ReadonlySet<string> = new Set(["llama", "mistral"]);

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml type id (see `GgmlType`). */
  readonly type: number;
  readonly typeName: string;
  /** PyTorch order, outermost first: GGUF's ne[] reversed. A linear layer is [out, in]. */
  readonly shape: readonly number[];
  readonly nElements: number;
  /** Absolute byte offset of the data in the file. */
  readonly fileOffset: number;
  /** Bytes of data; undefined for a type whose block size this reader does not know. */
  readonly byteLength: number | undefined;
}

/** A tensor's bytes exactly as stored (quantized blocks), with Q/K rows already in HF order (see file comment). */
export interface RawTensor {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** Everything in front of the data section, with tensor extents validated against the file. */
export interface GgufHeader {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /**
   * Metadata as stored (uint64 values are bigints): `general.*`, `<arch>.*`, `tokenizer.ggml.*`,
   * `tokenizer.chat_template`. Arrays longer than 1024 elements (the tokenizer's) are read from the file on first
   * access (gguf-header.ts), so code on the forward pass's path reads only the keys it needs.
   */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** In file order. */
  readonly tensorInfos: ReadonlyMap<string, GgufTensorInfo>;
}

export interface GgufModel extends ModelWeights, GgufHeader {
  readonly architecture: string;
  /** The tensors as the forward pass reads them: tensorInfos with Phi-3's fused tensors replaced by their parts. */
  readonly modelTensorInfos: ReadonlyMap<string, GgufTensorInfo>;
  /** Whether Q/K rows are reordered from llama.cpp's layout on read. */
  readonly unpermutesQK: boolean;
  /** The stored bytes of a tensor, read from the file on every call (not cached). */
  rawTensor(name: string): RawTensor;
  /**
   * A 2-D tensor as the forward pass multiplies by it: F32 as f32, every other type as its stored blocks (Q/K rows in
   * HF order), read once and cached, never decoded to f32 (issue #19: resident memory ≈ the file's tensor bytes).
   */
  matrix(name: string): WeightMatrix;
  /** Drops the tensors decoded or read so far (they are cached after the first `tensor(name)` / `matrix(name)`). */
  clearCache(): void;
}

/** Reads and validates the header: magic, metadata, tensor infos and that every tensor lies inside the file. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const fileSize = statOrThrow(path);
  checkMagic(path, fileSize);

  let parsed: ParsedGgufHeader;
  try {
    parsed = parseGgufHeader(path);
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    throw new ModelFileError(path, `unparsable GGUF header: ${(err as Error).message}`, { cause: err });
  }
  const headerEnd = parsed.tensorInfosEnd;
  if (headerEnd > fileSize) {
    throw new ModelFileError(path, `truncated: the header needs bytes up to ${headerEnd} but the file has ${fileSize}`);
  }
  const { metadata, alignment, dataOffset } = parsed;

  const tensorInfos = new Map<string, GgufTensorInfo>();
  for (const info of parsed.tensorInfos) {
    if (tensorInfos.has(info.name)) throw new ModelFileError(path, `duplicate tensor name ${info.name}`);
    const shape = [...info.dims].reverse();
    const nElements = shape.reduce((a, b) => a * b, 1);
    const traits = ggmlTypeTraits(info.type);
    if (traits !== undefined && (info.dims[0] ?? 1) % traits.blockSize !== 0) {
      throw new ModelFileError(
        path,
        `tensor ${info.name}: innermost dimension ${info.dims[0]} is not a multiple of the ${traits.name} block size ${traits.blockSize}`,
      );
    }
    tensorInfos.set(info.name, {
      name: info.name,
      type: info.type,
      typeName: ggmlTypeName(info.type),
      shape,
      nElements,
      fileOffset: dataOffset + info.offset,
      byteLength: ggmlByteSize(info.type, nElements),
    });
  }
  checkExtents(path, fileSize, dataOffset, tensorInfos);

  return { path, version: parsed.version, fileSize, alignment, dataOffset, metadata, tensorInfos };
}

/**
 * Opens a Llama-family GGUF file: header, config, and lazily dequantized weights in HF layout. Checks up front that
 * every tensor the forward pass needs is present, shaped as the config says, and of a type we can dequantize.
 */
export async function openGguf(path: string): Promise<GgufModel> {
  const header = await readGgufHeader(path);
  const vectors = new Map<string, Float32Array>();
  for (const name of ROPE_VECTOR_TENSORS) {
    const data = readVector(header, name);
    if (data !== undefined) vectors.set(name, data);
  }
  const config = llamaConfigFromGguf(header, vectors.get("rope_freqs.weight"), vectors);
  const views = splitFusedTensors(path, config, header.tensorInfos, (t) => t.shape, (t, part) => rowsOf(path, t, part.name, part.begin, part.end));
  checkLlamaTensors(path, config, (name) => views.get(name)?.shape);
  const unsupported = [...llamaTensorShapes(config).keys()]
    .map((name) => views.get(name) as GgufTensorInfo)
    .filter((info) => !isDequantizable(info.type));
  if (unsupported.length > 0) {
    const [first] = unsupported;
    const more = unsupported.length > 1 ? ` (and ${unsupported.length - 1} more tensors)` : "";
    throw new ModelFileError(
      path,
      `tensor ${first.name} has type ${first.typeName}, which cannot be dequantized${more} (supported: ${SUPPORTED_TYPE_NAMES.join(", ")})`,
    );
  }
  return new GgufWeights(header, config, views);
}

/** Rows [begin, end) of a stored tensor as a tensor of its own (same type, contiguous bytes). */
function rowsOf(path: string, info: GgufTensorInfo, name: string, begin: number, end: number): GgufTensorInfo {
  const columns = info.shape[info.shape.length - 1];
  const rowBytes = ggmlByteSize(info.type, columns);
  if (rowBytes === undefined) {
    throw new ModelFileError(path, `tensor ${info.name} has type ${info.typeName}, whose block size is unknown here, so its rows cannot be split into ${name}`);
  }
  const rows = end - begin;
  return { ...info, name, shape: [rows, columns], nElements: rows * columns, fileOffset: info.fileOffset + begin * rowBytes, byteLength: rows * rowBytes };
}

/**
 * The `<arch>.*` metadata keys the config reader understands, or knows to leave the computation unchanged; any other
 * key under the architecture's prefix, or under a prefix other than general. / tokenizer. / quantize., stops the
 * load (one line naming the file and the key). A rule is `true` (any value) or a check returning the problem.
 */
type MetadataRule = true | ((value: unknown, metadata: Readonly<Record<string, unknown>>, arch: string) => string | undefined);

const metadataNumber = (v: unknown) => (typeof v === "bigint" ? Number(v) : v);
const mustEqual = (expected: number, why: string): MetadataRule => (v) =>
  metadataNumber(v) === expected ? undefined : `${String(v)} is not implemented (${why})`;

const LLAMA_FAMILY_METADATA: Readonly<Record<string, MetadataRule>> = {
  // read below
  context_length: true, embedding_length: true, block_count: true, feed_forward_length: true,
  "attention.head_count": true, "attention.head_count_kv": true, "attention.layer_norm_rms_epsilon": true,
  "attention.key_length": true, "attention.value_length": true, "rope.freq_base": true, "rope.dimension_count": true,
  vocab_size: true, "rope.scaling.type": true, "rope.scaling.factor": true, "rope.scaling.original_context_length": true,
  "rope.scaling.yarn_attn_factor": true, "rope.scaling.yarn_beta_fast": true, "rope.scaling.yarn_beta_slow": true,
  // checked
  "rope.scaling.yarn_ext_factor": (v, m, arch) =>
    metadataNumber(v) === (m[`${arch}.rope.scaling.type`] === "yarn" ? 1 : 0) ? undefined : `${String(v)} is not implemented (a partial YaRN ramp)`,
  // phi3: LongRoPE's attention factor (checked with the factor lists in ropeScalingFromGguf)
  "rope.scaling.attn_factor": (v, m, arch) =>
    arch === "phi3" || metadataNumber(v) === 1 ? undefined : `${String(v)} is not implemented (a RoPE magnitude scale on top of the scaling's own)`,
  "rope.scaling.yarn_log_multiplier": mustEqual(0, "DeepSeek's mscale_all_dim"),
  "attention.causal": (v) => (v === true ? undefined : `${String(v)} is not implemented (non-causal attention)`),
  // llama/mistral: every layer (llama.cpp ignores the key for them; the model has the window, so we do not);
  // gemma: the local layers; qwen: its optional window layers are not implemented
  "attention.sliding_window": (v, m, arch) =>
    !arch.startsWith("qwen") || Number(metadataNumber(v)) >= Number(metadataNumber(m[`${arch}.context_length`]))
      ? undefined
      : `${String(v)} is not implemented (Qwen's sliding-window layers below the context are refused)`,
  "attention.sliding_window_pattern": (v, m, arch) => (arch.startsWith("gemma") ? undefined : `${String(v)} is not implemented for ${arch}`),
  "rope.freq_base_swa": (v, m, arch) => (arch.startsWith("gemma") ? undefined : `${String(v)} is not implemented for ${arch}`),
  attn_logit_softcapping: (v, m, arch) => (arch === "gemma2" ? undefined : `${String(v)} is not implemented for ${arch} (llama.cpp reads it for gemma2 only)`),
  final_logit_softcapping: (v, m, arch) => (arch.startsWith("gemma") ? undefined : `${String(v)} is not implemented for ${arch}`),
  expert_count: mustEqual(0, "mixture of experts"),
  expert_used_count: mustEqual(0, "mixture of experts"),
  // llama.cpp bookkeeping that does not enter the logits
  "rope.scaling.finetuned": true, pooling_type: true,
};

/** Prefixes outside `<arch>.` whose keys never change the forward pass (tokenizer keys are the tokenizer's). */
const NEUTRAL_METADATA_PREFIXES = ["general.", "tokenizer.", "quantize."];

/**
 * Throws for the first metadata key the Llama-family reader does not know (see LLAMA_FAMILY_METADATA). Reads a
 * value only when its rule checks it: the tokenizer's arrays are read from the file on first access, and only the
 * tokenizer needs them.
 */
function checkGgufMetadataKeys(path: string, metadata: Readonly<Record<string, unknown>>, architecture: string): void {
  for (const name of Object.keys(metadata)) {
    if (HEADER_FIELDS.includes(name)) continue;
    if (NEUTRAL_METADATA_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const rule = name.startsWith(`${architecture}.`) ? LLAMA_FAMILY_METADATA[name.slice(architecture.length + 1)] : undefined;
    if (rule === undefined) {
      throw new ModelFileError(path, `metadata key ${name} is not implemented for ${architecture} models (not known to leave the computation unchanged)`);
    }
    const problem = rule === true ? undefined : rule(metadata[name], metadata, architecture);
    if (problem !== undefined) throw new ModelFileError(path, `metadata ${name}: ${problem}`);
  }
}

/**
 * Tensors that hold RoPE settings rather than weights: Llama 3.1's frequency factors (`rope_freqs.weight`) and
 * Phi-3's LongRoPE lists (`rope_factors_long.weight`, `rope_factors_short.weight`), [headDim/2] each.
 */
const ROPE_VECTOR_TENSORS = ["rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"] as const;

/** One of ROPE_VECTOR_TENSORS, as float32, when the file has it. */
function readVector(header: GgufHeader, name: string): Float32Array | undefined {
  const info = header.tensorInfos.get(name);
  if (info === undefined) return undefined;
  if (!isDequantizable(info.type) || info.byteLength === undefined) {
    throw new ModelFileError(header.path, `tensor ${name} has type ${info.typeName}, which cannot be dequantized`);
  }
  const bytes = new Uint8Array(info.byteLength);
  const fd = openSync(header.path, "r");
  try {
    readSync(fd, bytes, 0, bytes.length, info.fileOffset);
  } finally {
    closeSync(fd);
  }
  return dequantize(info.type, bytes, info.nElements, name);
}

/**
 * `LlamaConfig` from `<arch>.*` metadata and the tensor list (DESIGN §5). `ropeFreqs` is the data of
 * `rope_freqs.weight` when the file has that tensor, and `ropeVectors` that of every RoPE tensor the file has
 * (`rope_factors_long.weight`, `rope_factors_short.weight`; openGguf reads them).
 */
export function llamaConfigFromGguf(header: GgufHeader, ropeFreqs?: Float32Array, ropeVectors?: ReadonlyMap<string, Float32Array>): LlamaConfig {
  const { path, metadata, tensorInfos } = header;
  const architecture = metadata["general.architecture"];
  if (typeof architecture !== "string") throw new ModelFileError(path, "missing metadata key general.architecture");
  if (!LLAMA_FAMILY_ARCHITECTURES.includes(architecture)) {
    throw new ModelFileError(
      path,
      `architecture ${architecture} is not one this harness runs (${LLAMA_FAMILY_ARCHITECTURES.join(", ")})`,
    );
  }
  checkGgufMetadataKeys(path, metadata, architecture);
  const key = (suffix: string) => `${architecture}.${suffix}`;
  const optional = (suffix: string): number | undefined => {
    const value = metadata[key(suffix)];
    if (value === undefined) return undefined;
    if (typeof value !== "number" && typeof value !== "bigint") {
      throw new ModelFileError(path, `metadata ${key(suffix)}: expected a number, found ${describeValue(value)}`);
    }
    return Number(value);
  };
  const required = (suffix: string): number => {
    const value = optional(suffix);
    if (value === undefined) throw new ModelFileError(path, `missing metadata key ${key(suffix)}`);
    return value;
  };

  const numLayers = required("block_count");
  const hiddenSize = required("embedding_length");
  const intermediateSize = required("feed_forward_length");
  const maxContext = required("context_length");
  const rmsNormEps = shortestFloat32(required("attention.layer_norm_rms_epsilon"));
  const ropeTheta = shortestFloat32(optional("rope.freq_base") ?? 10000);
  const numHeads = required("attention.head_count");
  const numKvHeads = optional("attention.head_count_kv") ?? numHeads;
  const headDim = optional("attention.key_length") ?? hiddenSize / numHeads;
  if (!Number.isInteger(headDim)) {
    throw new ModelFileError(path, `${key("embedding_length")} ${hiddenSize} is not divisible by ${numHeads} heads`);
  }
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFileError(path, `${numHeads} query heads are not a multiple of ${numKvHeads} KV heads`);
  }
  const valueLength = optional("attention.value_length");
  if (valueLength !== undefined && valueLength !== headDim) {
    throw new ModelFileError(path, `metadata ${key("attention.value_length")} ${valueLength} differs from the key length ${headDim}: not implemented`);
  }
  const ropeDims = optional("rope.dimension_count");
  if (ropeDims !== undefined && ropeDims !== headDim) {
    throw new ModelFileError(path, `metadata ${key("rope.dimension_count")} ${ropeDims} is not implemented (RoPE on part of a head of ${headDim})`);
  }
  const ropeScaling = ropeScalingFromGguf(header, architecture, headDim, maxContext, ropeFreqs, ropeVectors);
  const qkNorm = tensorInfos.has("blk.0.attn_q_norm.weight") || tensorInfos.has("blk.0.attn_k_norm.weight");
  const wantsQkNorm = architecture === "qwen3" || architecture === "gemma3";
  if (qkNorm !== wantsQkNorm) {
    throw new ModelFileError(path, qkNorm ? `tensor blk.0.attn_q_norm.weight is not part of the ${architecture} forward pass implemented here` : `missing tensor blk.0.attn_q_norm.weight (${architecture} normalizes q and k per head)`);
  }
  const gemma = GGUF_GEMMA[architecture];
  const window = optional("attention.sliding_window") ?? gemma?.defaultWindow ?? undefined;
  let layerWindows: (number | null)[] | undefined;
  // phi3: the converter writes sliding_window (0 for none, Phi-4) and llama.cpp switches it off ("Phi SWA is
  // currently disabled"); transformers masks with it, and so do we, unless it is too long to mask anything
  const masks = window !== undefined && window > 0 && !(architecture === "phi3" && window >= maxContext);
  if (masks) {
    const pattern = metadata[key("attention.sliding_window_pattern")];
    let local: boolean[];
    if (!gemma) local = Array.from({ length: numLayers }, () => true);
    else if (Array.isArray(pattern)) {
      if (pattern.length !== numLayers || !pattern.every((b) => typeof b === "boolean")) {
        throw new ModelFileError(path, `metadata ${key("attention.sliding_window_pattern")}: expected ${numLayers} booleans, found ${describeValue(pattern)}`);
      }
      local = pattern as boolean[];
    } else {
      // llama_hparams::set_swa_pattern: layer il is local unless il % n == n − 1 (n = 0: all local)
      const n = pattern === undefined ? gemma.pattern : Number(metadataNumber(pattern));
      local = Array.from({ length: numLayers }, (_, il) => n === 0 || il % n < n - 1);
    }
    layerWindows = local.map((isLocal) => (isLocal ? window : null));
  }
  const gemmaFields = gemma
    ? (() => {
        const localTheta = optional("rope.freq_base_swa") ?? (gemma.localTheta === "global" ? ropeTheta : gemma.localTheta);
        const attnCap = optional("attn_logit_softcapping");
        const finalCap = optional("final_logit_softcapping");
        return {
          sandwichNorms: true,
          mlpActivation: "gelu-tanh" as const,
          embeddingScale: Math.fround(Math.sqrt(hiddenSize)),
          // llama.cpp: 1/√(n_embd / n_head) for the 27B models, 1/√head_dim for the others (what their
          // query_pre_attn_scalar says); the GGUF stores no scalar
          attentionScale: Math.fround(1 / Math.sqrt(numLayers === gemma.layers27b ? hiddenSize / numHeads : headDim)),
          ...(attnCap ? { attentionSoftcap: shortestFloat32(attnCap) } : {}),
          ...(finalCap ? { finalSoftcap: shortestFloat32(finalCap) } : {}),
          // llama.cpp scales the local layers by rope_freq_scale_train_swa: 1 for Gemma 3, the global one for Gemma 2
          ...(architecture === "gemma3" || shortestFloat32(localTheta) !== ropeTheta
            ? { localRope: { theta: shortestFloat32(localTheta), ...(architecture === "gemma2" && ropeScaling ? { scaling: ropeScaling } : {}) } }
            : {}),
        };
      })()
    : {};

  // the token list only when there is no embedding: reading it decodes the whole list from the file
  const embedding = tensorInfos.get("token_embd.weight");
  const tokenCount = () => {
    const tokens = metadata["tokenizer.ggml.tokens"];
    return Array.isArray(tokens) ? tokens.length : undefined;
  };
  const vocabSize = embedding?.shape[0] ?? tokenCount() ?? optional("vocab_size");
  if (vocabSize === undefined) throw new ModelFileError(path, "no token_embd.weight tensor, token list or vocab size");

  return {
    architecture,
    numLayers,
    hiddenSize,
    intermediateSize,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps,
    ropeTheta,
    maxContext,
    tiedEmbeddings: !tensorInfos.has("output.weight"),
    qkvBias: tensorInfos.has("blk.0.attn_q.bias"),
    ...(ropeScaling ? { ropeScaling } : {}),
    ...(qkNorm ? { qkNorm: true } : {}),
    ...(layerWindows ? { layerWindows } : {}),
    ...gemmaFields,
  };
}

/**
 * RoPE scaling from `<arch>.rope.scaling.*` as convert_hf_to_gguf.py writes it, or from `rope_freqs.weight`
 * (Llama 3.1: the converter stores the llama3 scaling as per-frequency divisors and no scaling type). The converter
 * writes HF's `attention_factor` as `yarn_attn_factor`, and it is read with HF's meaning (the cos/sin magnitude);
 * absent, YaRN's own 0.1·ln(factor) + 1, as in transformers and llama.cpp.
 *
 * Phi-3's LongRoPE: the converter stores the lists as `rope_factors_long.weight` / `rope_factors_short.weight`, the
 * original context as `rope.scaling.original_context_length` and √(1 + ln(s)/ln(original)), s = context_length /
 * original, as `rope.scaling.attn_factor` (its own formula: an `attention_factor` or `factor` in config.json is not
 * carried over). llama.cpp multiplies cos and sin by attn_factor and picks the list once, from its context size
 * (long when n_ctx > original); we pick it per call from the sequence length as transformers does (see RopeScaling),
 * which agrees with llama.cpp whenever a sequence and llama.cpp's context are on the same side of the original.
 */
function ropeScalingFromGguf(
  header: GgufHeader,
  architecture: string,
  headDim: number,
  contextLength: number,
  ropeFreqs: Float32Array | undefined,
  ropeVectors?: ReadonlyMap<string, Float32Array>,
): RopeScaling | undefined {
  const { path, metadata } = header;
  const key = (suffix: string) => `${architecture}.rope.scaling.${suffix}`;
  const num = (suffix: string): number | undefined => {
    const value = metadataNumber(metadata[key(suffix)]);
    if (value === undefined) return undefined;
    if (typeof value !== "number") throw new ModelFileError(path, `metadata ${key(suffix)}: expected a number, found ${describeValue(value)}`);
    return value;
  };
  const type = metadata[key("type")] ?? "none";
  const factor = num("factor");
  const freqs = header.tensorInfos.get("rope_freqs.weight");
  const long = header.tensorInfos.get("rope_factors_long.weight");
  const short = header.tensorInfos.get("rope_factors_short.weight");
  if (architecture === "phi3") {
    const attnFactor = num("attn_factor");
    if (long === undefined && short === undefined) {
      // llama.cpp multiplies cos and sin by it whatever the scaling; without LongRoPE we have no place for it
      if (attnFactor !== undefined && attnFactor !== 1) throw new ModelFileError(path, `metadata ${key("attn_factor")} ${attnFactor} without rope_factors_long.weight is not implemented`);
    } else {
      if (long === undefined || short === undefined) {
        throw new ModelFileError(path, `missing tensor ${long === undefined ? "rope_factors_long.weight" : "rope_factors_short.weight"} (LongRoPE needs both lists)`);
      }
      if (freqs !== undefined || type !== "none") {
        throw new ModelFileError(path, `tensor rope_factors_long.weight together with ${freqs !== undefined ? "tensor rope_freqs.weight" : `${key("type")} ${String(type)}`} is not implemented`);
      }
      const list = (info: GgufTensorInfo): number[] => {
        const data = ropeVectors?.get(info.name);
        if (info.shape.length !== 1 || info.shape[0] !== headDim / 2 || data === undefined) {
          throw new ModelFileError(path, `tensor ${info.name} has shape [${info.shape.join(", ")}], expected [${headDim / 2}] (one factor per frequency)`);
        }
        return Array.from(data);
      };
      return {
        type: "longrope",
        shortFactor: list(short),
        longFactor: list(long),
        // llama.cpp: n_ctx_orig_yarn falls back to the training context
        originalContext: num("original_context_length") ?? contextLength,
        // llama_hparams::rope_attn_factor's default
        attentionFactor: attnFactor ?? 1,
      };
    }
  }
  if (freqs !== undefined) {
    if (type !== "none") {
      throw new ModelFileError(path, `tensor rope_freqs.weight together with ${key("type")} ${String(type)} is not implemented`);
    }
    if (freqs.shape.length !== 1 || freqs.shape[0] !== headDim / 2 || ropeFreqs === undefined) {
      throw new ModelFileError(path, `tensor rope_freqs.weight has shape [${freqs.shape.join(", ")}], expected [${headDim / 2}] (one factor per frequency)`);
    }
    return { type: "frequency-factors", factors: Array.from(ropeFreqs) };
  }
  switch (type) {
    case "none":
      if (factor !== undefined && factor !== 1) throw new ModelFileError(path, `metadata ${key("factor")} ${factor} without a scaling type is not implemented`);
      return undefined;
    case "linear":
      if (factor === undefined) throw new ModelFileError(path, `missing metadata key ${key("factor")}`);
      return { type: "linear", factor };
    case "yarn": {
      if (factor === undefined) throw new ModelFileError(path, `missing metadata key ${key("factor")}`);
      return {
        type: "yarn",
        factor,
        // llama.cpp: n_ctx_orig_yarn falls back to the training context
        originalContext: num("original_context_length") ?? contextLength,
        betaFast: num("yarn_beta_fast") || 32,
        betaSlow: num("yarn_beta_slow") || 1,
        attentionFactor: num("yarn_attn_factor") ?? (factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1),
        truncate: true,
      };
    }
    default:
      throw new ModelFileError(path, `metadata ${key("type")} ${describeValue(type)} is not implemented (implemented: none, linear, yarn, and rope_freqs.weight)`);
  }
}

/**
 * Undoes llama.cpp's Q/K row permutation. The converter computes, per projection,
 *   w.reshape(nHead, 2, headDim/2, ...).swapaxes(1, 2).reshape(w.shape)
 * so GGUF row h·headDim + 2i + s holds HF row h·headDim + s·headDim/2 + i (s ∈ {0, 1}, i < headDim/2).
 * `rowLength` is the number of array elements per row (`in` for f32 weights, bytes per row for raw blocks, 1 for a
 * bias). Returns a new array.
 */
export function ggufRowsToHf<T extends Float32Array | Uint8Array>(src: T, nHead: number, rowLength: number): T {
  const nRows = src.length / rowLength;
  const headDim = nRows / nHead;
  if (!Number.isInteger(nRows) || !Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new Error(
      `cannot split ${src.length} elements into ${nHead} heads of rows of ${rowLength} with an even head size`,
    );
  }
  const half = headDim / 2;
  const out = (src instanceof Float32Array ? new Float32Array(src.length) : new Uint8Array(src.length)) as T;
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const hfRow = h * headDim + s * half + i;
        const ggufRow = h * headDim + 2 * i + s;
        out.set(src.subarray(ggufRow * rowLength, (ggufRow + 1) * rowLength), hfRow * rowLength);
      }
    }
  }
  return out;
}

class GgufWeights implements GgufModel {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly tensorInfos: ReadonlyMap<string, GgufTensorInfo>;
  readonly architecture: string;
  readonly unpermutesQK: boolean;
  readonly source: string;
  private readonly cache = new Map<string, Tensor>();
  private readonly matrices = new Map<string, WeightMatrix>();
  private arena: WeightArena | undefined;

  constructor(
    header: GgufHeader,
    readonly config: LlamaConfig,
    readonly modelTensorInfos: ReadonlyMap<string, GgufTensorInfo>,
  ) {
    this.path = header.path;
    this.version = header.version;
    this.fileSize = header.fileSize;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.metadata = header.metadata;
    this.tensorInfos = header.tensorInfos;
    this.architecture = config.architecture;
    this.unpermutesQK = PERMUTED_QK_ARCHITECTURES.has(config.architecture);
    this.source = header.path;
  }

  tensorNames(): readonly string[] {
    return [...this.modelTensorInfos.keys()];
  }

  has(name: string): boolean {
    return this.modelTensorInfos.has(name);
  }

  tensor(name: string): Tensor {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const info = this.info(name);
    if (!isDequantizable(info.type)) {
      throw new ModelFileError(
        this.path,
        `tensor ${name} has type ${info.typeName}, which cannot be dequantized (supported: ${SUPPORTED_TYPE_NAMES.join(", ")})`,
      );
    }
    let data = dequantize(info.type, this.readBytes(info), info.nElements, name);
    const heads = this.permutedHeads(name);
    if (heads !== undefined) {
      data = ggufRowsToHf(data, heads, info.shape.length > 1 ? info.shape[info.shape.length - 1] : 1);
    }
    const tensor: Tensor = { name, shape: info.shape, data };
    this.cache.set(name, tensor);
    return tensor;
  }

  rawTensor(name: string): RawTensor {
    const info = this.info(name);
    if (info.byteLength === undefined) {
      throw new ModelFileError(this.path, `tensor ${name} has type ${info.typeName}, whose block size is unknown here`);
    }
    let bytes = this.readBytes(info);
    const heads = this.permutedHeads(name);
    if (heads !== undefined) {
      const nRows = info.shape.length > 1 ? info.shape[0] : info.nElements;
      bytes = ggufRowsToHf(bytes, heads, info.byteLength / nRows);
    }
    return { name, type: info.type, typeName: info.typeName, shape: info.shape, bytes };
  }

  matrix(name: string): WeightMatrix {
    const cached = this.matrices.get(name);
    if (cached !== undefined) return cached;
    const info = this.info(name);
    if (info.shape.length !== 2) throw new ModelFileError(this.path, `tensor ${name} has shape [${info.shape.join(", ")}], expected a matrix`);
    const [rows, cols] = info.shape;
    let matrix: WeightMatrix;
    if (info.type === GgmlType.F32) matrix = { kind: "f32", name, rows, cols, data: this.tensor(name).data };
    else {
      if (!isDequantizable(info.type)) {
        throw new ModelFileError(this.path, `tensor ${name} has type ${info.typeName}, which cannot be computed with (supported: ${SUPPORTED_TYPE_NAMES.join(", ")})`);
      }
      const bytes = this.matrixBytes(name, info);
      matrix = { kind: "blocks", name, rows, cols, type: info.type, typeName: info.typeName, bytes, rowBytes: bytes.length / rows };
    }
    this.matrices.set(name, matrix);
    return matrix;
  }

  clearCache(): void {
    this.cache.clear();
    this.matrices.clear();
  }

  private info(name: string): GgufTensorInfo {
    const info = this.modelTensorInfos.get(name);
    if (info === undefined) throw new ModelFileError(this.path, `no tensor named ${name}`);
    return info;
  }

  /** Number of heads whose rows llama.cpp interleaved in this tensor, or undefined when it is stored as in HF. */
  private permutedHeads(name: string): number | undefined {
    if (!this.unpermutesQK) return undefined;
    const match = /^blk\.\d+\.attn_([qk])\.(weight|bias)$/.exec(name);
    if (match === null) return undefined;
    return match[1] === "q" ? this.config.numHeads : this.config.numKvHeads;
  }

  /**
   * A block matrix's bytes (rows un-permuted as rawTensor gives them) in the weight arena, one buffer for every
   * matrix of the file on huge pages (weight-arena.ts); a fresh array once the arena is spent (after clearCache).
   */
  private matrixBytes(name: string, info: GgufTensorInfo): Uint8Array {
    this.arena ??= new WeightArena(WeightArena.sizeFor(this.blockMatrixLengths()));
    const slice = this.arena.slice(info.byteLength as number);
    if (slice === null) return this.rawTensor(name).bytes;
    if (this.permutedHeads(name) === undefined) this.readBytes(info, slice);
    else slice.set(this.rawTensor(name).bytes); // llama.cpp's Q/K row order undone there
    return slice;
  }

  /** Byte lengths of the tensors `matrix` holds as blocks: every 2-D tensor of a type other than F32. */
  private *blockMatrixLengths(): Iterable<number> {
    for (const info of this.modelTensorInfos.values()) {
      if (info.shape.length === 2 && info.type !== GgmlType.F32 && info.byteLength !== undefined && isDequantizable(info.type)) yield info.byteLength;
    }
  }

  /** The tensor's bytes from the file, into `into` (info.byteLength bytes) or a new array. */
  private readBytes(info: GgufTensorInfo, into?: Uint8Array): Uint8Array {
    const length = info.byteLength as number; // sized: checked by the callers' type checks
    const bytes = into ?? new Uint8Array(length);
    const fd = openSync(this.path, "r");
    try {
      let done = 0;
      while (done < length) {
        const n = readSync(fd, bytes, done, length - done, info.fileOffset + done);
        if (n === 0) {
          throw new ModelFileError(
            this.path,
            `truncated: tensor ${info.name} needs bytes up to ${info.fileOffset + length} but reading stopped at ${info.fileOffset + done}`,
          );
        }
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return bytes;
  }
}

function statOrThrow(path: string): number {
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new ModelFileError(path, "not a regular file");
    return stats.size;
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    throw new ModelFileError(path, `cannot read: ${(err as Error).message}`, { cause: err });
  }
}

function checkMagic(path: string, fileSize: number): void {
  const head = new Uint8Array(Math.min(8, fileSize));
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const magic = String.fromCharCode(...head.subarray(0, 4));
  if (magic !== GGUF_MAGIC) {
    const found = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new ModelFileError(path, `not a GGUF file: bad magic (expected "GGUF", found ${found || "an empty file"})`);
  }
  if (fileSize < 24) {
    throw new ModelFileError(path, `truncated: ${fileSize} bytes cannot hold a GGUF header (at least 24)`);
  }
}

/** Throws for the first tensor, in file order, that runs past the end of the file. */
function checkExtents(path: string, fileSize: number, dataOffset: number, infos: ReadonlyMap<string, GgufTensorInfo>) {
  if (infos.size > 0 && dataOffset > fileSize) {
    throw new ModelFileError(path, `truncated: tensor data starts at byte ${dataOffset} but the file has ${fileSize}`);
  }
  const overruns = [...infos.values()]
    .filter((t) => t.fileOffset + (t.byteLength ?? 0) > fileSize)
    .sort((a, b) => a.fileOffset - b.fileOffset);
  if (overruns.length === 0) return;
  const first = overruns[0];
  const more = overruns.length > 1 ? ` (and ${overruns.length - 1} more tensors past the end)` : "";
  throw new ModelFileError(
    path,
    `truncated: tensor ${first.name} needs bytes up to ${first.fileOffset + (first.byteLength ?? 0)} but the file has ${fileSize}${more}`,
  );
}

/** The shortest decimal that rounds to the same float32: GGUF stores 1e-5 as 9.99999974737875e-6. */
function shortestFloat32(x: number): number {
  const target = Math.fround(x);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return x;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `${typeof value} ${String(value).slice(0, 40)}`;
}
