/**
 * ggml tensor types → Float32Array.
 *
 * Layout (ggml, little-endian): a tensor of type T is a flat run of blocks; each block holds `blockSize`
 * consecutive elements of the innermost dimension (GGUF's ne[0], the `in` dimension of a linear layer) in
 * `typeSize` bytes. Rows never share a block: ne[0] is a multiple of the block size. Quantized blocks keep their
 * scales as IEEE half floats. Dequantization is block-local, so a tensor is decoded by one loop over its blocks.
 *
 * Supported here (DESIGN §5): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants Q2_K–Q6_K, IQ4_NL and
 * IQ4_XS. Every decoder is bit-identical to gguf-py's `gguf.quants.dequantize` (test/fixtures/gguf-quants.json,
 * made by tools/gguf-quants): each product or sum is rounded to float32 where numpy rounds it, in the same order.
 * The other types still have their sizes listed below, so that a file's tensor extents are validated and its raw
 * bytes can be read before anyone asks to decode them.
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
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
} as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export interface GgmlTypeTraits {
  readonly name: string;
  /** Elements per block (1 for plain floats and ints). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

// ggml's type_traits (ggml.c; the block structs are in ggml-common.h, QK_K = 256). The decodable layouts are
// spelled out at their decoders below; the rest are listed only so that their tensors can be sized. Q8_1 is
// 2 halves + 32 int8 = 36 bytes in ggml (gguf-py's table still says 40, from when d and s were floats); Q8_1 and
// Q8_K are dot-product intermediates that model files do not store.
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
      ["IQ2_XXS", 16, 256, 66],
      ["IQ2_XS", 17, 256, 74],
      ["IQ3_XXS", 18, 256, 98],
      ["IQ1_S", 19, 256, 50],
      ["IQ4_NL", 20, 32, 18],
      ["IQ3_S", 21, 256, 110],
      ["IQ2_S", 22, 256, 82],
      ["IQ4_XS", 23, 256, 136],
      ["I8", 24, 1, 1],
      ["I16", 25, 1, 2],
      ["I32", 26, 1, 4],
      ["I64", 27, 1, 8],
      ["F64", 28, 1, 8],
      ["IQ1_M", 29, 256, 56],
      ["BF16", 30, 1, 2],
      ["TQ1_0", 34, 256, 54],
      ["TQ2_0", 35, 256, 66],
      ["MXFP4", 39, 32, 17],
      ["NVFP4", 40, 64, 36],
      ["Q1_0", 41, 128, 18],
    ] as const
  ).map(([name, id, blockSize, typeSize]) => [id, { name, blockSize, typeSize }]),
);

// Ids that ggml once had and removed (repacked Q4_0 / IQ4_NL, which llama.cpp now refuses in files): named, so
// that an error still says what the file holds, but not sized.
const REMOVED_NAMES: Readonly<Record<number, string>> = {
  31: "Q4_0_4_4",
  32: "Q4_0_4_8",
  33: "Q4_0_8_8",
  36: "IQ4_NL_4_4",
  37: "IQ4_NL_4_8",
  38: "IQ4_NL_8_8",
};

/** Decodable types, in the order errors list them. */
const DEQUANTIZABLE: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
]);

/** The names of the types `dequantize` accepts, for error messages. */
export const SUPPORTED_TYPE_NAMES: readonly string[] = [...DEQUANTIZABLE].map((t) => ggmlTypeName(t));

export function ggmlTypeName(type: number): string {
  return TRAITS.get(type)?.name ?? REMOVED_NAMES[type] ?? `type ${type}`;
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

function int8(byte: number): number {
  return (byte << 24) >> 24;
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
// Quantized blocks (ggml-common.h; `@n` is a field's byte offset in its block). Weight i of block b is element
// blockSize·b + i of the tensor. Storing a number into a Float32Array rounds it to float32 once, as numpy does for
// each float32 operation; where gguf-py rounds a product before adding to it, Math.fround does the same here.

/**
 * block_q8_0, 34 bytes, 32 weights:  { f16 d @0; int8 qs[32] @2; }
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
 * block_q4_0, 18 bytes, 32 weights:  { f16 d @0; uint8 qs[16] @2; }
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
 * block_q4_1, 20 bytes, 32 weights:  { f16 d @0; f16 m @2; uint8 qs[16] @4; }
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
      out[32 * b + j] = Math.fround((q & 0x0f) * d) + m;
      out[32 * b + j + 16] = Math.fround((q >> 4) * d) + m;
    }
  }
}

/**
 * block_q5_0, 22 bytes, 32 weights:  { f16 d @0; uint8 qh[4] @2; uint8 qs[16] @6; }
 * qh, read as one little-endian uint32, holds bit 4 of weight j in its bit j; the low four bits are nibbles in
 * q4_0's order. x = (q − 16) · d, q in 0..31.
 */
export function dequantizeQ5_0(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 22 * b;
    const d = table[view.getUint16(base, true)];
    const qh = view.getUint32(base + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = src[base + 6 + j];
      out[32 * b + j] = ((q & 0x0f) + (((qh >>> j) & 1) << 4) - 16) * d;
      out[32 * b + j + 16] = ((q >> 4) + (((qh >>> (j + 16)) & 1) << 4) - 16) * d;
    }
  }
}

/**
 * block_q5_1, 24 bytes, 32 weights:  { f16 d @0; f16 m @2; uint8 qh[4] @4; uint8 qs[16] @8; }
 * q as in q5_0; x = q · d + m.
 */
export function dequantizeQ5_1(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 24 * b;
    const d = table[view.getUint16(base, true)];
    const m = table[view.getUint16(base + 2, true)];
    const qh = view.getUint32(base + 4, true);
    for (let j = 0; j < 16; j++) {
      const q = src[base + 8 + j];
      out[32 * b + j] = Math.fround(((q & 0x0f) + (((qh >>> j) & 1) << 4)) * d) + m;
      out[32 * b + j + 16] = Math.fround(((q >> 4) + (((qh >>> (j + 16)) & 1) << 4)) * d) + m;
    }
  }
}

/**
 * block_q2_K, 84 bytes, 256 weights:  { uint8 scales[16] @0; uint8 qs[64] @16; f16 d @80; f16 dmin @82; }
 * Sixteen sub-blocks of 16 weights; scales[s] holds sub-block s's scale (low nibble) and min (high nibble).
 * Weight i = 128·h + 32·k + l (h < 2, k < 4, l < 32) is bits 2k, 2k+1 of qs[32h + l], in sub-block i / 16.
 * x = (d · scale) · q − dmin · min, q in 0..3.
 */
export function dequantizeQ2_K(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 84 * b;
    const d = table[view.getUint16(base + 80, true)];
    const dmin = table[view.getUint16(base + 82, true)];
    for (let s = 0; s < 16; s++) {
      const dl = Math.fround(d * (src[base + s] & 0x0f));
      const ml = Math.fround(dmin * (src[base + s] >> 4));
      for (let i = 16 * s; i < 16 * s + 16; i++) {
        const q = (src[base + 16 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
        out[256 * b + i] = Math.fround(dl * q) - ml;
      }
    }
  }
}

/** Scale s (−32..31) of a q3_K block: its low nibble in bytes 0..7, its top two bits in bytes 8..11. */
function q3kScale(src: Uint8Array, scales: number, s: number): number {
  const low = s < 8 ? src[scales + s] & 0x0f : src[scales + s - 8] >> 4;
  const high = (src[scales + 8 + (s & 3)] >> (2 * (s >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

/**
 * block_q3_K, 110 bytes, 256 weights:  { uint8 hmask[32] @0; uint8 qs[64] @32; uint8 scales[12] @96; f16 d @108; }
 * Sixteen sub-blocks of 16 weights with a 6-bit signed scale each (q3kScale). Weight i = 128·h + 32·k + l has its
 * low two bits in bits 2k, 2k+1 of qs[32h + l] and its high bit in bit i / 32 of hmask[l]; a clear high bit means
 * minus 4. x = (d · scale) · q, q in −4..3.
 */
export function dequantizeQ3_K(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 110 * b;
    const d = table[view.getUint16(base + 108, true)];
    for (let s = 0; s < 16; s++) {
      const dl = Math.fround(d * q3kScale(src, base + 96, s));
      for (let i = 16 * s; i < 16 * s + 16; i++) {
        const low = (src[base + 32 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
        const high = (src[base + (i & 31)] >> (i >> 5)) & 1;
        out[256 * b + i] = dl * (low - (high === 0 ? 4 : 0));
      }
    }
  }
}

/**
 * Scale and min of sub-block j of a q4_K/q5_K block (ggml's get_scale_min_k4), 6 bits each in 12 bytes:
 * for j < 4 scale = bytes[j] & 63 and min = bytes[j + 4] & 63; for j ≥ 4 the low nibbles come from bytes[j + 4]
 * (scale low, min high) and the top two bits from bits 6, 7 of bytes[j − 4] (scale) and bytes[j] (min).
 */
function kScale(src: Uint8Array, scales: number, j: number): number {
  return j < 4 ? src[scales + j] & 63 : (src[scales + j + 4] & 0x0f) | ((src[scales + j - 4] >> 6) << 4);
}
function kMin(src: Uint8Array, scales: number, j: number): number {
  return j < 4 ? src[scales + j + 4] & 63 : (src[scales + j + 4] >> 4) | ((src[scales + j] >> 6) << 4);
}

/**
 * block_q4_K, 144 bytes, 256 weights:  { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qs[128] @16; }
 * Eight sub-blocks of 32 weights (scale and min: kScale, kMin). Weight 32·j + l is the low nibble of
 * qs[32·(j / 2) + l] for even j, the high nibble for odd j. x = (d · scale) · q − dmin · min, q in 0..15.
 */
export function dequantizeQ4_K(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 144 * b;
    const d = table[view.getUint16(base, true)];
    const dmin = table[view.getUint16(base + 2, true)];
    for (let j = 0; j < 8; j++) {
      const dl = Math.fround(d * kScale(src, base + 4, j));
      const ml = Math.fround(dmin * kMin(src, base + 4, j));
      for (let l = 0; l < 32; l++) {
        const q = (src[base + 16 + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 0x0f;
        out[256 * b + 32 * j + l] = Math.fround(dl * q) - ml;
      }
    }
  }
}

/**
 * block_q5_K, 176 bytes, 256 weights:  { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qh[32] @16;
 * uint8 qs[128] @48; }
 * As q4_K, plus bit 4 of weight 32·j + l in bit j of qh[l]. x = (d · scale) · q − dmin · min, q in 0..31.
 */
export function dequantizeQ5_K(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 176 * b;
    const d = table[view.getUint16(base, true)];
    const dmin = table[view.getUint16(base + 2, true)];
    for (let j = 0; j < 8; j++) {
      const dl = Math.fround(d * kScale(src, base + 4, j));
      const ml = Math.fround(dmin * kMin(src, base + 4, j));
      for (let l = 0; l < 32; l++) {
        const low = (src[base + 48 + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 0x0f;
        const high = (src[base + 16 + l] >> j) & 1;
        out[256 * b + 32 * j + l] = Math.fround(dl * (low | (high << 4))) - ml;
      }
    }
  }
}

/**
 * block_q6_K, 210 bytes, 256 weights:  { uint8 ql[128] @0; uint8 qh[64] @128; int8 scales[16] @192; f16 d @208; }
 * Sixteen sub-blocks of 16 weights with an int8 scale each. Weight i = 128·h + r (h < 2, r < 128) has its low
 * nibble in ql[64h + r % 64] (low nibble for r < 64, high otherwise) and its top two bits in bits
 * 2·(r / 32), +1 of qh[32h + r % 32]. x = (d · scale) · (q − 32), q in 0..63.
 */
export function dequantizeQ6_K(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 210 * b;
    const d = table[view.getUint16(base + 208, true)];
    for (let s = 0; s < 16; s++) {
      const dl = Math.fround(d * int8(src[base + 192 + s]));
      for (let i = 16 * s; i < 16 * s + 16; i++) {
        const h = i >> 7;
        const r = i & 127;
        const low = (src[base + 64 * h + (r & 63)] >> (4 * (r >> 6))) & 0x0f;
        const high = (src[base + 128 + 32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
        out[256 * b + i] = dl * ((low | (high << 4)) - 32);
      }
    }
  }
}

/** The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml-common.h kvalues_iq4nl), fitted to weight histograms. */
const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/**
 * block_iq4_nl, 18 bytes, 32 weights:  { f16 d @0; uint8 qs[16] @2; }
 * Nibbles in q4_0's order index IQ4_LEVELS; x = d · IQ4_LEVELS[q].
 */
export function dequantizeIQ4_NL(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 32;
  for (let b = 0; b < nBlocks; b++) {
    const base = 18 * b;
    const d = table[view.getUint16(base, true)];
    for (let j = 0; j < 16; j++) {
      const q = src[base + 2 + j];
      out[32 * b + j] = d * IQ4_LEVELS[q & 0x0f];
      out[32 * b + j + 16] = d * IQ4_LEVELS[q >> 4];
    }
  }
}

/**
 * block_iq4_xs, 136 bytes, 256 weights:  { f16 d @0; uint16 scales_h @2; uint8 scales_l[4] @4; uint8 qs[128] @8; }
 * Eight sub-blocks of 32 weights, each an iq4_nl block without its own d: sub-block k's 6-bit scale is nibble
 * k % 2 of scales_l[k / 2] plus bits 2k, 2k+1 of scales_h on top, minus 32; its nibbles are qs[16k .. 16k + 15]
 * in q4_0's order. x = (d · scale) · IQ4_LEVELS[q].
 */
export function dequantizeIQ4_XS(src: Uint8Array, out: Float32Array): void {
  const table = halves();
  const view = dataView(src);
  const nBlocks = out.length / 256;
  for (let b = 0; b < nBlocks; b++) {
    const base = 136 * b;
    const d = table[view.getUint16(base, true)];
    const scalesHigh = view.getUint16(base + 2, true);
    for (let k = 0; k < 8; k++) {
      const low = (src[base + 4 + (k >> 1)] >> (4 * (k & 1))) & 0x0f;
      const high = (scalesHigh >> (2 * k)) & 3;
      const dl = Math.fround(d * ((low | (high << 4)) - 32));
      for (let j = 0; j < 16; j++) {
        const q = src[base + 8 + 16 * k + j];
        out[256 * b + 32 * k + j] = dl * IQ4_LEVELS[q & 0x0f];
        out[256 * b + 32 * k + j + 16] = dl * IQ4_LEVELS[q >> 4];
      }
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
  [GgmlType.Q5_0, dequantizeQ5_0],
  [GgmlType.Q5_1, dequantizeQ5_1],
  [GgmlType.Q2_K, dequantizeQ2_K],
  [GgmlType.Q3_K, dequantizeQ3_K],
  [GgmlType.Q4_K, dequantizeQ4_K],
  [GgmlType.Q5_K, dequantizeQ5_K],
  [GgmlType.Q6_K, dequantizeQ6_K],
  [GgmlType.IQ4_NL, dequantizeIQ4_NL],
  [GgmlType.IQ4_XS, dequantizeIQ4_XS],
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
