/**
 * ggml tensor types → Float32Array.
 *
 * Layout (ggml, little-endian): a tensor of type T is a flat run of blocks; each block holds `blockSize`
 * consecutive elements of the innermost dimension (GGUF's ne[0], the `in` dimension of a linear layer) in
 * `typeSize` bytes. Rows never share a block: ne[0] is a multiple of the block size. Quantized blocks keep their
 * scales as IEEE half floats. Dequantization is block-local, so a tensor is decoded by one loop over its blocks.
 *
 * Supported here: F32, F16, BF16, Q8_0, Q4_0, Q4_1 (DESIGN §5). Other types still have their sizes listed below
 * so that a file's tensor extents can be validated before anyone asks for those tensors.
 */
import { endianness } from "node:os";

/** ggml type ids (ggml.h `enum ggml_type`; GGUF stores them as uint32). */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30,
} as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export interface GgmlTypeTraits {
  readonly name: string;
  /** Elements per block (1 for plain floats and ints). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

// ggml's type_traits table for the types we can size. K-quants (QK_K = 256): q2_K = scales[16] + qs[64] + d, dmin;
// q3_K = hmask[32] + qs[64] + scales[12] + d; q4_K = d, dmin + scales[12] + qs[128]; q5_K = q4_K + qh[32];
// q6_K = ql[128] + qh[64] + scales[16] + d; q8_K = f32 d + qs[256] + bsums int16[16].
const TRAITS: ReadonlyMap<number, GgmlTypeTraits> = new Map(
  (
    [
      ["F32", 0, 1, 4],
      ["F16", 1, 1, 2],
      ["Q4_0", 2, 32, 18],
      ["Q4_1", 3, 32, 20],
      ["Q5_0", 6, 32, 22],
      ["Q5_1", 7, 32, 24],
      ["Q8_0", 8, 32, 34],
      ["Q8_1", 9, 32, 36],
      ["Q2_K", 10, 256, 84],
      ["Q3_K", 11, 256, 110],
      ["Q4_K", 12, 256, 144],
      ["Q5_K", 13, 256, 176],
      ["Q6_K", 14, 256, 210],
      ["Q8_K", 15, 256, 292],
      ["I8", 24, 1, 1],
      ["I16", 25, 1, 2],
      ["I32", 26, 1, 4],
      ["I64", 27, 1, 8],
      ["F64", 28, 1, 8],
      ["BF16", 30, 1, 2],
    ] as const
  ).map(([name, id, blockSize, typeSize]) => [id, { name, blockSize, typeSize }]),
);

// Names of the types we can neither size nor decode, so that errors still say what the file holds.
const OTHER_NAMES: Readonly<Record<number, string>> = {
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  29: "IQ1_M",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};

const DEQUANTIZABLE: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
]);

/** The names of the types `dequantize` accepts, for error messages. */
export const SUPPORTED_TYPE_NAMES: readonly string[] = [...DEQUANTIZABLE].map((t) => ggmlTypeName(t));

export function ggmlTypeName(type: number): string {
  return TRAITS.get(type)?.name ?? OTHER_NAMES[type] ?? `type ${type}`;
}

export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return TRAITS.get(type);
}

export function isDequantizable(type: number): boolean {
  return DEQUANTIZABLE.has(type);
}

/**
 * Bytes that `nElements` elements of `type` occupy, or undefined for a type whose block size is not known here.
 * Throws when the element count is not a whole number of blocks.
 */
export function ggmlByteSize(type: number, nElements: number): number | undefined {
  const traits = TRAITS.get(type);
  if (traits === undefined) return undefined;
  if (nElements % traits.blockSize !== 0) {
    throw new Error(`${nElements} elements are not a whole number of ${traits.name} blocks of ${traits.blockSize}`);
  }
  return (nElements / traits.blockSize) * traits.typeSize;
}

// ---------------------------------------------------------------------------------------------------------------
// Scalars

const LITTLE_ENDIAN_HOST = endianness() === "LE";

let halfTable: Float32Array | undefined;

/** IEEE 754 binary16 → number (exact: every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** All 65536 halves decoded once (256 KiB): the quantized loops read one scale per block through it. */
function halves(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** bfloat16 → number: the top half of a float32. */
export function bf16ToFloat(b: number): number {
  const scratch = new Uint32Array([b << 16]);
  return new Float32Array(scratch.buffer)[0];
}

function dataView(src: Uint8Array): DataView {
  return new DataView(src.buffer, src.byteOffset, src.byteLength);
}

// ---------------------------------------------------------------------------------------------------------------
// Plain floats

/** F32: 4 bytes per element, little-endian. */
export function dequantizeF32(src: Uint8Array, out: Float32Array): void {
  if (LITTLE_ENDIAN_HOST && src.byteOffset % 4 === 0) {
    out.set(new Float32Array(src.buffer, src.byteOffset, out.length));
    return;
  }
  const view = dataView(src);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
}

/** F16: IEEE half, 2 bytes per element. */
export function dequantizeF16(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  for (let i = 0; i < out.length; i++) out[i] = table[view.getUint16(2 * i, true)];
}

/** BF16: the high 16 bits of a float32, 2 bytes per element. */
export function dequantizeBF16(src: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const view = dataView(src);
  for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
}

// ---------------------------------------------------------------------------------------------------------------
// Quantized blocks (ggml-common.h). Weight j of a block is element 32·b + j of the tensor.

/**
 * block_q8_0, 34 bytes:  { f16 d; int8 qs[32]; }
 * x[j] = d · qs[j]
 */
export function dequantizeQ8_0(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const qs = new Int8Array(src.buffer, src.byteOffset, src.byteLength);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 34 * b;
    const d = table[view.getUint16(base, true)];
    for (let j = 0; j < 32; j++) out[32 * b + j] = d * qs[base + 2 + j];
  }
}

/**
 * block_q4_0, 18 bytes:  { f16 d; uint8 qs[16]; }
 * Byte j holds weight j in its low nibble and weight j + 16 in its high nibble; x = (q − 8) · d.
 */
export function dequantizeQ4_0(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 18 * b;
    const d = table[view.getUint16(base, true)];
    for (let j = 0; j < 16; j++) {
      const q = src[base + 2 + j];
      out[32 * b + j] = ((q & 0x0f) - 8) * d;
      out[32 * b + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/**
 * block_q4_1, 20 bytes:  { f16 d; f16 m; uint8 qs[16]; }
 * Same nibble order as q4_0; x = q · d + m (m is the block minimum).
 */
export function dequantizeQ4_1(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 20 * b;
    const d = table[view.getUint16(base, true)];
    const m = table[view.getUint16(base + 2, true)];
    for (let j = 0; j < 16; j++) {
      const q = src[base + 4 + j];
      out[32 * b + j] = (q & 0x0f) * d + m;
      out[32 * b + j + 16] = (q >> 4) * d + m;
    }
  }
}

const DEQUANTIZERS: ReadonlyMap<number, (src: Uint8Array, out: Float32Array) => void> = new Map([
  [GgmlType.F32, dequantizeF32],
  [GgmlType.F16, dequantizeF16],
  [GgmlType.BF16, dequantizeBF16],
  [GgmlType.Q8_0, dequantizeQ8_0],
  [GgmlType.Q4_0, dequantizeQ4_0],
  [GgmlType.Q4_1, dequantizeQ4_1],
]);

/**
 * Decodes `nElements` elements of `type` from `bytes` (which may be longer). `tensorName` only names the tensor
 * in errors: an unsupported type, a count that is not whole blocks, or too few bytes.
 */
export function dequantize(type: number, bytes: Uint8Array, nElements: number, tensorName: string): Float32Array {
  const decode = DEQUANTIZERS.get(type);
  if (decode === undefined) {
    throw new Error(
      `tensor ${tensorName} has type ${ggmlTypeName(type)}, which cannot be dequantized ` +
        `(supported: ${SUPPORTED_TYPE_NAMES.join(", ")})`,
    );
  }
  let needed: number | undefined;
  try {
    needed = ggmlByteSize(type, nElements);
  } catch (err) {
    throw new Error(`tensor ${tensorName}: ${(err as Error).message}`);
  }
  if (needed === undefined || bytes.byteLength < needed) {
    throw new Error(
      `tensor ${tensorName}: ${nElements} ${ggmlTypeName(type)} elements need ${needed} bytes, got ${bytes.byteLength}`,
    );
  }
  const out = new Float32Array(nElements);
  decode(bytes, out);
  return out;
}
