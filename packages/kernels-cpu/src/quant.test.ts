import { mulberry32 } from "@razorkv/core";
import { beforeAll, describe, expect, it } from "vitest";
import type { CpuKernels, QuantFormat } from "./index.js";
import { kernels, kernelsDisabled, relativeError } from "./test-helpers.js";

/** IEEE binary16 bits → number (subnormals included). */
function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? Number.NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Random f16 bits with a magnitude in [2^(lo−15), 2^(hi−15)) and a random sign when `signed`. */
function randomF16(rand: () => number, lo: number, hi: number, signed: boolean): number {
  const exponent = lo + Math.floor(rand() * (hi - lo));
  return (signed && rand() < 0.5 ? 0x8000 : 0) | (exponent << 10) | Math.floor(rand() * 1024);
}

/** Random blocks of `format` for W [N × K], and W dequantized (the ggml definitions in native/quant.h). */
function randomQuantized(format: QuantFormat, N: number, K: number, seed: number) {
  const rand = mulberry32(seed);
  const blockBytes = format === "q8_0" ? 34 : 20;
  const nb = K / 32;
  const bytes = new Uint8Array(N * nb * blockBytes);
  const view = new DataView(bytes.buffer);
  const dense = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const at = (n * nb + b) * blockBytes;
      // one block in 50 gets a subnormal scale, to exercise the f16 decoder's edge
      const dBits = rand() < 0.02 ? Math.floor(rand() * 1024) : randomF16(rand, 5, 14, false);
      view.setUint16(at, dBits, true);
      const d = f16(dBits);
      const base = n * K + b * 32;
      if (format === "q8_0") {
        for (let j = 0; j < 32; j++) {
          const q = Math.floor(rand() * 256) - 128;
          view.setInt8(at + 2 + j, q);
          dense[base + j] = q * d;
        }
      } else {
        const mBits = randomF16(rand, 8, 16, true);
        view.setUint16(at + 2, mBits, true);
        const m = f16(mBits);
        for (let j = 0; j < 16; j++) {
          const lo = Math.floor(rand() * 16);
          const hi = Math.floor(rand() * 16);
          bytes[at + 4 + j] = lo | (hi << 4);
          dense[base + j] = lo * d + m;
          dense[base + j + 16] = hi * d + m;
        }
      }
    }
  }
  return { bytes, dense };
}

describe.skipIf(kernelsDisabled)("gemvQuantized", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
  });

  for (const format of ["q8_0", "q4_1"] as QuantFormat[]) {
    for (const [N, K] of [[1, 32], [33, 64], [257, 576], [1536, 576]]) {
      it(`${format}: N=${N} K=${K} matches the dequantized weights`, () => {
        const { bytes, dense } = randomQuantized(format, N, K, N * 7 + K);
        const rand = mulberry32(K);
        const x = Float32Array.from({ length: K }, () => rand() * 2 - 1);
        const expected = new Float64Array(N);
        for (let n = 0; n < N; n++) for (let i = 0; i < K; i++) expected[n] += dense[n * K + i] * x[i];
        const out = new Float32Array(N).fill(Number.NaN);
        k.gemvQuantized(format, bytes, x, out, N, K);
        expect(relativeError(out, expected)).toBeLessThanOrEqual(1e-4);
      });
    }
  }

  it("names the argument and the expected size", () => {
    const x = new Float32Array(64);
    expect(() => k.gemvQuantized("q8_0", new Uint8Array(100), x, new Float32Array(2), 2, 64)).toThrow(/blocks has 100 values, expected at least N×\(K\/32\)×34 bytes = 2×2×34 = 136/);
    expect(() => k.gemvQuantized("q4_1", new Uint8Array(80), x, new Float32Array(2), 2, 60)).toThrow(/K must be a multiple of the block size 32, got 60/);
    expect(() => k.gemvQuantized("q4_0" as QuantFormat, new Uint8Array(80), x, new Float32Array(2), 2, 64)).toThrow(/format must be q8_0 or q4_1/);
  });
});
