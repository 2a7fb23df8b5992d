/**
 * Writers for tiny GGUF and safetensors files, for tests (here and in other packages' tests): build a model file
 * of any Llama-family config in a temp dir, in any supported tensor type, then load it back through the real
 * readers. The quantizers are ggml's reference ones (round to nearest, scales stored as halves); they exist so
 * that test files hold realistic blocks, not for speed.
 */
import type { LlamaConfig, ModelWeights, Tensor } from "../model/types.js";
import { resolveModelRef } from "../resolve.js";
import { GgmlType } from "./dequant.js";
import { llamaTensorShapes } from "./llama-tensors.js";

// ---------------------------------------------------------------------------------------------------------------
// Scalar encoders

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** number → IEEE half bits, rounding to nearest even (through float32). */
export function floatToHalf(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is correct
  return sign | half;
}

/** number → bfloat16 bits, rounding to nearest even. */
export function floatToBf16(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor encoders (ggml layouts, see dequant.ts)

export function encodeF32(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return out;
}

export function encodeF16(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToHalf(values[i]), true);
  return out;
}

export function encodeBF16(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToBf16(values[i]), true);
  return out;
}

function checkBlocks(values: ArrayLike<number>): number {
  if (values.length % 32 !== 0) throw new Error(`${values.length} values are not a whole number of blocks of 32`);
  return values.length / 32;
}

/** ggml quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d). */
export function quantizeQ8_0(values: ArrayLike<number>): Uint8Array {
  const nBlocks = checkBlocks(values);
  const out = new Uint8Array(nBlocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[32 * b + j]));
    const d = amax / 127;
    const id = d !== 0 ? 1 / d : 0;
    view.setUint16(34 * b, floatToHalf(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(34 * b + 2 + j, Math.round(values[32 * b + j] * id));
  }
  return out;
}

/** ggml quantize_row_q4_0_ref: d = (signed value of largest magnitude) / −8, q = min(15, ⌊x/d + 8.5⌋). */
export function quantizeQ4_0(values: ArrayLike<number>): Uint8Array {
  const nBlocks = checkBlocks(values);
  const out = new Uint8Array(nBlocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    let max = 0;
    for (let j = 0; j < 32; j++) if (Math.abs(values[32 * b + j]) > Math.abs(max)) max = values[32 * b + j];
    const d = max / -8;
    const id = d !== 0 ? 1 / d : 0;
    view.setUint16(18 * b, floatToHalf(d), true);
    const q = (x: number) => Math.min(15, Math.trunc(x * id + 8.5));
    for (let j = 0; j < 16; j++) {
      out[18 * b + 2 + j] = q(values[32 * b + j]) | (q(values[32 * b + j + 16]) << 4);
    }
  }
  return out;
}

/** ggml quantize_row_q4_1_ref: m = min, d = (max − min) / 15, q = min(15, ⌊(x − m)/d + 0.5⌋). */
export function quantizeQ4_1(values: ArrayLike<number>): Uint8Array {
  const nBlocks = checkBlocks(values);
  const out = new Uint8Array(nBlocks * 20);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nBlocks; b++) {
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < 32; j++) {
      min = Math.min(min, values[32 * b + j]);
      max = Math.max(max, values[32 * b + j]);
    }
    const d = (max - min) / 15;
    const id = d !== 0 ? 1 / d : 0;
    view.setUint16(20 * b, floatToHalf(d), true);
    view.setUint16(20 * b + 2, floatToHalf(min), true);
    const q = (x: number) => Math.min(15, Math.trunc((x - min) * id + 0.5));
    for (let j = 0; j < 16; j++) {
      out[20 * b + 4 + j] = q(values[32 * b + j]) | (q(values[32 * b + j + 16]) << 4);
    }
  }
  return out;
}

/** Encodes f32 values as a ggml type (F32, F16, BF16, Q8_0, Q4_0, Q4_1). */
export function encodeGgml(type: number, values: ArrayLike<number>): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return encodeF32(values);
    case GgmlType.F16:
      return encodeF16(values);
    case GgmlType.BF16:
      return encodeBF16(values);
    case GgmlType.Q8_0:
      return quantizeQ8_0(values);
    case GgmlType.Q4_0:
      return quantizeQ4_0(values);
    case GgmlType.Q4_1:
      return quantizeQ4_1(values);
    default:
      throw new Error(`no encoder for ggml type ${type}`);
  }
}

/**
 * llama.cpp's Q/K permutation, written literally after convert_hf_to_gguf's
 *   w.reshape(nHead, 2, rows/nHead/2, *rest).swapaxes(1, 2).reshape(w.shape)
 * as index arithmetic on the 4-d view [nHead, 2, half, rest] → [nHead, half, 2, rest]. `rest` is the product of the
 * trailing dimensions (the row length; 1 for a bias).
 */
export function llamaCppPermute(w: Float32Array, nHead: number, rest: number): Float32Array {
  const half = w.length / rest / nHead / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        for (let c = 0; c < rest; c++) {
          const source = ((h * 2 + s) * half + i) * rest + c; // index in [nHead, 2, half, rest]
          const target = ((h * half + i) * 2 + s) * rest + c; // index in [nHead, half, 2, rest]
          out[target] = w[source];
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// GGUF writer (v3, little-endian)

/** A GGUF scalar value type, by the short name used in `GgufValue`'s explicit forms. */
export type GgufScalarTypeName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "bool" | "string" | "u64" | "i64" | "f64";

type GgufScalar = number | bigint | boolean | string;

/**
 * A metadata value: numbers are written as UINT32 (non-negative integers), INT32 or FLOAT32 unless wrapped; `type`
 * and `arrayOf` write a scalar or an array of any GGUF type.
 */
export type GgufValue =
  | string
  | boolean
  | number
  | bigint
  | readonly string[]
  | readonly number[]
  | { readonly f32: number }
  | { readonly u32: number }
  | { readonly u64: bigint }
  | { readonly type: GgufScalarTypeName; readonly value: GgufScalar }
  | { readonly arrayOf: GgufScalarTypeName; readonly values: readonly GgufScalar[] };

export interface GgufTensorSpec {
  readonly name: string;
  /** ggml type id. */
  readonly type: number;
  /** PyTorch order, outermost first (written reversed, as GGUF's ne[]). */
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

// GGUF metadata value types (gguf.h `enum gguf_type`).
const ValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
type ValueType = (typeof ValueType)[keyof typeof ValueType];

const SCALAR_TYPES: Readonly<Record<GgufScalarTypeName, ValueType>> = {
  u8: ValueType.UINT8, i8: ValueType.INT8, u16: ValueType.UINT16, i16: ValueType.INT16, u32: ValueType.UINT32,
  i32: ValueType.INT32, f32: ValueType.FLOAT32, bool: ValueType.BOOL, string: ValueType.STRING, u64: ValueType.UINT64,
  i64: ValueType.INT64, f64: ValueType.FLOAT64,
};

class ByteWriter {
  private chunks: Uint8Array[] = [];
  length = 0;

  bytes(data: Uint8Array): void {
    this.chunks.push(data);
    this.length += data.length;
  }
  /** Any fixed-size value, through its DataView setter. */
  fixed(size: number, write: (view: DataView) => void): void {
    const chunk = new Uint8Array(size);
    write(new DataView(chunk.buffer));
    this.bytes(chunk);
  }
  u32(v: number): void {
    this.fixed(4, (view) => view.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.fixed(4, (view) => view.setInt32(0, v, true));
  }
  f32(v: number): void {
    this.fixed(4, (view) => view.setFloat32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.fixed(8, (view) => view.setBigUint64(0, BigInt(v), true));
  }
  string(s: string): void {
    const encoded = new TextEncoder().encode(s);
    this.u64(encoded.length);
    this.bytes(encoded);
  }
  pad(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment;
    if (padding > 0) this.bytes(new Uint8Array(padding));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function numberType(values: readonly number[]): ValueType {
  if (values.every((v) => Number.isInteger(v))) return values.every((v) => v >= 0) ? ValueType.UINT32 : ValueType.INT32;
  return ValueType.FLOAT32;
}

function writeScalar(w: ByteWriter, type: ValueType, value: GgufScalar): void {
  const n = value as number;
  if (type === ValueType.UINT8) w.fixed(1, (view) => view.setUint8(0, n));
  else if (type === ValueType.INT8) w.fixed(1, (view) => view.setInt8(0, n));
  else if (type === ValueType.UINT16) w.fixed(2, (view) => view.setUint16(0, n, true));
  else if (type === ValueType.INT16) w.fixed(2, (view) => view.setInt16(0, n, true));
  else if (type === ValueType.UINT32) w.u32(n);
  else if (type === ValueType.INT32) w.i32(n);
  else if (type === ValueType.FLOAT32) w.f32(n);
  else if (type === ValueType.UINT64) w.u64(value as bigint);
  else if (type === ValueType.INT64) w.fixed(8, (view) => view.setBigInt64(0, value as bigint, true));
  else if (type === ValueType.FLOAT64) w.fixed(8, (view) => view.setFloat64(0, n, true));
  else if (type === ValueType.STRING) w.string(value as string);
  else if (type === ValueType.BOOL) w.bytes(Uint8Array.of(value ? 1 : 0));
  else throw new Error(`no writer for GGUF value type ${type}`);
}

function isReadonlyArray(value: unknown): value is readonly (string | number)[] {
  return Array.isArray(value);
}

function writeValue(w: ByteWriter, value: GgufValue): void {
  if (typeof value === "string") {
    w.u32(ValueType.STRING);
    w.string(value);
  } else if (typeof value === "boolean") {
    w.u32(ValueType.BOOL);
    writeScalar(w, ValueType.BOOL, value);
  } else if (typeof value === "bigint") {
    w.u32(ValueType.UINT64);
    w.u64(value);
  } else if (typeof value === "number") {
    const type = numberType([value]);
    w.u32(type);
    writeScalar(w, type, value);
  } else if (isReadonlyArray(value)) {
    const strings = value.length > 0 && typeof value[0] === "string";
    const type = strings ? ValueType.STRING : numberType(value as number[]);
    w.u32(ValueType.ARRAY);
    w.u32(type);
    w.u64(value.length);
    for (const item of value) writeScalar(w, type, item);
  } else if ("arrayOf" in value) {
    w.u32(ValueType.ARRAY);
    w.u32(SCALAR_TYPES[value.arrayOf]);
    w.u64(value.values.length);
    for (const item of value.values) writeScalar(w, SCALAR_TYPES[value.arrayOf], item);
  } else if ("type" in value) {
    w.u32(SCALAR_TYPES[value.type]);
    writeScalar(w, SCALAR_TYPES[value.type], value.value);
  } else if ("f32" in value) {
    w.u32(ValueType.FLOAT32);
    w.f32(value.f32);
  } else if ("u32" in value) {
    w.u32(ValueType.UINT32);
    w.u32(value.u32);
  } else {
    w.u32(ValueType.UINT64);
    w.u64(value.u64);
  }
}

/** A complete GGUF file: header, metadata, tensor infos, then each tensor's data padded to the alignment. */
export function buildGguf(
  metadata: Readonly<Record<string, GgufValue>>,
  tensors: readonly GgufTensorSpec[],
): Uint8Array {
  const alignmentValue = metadata["general.alignment"];
  const alignment = typeof alignmentValue === "number" ? alignmentValue : 32;
  const w = new ByteWriter();
  w.bytes(new TextEncoder().encode("GGUF"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    w.string(key);
    writeValue(w, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.shape.length);
    for (const dim of [...t.shape].reverse()) w.u64(dim);
    w.u32(t.type);
    w.u64(offsets[i]);
  });
  for (const t of tensors) {
    w.pad(alignment);
    w.bytes(t.data);
  }
  w.pad(alignment);
  return w.concat();
}

/**
 * A Llama-family GGUF holding `weights` (HF layout, GGUF names), as llama.cpp's converter would write it: metadata
 * under `<architecture>.*`, 1-d tensors in F32, matrices in `type`, and for llama-architecture files the Q/K rows
 * permuted. `extraMetadata` is added last (tokenizer keys, overrides).
 */
export function buildLlamaGguf(
  weights: ModelWeights,
  options: {
    type?: number;
    extraMetadata?: Readonly<Record<string, GgufValue>>;
    omit?: readonly string[];
    extraTensors?: readonly GgufTensorSpec[];
  } = {},
): Uint8Array {
  const c: LlamaConfig = weights.config;
  const arch = c.architecture;
  const metadata: Record<string, GgufValue> = {
    "general.architecture": arch,
    "general.name": "tiny test model",
    [`${arch}.block_count`]: c.numLayers,
    [`${arch}.context_length`]: c.maxContext,
    [`${arch}.embedding_length`]: c.hiddenSize,
    [`${arch}.feed_forward_length`]: c.intermediateSize,
    [`${arch}.attention.head_count`]: c.numHeads,
    [`${arch}.attention.head_count_kv`]: c.numKvHeads,
    [`${arch}.attention.layer_norm_rms_epsilon`]: { f32: c.rmsNormEps },
    [`${arch}.rope.freq_base`]: { f32: c.ropeTheta },
    ...(c.headDim !== c.hiddenSize / c.numHeads ? { [`${arch}.attention.key_length`]: c.headDim } : {}),
    ...options.extraMetadata,
  };
  const names = [...llamaTensorShapes(c).keys()];
  const permuted = arch === "llama" || arch === "mistral";
  const tensors = names
    .filter((name) => !(options.omit ?? []).includes(name))
    .map((name): GgufTensorSpec => {
      const t = weights.tensor(name);
      let data = t.data;
      const qk = /^blk\.\d+\.attn_([qk])\./.exec(name);
      if (permuted && qk !== null) {
        data = llamaCppPermute(data, qk[1] === "q" ? c.numHeads : c.numKvHeads, t.shape.length > 1 ? t.shape[1] : 1);
      }
      const type = t.shape.length === 1 ? GgmlType.F32 : (options.type ?? GgmlType.F32);
      return { name, type, shape: t.shape, data: encodeGgml(type, data) };
    });
  return buildGguf(metadata, [...tensors, ...(options.extraTensors ?? [])]);
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors writer

export interface SafetensorsTensorSpec {
  readonly name: string;
  readonly dtype: "F32" | "F16" | "BF16";
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** 8-byte little-endian header length, JSON header (space-padded to 8 bytes), then the tensors back to back. */
export function buildSafetensors(
  tensors: readonly SafetensorsTensorSpec[],
  metadata: Readonly<Record<string, string>> = { format: "pt" },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const unpadded = new TextEncoder().encode(JSON.stringify(header));
  const jsonBytes = new Uint8Array(Math.ceil(unpadded.length / 8) * 8).fill(0x20); // spaces keep it valid JSON
  jsonBytes.set(unpadded);
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let position = 8 + jsonBytes.length;
  for (const t of tensors) {
    out.set(t.data, position);
    position += t.data.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The real model

/**
 * Finds a real model in the local hub cache without touching the network. Tests that need it must fail when
 * `process.env.CI` is set and it is absent (and may skip, saying so, elsewhere); `missing` says why it is absent.
 */
export async function locateRealModel(
  ref = "smollm2-135m-instruct",
): Promise<{ readonly path: string } | { readonly missing: string }> {
  try {
    return { path: (await resolveModelRef(ref, { offline: true })).path };
  } catch (err) {
    return { missing: (err as Error).message };
  }
}

/** Where two float arrays first differ (bitwise, so −0 ≠ 0 and NaN = NaN), for fast test assertions. */
export function firstDifference(actual: Float32Array, expected: Float32Array): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `element ${i} is ${actual[i]}, expected ${expected[i]}`;
  }
  return undefined;
}
