// Attention throughput at SmolLM2-135M's shape (9 query heads over 3 KV heads, d = 64).
//   node bench/attention.mjs       (after `pnpm --filter @razorkv/kernels-cpu build`)
// Prefill: causal T×T per head, with and without the H2O/SnapKV statistics; flops counted as 4·H·d per visible
// (query, key) pair (QKᵀ and PV). Decode: one query over a cache of `len` per head, as during generation.
import { attendReference, KvCache, mulberry32, randomArray } from "@razorkv/core";
import { loadKernels, kernelsUnavailableReason } from "../dist/index.js";

const kernels = loadKernels();
if (!kernels) {
  console.error(`bench/attention.mjs: ${kernelsUnavailableReason()}`);
  process.exit(1);
}
const H = 9, HKV = 3, D = 64;

function time(run, minSeconds = 0.5) {
  run();
  const times = [];
  const start = process.hrtime.bigint();
  while (times.length < 3 || (times.length < 200 && Number(process.hrtime.bigint() - start) / 1e9 < minSeconds)) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

console.log(`threads ${kernels.threads()}, simd ${kernels.simd()}`);
for (const T of [512, 2048, 4096]) {
  const rand = mulberry32(T);
  const q = randomArray(rand, T * H * D);
  const k = randomArray(rand, T * HKV * D);
  const v = randomArray(rand, T * HKV * D);
  const out = new Float32Array(T * H * D);
  const flops = 4 * H * D * (T * (T + 1)) / 2;
  for (const stats of [undefined, { accumulated: true, windowQueries: 32 }]) {
    const t = time(() => kernels.attendPrefill({ queries: q, keys: k, values: v, out, numHeads: H, numKvHeads: HKV, headDim: D, numQueries: T, stats }));
    console.log(`prefill T=${String(T).padEnd(5)} ${stats ? "with stats   " : "no stats     "} ${(t * 1e3).toFixed(2).padStart(9)} ms  ${(flops / t / 1e9).toFixed(1).padStart(6)} GFLOP/s`);
  }
  if (T === 512) {
    const cache = new KvCache({ numLayers: 1, numKvHeads: HKV, headDim: D });
    for (let kv = 0; kv < HKV; kv++) for (let t = 0; t < T; t++) cache.head(0, kv).append(t, k, v, (t * HKV + kv) * D);
    const positions = Int32Array.from({ length: T }, (_, i) => i);
    const t = time(() => attendReference({ cache, layer: 0, numHeads: H, queries: q, queryPositions: positions, out }), 2);
    console.log(`prefill T=${T}   TypeScript reference ${(t * 1e3).toFixed(2).padStart(9)} ms  ${(flops / t / 1e9).toFixed(2).padStart(6)} GFLOP/s`);
  }
}
for (const len of [512, 2048, 8192]) {
  const rand = mulberry32(len);
  const cache = new KvCache({ numLayers: 1, numKvHeads: HKV, headDim: D });
  for (const head of cache.heads) for (let t = 0; t < len; t++) head.append(t, randomArray(rand, D), randomArray(rand, D));
  const q = randomArray(rand, H * D);
  const out = new Float32Array(H * D);
  const args = { cache, layer: 0, numHeads: H, queries: q, queryPositions: [len - 1], out };
  const t = time(() => kernels.attend(args));
  const tRef = time(() => attendReference(args));
  console.log(`decode C=1 len=${String(len).padEnd(5)} native ${(t * 1e6).toFixed(1).padStart(8)} µs   TypeScript ${(tRef * 1e6).toFixed(1).padStart(9)} µs`);
}
