#!/usr/bin/env node
// razorkv's side of the side-by-side benchmark until model-zoo keeps weights quantized (issue #19, phase 2): the
// kernel-level forward pass of a Llama-family GGUF, every weight read from the file's own blocks by
// kernels-cpu's quantMatmul. Per layer and token: rmsNorm, the Q/K/V projections, RoPE (JavaScript), append to a
// core KvCache (f32), attendStep (decode) or attend over the cache (prefill, in chunks of 512 tokens as llama.cpp's
// ubatches), the output projection, residual add,
// rmsNorm, gate/up, swiglu, down, residual add; then the final norm and the LM head for the last token (the tied
// embedding where the file has no output.weight). It leaves out what model-zoo's LlamaModel adds around the
// kernels (its cache bookkeeping, policies, logits handling): a lower bound on the model-level time, labelled as
// such in BENCHMARKS.md.
//
//   node bench/lib/kernel-forward.js --model FILE --prefill T            time one prefill of T tokens
//   node bench/lib/kernel-forward.js --model FILE --decode N --context C  C cached positions (random keys and
//                                    values, untimed), one untimed step, then N timed decode steps
//   node bench/lib/kernel-forward.js --model FILE --generate N --prompt P a timed prefill of P tokens, then N decode
//                                    steps (for the resident-memory comparison)
// Prints one JSON line: { kind, tokens, seconds, tokensPerSecond, loadSeconds, maxRssBytes, … } (generate: also the
// greedy tokens). Threads: RAZORKV_THREADS (default: all). The prompt's token ids are (7919·i + 13) mod vocab:
// speed does not depend on them.
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { forwardArgs } from "./forward-args.js";
import { readGgufHeader, readTensorBytes } from "./gguf.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
async function importBuilt(pkg) {
  const path = resolve(ROOT, "packages", pkg, "dist/index.js");
  if (!existsSync(path)) throw new Error(`${path} is missing: build first (pnpm run build)`);
  return import(pathToFileURL(path).href);
}
const { loadKernels, kernelsUnavailableReason, ggmlWeightType, ggmlRowBytes } = await importBuilt("kernels-cpu");
const { KvCache } = await importBuilt("core");

const opts = forwardArgs("kernel-forward");
if (opts["prefill-chunk-rows"] !== undefined || opts["prefill-products"] !== undefined) {
  console.error("kernel-forward: --prefill-chunk-rows and --prefill-products are model-forward.js's (this side's prefill is always f32, in 512-token chunks)");
  process.exit(2);
}
const fail = (message) => {
  console.error(`kernel-forward: ${message}`);
  process.exit(2);
};
const kernels = loadKernels();
if (!kernels) fail(kernelsUnavailableReason());

// ---------------------------------------------------------------------------------------------------------------
// the file

const t0Load = performance.now();
const header = readGgufHeader(opts.model);
const meta = header.metadata;
const arch = meta["general.architecture"];
if (arch !== "llama") fail(`${opts.model}: general.architecture is ${arch}; this benchmark reads llama-family files only`);
const get = (key) => {
  const v = meta[`${arch}.${key}`];
  if (v === undefined) fail(`${opts.model}: metadata ${arch}.${key} is missing`);
  return v;
};
const hidden = get("embedding_length");
const numLayers = get("block_count");
const numHeads = get("attention.head_count");
const numKv = get("attention.head_count_kv");
const ffn = get("feed_forward_length");
const eps = get("attention.layer_norm_rms_epsilon");
const ropeBase = meta[`${arch}.rope.freq_base`] ?? 10000;
const headDim = meta[`${arch}.attention.key_length`] ?? hidden / numHeads;

/** Weight [N × K] of tensor `name` as quantMatmul takes it. */
function weight(name, N, K) {
  const t = header.tensors.get(name);
  if (!t) fail(`${opts.model}: tensor ${name} is missing`);
  const type = ggmlWeightType(t.type);
  if (type === undefined) fail(`${opts.model}: tensor ${name} has ggml type ${t.type}, which quantMatmul does not read`);
  if (t.dims[0] !== K || (t.dims[1] ?? 1) !== N) fail(`${opts.model}: tensor ${name} has dims [${t.dims}], expected [${K}, ${N}]`);
  // transparent huge pages for the weights (the machines here have THP on "madvise"): a GEMV streams them
  return { name, type, N, K, bytes: readTensorBytes(header, name, N * ggmlRowBytes(type, K), (array) => kernels.adviseHugePages(array)) };
}
/** An F32 vector tensor (norm weights), decoded. */
function vector(name, n) {
  const w = weight(name, 1, n);
  const out = new Float32Array(n);
  kernels.dequantizeRows(w.type, w.bytes, out, 1, n);
  return out;
}

const qDim = numHeads * headDim;
const kvDim = numKv * headDim;
const layers = Array.from({ length: numLayers }, (_, i) => {
  const p = `blk.${i}.`;
  return {
    attnNorm: vector(p + "attn_norm.weight", hidden),
    q: weight(p + "attn_q.weight", qDim, hidden),
    k: weight(p + "attn_k.weight", kvDim, hidden),
    v: weight(p + "attn_v.weight", kvDim, hidden),
    o: weight(p + "attn_output.weight", hidden, qDim),
    ffnNorm: vector(p + "ffn_norm.weight", hidden),
    gate: weight(p + "ffn_gate.weight", ffn, hidden),
    up: weight(p + "ffn_up.weight", ffn, hidden),
    down: weight(p + "ffn_down.weight", hidden, ffn),
  };
});
const vocab = header.tensors.get("token_embd.weight").dims[1];
const embedding = weight("token_embd.weight", vocab, hidden);
const head = header.tensors.has("output.weight") ? weight("output.weight", vocab, hidden) : embedding;
const outputNorm = vector("output_norm.weight", hidden);
const loadSeconds = (performance.now() - t0Load) / 1000;

// ---------------------------------------------------------------------------------------------------------------
// the forward pass

const matmul = (w, x, out, M) => kernels.quantMatmul(w.type, w.bytes, x, out, M, w.N, w.K);

/** out[t] = embedding row of token ids[t]: the row's blocks decoded. */
function embed(ids, out) {
  const rowBytes = ggmlRowBytes(embedding.type, hidden);
  ids.forEach((id, t) => {
    kernels.dequantizeRows(embedding.type, embedding.bytes.subarray(id * rowBytes, (id + 1) * rowBytes), out.subarray(t * hidden, (t + 1) * hidden), 1, hidden);
  });
}

// RoPE as ggml applies it to llama-architecture GGUF files (adjacent pairs (2i, 2i + 1); the converter permutes
// the Q and K rows so that this equals Hugging Face's rotate-half), from per-position cos/sin tables
const ropeCache = new Map();
function ropeTable(position) {
  let row = ropeCache.get(position);
  if (!row) {
    row = new Float32Array(headDim);
    for (let i = 0; i < headDim / 2; i++) {
      const angle = position * ropeBase ** ((-2 * i) / headDim);
      row[2 * i] = Math.cos(angle);
      row[2 * i + 1] = Math.sin(angle);
    }
    ropeCache.set(position, row);
  }
  return row;
}
function rope(x, heads, position, offset) {
  const table = ropeTable(position);
  for (let h = 0; h < heads; h++) {
    const base = offset + h * headDim;
    for (let i = 0; i < headDim; i += 2) {
      const a = x[base + i], b = x[base + i + 1];
      x[base + i] = a * table[i] - b * table[i + 1];
      x[base + i + 1] = b * table[i] + a * table[i + 1];
    }
  }
}

/** Prompt tokens per prefill chunk (llama.cpp's default ubatch). */
const UBATCH = 512;

/** Scratch for M rows (a prefill takes min(prompt, UBATCH) rows). */
function buffers(M) {
  M = Math.min(M, UBATCH);
  return {
    x: new Float32Array(M * hidden), normed: new Float32Array(M * hidden), q: new Float32Array(M * qDim),
    k: new Float32Array(M * kvDim), v: new Float32Array(M * kvDim), attn: new Float32Array(M * qDim),
    proj: new Float32Array(M * hidden), gate: new Float32Array(M * ffn), up: new Float32Array(M * ffn),
    logits: new Float32Array(vocab),
  };
}

function addInto(x, y) {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** The FFN half of a block for M rows (x updated in place). */
function ffnBlock(L, b, M) {
  kernels.rmsNorm(b.x, L.ffnNorm, b.normed, M, eps);
  matmul(L.gate, b.normed, b.gate, M);
  matmul(L.up, b.normed, b.up, M);
  kernels.swiglu(b.gate, b.up);
  matmul(L.down, b.gate, b.proj, M);
  addInto(b.x, b.proj);
}

/**
 * Prefill of `ids` into `cache` (positions 0 …) in chunks of at most UBATCH tokens, as llama.cpp processes a prompt
 * in ubatches of 512: each chunk's rows go through the projections together (quantMatmul's dequant path above 48
 * rows) and attend causally over the cache, which already holds the earlier chunks. Returns the next token (argmax
 * of the last row's logits). `b` holds scratch for UBATCH rows.
 */
function prefill(ids, cache, b) {
  for (let t0 = 0; t0 < ids.length; t0 += UBATCH) {
    const T = Math.min(UBATCH, ids.length - t0);
    const rows = (buffer, width) => buffer.subarray(0, T * width);
    const x = rows(b.x, hidden), normed = rows(b.normed, hidden), q = rows(b.q, qDim), k = rows(b.k, kvDim), v = rows(b.v, kvDim);
    const attn = rows(b.attn, qDim), proj = rows(b.proj, hidden);
    embed(ids.slice(t0, t0 + T), x);
    const positions = Int32Array.from({ length: T }, (_, t) => t0 + t);
    for (let l = 0; l < numLayers; l++) {
      const L = layers[l];
      kernels.rmsNorm(x, L.attnNorm, normed, T, eps);
      matmul(L.q, normed, q, T);
      matmul(L.k, normed, k, T);
      matmul(L.v, normed, v, T);
      for (let t = 0; t < T; t++) {
        rope(q, numHeads, t0 + t, t * qDim);
        rope(k, numKv, t0 + t, t * kvDim);
      }
      for (let kv = 0; kv < numKv; kv++) {
        const h = cache.head(l, kv);
        h.reserve(ids.length + 64);
        for (let t = 0; t < T; t++) h.append(t0 + t, k, v, t * kvDim + kv * headDim);
      }
      kernels.attend({ cache, layer: l, numHeads, queries: q, queryPositions: positions, out: attn });
      matmul(L.o, attn, proj, T);
      addInto(x, proj);
      ffnBlock(L, { x, normed, gate: rows(b.gate, ffn), up: rows(b.up, ffn), proj }, T);
    }
    cache.nextPosition = t0 + T;
    if (t0 + T === ids.length) return lmHead(x.subarray((T - 1) * hidden, T * hidden), b);
  }
  throw new Error("prefill of no tokens");
}

function lmHead(lastRow, b) {
  const normed = b.normed.subarray(0, hidden);
  kernels.rmsNorm(lastRow, outputNorm, normed, 1, eps);
  matmul(head, normed, b.logits, 1);
  return argmax(b.logits);
}

/** One decode step of `token` at the cache's next position; returns the next token. */
function decode(token, cache, b) {
  const position = cache.nextPosition;
  embed([token], b.x);
  for (let l = 0; l < numLayers; l++) {
    const L = layers[l];
    kernels.rmsNorm(b.x, L.attnNorm, b.normed, 1, eps);
    matmul(L.q, b.normed, b.q, 1);
    matmul(L.k, b.normed, b.k, 1);
    matmul(L.v, b.normed, b.v, 1);
    rope(b.q, numHeads, position, 0);
    rope(b.k, numKv, position, 0);
    for (let kv = 0; kv < numKv; kv++) cache.head(l, kv).append(position, b.k, b.v, kv * headDim);
    kernels.attendStep({ layer: l, numHeads, sequences: [{ cache, queries: b.q, queryPositions: [position], out: b.attn }] });
    matmul(L.o, b.attn, b.proj, 1);
    addInto(b.x, b.proj);
    ffnBlock(L, b, 1);
  }
  cache.nextPosition = position + 1;
  return lmHead(b.x, b);
}

/** A cache holding C positions of random keys and values (what a prefill would leave, without its time). */
function filledCache(C, capacity) {
  const cache = new KvCache({ numLayers, numKvHeads: numKv, headDim });
  const k = new Float32Array(headDim), v = new Float32Array(headDim);
  let s = 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  for (const h of cache.heads) {
    h.reserve(capacity);
    for (let p = 0; p < C; p++) {
      for (let i = 0; i < headDim; i++) {
        k[i] = rand();
        v[i] = rand();
      }
      h.append(p, k, v);
    }
  }
  cache.nextPosition = C;
  return cache;
}

const ids = (n) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
const seconds = (t0) => (performance.now() - t0) / 1000;
const result = {
  model: opts.model, threads: kernels.threads(), simd: kernels.simd(), gemmBackend: kernels.gemmBackend(),
  loadSeconds: Number(loadSeconds.toFixed(3)),
};

if (opts.prefill) {
  const T = Number(opts.prefill);
  const b = buffers(T);
  prefill(ids(8), new KvCache({ numLayers, numKvHeads: numKv, headDim }), buffers(8)); // warm-up: thread pool, JIT
  const t0 = performance.now();
  prefill(ids(T), new KvCache({ numLayers, numKvHeads: numKv, headDim }), b);
  Object.assign(result, { kind: "prefill", tokens: T, seconds: seconds(t0) });
} else if (opts.decode) {
  const N = Number(opts.decode), C = Number(opts.context);
  const cache = filledCache(C, C + N + 2);
  const b = buffers(1);
  let token = decode(1, cache, b); // warm-up step, not timed
  const t0 = performance.now();
  for (let i = 0; i < N; i++) token = decode(token, cache, b);
  Object.assign(result, { kind: "decode", context: C, tokens: N, seconds: seconds(t0) });
} else if (opts.generate) {
  const N = Number(opts.generate), P = Number(opts.prompt);
  const cache = new KvCache({ numLayers, numKvHeads: numKv, headDim });
  const t0 = performance.now();
  let token = prefill(ids(P), cache, buffers(P));
  const prefillSeconds = seconds(t0);
  const b = buffers(1);
  const generated = [token];
  const t1 = performance.now();
  for (let i = 0; i < N; i++) generated.push((token = decode(token, cache, b)));
  Object.assign(result, { kind: "generate", prompt: P, tokens: N, prefillSeconds, seconds: seconds(t1), greedyTokens: generated.slice(0, N) });
} else {
  fail("give --prefill T, --decode N or --generate N");
}
result.tokensPerSecond = result.tokens / result.seconds;
result.maxRssBytes = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify(result));
