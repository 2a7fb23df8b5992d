/**
 * The native backend (kernels-cpu) against the TypeScript reference for the per-element operations: both compute
 * in double in the same order, so the floats must agree: RMSNorm to the bit, SwiGLU up to the last-bit rounding of
 * exp, in which libm and V8 may differ (once in about 10⁸ values; none in these).
 */
import { mulberry32, randomArray } from "@razorkv/core";
import { kernelsDisabledByEnv, kernelsUnavailableReason, loadKernels } from "@razorkv/kernels-cpu";
import { describe, expect, it } from "vitest";
import { typescriptBackend } from "./backend.js";

function nativeBackend() {
  const native = loadKernels();
  if (!native) throw new Error(`native kernels unavailable: ${kernelsUnavailableReason()}`);
  return native;
}

function differing(a: Float32Array, b: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

describe.skipIf(kernelsDisabledByEnv())("native per-element operations give the reference's floats", () => {
  // 1 and 17 rows: a decode step alone and over a sweep's cells (one thread); 1024: a prefill (split over threads)
  for (const rows of [1, 17, 1024]) {
    it(`rmsNorm, ${rows} × 576, into a new array and in place`, () => {
      const native = nativeBackend();
      const rand = mulberry32(rows);
      const x = randomArray(rand, rows * 576).map((v, i) => v * (1 + (i % 97))); // rows of very different scales
      const weight = randomArray(rand, 576);
      const expected = new Float32Array(x.length);
      typescriptBackend.rmsNorm(x, weight, expected, rows, 1e-5);
      const out = new Float32Array(x.length);
      native.rmsNorm(x, weight, out, rows, 1e-5);
      expect(differing(out, expected)).toBe(0);
      const inPlace = x.slice();
      native.rmsNorm(inPlace, weight, inPlace, rows, 1e-5);
      expect(differing(inPlace, expected)).toBe(0);
    });

    it(`swiglu, ${rows} × 1536`, () => {
      const native = nativeBackend();
      const rand = mulberry32(100 + rows);
      // gate over ±20: silu's saturated tails, and exp(−g) overflowing float32 range is no concern in double
      const gate = randomArray(rand, rows * 1536).map((v) => 40 * v);
      const up = randomArray(rand, rows * 1536);
      const expected = gate.slice();
      typescriptBackend.swiglu(expected, up);
      const out = gate.slice();
      native.swiglu(out, up);
      expect(differing(out, expected)).toBe(0);
    });
  }

  it("refuses mismatched shapes with the argument's name", () => {
    const native = nativeBackend();
    expect(() => native.rmsNorm(new Float32Array(10), new Float32Array(4), new Float32Array(12), 3, 1e-5)).toThrow(
      "rmsNorm: x has 10 values, expected at least rows×weight.length = 3×4 = 12",
    );
    expect(() => native.swiglu(new Float32Array(8), new Float32Array(7))).toThrow("swiglu: up has 7 values, expected gate.length = 8");
    const shared = new Float32Array(16);
    expect(() => native.swiglu(shared.subarray(0, 8), shared.subarray(4, 12))).toThrow("gate must not overlap up");
  });
});
