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
import type { LlamaConfig, ModelWeights, Tensor } from "../model/types.js";
import { GgmlType, dequantize } from "./dequant.js";
import { ModelFileError } from "./errors.js";
import { checkLlamaTensors } from "./llama-tensors.js";

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
  /** Drops the f32 tensors decoded so far. */
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

/** HF (Llama / Mistral / Qwen2) tensor name → GGUF name; undefined for tensors the forward pass does not use. */
export function hfToGgufName(name: string): string | undefined {
  const fixed: Record<string, string> = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
  };
  if (Object.hasOwn(fixed, name)) return fixed[name];
  const layer = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (layer === null) return undefined;
  const [, index, part, kind] = layer;
  const parts: Record<string, string> = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    input_layernorm: "attn_norm",
    post_attention_layernorm: "ffn_norm",
  };
  return Object.hasOwn(parts, part) ? `blk.${index}.${parts[part]}.${kind}` : undefined;
}

/**
 * `LlamaConfig` from an HF config.json (LlamaConfig, MistralConfig, Qwen2Config fields), with transformers'
 * defaults where a field is absent. `hasLmHead` decides tying when `tie_word_embeddings` is absent.
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
  const hiddenSize = field("hidden_size");
  const numHeads = field("num_attention_heads");
  const numKvHeads = field("num_key_value_heads", numHeads);
  const headDim = field("head_dim", hiddenSize / numHeads);
  if (!Number.isInteger(headDim)) {
    throw new ModelFileError(path, `hidden_size ${hiddenSize} is not divisible by ${numHeads} heads`);
  }
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFileError(path, `${numHeads} attention heads are not a multiple of ${numKvHeads} key/value heads`);
  }
  const tie = json["tie_word_embeddings"];
  return {
    architecture,
    numLayers: field("num_hidden_layers"),
    hiddenSize,
    intermediateSize: field("intermediate_size"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: field("vocab_size", shapes.vocabSize),
    rmsNormEps: field("rms_norm_eps", 1e-6),
    ropeTheta: field("rope_theta", 10000),
    maxContext: field("max_position_embeddings", 2048),
    tiedEmbeddings: typeof tie === "boolean" ? tie : !shapes.hasLmHead,
    qkvBias: architecture === "qwen2" || json["attention_bias"] === true,
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

  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, entry] of byHfName) {
    const ggufName = hfToGgufName(name);
    if (ggufName === undefined) continue;
    if (ggufName === "output.weight" && config.tiedEmbeddings) continue; // some tied checkpoints store a copy
    entries.set(ggufName, entry);
  }
  checkLlamaTensors(dir, config, (name) => entries.get(name)?.shape);
  for (const entry of entries.values()) {
    if (!Object.hasOwn(DTYPES, entry.dtype)) {
      throw new ModelFileError(entry.file, `tensor ${entry.name} has dtype ${entry.dtype}; supported: ${Object.keys(DTYPES).join(", ")}`);
    }
  }
  return new SafetensorsWeights(dir, files, hfConfig, config, entries);
}

class SafetensorsWeights implements SafetensorsModel {
  private readonly cache = new Map<string, Tensor>();

  constructor(
    readonly dir: string,
    readonly files: readonly string[],
    readonly hfConfig: Readonly<Record<string, unknown>>,
    readonly config: LlamaConfig,
    readonly entries: ReadonlyMap<string, SafetensorsEntry>,
  ) {}

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
    const data = dequantize(DTYPES[entry.dtype as SafetensorsDtype].ggml, bytes, nElements, `${name} (${entry.name})`);
    const tensor: Tensor = { name, shape: entry.shape, data };
    this.cache.set(name, tensor);
    return tensor;
  }

  clearCache(): void {
    this.cache.clear();
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
