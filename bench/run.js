#!/usr/bin/env node
// CPU forward-pass benchmark of our Llama-family model (LlamaModel, packages/model-zoo) on SmolLM2-135M-Instruct:
// prefill tokens/s at 512, 2048 and 8192 tokens, greedy decode tokens/s at 2K and 8K of context, and batched decode
// (decodeBatch over 8 and 25 caches at 2K, as the eval runner decodes the cells of a sweep), on the native addon
// (packages/kernels-cpu) and the plain-TypeScript reference. Medians of --runs runs (3 by default).
//
//   pnpm run bench                        build, then every case, both backends; writes bench/results.json and the
//                                         "CPU forward pass" section of BENCHMARKS.md
//   node bench/run.js [--quick] [--backends native,typescript] [--runs 3]
//                     [--ts-long] [--wait-idle 60] [--retries 3] [--out FILE] [--no-md] [--model REF] [--text FILE]
//   pnpm run bench -- --vs-llama-cpp [options]   side by side with llama.cpp on the same GGUF files
//                                         (bench/vs-llama-cpp.js, which lists its options)
//
//   --quick      prefill 512/2048, decode at 2K, batch of 8 only (no 8K cases, no batch of 25); writes
//                bench/results-quick.json and leaves BENCHMARKS.md alone unless --out/--md say otherwise
//   --ts-long    also run the TypeScript prefill at 2048 and 8192 (tens of minutes); by default those are recorded
//                as "not run" with an estimate made from the TypeScript path's own measurements
//   --no-md      do not touch BENCHMARKS.md;  --md  write it even with --quick
//   --wait-idle S  before each run, wait up to S seconds (default 60; 0: never) for the other processes on the
//                machine to use < 0.25 CPU; every run records the CPU the others used while it was timed
//   --retries K  a run during which the other processes used more CPU than the cores the backend leaves free
//                (+ 0.25) is "contended": it is kept in results.json under discardedContendedRuns and done again,
//                at most K times per run (default 3); after that it is kept, flagged contended
//
// What is timed (wall clock, process.hrtime):
//   prefill T    model.prefill(ids[0..T), { logits: "last" }) into a fresh cache; tokens/s = T / time
//   decode C     a context of C tokens is prefilled once (not timed, on the native path when it is available: the
//                cache is a plain core KvCache, the same for both backends); each run clones it, takes one untimed
//                warm-up step (the first append grows every head's buffer), then times N greedy steps
//                (decode + argmax); tokens/s = N / time
//   batch B      B clones of the 2K context cache, one untimed decodeBatch step, then N timed decodeBatch steps;
//                tokens/s = B·N / time (all rows counted)
// The model holds its weights as f32 (the GGUF Q4_1 file is dequantized when loaded).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const rel = (p) => relative(ROOT, p) || ".";

// `pnpm run bench -- …` passes its `--` on: drop it. --vs-llama-cpp is the side-by-side mode (bench/vs-llama-cpp.js).
const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === "--"));
if (argv.includes("--vs-llama-cpp")) {
  const { main } = await import("./vs-llama-cpp.js");
  process.exit(await main(argv.filter((a) => a !== "--vs-llama-cpp")));
}

// ---------------------------------------------------------------------------------------------------------------
// options

const USAGE = `usage: node bench/run.js [--quick] [--backends native,typescript] [--runs 3] [--ts-long]
                         [--wait-idle 60] [--retries 3] [--out FILE] [--md | --no-md] [--model REF] [--text FILE]
       node bench/run.js --vs-llama-cpp [--models smollm2,llama-3.2-1b,llama-3.1-8b] [--sides llama,model,kernel] [--runs 3] [--threads N]
                         [--wait-idle 30] [--out FILE] [--no-md]`;

let parsed;
try {
  parsed = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      backends: { type: "string", default: "native,typescript" },
      runs: { type: "string", default: "3" },
      "ts-long": { type: "boolean", default: false },
      out: { type: "string" },
      md: { type: "boolean" },
      "no-md": { type: "boolean", default: false },
      model: { type: "string", default: "smollm2-135m-instruct" },
      text: { type: "string", default: "datasets/haystack/generated-essays.txt" },
      "wait-idle": { type: "string", default: "60" },
      retries: { type: "string", default: "3" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
} catch (error) {
  console.error(`bench/run.js: ${error.message}\n${USAGE}`);
  process.exit(2);
}
const opts = parsed.values;
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const runs = Number(opts.runs);
if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got ${opts.runs}`);
if (runs < 3) console.error(`bench/run.js: warning: --runs ${runs} < 3; the issue asks for medians of at least 3 runs`);
const backendNames = opts.backends.split(",").map((s) => s.trim()).filter(Boolean);
for (const b of backendNames) if (b !== "native" && b !== "typescript") fail(`--backends: unknown backend "${b}" (native, typescript)`);
if (backendNames.length === 0) fail("--backends: none given");
const quick = opts.quick;
const outPath = resolve(ROOT, opts.out ?? (quick ? "bench/results-quick.json" : "bench/results.json"));
const writeMd = opts["no-md"] ? false : opts.md ?? !quick;
const textPath = resolve(ROOT, opts.text);

function fail(message) {
  console.error(`bench/run.js: ${message}`);
  process.exit(2);
}
const log = (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

// ---------------------------------------------------------------------------------------------------------------
// the built packages (relative paths: the workspace packages are not linked into the root node_modules)

async function importBuilt(pkg) {
  const path = resolve(ROOT, "packages", pkg, "dist/index.js");
  if (!existsSync(path)) fail(`${rel(path)} is missing: build first (pnpm run build, or npx tsc -p tsconfig.json in packages/${pkg})`);
  return import(pathToFileURL(path).href);
}
const zoo = await importBuilt("model-zoo");
const kernelsCpu = await importBuilt("kernels-cpu");
const { loadLanguageModel, LlamaModel, typescriptBackend, argmax } = zoo;

// ---------------------------------------------------------------------------------------------------------------
// machine

function cpuModel() {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    if (line) return line.split(":").slice(1).join(":").trim();
  } catch {}
  return os.cpus()[0]?.model ?? "unknown";
}
function lscpu() {
  try {
    const out = execFileSync("lscpu", [], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const get = (key) => out.split("\n").find((l) => l.startsWith(key + ":"))?.split(":").slice(1).join(":").trim();
    return {
      threadsPerCore: Number(get("Thread(s) per core")) || null,
      coresPerSocket: Number(get("Core(s) per socket")) || null,
      sockets: Number(get("Socket(s)")) || null,
      l2: get("L2 cache") ?? null,
      l3: get("L3 cache") ?? null,
      flagsAvx2: /\bavx2\b/.test(get("Flags") ?? ""),
      flagsAvx512f: /\bavx512f\b/.test(get("Flags") ?? ""),
    };
  } catch {
    return null;
  }
}
function gitCommit() {
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return head;
  } catch {
    return null;
  }
}
const load1 = () => Number(os.loadavg()[0].toFixed(2));

// ---------------------------------------------------------------------------------------------------------------
// model, backends, text

log(`loading ${opts.model} …`);
const nativeKernels = kernelsCpu.loadKernels(); // also used for the untimed context prefills when only TypeScript is benched
const nativeReason = nativeKernels ? null : kernelsCpu.kernelsUnavailableReason();
const t0Load = performance.now();
const lm = await loadLanguageModel(opts.model, { backend: nativeKernels ?? typescriptBackend });
const loadSeconds = (performance.now() - t0Load) / 1000;
const cfg = lm.model.config;
const models = {};
if (backendNames.includes("native")) {
  if (nativeKernels) models.native = lm.model;
  else log(`native backend unavailable: ${nativeReason}`);
}
if (backendNames.includes("typescript")) models.typescript = new LlamaModel(lm.loaded.weights, typescriptBackend);
// contexts for decode are prefilled once, untimed, on the fastest path there is
const contextModel = nativeKernels ? lm.model : (models.typescript ?? new LlamaModel(lm.loaded.weights, typescriptBackend));

const machine = {
  cpuModel: cpuModel(),
  logicalCpus: os.cpus().length,
  availableParallelism: typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length,
  lscpu: lscpu(),
  memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  node: process.version,
  nativeBackend: nativeKernels
    ? { name: nativeKernels.name, gemmBackend: nativeKernels.gemmBackend(), gemmBackends: nativeKernels.gemmBackends(), simd: nativeKernels.simd(), threads: nativeKernels.threads() }
    : { unavailable: nativeReason },
  env: { RAZORKV_THREADS: process.env.RAZORKV_THREADS ?? null, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null },
  loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
};
log(`${machine.cpuModel}, ${machine.logicalCpus} CPUs, node ${machine.node}, native: ${nativeKernels ? `${nativeKernels.name}, ${nativeKernels.threads()} threads, simd ${nativeKernels.simd()}` : "unavailable"}; load average ${machine.loadAverageAtStart.join(" ")}`);

const maxPrefill = quick ? 2048 : 8192;
const text = readFileSync(textPath, "utf8");
let ids = [];
for (let chars = 60000; ; chars *= 2) {
  ids = lm.tokenizer.encode(text.slice(0, chars), { addSpecialTokens: false });
  if (ids.length >= Math.min(cfg.maxContext, 8192) + 64 || chars >= text.length) break;
}
if (ids.length < Math.min(maxPrefill, cfg.maxContext)) fail(`${rel(textPath)}: only ${ids.length} tokens, need ${maxPrefill}`);
ids = Int32Array.from(ids);
log(`${rel(textPath)}: ${ids.length} tokens tokenized (the first ${Math.min(ids.length, cfg.maxContext)} are used)`);

// ---------------------------------------------------------------------------------------------------------------
// FLOP and byte counts (for the implied rates)

const H = cfg.hiddenSize, d = cfg.headDim, L = cfg.numLayers, F = cfg.intermediateSize, V = cfg.vocabSize;
const qDim = cfg.numHeads * d, kvDim = cfg.numKvHeads * d;
/** Weights of the decoder blocks that a token goes through as matrix products (norms excluded). */
const blockParams = L * (H * qDim + 2 * H * kvDim + qDim * H + 3 * H * F);
const headParams = V * H; // LM head (tied to the embedding for SmolLM2)
const flops = {
  /** matrix products of a prefill of T tokens with one logit row */
  prefillMatmul: (T) => 2 * blockParams * T + 2 * headParams,
  /** QKᵀ and AV of causal attention over T tokens */
  prefillAttention: (T) => L * cfg.numHeads * 4 * d * (T * (T + 1)) / 2,
  /** one decode row at context c (keys attended = c) */
  decodeRow: (c) => 2 * blockParams + 2 * headParams + L * cfg.numHeads * 4 * d * c,
};
/** bytes one decode step must read: the f32 weights once, plus each row's f32 keys and values */
const decodeBytes = (rows, c) => 4 * (blockParams + headParams) + rows * L * cfg.numKvHeads * c * 2 * d * 4;

// ---------------------------------------------------------------------------------------------------------------
// timing

/** Busy CPU seconds of the whole machine so far (all CPUs, /proc/stat), or null where there is no /proc/stat. */
function machineBusySeconds() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / 100; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}
function timed(fn) {
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const busy1 = machineBusySeconds();
  const own = (cpu.user + cpu.system) / 1e6;
  return {
    value, seconds,
    // CPU seconds of this process per wall second: ≈ the threads used when it had the cores to itself
    cpuPerWall: Number((own / seconds).toFixed(2)),
    // CPU seconds of every other process per wall second: the contention from the rest of the machine
    othersCpuPerWall: busy0 === null || busy1 === null ? null : Number(Math.max(0, (busy1 - busy0 - own) / seconds).toFixed(2)),
  };
}
/** Waits (up to --wait-idle seconds) until the other processes use less than 0.25 CPU over a second. */
function waitIdle() {
  const limit = Number(opts["wait-idle"]);
  if (!(limit > 0) || machineBusySeconds() === null) return 0;
  const t0 = Date.now();
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const b0 = machineBusySeconds();
    Atomics.wait(sleep, 0, 0, 1000);
    const others = machineBusySeconds() - b0; // this process sleeps meanwhile
    const waited = (Date.now() - t0) / 1000;
    if (others < 0.25 || waited >= limit) {
      if (waited > 1.5) log(`  waited ${waited.toFixed(0)} s for the machine to go idle${others < 0.25 ? "" : ` (gave up: others still using ${others.toFixed(2)} CPU)`}`);
      return Number(waited.toFixed(1));
    }
  }
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const r3 = (x) => Number(x.toPrecision(4));

const cases = [];
function record(c) {
  cases.push(c);
  if (c.status === "ok") {
    log(`${c.id}: median ${c.median.tokensPerSecond.toFixed(2)} tok/s (runs ${c.runs.map((r) => r.tokensPerSecond.toFixed(2)).join(", ")})`);
  } else log(`${c.id}: ${c.status}: ${c.reason}`);
  writeResults(false); // keep what is measured so far on disk
}
function summarize(runsOut, extra) {
  return {
    status: "ok",
    runs: runsOut,
    median: { tokensPerSecond: r3(median(runsOut.map((r) => r.tokensPerSecond))), seconds: r3(median(runsOut.map((r) => r.seconds))) },
    ...extra,
  };
}

/** Threads a backend computes with: the addon's pool, or the one JavaScript thread. */
const threadsOf = (backend) => (backend === "native" && nativeKernels ? nativeKernels.threads() : 1);
const retries = Number(opts.retries);
if (!Number.isInteger(retries) || retries < 0) fail(`--retries must be an integer ≥ 0, got ${opts.retries}`);
/** A run is contended when the other processes took more CPU than the cores this backend leaves free (+ 0.25). */
const contendedAbove = (backend) => Math.max(0, machine.logicalCpus - threadsOf(backend)) + 0.25;

/**
 * `runs` runs of `once(wait)` (which prepares, calls wait() just before its timed region, and returns timed()'s
 * result and the tokens it produced). A contended run is recorded under `discarded` and done again, up to
 * --retries times per run; after that it is kept (flagged `contended`).
 */
function measureRuns(id, backend, tokensPerRun, once, describe) {
  const kept = [];
  const discarded = [];
  const limit = contendedAbove(backend);
  for (let i = 0; i < runs; i++) {
    for (let attempt = 0; ; attempt++) {
      let waitedIdle = 0, loadBefore = 0;
      const r = once(() => {
        waitedIdle = waitIdle();
        loadBefore = load1();
      });
      const contended = r.othersCpuPerWall !== null && r.othersCpuPerWall > limit;
      const run = {
        seconds: r3(r.seconds), tokensPerSecond: r3(tokensPerRun / r.seconds),
        cpuPerWall: r.cpuPerWall, othersCpuPerWall: r.othersCpuPerWall, load1: loadBefore, waitedIdle,
        ...(contended ? { contended: true } : {}),
      };
      const retry = contended && attempt < retries;
      log(`  run ${i + 1}${attempt ? ` (attempt ${attempt + 1})` : ""}: ${describe(r.seconds)}, cpu/wall ${r.cpuPerWall}, others ${r.othersCpuPerWall}` +
        (contended ? ` — contended (others > ${limit})${retry ? ", discarded, running it again" : ", kept: out of retries"}` : ""));
      if (retry) {
        discarded.push(run);
        continue;
      }
      kept.push({ run, value: r.value });
      break;
    }
  }
  return { runsOut: kept.map((k) => k.run), values: kept.map((k) => k.value), discarded, contendedAbove: limit };
}

function benchPrefill(backend, model, T) {
  const id = `${backend}/prefill/${T}`;
  log(`${id}: ${runs} runs …`);
  const { runsOut, values, discarded, contendedAbove: limit } = measureRuns(id, backend, T, (wait) => {
    wait();
    const r = timed(() => model.prefill(ids.subarray(0, T), { logits: "last" }));
    return { ...r, value: argmax(r.value.logits) };
  }, (sec) => `${sec.toFixed(2)} s, ${(T / sec).toFixed(2)} tok/s`);
  const med = median(runsOut.map((r) => r.seconds));
  record({
    id, backend, kind: "prefill", tokens: T,
    ...summarize(runsOut, {
      discardedContendedRuns: discarded, contendedAboveOthersCpu: limit,
      implied: {
        matmulGflopPerSecond: r3(flops.prefillMatmul(T) / med / 1e9),
        totalGflopPerSecond: r3((flops.prefillMatmul(T) + flops.prefillAttention(T)) / med / 1e9),
      },
      nextTokenArgmax: values[values.length - 1],
    }),
  });
}

const contexts = new Map(); // C → { cache, next }
function context(C) {
  if (!contexts.has(C)) {
    log(`prefilling a ${C}-token context (not timed) on ${contextModel.backend.name} …`);
    const { value, seconds } = timed(() => contextModel.prefill(ids.subarray(0, C), { logits: "last" }));
    log(`  ${seconds.toFixed(1)} s`);
    contexts.set(C, { cache: value.cache, next: argmax(value.logits), seconds: r3(seconds) });
  }
  return contexts.get(C);
}

function benchDecode(backend, model, label, C, steps) {
  const id = `${backend}/decode/${label}`;
  const ctx = context(C);
  log(`${id}: context ${C}, ${runs} runs of 1 warm-up + ${steps} timed greedy steps …`);
  const { runsOut, values, discarded, contendedAbove: limit } = measureRuns(id, backend, steps, (wait) => {
    const cache = ctx.cache.clone();
    let token = argmax(model.decode(cache, ctx.next)); // warm-up step, not timed
    const tokens = [];
    wait();
    const r = timed(() => {
      for (let s = 0; s < steps; s++) {
        token = argmax(model.decode(cache, token));
        tokens.push(token);
      }
    });
    return { ...r, value: tokens };
  }, (sec) => `${(sec / steps * 1000).toFixed(1)} ms/token, ${(steps / sec).toFixed(2)} tok/s`);
  const med = median(runsOut.map((r) => r.seconds));
  const cMid = C + 1 + (steps - 1) / 2; // mean keys attended over the timed steps (context + warm-up + earlier steps)
  const generated = values[values.length - 1];
  record({
    id, backend, kind: "decode", context: C, contextsTimed: [C + 2, C + 1 + steps], steps, batch: 1,
    ...summarize(runsOut, {
      discardedContendedRuns: discarded, contendedAboveOthersCpu: limit,
      implied: {
        gflopPerSecond: r3((steps * flops.decodeRow(cMid)) / med / 1e9),
        gbPerSecond: r3((steps * decodeBytes(1, cMid)) / med / 1e9),
      },
      greedyTokens: generated,
      greedyText: lm.tokenizer.decode(generated),
    }),
  });
}

function benchBatch(backend, model, B, C, steps) {
  const id = `${backend}/decodeBatch/${B}x${C === 2048 ? "2K" : C}`;
  const ctx = context(C);
  log(`${id}: ${B} caches at context ${C}, ${runs} runs of 1 warm-up + ${steps} timed decodeBatch steps …`);
  const { runsOut, discarded, contendedAbove: limit } = measureRuns(id, backend, B * steps, (wait) => {
    const caches = Array.from({ length: B }, () => ctx.cache.clone());
    let tokens = new Array(B).fill(ctx.next);
    const step = () => {
      const { logits } = model.decodeBatch(caches, tokens);
      tokens = tokens.map((_, b) => argmax(logits.subarray(b * V, (b + 1) * V)));
    };
    step(); // warm-up, not timed
    wait();
    return timed(() => {
      for (let s = 0; s < steps; s++) step();
    });
  }, (sec) => `${(sec / steps * 1000).toFixed(0)} ms/step, ${((B * steps) / sec).toFixed(2)} tok/s`);
  const med = median(runsOut.map((r) => r.seconds));
  const cMid = C + 1 + (steps - 1) / 2;
  record({
    id, backend, kind: "decodeBatch", context: C, batch: B, steps,
    ...summarize(runsOut, {
      discardedContendedRuns: discarded, contendedAboveOthersCpu: limit,
      implied: {
        gflopPerSecond: r3((steps * B * flops.decodeRow(cMid)) / med / 1e9),
        gbPerSecond: r3((steps * decodeBytes(B, cMid)) / med / 1e9),
      },
    }),
  });
}

/**
 * Seconds a prefill of T tokens would take on `backend`, from that backend's own medians: attention cost per
 * (query, key) pair k from the decode slope between 2K and 8K, the rest linear in T from the 512-token prefill:
 * time(T) ≈ a·T + k·T²/2. Falls back to the native path's time ratio, then to linear (a lower bound).
 */
function estimatePrefillSeconds(backend, T) {
  const get = (id) => cases.find((c) => c.id === id && c.status === "ok");
  const p512 = get(`${backend}/prefill/512`);
  if (!p512) return null;
  const t512 = p512.median.seconds;
  const d2 = get(`${backend}/decode/2K`), d8 = get(`${backend}/decode/8K`);
  if (d2 && d8) {
    const step = (c) => 1 / c.median.tokensPerSecond;
    const k = Math.max(0, (step(d8) - step(d2)) / (d8.context - d2.context));
    const a = Math.max(0, (t512 - (k * 512 * 512) / 2) / 512);
    return { seconds: a * T + (k * T * T) / 2, method: `a·T + k·T²/2 with k = ${k.toExponential(3)} s per (query, key) pair from the ${backend} decode slope 2K→8K and a = ${a.toExponential(3)} s per token from the ${backend} 512-token prefill` };
  }
  const n512 = get("native/prefill/512"), nT = get(`native/prefill/${T}`);
  if (backend !== "native" && n512 && nT) {
    return { seconds: t512 * (nT.median.seconds / n512.median.seconds), method: `${backend} 512-token prefill × the native path's time ratio prefill(${T}) / prefill(512)` };
  }
  return { seconds: (t512 * T) / 512, method: "linear in T from the 512-token prefill (a lower bound: attention grows as T²)" };
}

/** ", N× slower than native at prefill 512" when both were measured. */
function tsSlowdown() {
  const get = (id) => cases.find((c) => c.id === id && c.status === "ok");
  const n = get("native/prefill/512"), t = get("typescript/prefill/512");
  return n && t ? ` (the TypeScript path is ${Math.round(t.median.seconds / n.median.seconds)}× slower than native at prefill 512)` : "";
}

function notRun(backend, kind, T, reason) {
  const est = estimatePrefillSeconds(backend, T);
  const minutes = est ? est.seconds / 60 : null;
  record({
    id: `${backend}/${kind}/${T}`, backend, kind, tokens: T, status: "not run",
    reason: reason + (est ? ` (estimated ${minutes.toFixed(0)} min per run, ${(minutes * runs).toFixed(0)} min for ${runs} runs)` : ""),
    estimatedSecondsPerRun: est ? r3(est.seconds) : null,
    estimatedTokensPerSecond: est ? r3(T / est.seconds) : null,
    estimateMethod: est?.method ?? null,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// results

const startedAt = new Date();
const commandLine = ["node", "bench/run.js", ...process.argv.slice(2)].join(" ");

function targets() {
  const get = (id) => cases.find((c) => c.id === id && c.status === "ok");
  const t = (id, target, what) => {
    const c = get(id);
    return { case: id, what, targetTokensPerSecond: target, medianTokensPerSecond: c ? c.median.tokensPerSecond : null, met: c ? c.median.tokensPerSecond >= target : null };
  };
  return [t("native/prefill/2048", 120, "prefill of 2048 tokens"), t("native/decode/2K", 30, "decode at 2K context")];
}

function writeResults(final) {
  const result = {
    schema: 1,
    benchmark: "CPU forward pass: LlamaModel prefill and decode",
    command: commandLine,
    finished: final,
    date: startedAt.toISOString(),
    gitCommit: gitCommit(),
    options: { quick, backends: backendNames, runs, tsLong: opts["ts-long"], waitIdleSeconds: Number(opts["wait-idle"]), retries },
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
    model: {
      ref: opts.model,
      path: lm.loaded.path,
      format: lm.loaded.format,
      weightsInMemory: "f32 (dequantized at load)",
      config: cfg,
      blockParams,
      headParams,
      loadSeconds: r3(loadSeconds),
    },
    text: { file: rel(textPath), tokensAvailable: ids.length },
    timing: {
      prefill: "model.prefill(ids[0..T), { logits: 'last' }) into a fresh cache; tokens/s = T / wall time",
      decode: "context prefilled once untimed (native path when available); per run: clone, 1 untimed warm-up step, N timed greedy steps (decode + argmax); tokens/s = N / wall time",
      decodeBatch: "B clones of the context cache; per run: 1 untimed decodeBatch step, N timed steps; tokens/s = B·N / wall time",
      cpuPerWall: "process CPU seconds per wall second during the timed region (≈ threads used when the cores were free)",
      othersCpuPerWall: "CPU seconds per wall second that all other processes used during the timed region (/proc/stat minus this process): contention",
      contended: "others used more CPU than the cores the backend leaves free + 0.25 (contendedAboveOthersCpu); such runs are redone up to --retries times and the redone ones listed under discardedContendedRuns",
      waitedIdle: "seconds waited before the run for the other processes to use < 0.25 CPU (--wait-idle, at most that long)",
      load1: "1-minute load average just before the run (other engineers share this machine)",
    },
    contexts: Object.fromEntries([...contexts].map(([C, v]) => [C, { prefillSecondsUntimed: v.seconds, backend: contextModel.backend.name }])),
    targets: targets(),
    cases,
  };
  writeFileSync(outPath, JSON.stringify(result, null, 2) + "\n");
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// the cases

// warm-up of every backend (JIT, thread pool, first allocations); not recorded
for (const [name, model] of Object.entries(models)) {
  log(`warming up ${name} …`);
  const { cache, logits } = model.prefill(ids.subarray(0, 32), { logits: "last" });
  model.decode(cache, argmax(logits));
}

const prefillLengths = [512, 2048, 8192].filter((T) => T <= maxPrefill && T <= cfg.maxContext);
const STEPS = { native: 32, typescript: 8 };
const BATCH_STEPS = { native: { 8: 16, 25: 8 }, typescript: { 8: 3, 25: 2 } };
// decode "at 8K": the context plus the warm-up and the timed steps must fit the model's 8192 positions; the same
// context for both backends, so that one untimed 8K prefill serves both
const CONTEXT_8K = Math.min(8192, cfg.maxContext) - 1 - Math.max(...Object.values(STEPS));
const decodeContexts = () => [["2K", 2048], ...(quick ? [] : [["8K", CONTEXT_8K]])];
const batchSizes = quick ? [8] : [8, 25];

for (const [backend, model] of Object.entries(models)) {
  const isTs = backend === "typescript";
  // TypeScript: decode first, so that the estimates of the prefills it skips can use the decode slope
  if (isTs) {
    for (const [label, C] of decodeContexts()) benchDecode(backend, model, label, C, STEPS[backend]);
  }
  for (const T of prefillLengths) {
    if (isTs && T > 512 && !opts["ts-long"]) {
      notRun(backend, "prefill", T, `too slow for a default run${tsSlowdown()}; --ts-long measures it`);
    } else benchPrefill(backend, model, T);
  }
  if (!isTs) {
    for (const [label, C] of decodeContexts()) benchDecode(backend, model, label, C, STEPS[backend]);
  }
  for (const B of batchSizes) benchBatch(backend, model, B, 2048, BATCH_STEPS[backend][B]);
}
if (quick) {
  for (const backend of Object.keys(models)) {
    record({ id: `${backend}/prefill/8192`, backend, kind: "prefill", tokens: 8192, status: "not run", reason: "--quick" });
    record({ id: `${backend}/decode/8K`, backend, kind: "decode", status: "not run", reason: "--quick" });
    record({ id: `${backend}/decodeBatch/25x2K`, backend, kind: "decodeBatch", status: "not run", reason: "--quick" });
  }
}
if (backendNames.includes("native") && !models.native) {
  record({ id: "native/*", backend: "native", kind: "all", status: "not run", reason: `native kernels unavailable: ${nativeReason}` });
}

// parity check: the first greedy tokens of native and TypeScript from the same 2K context
const nd = cases.find((c) => c.id === "native/decode/2K" && c.status === "ok");
const td = cases.find((c) => c.id === "typescript/decode/2K" && c.status === "ok");
const parity = nd && td ? { tokensCompared: td.steps, sameGreedyTokens: td.greedyTokens.every((t, i) => t === nd.greedyTokens[i]) } : null;

const result = writeResults(true);
if (parity) {
  result.parity = parity;
  writeFileSync(outPath, JSON.stringify(result, null, 2) + "\n");
}
log(`wrote ${rel(outPath)}`);

// ---------------------------------------------------------------------------------------------------------------
// table (stdout) and BENCHMARKS.md

function caseLabel(c) {
  if (c.kind === "prefill") return `prefill ${c.tokens} tokens`;
  if (c.kind === "decode") return c.status === "ok" ? `decode at ${c.id.split("/").pop()} context (${c.context}+${c.steps} steps)` : `decode at ${c.id.split("/").pop()} context`;
  if (c.kind === "decodeBatch") return c.status === "ok" ? `decodeBatch ${c.batch} × 2K (${c.steps} steps)` : `decodeBatch ${c.id.split("/").pop()}`;
  return c.id;
}
function table(result) {
  const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const lines = [
    "| path | case | tokens/s (median) | runs (tokens/s) | median time | implied | others' CPU |",
    "|---|---|---:|---|---:|---|---:|",
  ];
  const order = { prefill: 0, decode: 1, decodeBatch: 2 };
  const sorted = [...result.cases].sort((a, b) => (a.backend === b.backend ? 0 : a.backend === "native" ? -1 : 1) || (order[a.kind] ?? 9) - (order[b.kind] ?? 9) || (a.tokens ?? a.context ?? 0) - (b.tokens ?? b.context ?? 0) || (a.batch ?? 0) - (b.batch ?? 0));
  for (const c of sorted) {
    const path = c.backend === "native" ? `native (${result.machine.nativeBackend.gemmBackend ?? "?"})` : c.backend;
    if (c.status !== "ok") {
      lines.push(`| ${path} | ${caseLabel(c)} | not run | ${c.reason}${c.estimatedTokensPerSecond ? `; ≈ ${fmt(c.estimatedTokensPerSecond)} tok/s estimated` : ""} | | | |`);
      continue;
    }
    const implied = c.kind === "prefill"
      ? `${fmt(c.implied.matmulGflopPerSecond)} GFLOP/s matmul, ${fmt(c.implied.totalGflopPerSecond)} with attention`
      : `${fmt(c.implied.gflopPerSecond)} GFLOP/s, ${fmt(c.implied.gbPerSecond)} GB/s`;
    const time = c.kind === "prefill" ? `${fmt(c.median.seconds)} s` : `${fmt((c.median.seconds / c.steps) * 1000)} ms/step`;
    const others = c.runs.map((r) => r.othersCpuPerWall).filter((x) => x !== null);
    const contention = others.length ? `${Math.min(...others).toFixed(2)}–${Math.max(...others).toFixed(2)}` : "?";
    const runsText = c.runs.map((r) => fmt(r.tokensPerSecond) + (r.contended ? "†" : "")).join(", ") +
      (c.discardedContendedRuns?.length ? ` (${c.discardedContendedRuns.length} contended run${c.discardedContendedRuns.length > 1 ? "s" : ""} redone)` : "");
    lines.push(`| ${path} | ${caseLabel(c)} | **${fmt(c.median.tokensPerSecond)}** | ${runsText} | ${time} | ${implied} | ${contention} |`);
  }
  return lines.join("\n");
}

const tbl = table(result);
console.log(tbl);
for (const t of result.targets) {
  console.log(`target ${t.what}: ≥ ${t.targetTokensPerSecond} tok/s — median ${t.medianTokensPerSecond ?? "not measured"}${t.met === null ? "" : t.met ? " (met)" : " (NOT met)"}`);
}

if (writeMd) {
  const mdPath = resolve(ROOT, "BENCHMARKS.md");
  const m = result.machine;
  const cpuLine = `${m.cpuModel}, ${m.logicalCpus} logical CPUs${m.lscpu ? ` (${m.lscpu.sockets ?? "?"} socket × ${m.lscpu.coresPerSocket ?? "?"} cores × ${m.lscpu.threadsPerCore ?? "?"} threads; L2 ${m.lscpu.l2 ?? "?"}, L3 ${m.lscpu.l3 ?? "?"})` : ""}, ${m.memoryGiB} GiB`;
  const nb = m.nativeBackend;
  const section = [
    "<!-- bench:cpu:start (generated by bench/run.js; edit the script, not this block) -->",
    `**Command:** \`${result.command}\` from the repository root after a build (\`pnpm run bench\` = build, then \`node bench/run.js\`; arguments after it are passed on), ${result.date.slice(0, 16).replace("T", " ")} UTC, commit ${result.gitCommit?.slice(0, 7) ?? "?"}.` +
      ` Raw runs: [${rel(outPath)}](${rel(outPath)}).`,
    "",
    `**Machine:** ${cpuLine}; ${m.platform}; Node ${m.node}; native path ${nb.name ? `\`${nb.name}\`, GEMM ${nb.gemmBackend} (compiled: ${nb.gemmBackends.join(", ")}), SIMD ${nb.simd}, ${nb.threads} threads` : `unavailable (${nb.unavailable})`}.` +
      ` Load average (1/5/15 min) ${m.loadAverageAtStart.join(" / ")} at the start and ${m.loadAverageAtEnd.join(" / ")} at the end: the machine is shared, so other processes may have taken CPU during some runs (each run's 1-minute load and CPU/wall ratio are in results.json). "Others' CPU" is the range over the runs of the CPU seconds per second that all other processes used while a run was timed (of ${m.logicalCpus}); each run first waited up to ${result.options.waitIdleSeconds} s for the others to go idle, and a run during which they took more than the cores its path leaves free (+ 0.25 CPU: ${(m.logicalCpus - (nb.threads ?? 0) + 0.25).toFixed(2)} for native with ${nb.threads ?? "?"} threads, ${(m.logicalCpus - 1 + 0.25).toFixed(2)} for single-threaded TypeScript) was done again, up to ${result.options.retries} times; † marks a run kept although contended. The redone runs are in results.json.`,
    "",
    `**Model:** ${result.model.ref} (${rel(result.model.path).startsWith("..") ? result.model.path.split("/").pop() : rel(result.model.path)}), ${cfg.numLayers} layers, hidden ${H}, FFN ${F}, ${cfg.numHeads} query / ${cfg.numKvHeads} KV heads × ${d}, vocab ${V}, weights f32 in memory (Q4_1 dequantized at load).` +
      ` Text: the first tokens of \`${result.text.file}\`. Medians of ${runs} runs.`,
    "",
    tbl,
    "",
    `Prefill: \`model.prefill(ids[0..T), { logits: "last" })\` into a fresh cache, tokens/s = T / time. Decode: a context of C tokens prefilled once (untimed, native), then per run a clone of that cache, one untimed warm-up step and N timed greedy steps (\`decode\` + argmax); "8K" is C = ${CONTEXT_8K} so that the steps fit the model's 8192 positions. decodeBatch: B copies of the 2K cache decoded together, tokens/s over all B rows. Implied rates count ${(blockParams / 1e6).toFixed(1)}M block weights (2 FLOP each per token) plus the LM head 2 × ${V} × ${H} per logit row, attention 4·d FLOP per (query head, key), and for decode the bytes of the f32 weights (read once per step) plus each row's f32 keys and values.`,
    "",
    ...result.targets.map((t) => `- Target, ${t.what}: ≥ ${t.targetTokensPerSecond} tokens/s — median **${t.medianTokensPerSecond ?? "not measured"}**${t.met === null ? "" : t.met ? " — met" : " — **not met**"}.`),
    ...(parity ? [`- Parity: the ${parity.tokensCompared} greedy tokens TypeScript decoded from the 2K context ${parity.sameGreedyTokens ? "equal" : "differ from"} the native path's.`] : []),
    "<!-- bench:cpu:end -->",
  ].join("\n");
  const heading = "## CPU forward pass (SmolLM2-135M-Instruct)";
  let md = existsSync(mdPath) ? readFileSync(mdPath, "utf8") : "";
  const start = md.indexOf("<!-- bench:cpu:start");
  const endMarker = "<!-- bench:cpu:end -->";
  const end = md.indexOf(endMarker);
  if (start >= 0 && end > start) {
    md = md.slice(0, start) + section + md.slice(end + endMarker.length);
  } else if (md.includes(heading)) {
    md = md.replace(heading, `${heading}\n\n${section}\n`);
  } else {
    md = [
      "# Benchmarks",
      "",
      heading,
      "",
      section,
      "",
      "## CUDA decode attention",
      "",
      "See BENCHMARKS-cuda.md",
      "",
      "## Shared vs per-cell prefill",
      "",
      "(filled by the eval runner's measurement)",
      "",
    ].join("\n") + (md ? "\n" + md : "");
  }
  writeFileSync(mdPath, md);
  log(`updated ${rel(mdPath)}`);
}
