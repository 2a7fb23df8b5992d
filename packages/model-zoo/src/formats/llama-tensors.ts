/**
 * The tensors a Llama-family model must have (GGUF names, PyTorch shapes), and the check that a file has them:
 * run when a model is opened, so that a missing or misshapen tensor is reported before any compute.
 */
import type { LlamaConfig } from "../model/types.js";
import { ModelFileError } from "./errors.js";

/** Every tensor name a Llama-family model of `config` has, in converter order, with its PyTorch shape. */
export function llamaTensorShapes(c: LlamaConfig): Map<string, number[]> {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const shapes = new Map<string, number[]>([
    ["token_embd.weight", [c.vocabSize, c.hiddenSize]],
    ["output_norm.weight", [c.hiddenSize]],
  ]);
  if (!c.tiedEmbeddings) shapes.set("output.weight", [c.vocabSize, c.hiddenSize]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    shapes.set(p + "attn_norm.weight", [c.hiddenSize]);
    shapes.set(p + "attn_q.weight", [qDim, c.hiddenSize]);
    shapes.set(p + "attn_k.weight", [kvDim, c.hiddenSize]);
    shapes.set(p + "attn_v.weight", [kvDim, c.hiddenSize]);
    if (c.qkvBias) {
      shapes.set(p + "attn_q.bias", [qDim]);
      shapes.set(p + "attn_k.bias", [kvDim]);
      shapes.set(p + "attn_v.bias", [kvDim]);
    }
    if (c.qkNorm) {
      shapes.set(p + "attn_q_norm.weight", [c.headDim]);
      shapes.set(p + "attn_k_norm.weight", [c.headDim]);
    }
    shapes.set(p + "attn_output.weight", [c.hiddenSize, qDim]);
    if (c.sandwichNorms) shapes.set(p + "post_attention_norm.weight", [c.hiddenSize]);
    shapes.set(p + "ffn_norm.weight", [c.hiddenSize]);
    if (c.sandwichNorms) shapes.set(p + "post_ffw_norm.weight", [c.hiddenSize]);
    shapes.set(p + "ffn_gate.weight", [c.intermediateSize, c.hiddenSize]);
    shapes.set(p + "ffn_up.weight", [c.intermediateSize, c.hiddenSize]);
    shapes.set(p + "ffn_down.weight", [c.hiddenSize, c.intermediateSize]);
  }
  return shapes;
}

/**
 * Throws a ModelFileError for the first expected tensor that is absent or has another shape. `shapeOf` gives a
 * tensor's PyTorch shape without reading its data. Extra tensors are allowed.
 */
export function checkLlamaTensors(
  path: string,
  config: LlamaConfig,
  shapeOf: (name: string) => readonly number[] | undefined,
): void {
  for (const [name, expected] of llamaTensorShapes(config)) {
    const found = shapeOf(name);
    if (found === undefined) {
      throw new ModelFileError(path, `missing tensor ${name} (expected shape [${expected.join(", ")}])`);
    }
    if (found.length !== expected.length || found.some((d, i) => d !== expected[i])) {
      throw new ModelFileError(path, `tensor ${name} has shape [${found.join(", ")}], expected [${expected.join(", ")}]`);
    }
  }
}

/**
 * Throws a ModelFileError naming the first tensor of the file that the forward pass of `config` would not read:
 * a tensor we do not use is a computation we do not implement (an output bias, a q/k norm in a file whose config
 * does not say so…), and ignoring it would run a different model. `rope_freqs.weight` (Llama 3.1's frequency
 * factors) and `rope_factors_{long,short}.weight` (Phi-3's LongRoPE lists) are read into the config and so are used.
 */
export function checkNoUnusedTensors(path: string, config: LlamaConfig, names: Iterable<string>): void {
  const used = llamaTensorShapes(config);
  for (const name of names) {
    if (used.has(name)) continue;
    if (name === "rope_freqs.weight" && config.ropeScaling?.type === "frequency-factors") continue;
    // Phi-3's LongRoPE factor lists as llama.cpp stores them, read into the config
    if ((name === "rope_factors_long.weight" || name === "rope_factors_short.weight") && config.ropeScaling?.type === "longrope") continue;
    throw new ModelFileError(
      path,
      `tensor ${name} is not part of the ${config.architecture} forward pass implemented here; refusing to ignore it`,
    );
  }
}

/** Rows [begin, end) of a fused tensor, under the name the forward pass reads. */
export interface FusedPart {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
}

/**
 * Phi-3's fused projections, as row ranges of the stored tensor: transformers' `Phi3Attention.qkv_proj` (GGUF
 * `attn_qkv`) is [q; k; v] (numHeads·headDim, then numKvHeads·headDim twice: Phi3Attention slices it in that
 * order), and `Phi3MLP.gate_up_proj` (GGUF `ffn_up`, which llama.cpp's phi3 graph reads as the fused SwiGLU input) is
 * [gate; up], intermediateSize rows each, the first half going through the activation (`chunk(2)`). Returns the
 * fused tensor's PyTorch shape and its parts for a fused name of a phi3 config, else undefined.
 */
export function fusedTensorParts(c: LlamaConfig, name: string): { shape: number[]; parts: FusedPart[] } | undefined {
  if (c.architecture !== "phi3") return undefined;
  const match = /^blk\.(\d+)\.(attn_qkv|ffn_up)\.weight$/.exec(name);
  if (match === null) return undefined;
  const p = `blk.${match[1]}.`;
  if (match[2] === "attn_qkv") {
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    return {
      shape: [q + 2 * kv, c.hiddenSize],
      parts: [
        { name: p + "attn_q.weight", begin: 0, end: q },
        { name: p + "attn_k.weight", begin: q, end: q + kv },
        { name: p + "attn_v.weight", begin: q + kv, end: q + 2 * kv },
      ],
    };
  }
  const F = c.intermediateSize;
  return {
    shape: [2 * F, c.hiddenSize],
    parts: [
      { name: p + "ffn_gate.weight", begin: 0, end: F },
      { name: p + "ffn_up.weight", begin: F, end: 2 * F },
    ],
  };
}

/**
 * The tensors of a file as the forward pass reads them: for a phi3 config, each fused tensor (see fusedTensorParts)
 * is replaced, where it stood, by its parts, made by `rows` (which views rows [begin, end) of a stored tensor without
 * reading it); every other tensor is kept. A fused tensor of another shape, or a phi3 file without one, stops the
 * load with a ModelFileError naming the tensor (llama.cpp's phi3 also reads q, k and v unfused; so do we).
 */
export function splitFusedTensors<T>(
  path: string,
  config: LlamaConfig,
  tensors: ReadonlyMap<string, T>,
  shapeOf: (tensor: T) => readonly number[],
  rows: (tensor: T, part: FusedPart) => T,
): Map<string, T> {
  if (config.architecture !== "phi3") return new Map(tensors);
  const out = new Map<string, T>();
  for (const [name, tensor] of tensors) {
    const fused = fusedTensorParts(config, name);
    if (fused === undefined) {
      out.set(name, tensor);
      continue;
    }
    const found = shapeOf(tensor);
    if (found.length !== 2 || found[0] !== fused.shape[0] || found[1] !== fused.shape[1]) {
      throw new ModelFileError(path, `tensor ${name} has shape [${found.join(", ")}], expected [${fused.shape.join(", ")}] (${fused.parts.map((p) => p.name.split(".")[2]).join(" + ")}, fused)`);
    }
    for (const part of fused.parts) {
      if (part.name !== name && tensors.has(part.name)) {
        throw new ModelFileError(path, `tensor ${part.name} is stored both on its own and inside ${name}`);
      }
      out.set(part.name, rows(tensor, part));
    }
  }
  for (let l = 0; l < config.numLayers; l++) {
    // Phi-3's MLP is always fused (Phi3MLP, llama.cpp's phi3 graph); q/k/v may be stored apart in a GGUF
    const up = `blk.${l}.ffn_up.weight`;
    if (!tensors.has(up)) throw new ModelFileError(path, `missing tensor ${up} (expected shape [${2 * config.intermediateSize}, ${config.hiddenSize}]: gate and up, fused)`);
    if (!tensors.has(`blk.${l}.attn_qkv.weight`) && !tensors.has(`blk.${l}.attn_q.weight`)) {
      const qkv = fusedTensorParts(config, `blk.${l}.attn_qkv.weight`) as { shape: number[] };
      throw new ModelFileError(path, `missing tensor blk.${l}.attn_qkv.weight (expected shape [${qkv.shape.join(", ")}])`);
    }
  }
  return out;
}
