/** Shared by the tests: the kernels under test (or a loud failure), and the error measure they are held to. */
import { kernelsDisabledByEnv, loadKernels, kernelsUnavailableReason, type CpuKernels } from "./index.js";

/** True when RAZORKV_CPU_KERNELS=off asks for the TypeScript fallback: the kernel tests are skipped, not failed. */
export const kernelsDisabled = kernelsDisabledByEnv();

/** The kernels; throws (failing the test) when the addon is missing, unless it was disabled on purpose. */
export function kernels(): CpuKernels {
  const k = loadKernels();
  if (!k) throw new Error(`native kernels unavailable: ${kernelsUnavailableReason()}`);
  return k;
}

/**
 * Normwise relative error max_i |a_i − b_i| / max_i |b_i|: the error of an entry measured against the size of the
 * result, so a near-zero entry (an ill-conditioned sum) is not judged on its own relative error.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ expected ${expected.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= maxDiff)) maxDiff = diff; // NaN propagates
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** True when the two arrays hold the same bytes (faster than a deep equality over many floats). */
export function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && Buffer.compare(x, y) === 0;
}
