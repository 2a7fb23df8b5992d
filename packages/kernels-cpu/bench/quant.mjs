// quantMatmul throughput on GGUF weight blocks: GEMV per type, and the paths against M — dot (8-bit activations and
// per-type integer dot products), dequant (f32 panels and the SGEMM) to place the switch between them
// (kQuantDotMaxRows in native/qmatmul.cc), and int8 (the opt-in 8-bit GEMM, native/qgemm.h).
//   node bench/quant.mjs [gemv|paths|all]      (after `pnpm --filter @razorkv/kernels-cpu build`)
//   RAZORKV_THREADS=1 node bench/quant.mjs     one thread
// Weights are random valid blocks (random bytes, f16 scales 2^-7): speed does not depend on the values.
// Each line: median of the timed calls, and GB/s of weight bytes (GEMV) or GFLOP/s (2·M·N·K per call).
// The paths are timed alternately (dot, dequant, int8, dot, …) so that load from other processes hits all alike.
import { GGML_WEIGHT_TYPES, ggmlRowBytes, kernelsUnavailableReason, loadKernels } from "../dist/index.js";

const kernels = loadKernels();
if (!kernels) {
  console.error(`bench/quant.mjs: ${kernelsUnavailableReason()}`);
  process.exit(1);
}
const what = process.argv[1]?.endsWith("quant.mjs") ? process.argv[2] ?? "all" : "none";

function random(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Random blocks of `type` for [N × K]: every byte random, then each f16 field of every block set to 2^-7. */
export function randomWeights(type, N, K) {
  const { blockSize, blockBytes } = GGML_WEIGHT_TYPES[type];
  const bytes = new Uint8Array(N * ggmlRowBytes(type, K));
  let s = 12345;
  for (let i = 0; i < bytes.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bytes[i] = s >>> 24;
  }
  const halves = { Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], IQ4_NL: [0], Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], IQ4_XS: [0] }[type];
  if (type === "F32") new Float32Array(bytes.buffer).set(random(N * K, 7));
  else if (type === "F16" || type === "BF16") for (let i = 0; i < bytes.length; i += 2) bytes[i + 1] = type === "F16" ? 0x20 : 0x3c;
  else {
    for (let b = 0; b < (N * K) / blockSize; b++) {
      for (const h of halves) {
        bytes[b * blockBytes + h] = 0x00;
        bytes[b * blockBytes + h + 1] = 0x20;
      }
    }
  }
  return bytes;
}

function timeMedian(fn, reps) {
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

console.log(`threads ${kernels.threads()}, simd ${kernels.simd()}, default backend ${kernels.gemmBackend()}`);

if (what === "gemv" || what === "all") {
  // SmolLM2-135M's projections and head, Llama-3.2-1B's FFN
  const shapes = [[192, 576], [1536, 576], [49152, 576], [8192, 2048]];
  for (const type of Object.keys(GGML_WEIGHT_TYPES)) {
    for (const [N, K] of shapes) {
      if (K % GGML_WEIGHT_TYPES[type].blockSize !== 0) continue;
      const blocks = randomWeights(type, N, K);
      const x = random(K, 3);
      const out = new Float32Array(N);
      const run = () => kernels.quantMatmul(type, blocks, x, out, 1, N, K);
      for (let i = 0; i < 5; i++) run();
      const reps = Math.max(20, Math.min(2000, Math.round(2e8 / blocks.length)));
      const t = timeMedian(run, reps);
      console.log(`gemv ${type.padEnd(6)} N=${String(N).padStart(5)} K=${String(K).padStart(4)}  ${(t * 1e6).toFixed(1).padStart(8)} µs  ${(blocks.length / t / 1e9).toFixed(1).padStart(5)} GB/s of blocks  ${((2 * N * K) / t / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
    }
  }
}

if (what === "paths" || what === "all") {
  const cases = [
    ["Q4_1", 1536, 576],
    ["Q8_0", 1536, 576],
    ["Q4_K", 8192, 2048],
    ["Q6_K", 2048, 8192],
  ];
  for (const [type, N, K] of cases) {
    const blocks = randomWeights(type, N, K);
    for (const M of [1, 4, 8, 16, 32, 48, 64, 96, 128, 512]) {
      const x = random(M * K, 5);
      const out = new Float32Array(M * N);
      const flops = 2 * M * N * K;
      const reps = Math.max(3, Math.min(200, Math.round(3e9 / flops)));
      const paths = ["dot", "dequant", "int8"];
      const runs = Object.fromEntries(paths.map((p) => [p, []]));
      for (const path of paths) kernels.quantMatmul(type, blocks, x, out, M, N, K, { path });
      for (let r = 0; r < 3; r++) {
        for (const path of paths) runs[path].push(timeMedian(() => kernels.quantMatmul(type, blocks, x, out, M, N, K, { path }), reps));
      }
      const med = (xs) => [...xs].sort((a, b) => a - b)[1];
      const [dot, deq, int8] = paths.map((p) => med(runs[p]));
      const show = (name, t) => `${name} ${(t * 1e3).toFixed(3).padStart(8)} ms ${(flops / t / 1e9).toFixed(1).padStart(6)} GFLOP/s`;
      console.log(`${type.padEnd(5)} N=${N} K=${K} M=${String(M).padStart(3)}  ${show("dot", dot)}   ${show("dequant", deq)}   ${show("int8", int8)}   dequant/dot ${(deq / dot).toFixed(2)}   dequant/int8 ${(deq / int8).toFixed(2)}`);
    }
  }
}
