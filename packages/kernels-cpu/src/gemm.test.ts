import { mulberry32, randomArray } from "@razorkv/core";
import { beforeAll, describe, expect, it } from "vitest";
import { kernelsUnavailableReason, loadKernels, type CpuKernels, type GemmBackend } from "./index.js";
import { kernels, kernelsDisabled, relativeError, sameBits } from "./test-helpers.js";

/** out = x · wᵀ in float64: the reference every backend is held to. */
function matmulReference(x: Float32Array, w: Float32Array, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      out[m * N + n] = s;
    }
  }
  return out;
}

// odd sizes exercise every edge: ragged 6×16 tiles, K blocks that do not divide K, the small-M kernel (M ≤ 48) with
// row and column groups cut short, N split unevenly between threads; 100×800×700 crosses the M, N and K block
// sizes of the packed kernel; 48 and 49 sit either side of the small-M bound
const SHAPES: [number, number, number][] = [
  [7, 33, 65], [1, 33, 65], [1, 1, 1], [3, 5, 7], [4, 1001, 96], [5, 17, 3], [6, 16, 8], [13, 50, 577], [37, 129, 64],
  [100, 800, 700], [2, 3000, 600], [48, 70, 301], [49, 70, 301],
];

describe.skipIf(kernelsDisabled)("matmulTransposed", () => {
  let k: CpuKernels;
  beforeAll(() => {
    k = kernels();
    console.log(`kernels-cpu: default GEMM backend ${k.gemmBackend()}; compiled: ${k.gemmBackends().join(", ")}; simd ${k.simd()}; ${k.threads()} threads`);
  });

  it("offers the own kernel besides OpenBLAS, so both are tested", () => {
    expect(k.gemmBackends()).toContain("scalar");
    if (k.simd() === "avx2") expect(k.gemmBackends()).toContain("avx2");
    expect(k.gemmBackends()[0]).toBe(k.gemmBackend());
    expect(k.name).toBe(`native (${k.gemmBackend()})`);
  });

  for (const backend of ["openblas", "avx2", "scalar"] as GemmBackend[]) {
    for (const [M, N, K] of SHAPES) {
      it(`${backend}: M=${M} N=${N} K=${K} matches the reference`, (ctx) => {
        if (!k.gemmBackends().includes(backend)) ctx.skip();
        const rand = mulberry32(M * 1_000_003 + N * 1009 + K);
        const x = randomArray(rand, M * K);
        const w = randomArray(rand, N * K);
        const out = new Float32Array(M * N).fill(Number.NaN); // every entry must be written
        k.matmulTransposed(x, w, out, M, N, K, { backend });
        expect(relativeError(out, matmulReference(x, w, M, N, K))).toBeLessThanOrEqual(1e-4);
      });
    }
  }

  it("gives the same bits on every call and, for the own kernels, for every thread count (DESIGN §3)", () => {
    // own kernels: each output element is computed by one chunk, in the same order, whichever thread runs it;
    // OpenBLAS rounds an element differently depending on the column slice it is computed in, and the slices are
    // sized by the thread count, so it is reproducible only at a fixed count
    const rand = mulberry32(9);
    const threads = k.threads();
    try {
      for (const [M, N, K] of [[64, 300, 200], [3, 1001, 130], [100, 77, 650]]) {
        const x = randomArray(rand, M * K);
        const w = randomArray(rand, N * K);
        for (const backend of k.gemmBackends()) {
          const outputs = [1, 2, 3, 2].map((n) => {
            k.setThreads(n);
            const out = new Float32Array(M * N);
            k.matmulTransposed(x, w, out, M, N, K, { backend });
            return out;
          });
          const label = `${backend} M=${M} N=${N} K=${K}`;
          expect(sameBits(outputs[3], outputs[1]), `${label}, 2 threads twice`).toBe(true);
          for (const out of outputs.slice(1)) {
            if (backend === "openblas") expect(relativeError(out, outputs[0]), label).toBeLessThanOrEqual(1e-6);
            else expect(sameBits(out, outputs[0]), `${label}, 1 thread vs more`).toBe(true);
          }
        }
      }
    } finally {
      k.setThreads(threads);
    }
  });

  it("gives a row the same bits whatever the other rows, up to 48 rows (a sequence decoded in a batch or alone)", () => {
    const rand = mulberry32(17);
    for (const [N, K] of [[1536, 576], [67, 1543]]) {
      const w = randomArray(rand, N * K);
      const x = randomArray(rand, 48 * K);
      for (const backend of k.gemmBackends().filter((b) => b !== "scalar")) {
        const batch = new Float32Array(48 * N);
        k.matmulTransposed(x, w, batch, 48, N, K, { backend });
        for (const [M, m] of [[1, 0], [17, 16], [17, 5], [48, 47]]) {
          // row m of an M-row call (rows 0 … M−1 of x) against the same row in the 48-row call
          const out = new Float32Array(M * N);
          k.matmulTransposed(x.subarray(0, M * K), w, out, M, N, K, { backend });
          const label = `${backend} N=${N} K=${K}: row ${m} of ${M} vs of 48`;
          expect(sameBits(out.subarray(m * N, (m + 1) * N), batch.subarray(m * N, (m + 1) * N)), label).toBe(true);
        }
      }
    }
  });

  it("names the argument and the expected size when a buffer is too small", () => {
    const x = new Float32Array(7 * 65);
    const w = new Float32Array(33 * 65);
    expect(() => k.matmulTransposed(x, w, new Float32Array(10), 7, 33, 65)).toThrow(/out has 10 values, expected at least M×N = 7×33 = 231/);
    expect(() => k.matmulTransposed(x.subarray(1), w, new Float32Array(231), 7, 33, 65)).toThrow(/x has 454 values, expected at least M×K/);
    expect(() => k.matmulTransposed(x, w, new Float32Array(231), 7, 33.5, 65)).toThrow(/N must be an integer/);
    expect(() => k.matmulTransposed(x, Array.from(w) as unknown as Float32Array, new Float32Array(231), 7, 33, 65)).toThrow(/w must be a Float32Array, got Array/);
    expect(() => k.matmulTransposed(x, w, new Float32Array(231), 7, 33, 65, { backend: "cuda" as GemmBackend })).toThrow(/backend "cuda" is not compiled/);
  });

  it("loadKernels can make the own kernel the default", () => {
    const own = loadKernels({ gemmBackend: "scalar" });
    expect(own?.gemmBackend()).toBe("scalar");
    expect(own?.name).toBe("native (scalar)");
    expect(kernelsUnavailableReason()).toBeNull();
  });
});

describe.runIf(kernelsDisabled)("with RAZORKV_CPU_KERNELS=off", () => {
  it("loadKernels returns null and says why", () => {
    expect(loadKernels()).toBeNull();
    expect(kernelsUnavailableReason()).toMatch(/disabled by RAZORKV_CPU_KERNELS/);
  });
});
