// GEMM / GEMV throughput of every compiled backend at SmolLM2-135M shapes (hidden 576, FFN 1536, vocab 49152).
//   node bench/gemm.mjs            (after `pnpm --filter @razorkv/kernels-cpu build`)
//   RAZORKV_THREADS=1 node bench/gemm.mjs   one thread
// Prints one line per (shape, backend): median time of the timed runs and GFLOP/s (2·M·N·K flops per call).
// For M ≤ 48 (decode over a batch) the openblas backend runs the own small-M kernel too, so only "own small-M" and
// scalar are listed.
import { loadKernels, kernelsUnavailableReason } from "../dist/index.js";

const kernels = loadKernels();
if (!kernels) {
  console.error(`bench/gemm.mjs: ${kernelsUnavailableReason()}`);
  process.exit(1);
}

const shapes = [
  { label: "prefill FFN up   M=512 N=1536 K=576", M: 512, N: 1536, K: 576 },
  { label: "prefill FFN down M=512 N=576 K=1536", M: 512, N: 576, K: 1536 },
  { label: "prefill QKV      M=512 N=576 K=576", M: 512, N: 576, K: 576 },
  { label: "decode lm_head   M=1 N=49152 K=576", M: 1, N: 49152, K: 576 },
  { label: "decode FFN up    M=1 N=1536 K=576", M: 1, N: 1536, K: 576 },
  { label: "batch-4 lm_head  M=4 N=49152 K=576", M: 4, N: 49152, K: 576 },
  { label: "batch-17 FFN up  M=17 N=1536 K=576", M: 17, N: 1536, K: 576 },
];

function random(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

console.log(`threads ${kernels.threads()}, simd ${kernels.simd()}, default backend ${kernels.gemmBackend()}`);
for (const { label, M, N, K } of shapes) {
  const x = random(M * K, 1);
  const w = random(N * K, 2);
  const out = new Float32Array(M * N);
  const flops = 2 * M * N * K;
  for (const backend of kernels.gemmBackends()) {
    if (backend === "scalar" && flops > 2e8) continue; // minutes; the scalar path is a fallback, not a contender
    if (backend === "openblas" && M <= 48) continue; // M ≤ 48 takes the own small-M kernel under every backend but scalar
    const run = () => kernels.matmulTransposed(x, w, out, M, N, K, { backend });
    for (let i = 0; i < 3; i++) run();
    const reps = Math.max(5, Math.min(200, Math.round(2e10 / flops)));
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint();
      run();
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    const name = M <= 48 && backend === "avx2" ? "own small-M" : backend;
    console.log(`${label}  ${name.padEnd(8)} ${(median * 1e3).toFixed(3).padStart(8)} ms  ${(flops / median / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
  }
}

// quantized weights (GGUF blocks read directly): bench/quant.mjs
