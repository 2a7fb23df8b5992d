// Side-by-side with llama.cpp on the same GGUF files (issue #19): `pnpm run bench -- --vs-llama-cpp`, or
// `node bench/run.js --vs-llama-cpp [options]` after a build.
//
// Files: the real SmolLM2-135M-Instruct Q4_1 GGUF (the default model, from the local hub cache) and random-weight
// Q4_K_M files of Llama-3.2-1B and Llama-3.1-8B shape, made once into ~/.cache/razorkv/bench (an F16 GGUF written
// by bench/make_random_gguf.py with gguf-py, then llama-quantize; the F16 file is deleted after quantizing).
//
// llama.cpp: the llama-bench and llama-quantize that ../shared/bin/llama-cpp-tools builds (-march=native). Where that
// build dies on an illegal instruction — a VM whose CPU flags list AMX but whose kernel does not enable its tile
// registers — the same sources are built once more with AMX switched off (-mno-amx-*; everything else native) into
// ~/.cache/razorkv/bench/llama.cpp-<version>-noamx, and that build is used and named in the results.
//
// razorkv, two sides: model-level, model-zoo's LlamaModel on the file (bench/lib/model-forward.js: weights in their
// GGUF blocks since #19's integration), and kernel-level, bench/lib/kernel-forward.js: every kernel call of a Llama
// forward pass over the file's own blocks without model-zoo around it (what the kernels alone allow). A third,
// model-int8, is the model-level side with LlamaModelOptions.prefillProducts "int8" (8-bit activations in the prefill,
// as llama.cpp multiplies; opt-in, since the default f32 prefill is what the parity tests hold to transformers): it
// runs the prefill and generate cases (a decode step is 8-bit on the model side already).
//
// Cases, per file: prefill of 512 and 2048 tokens (llama-bench -p), decode at short context (-n, empty cache) and at
// 2K (-n with -d 2048: the cache holds 2048 positions first), and the peak resident memory (GNU time's maximum
// RSS) of a generate of 16 tokens after a 2048-token prompt (-pg 2048,16). The 8B-shaped file: decode at short
// context and the peak RSS of a 16-token generate after a 16-token prompt. Each llama-bench call runs one
// repetition (-r 1, after its own warm-up); razorkv's one run after one untimed warm-up. The sides alternate run by
// run, their order rotating from round to round, each run waiting first for the other processes to go idle
// (--wait-idle) and recording the CPU they took while it ran; medians over --runs rounds.
//
//   --models smollm2,llama-3.2-1b,llama-3.1-8b   which files (default: all three)
//   --sides llama,model,model-int8,kernel        which sides (default: all four)
//   --runs 3         rounds of alternation
//   --threads 2      threads of both sides (default: the machine's CPUs)
//   --wait-idle 30   seconds to wait at most, before each run, for the others to use < 0.25 CPU (0: never)
//   --out FILE       results JSON (default bench/results-vs-llama-cpp.json)
//   --no-md          leave BENCHMARKS.md alone (by default the "Side by side with llama.cpp" block is rewritten)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { cpuModel, gitCommit, IDLE_CPU, lscpu, machineBusySeconds, median, waitIdle } from "./lib/machine.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(os.homedir(), ".cache"), "razorkv", "bench");
const rel = (p) => relative(ROOT, p) || ".";
const log = (message) => process.stderr.write(`[vs-llama-cpp ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

class BenchError extends Error {}

const MODELS = {
  smollm2: { label: "SmolLM2-135M-Instruct Q4_1 (real file)", decodeTokens: 64, prefill: [512, 2048], decodeContexts: [0, 2048], generate: [2048, 16] },
  "llama-3.2-1b": { label: "Llama-3.2-1B-shaped Q4_K_M (random weights)", decodeTokens: 32, prefill: [512, 2048], decodeContexts: [0, 2048], generate: [2048, 16] },
  "llama-3.1-8b": { label: "Llama-3.1-8B-shaped Q4_K_M (random weights)", decodeTokens: 16, prefill: [], decodeContexts: [0], generate: [16, 16] },
};

// ---------------------------------------------------------------------------------------------------------------
// llama.cpp

function run(cmd, args, options = {}) {
  return spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
}

/** True when `bin`'s llama-bench runs a tiny prompt on `model` (false: it died, e.g. on an illegal instruction). */
function probe(bin, model) {
  const r = run(join(bin, "llama-bench"), ["-m", model, "-p", "8", "-n", "0", "-r", "1", "-o", "json"]);
  if (r.status === 0) return { ok: true };
  return { ok: false, why: r.signal ? `killed by ${r.signal}` : `exit ${r.status}: ${(r.stderr ?? "").trim().split("\n").pop()}` };
}

/** llama-bench and llama-quantize that run on this machine: { bin, version, build, commit }. */
function llamaCpp(probeModel) {
  const tool = resolve(ROOT, "../shared/bin/llama-cpp-tools");
  if (!existsSync(tool)) throw new BenchError(`${tool} is missing: it builds llama.cpp's tools (see its header)`);
  log(`llama.cpp: ${tool} (builds once, ~5–10 min) …`);
  const shared = execFileSync(tool, [], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  const src = execFileSync(tool, ["--src"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  const version = /razorkv-llama-cpp\/([^/]+)\//.exec(shared)?.[1] ?? "unknown";
  const describe = (bin) => run(join(bin, "llama-bench"), ["--version"]).stderr.trim().split("\n").join("; ");
  const first = probe(shared, probeModel);
  if (first.ok) return { bin: shared, version, build: "shared (../shared/bin/llama-cpp-tools: -march=native)", commit: describe(shared) };

  const own = join(CACHE, `llama.cpp-${version}-noamx`);
  const build = `${rel(own).startsWith("..") ? own : rel(own)} (-march=native with -mno-amx-tile -mno-amx-int8 -mno-amx-bf16)`;
  log(`llama.cpp: the shared build fails here (${first.why}); using a build without AMX: ${own}`);
  if (!existsSync(join(own, "bin", "llama-bench")) || !probe(join(own, "bin"), probeModel).ok) {
    mkdirSync(own, { recursive: true });
    const flags = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";
    log(`llama.cpp: building ${src} into ${own} (logs there) …`);
    const configure = run("cmake", ["-S", src, "-B", own, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DGGML_CUDA=OFF", "-DLLAMA_CURL=OFF",
      "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF", `-DCMAKE_C_FLAGS=${flags}`, `-DCMAKE_CXX_FLAGS=${flags}`]);
    writeFileSync(join(own, "cmake.log"), configure.stdout + configure.stderr);
    if (configure.status !== 0) throw new BenchError(`cmake configure of llama.cpp failed (see ${join(own, "cmake.log")})`);
    const make = run("cmake", ["--build", own, "-j", String(os.cpus().length), "--target", "llama-bench", "llama-quantize"]);
    writeFileSync(join(own, "build.log"), make.stdout + make.stderr);
    if (make.status !== 0) throw new BenchError(`building llama.cpp failed (see ${join(own, "build.log")})`);
    const second = probe(join(own, "bin"), probeModel);
    if (!second.ok) throw new BenchError(`llama-bench without AMX still fails on ${probeModel} (${second.why})`);
  }
  return { bin: join(own, "bin"), version, build, commit: describe(join(own, "bin")) };
}

// ---------------------------------------------------------------------------------------------------------------
// model files

async function smolLm2Path() {
  const zoo = await import(pathToFileURL(resolve(ROOT, "packages/model-zoo/dist/index.js")).href);
  return (await zoo.resolveModelRef("smollm2-135m-instruct")).path;
}

/** The random-weight Q4_K_M file of `shape`, made on first use (F16 GGUF with gguf-py, then llama-quantize). */
function randomModel(shape, llama) {
  const out = join(CACHE, `${shape}.random.q4_k_m.gguf`);
  if (existsSync(out)) return out;
  mkdirSync(CACHE, { recursive: true });
  const need = shape === "llama-3.1-8b" ? 22e9 : 3.5e9; // the F16 file and the Q4_K_M file, at once
  const free = (() => {
    const s = statfsSync(CACHE);
    return s.bavail * s.bsize;
  })();
  if (free < need) throw new BenchError(`${CACHE}: ${(free / 1e9).toFixed(1)} GB free, making the ${shape} file needs ${(need / 1e9).toFixed(0)} GB`);
  const f16 = join(CACHE, `${shape}.random.f16.gguf.tmp`);
  const python = existsSync(join(ROOT, ".venv/bin/python")) ? join(ROOT, ".venv/bin/python") : "python3";
  log(`${shape}: writing random F16 weights with gguf-py (${f16}) …`);
  const made = run(python, [join(ROOT, "bench/make_random_gguf.py"), "--shape", shape, "--out", f16], { stdio: ["ignore", "inherit", "inherit"] });
  if (made.status !== 0) throw new BenchError(`bench/make_random_gguf.py --shape ${shape} failed (exit ${made.status})`);
  log(`${shape}: llama-quantize → Q4_K_M …`);
  const tmp = `${out}.tmp`;
  const q = run(join(llama.bin, "llama-quantize"), [f16, tmp, "Q4_K_M", String(os.cpus().length)]);
  rmSync(f16, { force: true });
  if (q.status !== 0) throw new BenchError(`llama-quantize ${shape} failed: ${(q.stderr ?? "").trim().split("\n").pop()}`);
  renameSync(tmp, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// runs

/**
 * Runs `cmd args` under GNU time; returns { stdout, maxRssBytes, cpuSeconds, wall, othersCpuPerWall }. The others'
 * CPU is the machine's busy time over the run minus the child's own, per wall second.
 */
function timedRun(cmd, args, env) {
  const timeFile = join(os.tmpdir(), `razorkv-vs-llama-${process.pid}.time`);
  const busy0 = machineBusySeconds();
  const r = run("/usr/bin/time", ["-f", "%M %U %S %e", "-o", timeFile, cmd, ...args], { env });
  const busy1 = machineBusySeconds();
  if (r.status !== 0) {
    throw new BenchError(`${cmd.split("/").pop()} ${args.join(" ")} failed (${r.signal ?? `exit ${r.status}`}): ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`);
  }
  const [rssKb, user, sys, wall] = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(/\s+/).map(Number);
  rmSync(timeFile, { force: true });
  const own = user + sys;
  return {
    stdout: r.stdout, maxRssBytes: rssKb * 1024, cpuSeconds: own, wall,
    othersCpuPerWall: busy0 === null ? null : Number(Math.max(0, (busy1 - busy0 - own) / wall).toFixed(2)),
  };
}

/** One llama-bench run of `kind` on `file` (-r 1): tokens/s of the test and the process's peak RSS. */
function llamaRun(llama, file, c, threads) {
  const args = ["-m", file, "-t", String(threads), "-r", "1", "-o", "json"];
  if (c.kind === "prefill") args.push("-p", String(c.tokens), "-n", "0");
  else if (c.kind === "decode") args.push("-p", "0", "-n", String(c.tokens), "-d", String(c.context));
  else args.push("-p", "0", "-n", "0", "-pg", `${c.prompt},${c.tokens}`);
  const t = timedRun(join(llama.bin, "llama-bench"), args, process.env);
  const rows = JSON.parse(t.stdout);
  if (!Array.isArray(rows) || rows.length !== 1) throw new BenchError(`llama-bench ${args.join(" ")}: expected one result, got ${t.stdout.slice(0, 200)}`);
  return { tokensPerSecond: rows[0].avg_ts, maxRssBytes: t.maxRssBytes, othersCpuPerWall: t.othersCpuPerWall, wall: t.wall };
}

const SIDES = {
  llama: { key: "llamaCpp", label: "llama.cpp" },
  model: { key: "razorkvModel", label: "razorkv model-level", script: "bench/lib/model-forward.js" },
  "model-int8": {
    key: "razorkvModelInt8", label: "razorkv model-level, 8-bit prefill", script: "bench/lib/model-forward.js", args: ["--prefill-products", "int8"],
    // decode steps are 8-bit on the model side already
    runs: (_model, c) => c.kind !== "decode",
  },
  kernel: { key: "razorkvKernel", label: "razorkv kernel-level", script: "bench/lib/kernel-forward.js" },
};

/** One razorkv run (model-forward.js or kernel-forward.js, same command line, plus the side's args) of `kind` on `file`. */
function razorRun(side, file, c, threads) {
  const args = [join(ROOT, side.script), "--model", file, ...(side.args ?? [])];
  if (c.kind === "prefill") args.push("--prefill", String(c.tokens));
  else if (c.kind === "decode") args.push("--decode", String(c.tokens), "--context", String(c.context));
  else args.push("--generate", String(c.tokens), "--prompt", String(c.prompt));
  const t = timedRun(process.execPath, args, { ...process.env, RAZORKV_THREADS: String(threads) });
  const out = JSON.parse(t.stdout.trim().split("\n").pop());
  // generate: tokens/s over the whole run (prompt + generated), as llama-bench's -pg counts it
  const tokensPerSecond = c.kind === "generate" ? (c.prompt + c.tokens) / (out.prefillSeconds + out.seconds) : out.tokensPerSecond;
  return { tokensPerSecond, maxRssBytes: t.maxRssBytes, othersCpuPerWall: t.othersCpuPerWall, wall: t.wall, detail: out };
}

function casesOf(model) {
  const m = MODELS[model];
  return [
    ...m.prefill.map((T) => ({ id: `${model}/prefill/${T}`, kind: "prefill", tokens: T })),
    ...m.decodeContexts.map((C) => ({ id: `${model}/decode/${C === 0 ? "short" : `${C / 1024}K`}`, kind: "decode", tokens: m.decodeTokens, context: C })),
    { id: `${model}/generate/${m.generate[0]}+${m.generate[1]}`, kind: "generate", prompt: m.generate[0], tokens: m.generate[1] },
  ];
}

function caseLabel(c) {
  if (c.kind === "prefill") return `prefill ${c.tokens}`;
  if (c.kind === "decode") return c.context === 0 ? `decode ${c.tokens} tokens, empty cache` : `decode ${c.tokens} tokens at ${c.context} context`;
  return `generate ${c.tokens} after a ${c.prompt}-token prompt: peak RSS`;
}

// ---------------------------------------------------------------------------------------------------------------

export async function main(argv) {
  let opts;
  try {
    ({ values: opts } = parseArgs({
      args: argv.filter((a) => a !== "--"),
      options: {
        models: { type: "string", default: Object.keys(MODELS).join(",") },
        sides: { type: "string", default: Object.keys(SIDES).join(",") },
        runs: { type: "string", default: "3" },
        threads: { type: "string", default: String(os.cpus().length) },
        "wait-idle": { type: "string", default: "30" },
        out: { type: "string", default: "bench/results-vs-llama-cpp.json" },
        "no-md": { type: "boolean", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`bench/run.js --vs-llama-cpp: ${error.message}`);
    return 2;
  }
  try {
    return await compare(opts, argv);
  } catch (error) {
    if (!(error instanceof BenchError)) throw error;
    console.error(`bench/run.js --vs-llama-cpp: ${error.message}`);
    return 1;
  }
}

async function compare(opts, argv) {
  const models = opts.models.split(",").map((s) => s.trim()).filter(Boolean);
  for (const m of models) if (!MODELS[m]) throw new BenchError(`--models: unknown "${m}" (${Object.keys(MODELS).join(", ")})`);
  const sides = opts.sides.split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of sides) if (!SIDES[x]) throw new BenchError(`--sides: unknown "${x}" (${Object.keys(SIDES).join(", ")})`);
  if (!sides.includes("llama") || sides.length < 2) throw new BenchError("--sides: llama and at least one razorkv side are needed for a ratio");
  const runs = Number(opts.runs);
  const threads = Number(opts.threads);
  const waitLimit = Number(opts["wait-idle"]);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchError(`--runs must be a positive integer, got ${opts.runs}`);
  if (!Number.isInteger(threads) || threads < 1) throw new BenchError(`--threads must be a positive integer, got ${opts.threads}`);
  if (!existsSync("/usr/bin/time")) throw new BenchError("/usr/bin/time (GNU time) is missing: it measures each run's peak RSS (apt-get install time)");
  const outPath = resolve(ROOT, opts.out);

  const smol = await smolLm2Path();
  const llama = llamaCpp(smol);
  log(`llama.cpp ${llama.version}: ${llama.build}; ${llama.commit}`);
  const files = {};
  for (const m of models) files[m] = m === "smollm2" ? smol : randomModel(m, llama);

  const startedAt = new Date();
  const machine = {
    cpuModel: cpuModel(), logicalCpus: os.cpus().length, lscpu: lscpu(), memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`, node: process.version, loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
  const results = [];
  const write = (finished) => {
    const doc = {
      schema: 1,
      benchmark: "side by side with llama.cpp (issue #19): llama-bench against razorkv's forward pass (model-level and/or kernel-level), alternated",
      command: ["pnpm run bench -- --vs-llama-cpp", ...argv.filter((a) => a !== "--" && a !== "--vs-llama-cpp")].join(" "),
      finished, date: startedAt.toISOString(), gitCommit: gitCommit(ROOT),
      options: { models, sides, runs, threads, waitIdleSeconds: waitLimit },
      machine: { ...machine, loadAverageAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))) },
      llamaCpp: llama,
      files: Object.fromEntries(models.map((m) => [m, { path: files[m], bytes: statSync(files[m]).size, label: MODELS[m].label }])),
      // the razorkv sides that ran, each described
      razorkvSides: Object.fromEntries(
        [
          ["model", "razorkvModel", "model-level: bench/lib/model-forward.js, model-zoo's LlamaModel (openModel + LlamaModel on the native backend: weights in their GGUF blocks, quantMatmul, attendStep, core's f32 KvCache)"],
          ["model-int8", "razorkvModelInt8", "model-level with 8-bit prefill products: bench/lib/model-forward.js --prefill-products int8 (LlamaModelOptions.prefillProducts \"int8\": x quantized to 8 bits per block, kernels-cpu's 8-bit GEMM; opt-in), prefill and generate cases"],
          ["kernel", "razorkvKernel", "kernel-level: bench/lib/kernel-forward.js (quantMatmul on the file's blocks, attendStep / attend, rmsNorm, swiglu, RoPE in JavaScript, prefill in 512-token chunks; no model-zoo)"],
        ].filter(([side]) => sides.includes(side)).map(([, key, text]) => [key, text]),
      ),
      cases: results,
    };
    writeFileSync(outPath, JSON.stringify(doc, null, 2) + "\n");
    return doc;
  };

  for (const model of models) {
    for (const c of casesOf(model)) {
      const entry = { ...c, model };
      const active = sides.filter((side) => SIDES[side].runs?.(model, c) ?? true);
      for (const side of active) entry[SIDES[side].key] = [];
      results.push(entry);
      for (let r = 0; r < runs; r++) {
        const order = active.map((_, i) => active[(i + r) % active.length]); // rotate: each side leads a round in turn
        for (const side of order) {
          const waited = waitIdle(waitLimit);
          const one = side === "llama" ? llamaRun(llama, files[model], c, threads) : razorRun(SIDES[side], files[model], c, threads);
          one.waitedIdle = waited;
          entry[SIDES[side].key].push(one);
          log(`${c.id} round ${r + 1} ${SIDES[side].label}: ${c.kind === "generate" ? `${(one.maxRssBytes / 2 ** 20).toFixed(0)} MiB peak RSS` : `${one.tokensPerSecond.toFixed(2)} tok/s`} (others ${one.othersCpuPerWall} CPU, waited ${waited} s)`);
        }
      }
      entry.median = {};
      entry.ratio = {};
      for (const side of active) {
        const key = SIDES[side].key;
        const med = (field) => median(entry[key].map((x) => x[field]));
        entry.median[key] = { tokensPerSecond: med("tokensPerSecond"), maxRssBytes: med("maxRssBytes") };
      }
      for (const side of active.filter((x) => x !== "llama")) {
        const key = SIDES[side].key;
        entry.ratio[key] = c.kind === "generate"
          ? { maxRss: entry.median[key].maxRssBytes / entry.median.llamaCpp.maxRssBytes }
          : { tokensPerSecond: entry.median[key].tokensPerSecond / entry.median.llamaCpp.tokensPerSecond };
      }
      write(false);
    }
  }
  const doc = write(true);
  log(`wrote ${rel(outPath)}`);
  const tbl = table(doc);
  console.log(tbl);
  if (!opts["no-md"]) writeMarkdown(doc, tbl, outPath);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// report

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The CPU seconds per second the other processes took during each run of case `c`, every side that ran. */
const othersCpuOf = (c) => Object.values(SIDES).flatMap((side) => (c[side.key] ?? []).map((x) => x.othersCpuPerWall)).filter((x) => x !== null && x !== undefined);

function table(doc) {
  const razor = doc.options.sides.filter((x) => x !== "llama").map((x) => SIDES[x]);
  const lines = [
    `| file | case | llama.cpp | ${razor.map((x) => `${x.label} | / llama.cpp`).join(" | ")} | runs (${["llama.cpp", ...razor.map((x) => x.label.replace("razorkv ", ""))].join("; ")}) | others' CPU |`,
    `|---|---|---:|${razor.map(() => "---:|---:|").join("")}---|---:|`,
  ];
  for (const c of doc.cases) {
    const keys = ["llamaCpp", ...razor.map((x) => x.key)].filter((k) => c[k]);
    const others = othersCpuOf(c);
    const range = others.length ? `${Math.min(...others).toFixed(2)}–${Math.max(...others).toFixed(2)}` : "?";
    const file = doc.files[c.model].label;
    const gen = c.kind === "generate";
    // a side that does not run a case (model-int8 on decode) shows a dash
    const show = (k) => (!c.median[k] ? "—" : gen ? `${(c.median[k].maxRssBytes / 2 ** 20).toFixed(0)} MiB` : `${fmt(c.median[k].tokensPerSecond)} tok/s`);
    const ratio = (k) => (!c.ratio[k] ? "—" : `**${(gen ? c.ratio[k].maxRss : c.ratio[k].tokensPerSecond).toFixed(2)}×**`);
    const runsText = keys.map((k) => c[k].map((x) => (gen ? (x.maxRssBytes / 2 ** 20).toFixed(0) : fmt(x.tokensPerSecond))).join(", ")).join("; ");
    lines.push(`| ${file} | ${caseLabel(c)} | ${show("llamaCpp")} | ${razor.map((x) => `${show(x.key)} | ${ratio(x.key)}`).join(" | ")} | ${runsText} | ${range} |`);
  }
  return lines.join("\n");
}

function writeMarkdown(doc, tbl, outPath) {
  const mdPath = resolve(ROOT, "BENCHMARKS.md");
  const m = doc.machine;
  // say what the runs shared the machine with, from the CPU the other processes took while each run ran
  const others = doc.cases.flatMap(othersCpuOf);
  const busiest = others.length > 0 ? Math.max(...others) : null;
  const sharing =
    busiest === null ? "the CPU other processes took was not measured"
    : busiest < IDLE_CPU ? `nothing else ran: other processes took at most ${busiest} CPU seconds per second during any run`
    : `the machine is shared, and other processes took up to ${busiest} CPU seconds per second during a run (per case in the last column)`;
  const cpu = `${m.cpuModel}, ${m.logicalCpus} logical CPUs${m.lscpu ? ` (L2 ${m.lscpu.l2}, L3 ${m.lscpu.l3}; ${m.lscpu.simd.join(", ")})` : ""}, ${m.memoryGiB} GiB`;
  const block = [
    "<!-- bench:vs-llama-cpp:start (generated by bench/vs-llama-cpp.js; edit the script, not this block) -->",
    `**Command:** \`${doc.command}\` from the repository root, ${doc.date.slice(0, 16).replace("T", " ")} UTC, commit ${doc.gitCommit?.slice(0, 7) ?? "?"}. Raw runs: [${rel(outPath)}](${rel(outPath)}).`,
    "",
    `**Machine:** ${cpu}; ${m.platform}; Node ${m.node}; both sides on ${doc.options.threads} threads. Load average (1/5/15 min) ${m.loadAverageAtStart.join(" / ")} at the start, ${m.loadAverageAtEnd.join(" / ")} at the end; ${sharing}. The two sides alternate run by run (llama.cpp first in odd rounds, razorkv first in even ones), each run first waiting up to ${doc.options.waitIdleSeconds} s for the other processes to go idle; "others' CPU" is the range over the case's runs of the CPU seconds per second that all other processes took while a run ran. Medians of ${doc.options.runs} rounds.`,
    "",
    `**llama.cpp:** ${doc.llamaCpp.version} (llama-cpp-python's vendored sources), ${doc.llamaCpp.build}; ${doc.llamaCpp.commit}. llama-bench defaults otherwise (f16 KV cache, weight repacking on, flash attention auto), \`-r 1\` per call.`,
    "",
    `**razorkv:** ${Object.values(doc.razorkvSides).join("; ")}. Ratios are razorkv / llama.cpp: tokens/s (above 1: razorkv faster) or peak RSS (below 1: razorkv smaller).`,
    "",
    `**Files:** ${Object.values(doc.files).map((f) => `${f.label}: \`${f.path.split("/").pop()}\`, ${(f.bytes / 2 ** 20).toFixed(0)} MiB`).join("; ")}.`,
    "",
    tbl,
    "",
    "Prefill: llama-bench `-p T -n 0` (ubatches of 512) against `model.prefill` of T tokens (model-level: all T rows per matmul) and a kernel-level prefill in 512-token chunks. Decode: llama-bench `-p 0 -n N [-d C]` (its cache filled with C tokens first) against N timed greedy decode steps after one untimed one: model-level after an untimed `prefill` of max(C, 1) tokens, kernel-level over a cache of C random positions. Peak RSS: GNU time's maximum resident set of the whole process; llama-bench `-p 0 -n 0 -pg P,N` against a prefill of P tokens and N decode steps (llama.cpp maps the file, razorkv reads it into memory: both count the weights once).",
    "<!-- bench:vs-llama-cpp:end -->",
  ].join("\n");
  const heading = "## Side by side with llama.cpp (issue #19)";
  let md = existsSync(mdPath) ? readFileSync(mdPath, "utf8") : "# Benchmarks\n";
  const start = md.indexOf("<!-- bench:vs-llama-cpp:start");
  const endMarker = "<!-- bench:vs-llama-cpp:end -->";
  const end = md.indexOf(endMarker);
  if (start >= 0 && end > start) md = md.slice(0, start) + block + md.slice(end + endMarker.length);
  else if (md.includes(heading)) md = md.replace(heading, `${heading}\n\n${block}\n`);
  else md = md.trimEnd() + `\n\n${heading}\n\n${block}\n`;
  writeFileSync(mdPath, md);
  log(`updated ${rel(mdPath)}`);
}
