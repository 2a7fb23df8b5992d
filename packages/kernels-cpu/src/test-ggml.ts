/**
 * Test-only reference for the quantized kernels: GGUF blocks decoded in plain TypeScript, random valid blocks of
 * every type, and the error bound the 8-bit activations allow.
 *
 * The decoders follow the block layouts of ggml-common.h (as native/ggml_types.h and model-zoo's
 * formats/dequant.ts describe them), element by element, rounding each product to float32 where gguf-py's numpy
 * does; quant.test.ts checks them bit for bit against gguf-py's `gguf.quants.dequantize` (the fixture
 * packages/model-zoo/test/fixtures/gguf-quants.json, made by tools/gguf-quants/generate.py), so they are an
 * independent reference for the native kernels, not a copy of them.
 */
import type { GgmlWeightType } from "./index.js";
import { GGML_WEIGHT_TYPES } from "./index.js";

const f32 = Math.fround;

/** IEEE binary16 bits → number (exact). */
export function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** Element i (< 32) of a 32-element block's packed nibbles: low nibbles first, then the high ones. */
const nibble = (b: Uint8Array, at: number, i: number): number => (i < 16 ? b[at + i] & 15 : b[at + i - 16] >> 4);

/** Sub-block j's (scale, min) of Q4_K / Q5_K: 6 bits each, packed in 12 bytes at `at`. */
function scaleMinK4(b: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [b[at + j] & 63, b[at + j + 4] & 63];
  return [(b[at + j + 4] & 15) | ((b[at + j - 4] >> 6) << 4), (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4)];
}

/**
 * Decodes one block of `type` at byte `at` of `b` into out[o …]. Layouts: @n is a field's byte offset.
 */
function decodeBlock(type: GgmlWeightType, b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h = (offset: number) => half(view.getUint16(at + offset, true));
  switch (type) {
    case "F32":
      out[o] = view.getFloat32(at, true);
      return;
    case "F16":
      out[o] = h(0);
      return;
    case "BF16":
      out[o] = new Float32Array(new Uint32Array([view.getUint16(at, true) << 16]).buffer)[0];
      return;
    case "Q8_0": // { f16 d @0; int8 qs[32] @2 }
      for (let i = 0; i < 32; i++) out[o + i] = h(0) * ((b[at + 2 + i] << 24) >> 24);
      return;
    case "Q4_0": // { f16 d @0; u8 qs[16] @2 }
      for (let i = 0; i < 32; i++) out[o + i] = (nibble(b, at + 2, i) - 8) * h(0);
      return;
    case "Q4_1": // { f16 d @0; f16 m @2; u8 qs[16] @4 }
      for (let i = 0; i < 32; i++) out[o + i] = f32(nibble(b, at + 4, i) * h(0)) + h(2);
      return;
    case "Q5_0": // { f16 d @0; u8 qh[4] @2; u8 qs[16] @6 }
    case "Q5_1": { // { f16 d @0; f16 m @2; u8 qh[4] @4; u8 qs[16] @8 }
      const withMin = type === "Q5_1";
      const qh = view.getUint32(at + (withMin ? 4 : 2), true);
      for (let i = 0; i < 32; i++) {
        const q = nibble(b, at + (withMin ? 8 : 6), i) | (((qh >>> i) & 1) << 4);
        out[o + i] = withMin ? f32(q * h(0)) + h(2) : (q - 16) * h(0);
      }
      return;
    }
    case "IQ4_NL": // { f16 d @0; u8 qs[16] @2 }
      for (let i = 0; i < 32; i++) out[o + i] = h(0) * IQ4_LEVELS[nibble(b, at + 2, i)];
      return;
    case "Q2_K": // { u8 scales[16] @0; u8 qs[64] @16; f16 d @80; f16 dmin @82 }
      for (let i = 0; i < 256; i++) {
        const s = i >> 4;
        const q = (b[at + 16 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
        out[o + i] = f32(f32(h(80) * (b[at + s] & 15)) * q) - f32(h(82) * (b[at + s] >> 4));
      }
      return;
    case "Q3_K": // { u8 hmask[32] @0; u8 qs[64] @32; u8 scales[12] @96; f16 d @108 }
      for (let i = 0; i < 256; i++) {
        const s = i >> 4;
        const low = s < 8 ? b[at + 96 + s] & 15 : b[at + 96 + s - 8] >> 4;
        const scale = (low | (((b[at + 104 + (s & 3)] >> (2 * (s >> 2))) & 3) << 4)) - 32;
        const q = ((b[at + 32 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3) - ((b[at + (i & 31)] >> (i >> 5)) & 1 ? 0 : 4);
        out[o + i] = f32(h(108) * scale) * q;
      }
      return;
    case "Q4_K": // { f16 d @0; f16 dmin @2; u8 scales[12] @4; u8 qs[128] @16 }
    case "Q5_K": // { f16 d @0; f16 dmin @2; u8 scales[12] @4; u8 qh[32] @16; u8 qs[128] @48 }
      for (let i = 0; i < 256; i++) {
        const j = i >> 5;
        const [sc, mn] = scaleMinK4(b, at + 4, j);
        const qsAt = type === "Q4_K" ? 16 : 48;
        let q = (b[at + qsAt + 32 * (j >> 1) + (i & 31)] >> (4 * (j & 1))) & 15;
        if (type === "Q5_K") q |= ((b[at + 16 + (i & 31)] >> j) & 1) << 4;
        out[o + i] = f32(f32(h(0) * sc) * q) - f32(h(2) * mn);
      }
      return;
    case "Q6_K": // { u8 ql[128] @0; u8 qh[64] @128; i8 scales[16] @192; f16 d @208 }
      for (let i = 0; i < 256; i++) {
        const half128 = i >> 7, r = i & 127;
        const low = (b[at + 64 * half128 + (r & 63)] >> (4 * (r >> 6))) & 15;
        const high = (b[at + 128 + 32 * half128 + (r & 31)] >> (2 * (r >> 5))) & 3;
        out[o + i] = f32(h(208) * ((b[at + 192 + (i >> 4)] << 24) >> 24)) * ((low | (high << 4)) - 32);
      }
      return;
    case "IQ4_XS": // { f16 d @0; u16 scales_h @2; u8 scales_l[4] @4; u8 qs[128] @8 }
      for (let i = 0; i < 256; i++) {
        const k = i >> 5;
        const ls = ((b[at + 4 + (k >> 1)] >> (4 * (k & 1))) & 15) | (((view.getUint16(at + 2, true) >> (2 * k)) & 3) << 4);
        out[o + i] = f32(h(0) * (ls - 32)) * IQ4_LEVELS[nibble(b, at + 8 + 16 * k, i & 31)];
      }
      return;
  }
}

/** W [rows × K] of `type` decoded to float32 (the values gguf-py's dequantize gives). */
export function dequantizeReference(type: GgmlWeightType, bytes: Uint8Array, rows: number, K: number): Float32Array {
  const { blockSize, blockBytes } = GGML_WEIGHT_TYPES[type];
  const out = new Float32Array(rows * K);
  for (let blk = 0; blk < (rows * K) / blockSize; blk++) decodeBlock(type, bytes, blk * blockBytes, out, blk * blockSize);
  return out;
}

/** Byte offsets of the f16 fields of each block type (everything else is packed codes, any byte valid). */
export const HALF_FIELDS: Partial<Record<GgmlWeightType, number[]>> = {
  Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], IQ4_NL: [0],
  Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], IQ4_XS: [0],
};

/** f16 bits of a random finite half with |value| in [2^(lo−15), 2^(hi−15)), random sign. */
function randomHalfBits(rand: () => number, lo: number, hi: number): number {
  const exponent = lo + Math.floor(rand() * (hi - lo));
  return (rand() < 0.5 ? 0x8000 : 0) | (exponent << 10) | Math.floor(rand() * 1024);
}

/**
 * Random W [rows × K] of `type`: random bytes for every packed code and scale byte, each f16 field a random finite
 * half of a weight-like magnitude (2^-10 … 2^-5 for scales), plain types random values of magnitude up to 1.
 */
export function randomBlocks(type: GgmlWeightType, rows: number, K: number, rand: () => number): Uint8Array {
  const { blockSize, blockBytes } = GGML_WEIGHT_TYPES[type];
  const nBlocks = (rows * K) / blockSize;
  const bytes = new Uint8Array(nBlocks * blockBytes);
  const view = new DataView(bytes.buffer);
  if (type === "F32") {
    for (let i = 0; i < nBlocks; i++) view.setFloat32(4 * i, rand() * 2 - 1, true);
    return bytes;
  }
  if (type === "F16" || type === "BF16") {
    for (let i = 0; i < nBlocks; i++) {
      if (type === "F16") view.setUint16(2 * i, randomHalfBits(rand, 5, 15), true);
      else view.setUint16(2 * i, new Uint32Array(new Float32Array([rand() * 2 - 1]).buffer)[0] >>> 16, true);
    }
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  for (let blk = 0; blk < nBlocks; blk++) {
    for (const offset of HALF_FIELDS[type]!) view.setUint16(blk * blockBytes + offset, randomHalfBits(rand, 5, 10), true);
  }
  return bytes;
}

/** Elements the activation quantization shares one scale over: 32, or 256 for Q8_K's partners; 0 for float types. */
export function activationBlock(type: GgmlWeightType): number {
  if (type === "F32" || type === "F16" || type === "BF16") return 0;
  return GGML_WEIGHT_TYPES[type].blockSize === 256 ? 256 : 32;
}

/**
 * x · Wᵀ in float64 from the decoded weights, and for each output the error the kernel is allowed:
 *   bound[m, n] = Σ_blocks (amax_b / 254) · Σ_{k ∈ b} |w[n, k]|   +   2^-14 · Σ_k |w[n, k] · x[m, k]|
 * The first term is the 8-bit activation quantization (x → d·round(x/d), d = amax/127: each element moves by at
 * most d/2 = amax/254 of its block); the second covers float32 rounding of the per-block sums and scales (a few
 * roundings of relative 2^-24 per block, far below 2^-14 for the K used here). Float weight types have no first term.
 */
export function referenceWithBound(type: GgmlWeightType, w: Float32Array, x: Float32Array, M: number, N: number, K: number) {
  const block = activationBlock(type);
  const expected = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const xm = x.subarray(m * K, (m + 1) * K);
    const amax: number[] = [];
    if (block > 0) for (let b = 0; b < K / block; b++) amax.push(Math.max(...Array.from(xm.subarray(b * block, (b + 1) * block), Math.abs)));
    for (let n = 0; n < N; n++) {
      let sum = 0, abs = 0, quant = 0;
      for (let k = 0; k < K; k++) {
        const wk = w[n * K + k];
        sum += wk * xm[k];
        abs += Math.abs(wk * xm[k]);
        if (block > 0) quant += (Math.abs(wk) * amax[Math.floor(k / block)]) / 254;
      }
      expected[m * N + n] = sum;
      bound[m * N + n] = quant + 2 ** -14 * abs;
    }
  }
  return { expected, bound };
}

/** max over outputs of |actual − expected| / bound: ≤ 1 means every output is within its bound (NaN counts as ∞). */
export function worstBoundRatio(actual: Float32Array, expected: Float64Array, bound: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const ratio = Math.abs(actual[i] - expected[i]) / Math.max(bound[i], Number.MIN_VALUE);
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  return worst;
}
