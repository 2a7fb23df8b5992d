/**
 * Random-weight models of any Llama-family config: fast unit tests of the pass and of policies, and benchmarks at
 * real shapes without a checkpoint. Weights are drawn with a fixed seed at the scale of a trained model's
 * initialisation (≈ 1/√fan_in), so activations stay in a realistic range.
 */
import { mulberry32, randomArray } from "@razorkv/core";
import { GgmlType, dequantize, ggmlByteSize, ggmlTypeTraits } from "../formats/dequant.js";
import type { BlockMatrix, LlamaConfig, ModelWeights, Tensor, WeightMatrix } from "./types.js";

export function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    architecture: "llama",
    numLayers: 2,
    hiddenSize: 48,
    intermediateSize: 96,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 8,
    vocabSize: 97,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxContext: 4096,
    tiedEmbeddings: true,
    qkvBias: false,
    ...overrides,
  };
}

export function randomWeights(config: LlamaConfig, seed = 1): ModelWeights {
  const rand = mulberry32(seed);
  const tensors = new Map<string, Tensor>();
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const data = randomArray(rand, shape.reduce((a, b) => a * b, 1), scale);
    if (offset !== 0) for (let i = 0; i < data.length; i++) data[i] += offset;
    tensors.set(name, { name, shape, data });
  };
  const c = config;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const lin = (fanIn: number) => 1 / Math.sqrt(fanIn);
  add("token_embd.weight", [c.vocabSize, c.hiddenSize], 1);
  add("output_norm.weight", [c.hiddenSize], 0.1, 1);
  if (!c.tiedEmbeddings) add("output.weight", [c.vocabSize, c.hiddenSize], lin(c.hiddenSize));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    add(p + "attn_norm.weight", [c.hiddenSize], 0.1, 1);
    add(p + "attn_q.weight", [qDim, c.hiddenSize], lin(c.hiddenSize));
    add(p + "attn_k.weight", [kvDim, c.hiddenSize], lin(c.hiddenSize));
    add(p + "attn_v.weight", [kvDim, c.hiddenSize], lin(c.hiddenSize));
    if (c.qkNorm) {
      add(p + "attn_q_norm.weight", [c.headDim], 0.1, 1);
      add(p + "attn_k_norm.weight", [c.headDim], 0.1, 1);
    }
    add(p + "attn_output.weight", [c.hiddenSize, qDim], lin(qDim));
    if (c.sandwichNorms) {
      add(p + "post_attention_norm.weight", [c.hiddenSize], 0.1, 1);
      add(p + "post_ffw_norm.weight", [c.hiddenSize], 0.1, 1);
    }
    if (c.qkvBias) {
      add(p + "attn_q.bias", [qDim], 0.1);
      add(p + "attn_k.bias", [kvDim], 0.1);
      add(p + "attn_v.bias", [kvDim], 0.1);
    }
    add(p + "ffn_norm.weight", [c.hiddenSize], 0.1, 1);
    add(p + "ffn_gate.weight", [c.intermediateSize, c.hiddenSize], lin(c.hiddenSize));
    add(p + "ffn_up.weight", [c.intermediateSize, c.hiddenSize], lin(c.hiddenSize));
    add(p + "ffn_down.weight", [c.hiddenSize, c.intermediateSize], lin(c.intermediateSize));
  }
  return weightsFromMap(config, tensors, `random model (seed ${seed})`);
}

/**
 * ModelWeights over an in-memory map; `source` names it in errors. With `matrices`, those tensors are given to the
 * forward pass in their own type (`matrix`), and `tensor` decodes them to f32 on request.
 */
export function weightsFromMap(config: LlamaConfig, tensors: Map<string, Tensor>, source: string, matrices?: ReadonlyMap<string, WeightMatrix>): ModelWeights {
  const tensor = (name: string): Tensor => {
    const t = tensors.get(name);
    if (t) return t;
    const w = matrices?.get(name);
    if (!w) throw new Error(`${source}: no tensor named ${name}`);
    return { name, shape: [w.rows, w.cols], data: w.kind === "f32" ? w.data : dequantize(w.type, w.bytes, w.rows * w.cols, name) };
  };
  return {
    config,
    source,
    has: (name) => tensors.has(name) || (matrices?.has(name) ?? false),
    tensor,
    ...(matrices
      ? {
          matrix: (name: string): WeightMatrix => {
            const w = matrices.get(name);
            if (w) return w;
            const t = tensor(name);
            if (t.shape.length !== 2) throw new Error(`${source}: tensor ${name} has shape [${t.shape.join(", ")}], expected a matrix`);
            return { kind: "f32", name, rows: t.shape[0], cols: t.shape[1], data: t.data };
          },
        }
      : {}),
  };
}

/**
 * Where each block type keeps its f16 scales (byte offsets in the block; ggml-common.h's structs), and the scale
 * that gives weights of standard deviation ≈ 1 when the other bytes are uniformly random (the quants' spread:
 * Q8_0 ±128 → 74; 4-bit 0…15 → 4.6; Q4_K/Q5_K 6-bit sub-scales ≈ 31 times the quants; Q6_K int8 scales ≈ 74 times
 * quants ±32 → 18; …). Every block of every row is otherwise random bytes, so all bit patterns of the quants,
 * sub-scales and high bits are exercised.
 */
const RANDOM_BLOCKS: Readonly<Record<string, { scale: number; min?: { at: number; ratio: number }; unit: number }>> = {
  Q4_0: { scale: 0, unit: 1 / 4.6 },
  Q4_1: { scale: 0, min: { at: 2, ratio: -7.5 }, unit: 1 / 4.6 },
  Q5_0: { scale: 0, unit: 1 / 9.2 },
  Q5_1: { scale: 0, min: { at: 2, ratio: -15.5 }, unit: 1 / 9.2 },
  Q8_0: { scale: 0, unit: 1 / 74 },
  IQ4_NL: { scale: 0, unit: 1 / 70 },
  Q2_K: { scale: 80, min: { at: 82, ratio: 1.5 }, unit: 1 / (7.5 * 1.1) },
  Q3_K: { scale: 108, unit: 1 / (18 * 2.3) },
  Q4_K: { scale: 0, min: { at: 2, ratio: 7.5 }, unit: 1 / (31 * 4.6) },
  Q5_K: { scale: 0, min: { at: 2, ratio: 15.5 }, unit: 1 / (31 * 9.2) },
  Q6_K: { scale: 208, unit: 1 / (74 * 18) },
  IQ4_XS: { scale: 0, unit: 1 / (18 * 70) },
};

/** The block types `randomBlockWeights` can draw. */
export const RANDOM_BLOCK_TYPES: readonly string[] = [...Object.keys(RANDOM_BLOCKS), "F16", "BF16"];

/**
 * A random model whose matrices are blocks of ggml type `typeName` (see RANDOM_BLOCK_TYPES): random bytes with the
 * f16 scales set so each matrix's weights have roughly randomWeights' scale (1/√fan_in; 1 for the embedding), and
 * f32 norms and biases. Needs hiddenSize and intermediateSize (and numHeads·headDim) to be multiples of the block
 * size. `tensor(name)` decodes a matrix to f32 (the values the kernels compute with).
 */
export function randomBlockWeights(config: LlamaConfig, typeName: string, seed = 1): ModelWeights {
  const type = (GgmlType as Record<string, number>)[typeName];
  const traits = type === undefined ? undefined : ggmlTypeTraits(type);
  if (traits === undefined || !RANDOM_BLOCK_TYPES.includes(typeName)) {
    throw new Error(`randomBlockWeights: type ${typeName} is not one of ${RANDOM_BLOCK_TYPES.join(", ")}`);
  }
  const f32 = randomWeights(config, seed);
  const rand = mulberry32(seed + 1);
  const tensors = new Map<string, Tensor>();
  const matrices = new Map<string, WeightMatrix>();
  const matrixNames = new Set<string>();
  for (const name of allNames(config)) {
    const t = f32.tensor(name);
    if (t.shape.length === 2) matrixNames.add(name);
    else tensors.set(name, t);
  }
  for (const name of matrixNames) {
    const t = f32.tensor(name);
    const [rows, cols] = t.shape;
    if (cols % traits.blockSize !== 0) throw new Error(`randomBlockWeights: ${name} has ${cols} columns, not a multiple of ${typeName}'s ${traits.blockSize}`);
    const scale = name === "token_embd.weight" ? 1 : 1 / Math.sqrt(cols);
    matrices.set(name, randomBlockMatrix(name, type, typeName, rows, cols, scale, rand));
  }
  return weightsFromMap(config, tensors, `random ${typeName} model (seed ${seed})`, matrices);
}

function randomBlockMatrix(name: string, type: number, typeName: string, rows: number, cols: number, scale: number, rand: () => number): BlockMatrix {
  const rowBytes = ggmlByteSize(type, cols) as number;
  const bytes = new Uint8Array(rows * rowBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const view = new DataView(bytes.buffer);
  if (typeName === "F16" || typeName === "BF16") {
    for (let i = 0; i < rows * cols; i++) {
      const value = (rand() * 2 - 1) * Math.sqrt(3) * scale;
      if (typeName === "F16") view.setUint16(2 * i, floatToHalf(value), true);
      else view.setUint16(2 * i, new Uint32Array(new Float32Array([value]).buffer)[0] >>> 16, true);
    }
  } else {
    const { scale: scaleAt, min, unit } = RANDOM_BLOCKS[typeName];
    const { blockSize, typeSize } = ggmlTypeTraits(type) as { blockSize: number; typeSize: number };
    for (let b = 0; b < (rows * cols) / blockSize; b++) {
      // each block's scale drawn around the target, as a trained model's blocks differ
      const d = unit * scale * (0.5 + rand());
      view.setUint16(b * typeSize + scaleAt, floatToHalf(d), true);
      // the min: half the quants' range (in units of the sub-scale where there is one), so weights centre near zero
      if (min) view.setUint16(b * typeSize + min.at, floatToHalf(d * min.ratio), true);
    }
  }
  return { kind: "blocks", name, rows, cols, type, typeName, bytes, rowBytes };
}

/** IEEE binary16 bits of x, rounded to nearest (subnormals included; ties need not be even for random scales). */
function floatToHalf(x: number): number {
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | Math.round(a * 2 ** 24);
  let e = Math.min(15, Math.max(-14, Math.floor(Math.log2(a))));
  let m = Math.round((a / 2 ** e - 1) * 1024);
  if (m >= 1024) {
    m -= 1024;
    e += 1;
  }
  return sign | ((e + 15) << 10) | m;
}

/** Every tensor name of a model of `c`, as randomWeights makes it. */
function allNames(c: LlamaConfig): string[] {
  const names = ["token_embd.weight", "output_norm.weight", ...(c.tiedEmbeddings ? [] : ["output.weight"])];
  const layer = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];
  if (c.qkNorm) layer.push("attn_q_norm", "attn_k_norm");
  if (c.sandwichNorms) layer.push("post_attention_norm", "post_ffw_norm");
  for (let l = 0; l < c.numLayers; l++) {
    for (const n of layer) names.push(`blk.${l}.${n}.weight`);
    if (c.qkvBias) for (const n of ["attn_q", "attn_k", "attn_v"]) names.push(`blk.${l}.${n}.bias`);
  }
  return names;
}
