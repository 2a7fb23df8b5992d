/**
 * @razorkv/kernels-cpu: the CPU hot path as an N-API addon (native/, built by node-gyp into
 * build/Release/razorkv_cpu.node), behind typed wrappers that check every argument.
 *
 *   matmulTransposed  out[M×N] = x[M×K] · w[N×K]ᵀ: OpenBLAS cblas_sgemm (single-threaded, on column chunks of the
 *                     kernels' thread pool) when the build found it, the own register-tiled
 *                     AVX2/FMA kernel otherwise (or on request); for M ≤ 48 (a decode step over a batch) the own
 *                     small-M kernel, which gives each row the same bits whatever the other rows
 *   attend            core's attendReference semantics over one layer of a KvCache (ragged heads, compensation slot,
 *                     H2O/SnapKV/RazorAttention statistics): a drop-in for the reference in the forward pass
 *   attendHeads       the same over KV heads given as arrays (a core HeadCache is one), without copying
 *   attendStep        one layer of a decode step over every sequence (cell) of a batch in one call: work items
 *                     (sequence, KV head, part of its query-head group) shared by the threads
 *   attendPrefill     causal attention straight from the projection output [T × Hkv × d], optionally chunked
 *                     (all three take a sliding window, which lowers each query's first visible key, and Gemma 2's
 *                     logit soft cap)
 *   rmsNorm, swiglu   the forward pass's per-element operations, computed in double as model-zoo's TypeScript
 *                     reference computes them (same floats), off V8's number arithmetic
 *   quantMatmul       out[M×N] = x[M×K] · Wᵀ with W held as a GGUF tensor's raw blocks (F32, F16, BF16, Q8_0, Q4_0,
 *                     Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K–Q6_K, IQ4_XS): 8-bit activations and integer dot products for
 *                     a decode step, dequantized panels and the SGEMM for a prefill
 *   quantMatmulDotMany  the dot path for several matrices of one x (Q, K, V; gate, up) in one dispatch
 *   dequantizeRows    the same blocks decoded to f32
 *
 * `loadKernels()` returns null when the addon is missing or fails to load (the reason is in
 * `kernelsUnavailableReason()`), so callers fall back to the plain-TypeScript reference and can say why.
 * An object from `loadKernels()` has the shape of model-zoo's ComputeBackend (name, matmulTransposed, attend,
 * rmsNorm, swiglu).
 */
import { createRequire } from "node:module";
import type { AttentionArgs, AttentionStatsRequest, KvCache, LayerAttentionStats } from "@razorkv/core";

export type GemmBackend = "openblas" | "avx2" | "scalar";

/** GGUF weight types `quantMatmul` reads, by ggml name, with their ggml ids (GGUF stores the id). */
export const GGML_WEIGHT_TYPES = {
  F32: { id: 0, blockSize: 1, blockBytes: 4 },
  F16: { id: 1, blockSize: 1, blockBytes: 2 },
  Q4_0: { id: 2, blockSize: 32, blockBytes: 18 },
  Q4_1: { id: 3, blockSize: 32, blockBytes: 20 },
  Q5_0: { id: 6, blockSize: 32, blockBytes: 22 },
  Q5_1: { id: 7, blockSize: 32, blockBytes: 24 },
  Q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
  Q2_K: { id: 10, blockSize: 256, blockBytes: 84 },
  Q3_K: { id: 11, blockSize: 256, blockBytes: 110 },
  Q4_K: { id: 12, blockSize: 256, blockBytes: 144 },
  Q5_K: { id: 13, blockSize: 256, blockBytes: 176 },
  Q6_K: { id: 14, blockSize: 256, blockBytes: 210 },
  IQ4_NL: { id: 20, blockSize: 32, blockBytes: 18 },
  IQ4_XS: { id: 23, blockSize: 256, blockBytes: 136 },
  BF16: { id: 30, blockSize: 1, blockBytes: 2 },
} as const;
export type GgmlWeightType = keyof typeof GGML_WEIGHT_TYPES;

/** The type named by a ggml name or id, or undefined when `quantMatmul` has no kernel for it. */
export function ggmlWeightType(type: GgmlWeightType | number): GgmlWeightType | undefined {
  if (typeof type === "number") return (Object.keys(GGML_WEIGHT_TYPES) as GgmlWeightType[]).find((name) => GGML_WEIGHT_TYPES[name].id === type);
  return Object.hasOwn(GGML_WEIGHT_TYPES, type) ? type : undefined;
}

/** Bytes of one row of K elements of `type` (K a multiple of its block size). */
export function ggmlRowBytes(type: GgmlWeightType, K: number): number {
  const { blockSize, blockBytes } = GGML_WEIGHT_TYPES[type];
  return (K / blockSize) * blockBytes;
}

/** How `quantMatmul` computes: see its docstring. */
export type QuantPath = "auto" | "dot" | "dequant" | "int8";
const QUANT_PATHS: readonly QuantPath[] = ["auto", "dot", "dequant", "int8"];

export interface QuantMatmulOptions {
  /** "auto" (default): "dot" up to 48 rows of x, "dequant" above. "int8" is never chosen by "auto": opt in. */
  readonly path?: QuantPath;
  /**
   * "scalar": the plain per-type kernels and the scalar SGEMM; "avx2": the AVX2 kernels and the own SGEMM;
   * "openblas": the AVX2 kernels and OpenBLAS's SGEMM. Default: the kernels' default backend.
   */
  readonly backend?: GemmBackend;
}

/** One weight matrix of `quantMatmulDotMany`: W [N × K] as the raw blocks of `type`, out [M × N]. */
export interface DotOperand {
  readonly type: GgmlWeightType | number;
  readonly blocks: Uint8Array;
  readonly out: Float32Array;
  readonly N: number;
}

export interface MatmulOptions {
  /** Which GEMM runs; default: the kernels' default backend (`gemmBackend()`). */
  readonly backend?: GemmBackend;
}

/** One KV head's cache as typed arrays: slot s at keys[s·d …], values[s·d …], positions[s]. A core HeadCache fits. */
export interface KvHeadArrays {
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly positions: Int32Array;
  readonly length: number;
  readonly compensation?: { readonly key: Float32Array; readonly value: Float32Array; readonly count: number } | null;
}

export interface HeadsAttentionArgs {
  /** The layer's KV heads, in KV-head order. */
  readonly heads: readonly KvHeadArrays[];
  readonly headDim: number;
  readonly numHeads: number;
  /** [C × numHeads × headDim], rotated. */
  readonly queries: Float32Array;
  /** [C] positions of the queries (causal: a query sees slots at positions ≤ its own). */
  readonly queryPositions: ArrayLike<number>;
  /** [C × numHeads × headDim]; must not overlap `queries`. */
  readonly out: Float32Array;
  /** Softmax scale; 1/√headDim by default. */
  readonly scale?: number;
  /** Sliding window W: a query at p sees the slots at positions (p − W, p] only. Absent or null: full attention. */
  readonly window?: number | null;
  /** Attention logit soft-capping (Gemma 2): x → cap · tanh(x / cap). Absent: none. */
  readonly softcap?: number;
  readonly stats?: AttentionStatsRequest;
}

/** One sequence of a decode step: its cache (a core KvCache, read at the step's layer) or its KV heads as arrays. */
export interface StepSequence {
  /** The sequence's cache; `heads` instead gives the layer's KV heads directly. */
  readonly cache?: KvCache;
  readonly heads?: readonly KvHeadArrays[];
  /** [C × numHeads × headDim], rotated (C = 1 for a decode step). */
  readonly queries: Float32Array;
  /** [C] positions of the queries. */
  readonly queryPositions: ArrayLike<number>;
  /** [C × numHeads × headDim]; must not overlap `queries`. */
  readonly out: Float32Array;
  readonly stats?: AttentionStatsRequest;
}

export interface StepAttentionArgs {
  /** Every sequence of the step; each is attended over its own cache. */
  readonly sequences: readonly StepSequence[];
  /** The layer read from each sequence's `cache` (needed when any sequence gives a cache). */
  readonly layer?: number;
  readonly numHeads: number;
  /** Needed when the sequences give `heads`; else the caches' head size. */
  readonly headDim?: number;
  readonly scale?: number;
  /** Sliding window; default: the caches' window(layer) (all must agree), none for `heads`. */
  readonly window?: number | null;
  readonly softcap?: number;
}

export interface PrefillAttentionArgs {
  /** [numQueries × numHeads × headDim] at positions kvLength − numQueries … kvLength − 1, rotated. */
  readonly queries: Float32Array;
  /** [kvLength × numKvHeads × headDim] at positions 0 … kvLength − 1, rotated (the K projection's layout). */
  readonly keys: Float32Array;
  /** [kvLength × numKvHeads × headDim]. */
  readonly values: Float32Array;
  /** [numQueries × numHeads × headDim]; must not overlap `queries`. */
  readonly out: Float32Array;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly numQueries: number;
  /** Keys and values available; numQueries by default (plain prefill). More: a chunk after a cached prefix. */
  readonly kvLength?: number;
  readonly scale?: number;
  /** Sliding window W: the query at position p sees keys at positions (p − W, p] only. Absent or null: full attention. */
  readonly window?: number | null;
  /** Attention logit soft-capping (Gemma 2): x → cap · tanh(x / cap). Absent: none. */
  readonly softcap?: number;
  readonly stats?: AttentionStatsRequest;
}

export interface CpuKernels {
  /** For logs and benchmark rows, e.g. "native (openblas)". */
  readonly name: string;
  /** The GEMM backend a call without `backend` uses. */
  gemmBackend(): GemmBackend;
  /** Backends compiled into this build, best first. */
  gemmBackends(): GemmBackend[];
  /** SIMD the addon was compiled with. */
  simd(): "avx2" | "none";
  /** True when quantMatmul's "int8" path runs its AVX-512 VNNI GEMM on this CPU (checked at run time); else the dot path. */
  int8GemmVnni(): boolean;
  /** Threads the kernels (OpenBLAS's GEMM included) use: RAZORKV_THREADS, else the hardware threads. */
  threads(): number;
  setThreads(threads: number): void;
  /** out[M×N] = x[M×K] · w[N×K]ᵀ (w as PyTorch stores a linear layer). */
  matmulTransposed(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number, options?: MatmulOptions): void;
  /** core's attendReference, natively: new queries over one layer of the cache. */
  attend(args: AttentionArgs): LayerAttentionStats;
  /** Attention over KV heads given as arrays (zero-copy); statistics per query head, indexed by slot. */
  attendHeads(args: HeadsAttentionArgs): LayerAttentionStats;
  /**
   * One layer of a decode step over several sequences in one native call: each sequence's result (output and
   * statistics) has the same bits as `attendHeads` on it alone (tested), but the work items — (sequence, KV head,
   * part of the GQA group) — are shared by the threads, so both are busy even for one sequence with 3 KV heads,
   * and the per-call cost is paid once per layer instead of once per sequence and layer. Returns each sequence's
   * statistics, in order.
   */
  attendStep(args: StepAttentionArgs): LayerAttentionStats[];
  /** Causal attention over the projection-layout keys and values; statistics indexed by position. */
  attendPrefill(args: PrefillAttentionArgs): LayerAttentionStats;
  /** out[r, i] = x[r, i] · weight[i] / √(mean_i x[r, i]² + eps) for each of the `rows` rows; out may be x. */
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, eps: number): void;
  /** gate ← silu(gate) ⊙ up, in place (SwiGLU). */
  swiglu(gate: Float32Array, up: Float32Array): void;
  /**
   * out[M×N] = x[M×K] · Wᵀ, W [N × K] given as the raw bytes of a GGUF tensor of `type` (ggml name or id; rows of
   * K / blockSize blocks, the layouts of model-zoo's formats/dequant.ts), K a multiple of the block size.
   * path "dot" (auto for M ≤ 48: GEMV and a batched decode step): each row of x is quantized once to 8-bit blocks
   * (32 elements with a float scale for the 32-element types, ggml's Q8_K for the 256-element ones) and every output
   * is per-block integer dot products times the blocks' scales, as llama.cpp's ggml_vec_dot_* compute them; F32,
   * F16 and BF16 dot in f32 against x as it is. Error: each x element moves by at most amax/254 of its block
   * (amax = the block's largest |x|), so |out − x·Wᵀ| ≤ Σ_blocks amax/254 · Σ|w| plus f32 rounding. An output
   * depends only on its row of x and its row of W (a sequence gets the same bits in a batch as alone).
   * path "dequant" (auto for M > 48: prefill): panels of W rows decoded to f32, then the f32 SGEMM (`backend`).
   * path "int8" (opt-in, a prefill with llama.cpp-style 8-bit activations): the dot path's 8-bit activations and error bound
   * for every M. For Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K on a CPU with AVX-512 VNNI (`int8GemmVnni`)
   * it runs the 8-bit GEMM (native/qgemm.h: W decoded once per call into a vpdpbusd layout), each output the bits
   * of the scalar dot kernel ("scalar" backend: that kernel itself), whatever M is; other block types, or no VNNI:
   * the dot path; F32, F16 and BF16 (no 8-bit arithmetic): the dequant path. Bits for finite x.
   * Throws RangeError naming the argument on a wrong type, size or K.
   */
  quantMatmul(type: GgmlWeightType | number, blocks: Uint8Array, x: Float32Array, out: Float32Array, M: number, N: number, K: number, options?: QuantMatmulOptions): void;
  /**
   * quantMatmul's "dot" path for several weight matrices that multiply the same x [M × K] (a layer's Q, K and V
   * projections; its gate and up): x is quantized once per activation format and the rows of all the matrices are
   * shared by the threads in one dispatch. Each operand's out gets exactly the bits of
   * `quantMatmul(type, blocks, x, out, M, N, K, { path: "dot" })`. Throws RangeError naming the operand on a wrong
   * type, size or K, or when an out overlaps x or another out.
   */
  quantMatmulDotMany(operands: readonly DotOperand[], x: Float32Array, M: number, K: number, options?: MatmulOptions): void;
  /**
   * Asks Linux to back the 2 MiB-aligned interior of `bytes` with transparent huge pages (madvise MADV_HUGEPAGE,
   * for machines whose THP setting is "madvise"): fewer TLB misses when a GEMV streams weights from memory (the
   * Llama-8B-shaped Q4_K_M decode, kernel-level: a few percent). Call it on a fresh buffer before writing the weights
   * into it: pages already in place stay small. Returns the bytes advised; 0 off Linux or when refused.
   */
  adviseHugePages(bytes: Uint8Array): number;
  /** out[rows × K] = the first `rows` rows of W (blocks of `type`) decoded to f32, the floats gguf-py's dequantize gives. */
  dequantizeRows(type: GgmlWeightType | number, blocks: Uint8Array, out: Float32Array, rows: number, K: number): void;
}

// ---------------------------------------------------------------------------------------------------------------

interface NativeStats {
  accumulated?: Float32Array[];
  windowed?: Float32Array[];
  windowQueries?: number;
  echo?: Float64Array;
  induction?: Float64Array;
  period?: number;
  firstPosition?: number;
}

interface NativeHead {
  keys: Float32Array;
  values: Float32Array;
  positions: Int32Array;
  length: number;
  compKey?: Float32Array;
  compValue?: Float32Array;
  compCount?: number;
}

interface NativeAddon {
  gemmBackend(): GemmBackend;
  gemmBackends(): GemmBackend[];
  simd(): "avx2" | "none";
  int8GemmVnni(): boolean;
  threads(): number;
  setThreads(n: number): void;
  matmulTransposed(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number, backend?: GemmBackend): void;
  attendCache(
    queries: Float32Array, queryPositions: Int32Array, out: Float32Array, numHeads: number, headDim: number, scale: number,
    heads: NativeHead[], stats?: NativeStats, window?: number, softcap?: number,
  ): void;
  attendStep(
    sequences: { queries: Float32Array; queryPositions: Int32Array; out: Float32Array; heads: NativeHead[]; stats?: NativeStats }[],
    numHeads: number, headDim: number, scale: number, window?: number, softcap?: number,
  ): void;
  attendPrefill(
    queries: Float32Array, keys: Float32Array, values: Float32Array, out: Float32Array, numQueries: number, kvLength: number,
    numHeads: number, numKvHeads: number, headDim: number, scale: number, stats?: NativeStats, window?: number, softcap?: number,
  ): void;
  quantMatmul(type: number, blocks: Uint8Array, x: Float32Array, out: Float32Array, M: number, N: number, K: number, path?: QuantPath, backend?: GemmBackend): void;
  quantMatmulDotMany(operands: { type: number; blocks: Uint8Array; out: Float32Array; N: number }[], x: Float32Array, M: number, K: number, backend?: GemmBackend): void;
  dequantizeRows(type: number, blocks: Uint8Array, out: Float32Array, rows: number, K: number): void;
  adviseHugePages(bytes: Uint8Array): number;
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, n: number, eps: number): void;
  swiglu(gate: Float32Array, up: Float32Array): void;
}

/** Where the build puts the addon, relative to this file (src/ in tests, dist/ when built). */
const ADDON_PATH = "../build/Release/razorkv_cpu.node";

let addon: NativeAddon | null | undefined;
let unavailableReason: string | null = null;

/** True when RAZORKV_CPU_KERNELS (0, off, false or no) asks for the TypeScript path instead of the addon. */
export function kernelsDisabledByEnv(): boolean {
  return ["0", "off", "false", "no"].includes((process.env.RAZORKV_CPU_KERNELS ?? "").toLowerCase());
}

function loadAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  if (kernelsDisabledByEnv()) {
    unavailableReason = `disabled by RAZORKV_CPU_KERNELS=${process.env.RAZORKV_CPU_KERNELS}`;
    addon = null;
    return addon;
  }
  const require = createRequire(import.meta.url);
  try {
    addon = require(ADDON_PATH) as NativeAddon;
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    unavailableReason = `@razorkv/kernels-cpu: ${new URL(ADDON_PATH, import.meta.url).pathname} did not load (${message}); ` +
      "build it with `pnpm --filter @razorkv/kernels-cpu build` (needs a C++17 compiler and npm_config_nodedir=/usr)";
    addon = null;
  }
  return addon;
}

/** Why `loadKernels()` returned null, or null when the kernels are available. */
export function kernelsUnavailableReason(): string | null {
  loadAddon();
  return unavailableReason;
}

/**
 * The native kernels, or null when the addon is not built, fails to load, or RAZORKV_CPU_KERNELS=off
 * (see `kernelsUnavailableReason()`). `gemmBackend` picks the default GEMM of the returned object.
 */
export function loadKernels(options: { readonly gemmBackend?: GemmBackend } = {}): CpuKernels | null {
  const native = loadAddon();
  if (!native) return null;
  const available = native.gemmBackends();
  const backend = options.gemmBackend ?? native.gemmBackend();
  if (!available.includes(backend)) {
    throw new RangeError(`loadKernels: gemmBackend "${backend}" is not compiled into this build (available: ${available.join(", ")})`);
  }
  return makeKernels(native, backend);
}

// ---------------------------------------------------------------------------------------------------------------
// argument checks: name the argument, the expected size and what was found

function checkCount(fn: string, name: string, value: number, min = 0): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${fn}: ${name} must be an integer ≥ ${min}, got ${value}`);
}

function checkArray(fn: string, name: string, array: unknown, type: "Float32Array" | "Int32Array" | "Uint8Array"): void {
  const ctor = { Float32Array, Int32Array, Uint8Array }[type];
  if (!(array instanceof ctor)) {
    const found = array === null || array === undefined ? String(array) : (array as object).constructor?.name ?? typeof array;
    throw new TypeError(`${fn}: ${name} must be a ${type}, got ${found}`);
  }
}

function checkLength(fn: string, name: string, array: { length: number }, expected: number, shape: string, exact: boolean): void {
  if (exact ? array.length !== expected : array.length < expected) {
    throw new RangeError(`${fn}: ${name} has ${array.length} values, expected ${exact ? "" : "at least "}${shape} = ${expected}`);
  }
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** The native form of a window (0: none) and a soft cap (0: none), checked. */
function windowAndCap(fn: string, window: number | null | undefined, softcap: number | undefined): [number, number] {
  if (window !== undefined && window !== null) checkCount(fn, "window", window, 1);
  if (softcap !== undefined && !(Number.isFinite(softcap) && softcap > 0)) throw new RangeError(`${fn}: softcap must be a finite number > 0, got ${softcap}`);
  return [window ?? 0, softcap ?? 0];
}

function checkStats(fn: string, stats: AttentionStatsRequest | undefined): void {
  if (!stats) return;
  if (stats.windowQueries !== undefined) checkCount(fn, "stats.windowQueries", stats.windowQueries);
  if (stats.repeatedSequence) {
    checkCount(fn, "stats.repeatedSequence.period", stats.repeatedSequence.period, 1);
    checkCount(fn, "stats.repeatedSequence.firstPosition", stats.repeatedSequence.firstPosition);
  }
}

/** Output buffers for the requested statistics; `lengthOf(h)` is the slot count query head h's stats cover. */
function allocateStats(stats: AttentionStatsRequest | undefined, numHeads: number, lengthOf: (h: number) => number): NativeStats | undefined {
  if (!stats) return undefined;
  const out: NativeStats = {};
  if (stats.accumulated === true) out.accumulated = Array.from({ length: numHeads }, (_, h) => new Float32Array(lengthOf(h)));
  const w = stats.windowQueries ?? 0;
  if (w > 0) {
    out.windowed = Array.from({ length: numHeads }, (_, h) => new Float32Array(lengthOf(h)));
    out.windowQueries = w;
  }
  if (stats.repeatedSequence) {
    out.echo = new Float64Array(numHeads);
    out.induction = new Float64Array(numHeads);
    out.period = stats.repeatedSequence.period;
    out.firstPosition = stats.repeatedSequence.firstPosition;
  }
  return out;
}

function statsResult(native: NativeStats | undefined): LayerAttentionStats {
  if (!native) return {};
  return {
    ...(native.accumulated ? { accumulated: native.accumulated } : {}),
    ...(native.windowed ? { windowed: native.windowed } : {}),
    ...(native.echo && native.induction ? { echo: native.echo, induction: native.induction } : {}),
  };
}

function toInt32(fn: string, positions: ArrayLike<number>): Int32Array {
  if (positions instanceof Int32Array) return positions;
  const out = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    if (!Number.isInteger(p) || p < 0 || p > 0x7fffffff) throw new RangeError(`${fn}: queryPositions[${i}] must be a non-negative integer, got ${p}`);
    out[i] = p;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

function makeKernels(native: NativeAddon, defaultBackend: GemmBackend): CpuKernels {
  const available = native.gemmBackends();

  /** options.backend, else the default; throws RangeError naming `fn` when this build lacks it. */
  function chosenBackend(fn: string, options: MatmulOptions | undefined): GemmBackend {
    const backend = options?.backend ?? defaultBackend;
    if (!available.includes(backend)) {
      throw new RangeError(`${fn}: backend "${backend}" is not compiled into this build (available: ${available.join(", ")})`);
    }
    return backend;
  }

  function matmulTransposed(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number, options?: MatmulOptions): void {
    const fn = "matmulTransposed";
    checkCount(fn, "M", M);
    checkCount(fn, "N", N);
    checkCount(fn, "K", K);
    checkArray(fn, "x", x, "Float32Array");
    checkArray(fn, "w", w, "Float32Array");
    checkArray(fn, "out", out, "Float32Array");
    checkLength(fn, "x", x, M * K, `M×K = ${M}×${K}`, false);
    checkLength(fn, "w", w, N * K, `N×K = ${N}×${K}`, false);
    checkLength(fn, "out", out, M * N, `M×N = ${M}×${N}`, false);
    if (overlaps(out, x) || overlaps(out, w)) throw new RangeError(`${fn}: out must not overlap x or w`);
    const backend = chosenBackend(fn, options);
    native.matmulTransposed(x, w, out, M, N, K, backend);
  }

  /** Checks one sequence's heads, queries and statistics request; returns what the addon takes. */
  function nativeSequence(
    fn: string, prefix: string, heads: readonly KvHeadArrays[], d: number, numHeads: number,
    queries: Float32Array, queryPositions: ArrayLike<number>, out: Float32Array, statsRequest: AttentionStatsRequest | undefined,
  ) {
    if (heads.length === 0 || numHeads % heads.length !== 0) {
      throw new RangeError(`${fn}: numHeads ${numHeads} is not a multiple of the number of KV heads (${heads.length})${prefix ? ` of ${prefix.slice(0, -1)}` : ""}`);
    }
    const group = numHeads / heads.length;
    const positions = toInt32(fn, queryPositions);
    const C = positions.length;
    checkArray(fn, `${prefix}queries`, queries, "Float32Array");
    checkArray(fn, `${prefix}out`, out, "Float32Array");
    checkLength(fn, `${prefix}queries`, queries, C * numHeads * d, `C×numHeads×headDim = ${C}×${numHeads}×${d}`, true);
    checkLength(fn, `${prefix}out`, out, C * numHeads * d, `C×numHeads×headDim = ${C}×${numHeads}×${d}`, true);
    if (overlaps(out, queries)) throw new RangeError(`${fn}: ${prefix}out must not overlap ${prefix}queries`);
    checkStats(fn, statsRequest);
    const nativeHeads: NativeHead[] = heads.map((head, kv) => {
      const name = `${prefix}heads[${kv}]`;
      checkCount(fn, `${name}.length`, head.length);
      checkArray(fn, `${name}.keys`, head.keys, "Float32Array");
      checkArray(fn, `${name}.values`, head.values, "Float32Array");
      checkArray(fn, `${name}.positions`, head.positions, "Int32Array");
      checkLength(fn, `${name}.keys`, head.keys, head.length * d, `length×headDim = ${head.length}×${d}`, false);
      checkLength(fn, `${name}.values`, head.values, head.length * d, `length×headDim = ${head.length}×${d}`, false);
      checkLength(fn, `${name}.positions`, head.positions, head.length, `length = ${head.length}`, false);
      const comp = head.compensation;
      if (!comp) return { keys: head.keys, values: head.values, positions: head.positions, length: head.length };
      checkArray(fn, `${name}.compensation.key`, comp.key, "Float32Array");
      checkArray(fn, `${name}.compensation.value`, comp.value, "Float32Array");
      checkLength(fn, `${name}.compensation.key`, comp.key, d, "headDim", true);
      checkLength(fn, `${name}.compensation.value`, comp.value, d, "headDim", true);
      if (!(comp.count >= 1)) throw new RangeError(`${fn}: ${name}.compensation.count must be ≥ 1, got ${comp.count}`);
      return {
        keys: head.keys, values: head.values, positions: head.positions, length: head.length,
        compKey: comp.key, compValue: comp.value, compCount: comp.count,
      };
    });
    if (statsRequest?.repeatedSequence) {
      for (const [kv, head] of heads.entries()) {
        if (head.compensation || (head.length > 0 && head.positions[head.length - 1] !== head.length - 1)) {
          throw new RangeError(`${fn}: repeatedSequence statistics need an uncompressed cache (slot = position); ${prefix}heads[${kv}] is compressed`);
        }
      }
    }
    const stats = allocateStats(statsRequest, numHeads, (h) => heads[Math.floor(h / group)].length);
    return { queries, queryPositions: positions, out, heads: nativeHeads, stats };
  }

  function attendHeads(args: HeadsAttentionArgs): LayerAttentionStats {
    const fn = "attendHeads";
    const { heads, headDim: d, numHeads } = args;
    checkCount(fn, "headDim", d, 1);
    checkCount(fn, "numHeads", numHeads, 1);
    const seq = nativeSequence(fn, "", heads, d, numHeads, args.queries, args.queryPositions, args.out, args.stats);
    const [window, softcap] = windowAndCap(fn, args.window, args.softcap);
    native.attendCache(seq.queries, seq.queryPositions, seq.out, numHeads, d, args.scale ?? 1 / Math.sqrt(d), seq.heads, seq.stats, window, softcap);
    return statsResult(seq.stats);
  }

  function attendStep(args: StepAttentionArgs): LayerAttentionStats[] {
    const fn = "attendStep";
    const { sequences, numHeads, layer } = args;
    checkCount(fn, "numHeads", numHeads, 1);
    if (!Array.isArray(sequences)) throw new TypeError(`${fn}: sequences must be an array`);
    let d = args.headDim;
    let cacheWindow: number | null | undefined;
    const headsOf = sequences.map((seq, i) => {
      if (seq.cache && seq.heads) throw new RangeError(`${fn}: sequences[${i}] gives both cache and heads; give one`);
      if (seq.heads) return seq.heads;
      const cache = seq.cache;
      if (!cache) throw new RangeError(`${fn}: sequences[${i}] gives neither cache nor heads`);
      if (layer === undefined || !Number.isInteger(layer) || layer < 0 || layer >= cache.numLayers) {
        throw new RangeError(`${fn}: layer ${layer} outside sequences[${i}].cache's ${cache.numLayers} layers`);
      }
      if (d !== undefined && d !== cache.headDim) throw new RangeError(`${fn}: sequences[${i}].cache has headDim ${cache.headDim}, expected ${d}`);
      d = cache.headDim;
      const w = cache.window(layer);
      if (cacheWindow !== undefined && w !== cacheWindow) throw new RangeError(`${fn}: sequences[${i}].cache has window ${w} at layer ${layer}, the others ${cacheWindow}`);
      cacheWindow = w;
      return cache.heads.slice(layer * cache.numKvHeads, (layer + 1) * cache.numKvHeads);
    });
    if (d === undefined) {
      if (sequences.length === 0) return [];
      throw new RangeError(`${fn}: headDim is needed when the sequences give heads`);
    }
    checkCount(fn, "headDim", d, 1);
    const headDim = d;
    const nativeSeqs = sequences.map((seq, i) =>
      nativeSequence(fn, `sequences[${i}].`, headsOf[i], headDim, numHeads, seq.queries, seq.queryPositions, seq.out, seq.stats));
    const [window, softcap] = windowAndCap(fn, args.window !== undefined ? args.window : cacheWindow, args.softcap);
    native.attendStep(nativeSeqs, numHeads, headDim, args.scale ?? 1 / Math.sqrt(headDim), window, softcap);
    return nativeSeqs.map((seq) => statsResult(seq.stats));
  }

  function attend(args: AttentionArgs): LayerAttentionStats {
    const { cache, layer } = args;
    if (!Number.isInteger(layer) || layer < 0 || layer >= cache.numLayers) {
      throw new RangeError(`attend: layer ${layer} outside the cache's ${cache.numLayers} layers`);
    }
    const heads = cache.heads.slice(layer * cache.numKvHeads, (layer + 1) * cache.numKvHeads);
    return attendHeads({ ...args, heads, headDim: cache.headDim, window: cache.window(layer) });
  }

  function attendPrefill(args: PrefillAttentionArgs): LayerAttentionStats {
    const fn = "attendPrefill";
    const { queries, keys, values, out, numHeads, numKvHeads, headDim: d, numQueries } = args;
    const kvLength = args.kvLength ?? numQueries;
    checkCount(fn, "numHeads", numHeads, 1);
    checkCount(fn, "numKvHeads", numKvHeads, 1);
    checkCount(fn, "headDim", d, 1);
    checkCount(fn, "numQueries", numQueries);
    checkCount(fn, "kvLength", kvLength, numQueries);
    if (numHeads % numKvHeads !== 0) throw new RangeError(`${fn}: numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
    for (const [name, array] of [["queries", queries], ["keys", keys], ["values", values], ["out", out]] as const) {
      checkArray(fn, name, array, "Float32Array");
    }
    const qShape = `numQueries×numHeads×headDim = ${numQueries}×${numHeads}×${d}`;
    const kvShape = `kvLength×numKvHeads×headDim = ${kvLength}×${numKvHeads}×${d}`;
    checkLength(fn, "queries", queries, numQueries * numHeads * d, qShape, true);
    checkLength(fn, "out", out, numQueries * numHeads * d, qShape, true);
    checkLength(fn, "keys", keys, kvLength * numKvHeads * d, kvShape, true);
    checkLength(fn, "values", values, kvLength * numKvHeads * d, kvShape, true);
    if (overlaps(out, queries)) throw new RangeError(`${fn}: out must not overlap queries`);
    checkStats(fn, args.stats);
    const [window, softcap] = windowAndCap(fn, args.window, args.softcap);
    const stats = allocateStats(args.stats, numHeads, () => kvLength);
    native.attendPrefill(queries, keys, values, out, numQueries, kvLength, numHeads, numKvHeads, d, args.scale ?? 1 / Math.sqrt(d), stats, window, softcap);
    return statsResult(stats);
  }

  function rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, eps: number): void {
    const fn = "rmsNorm";
    checkCount(fn, "rows", rows);
    for (const [name, array] of [["x", x], ["weight", weight], ["out", out]] as const) checkArray(fn, name, array, "Float32Array");
    const n = weight.length;
    if (n === 0) throw new RangeError(`${fn}: weight is empty`);
    if (!(Number.isFinite(eps) && eps >= 0)) throw new RangeError(`${fn}: eps must be a finite number ≥ 0, got ${eps}`);
    checkLength(fn, "x", x, rows * n, `rows×weight.length = ${rows}×${n}`, false);
    checkLength(fn, "out", out, rows * n, `rows×weight.length = ${rows}×${n}`, false);
    if (out !== x && overlaps(out, x)) throw new RangeError(`${fn}: out must be x itself or not overlap it`);
    native.rmsNorm(x, weight, out, rows, n, eps);
  }

  function swiglu(gate: Float32Array, up: Float32Array): void {
    const fn = "swiglu";
    checkArray(fn, "gate", gate, "Float32Array");
    checkArray(fn, "up", up, "Float32Array");
    checkLength(fn, "up", up, gate.length, "gate.length", true);
    if (overlaps(gate, up)) throw new RangeError(`${fn}: gate must not overlap up`);
    native.swiglu(gate, up);
  }

  /** The checked type and the byte count of W [rows × K] in it. */
  function weightArgs(fn: string, typeArg: GgmlWeightType | number, blocks: Uint8Array, rows: number, K: number): GgmlWeightType {
    const type = ggmlWeightType(typeArg);
    if (type === undefined) {
      throw new RangeError(`${fn}: type must be one of ${Object.keys(GGML_WEIGHT_TYPES).join(", ")} (or its ggml id), got ${String(typeArg)}`);
    }
    checkCount(fn, "K", K);
    const { blockSize, blockBytes } = GGML_WEIGHT_TYPES[type];
    if (K % blockSize !== 0) throw new RangeError(`${fn}: K must be a multiple of ${type}'s block of ${blockSize} elements, got ${K}`);
    checkArray(fn, "blocks", blocks, "Uint8Array");
    const shape = `rows×(K/${blockSize})×${blockBytes} bytes = ${rows}×${K / blockSize}×${blockBytes}`;
    checkLength(fn, "blocks", blocks, rows * ggmlRowBytes(type, K), shape, false);
    return type;
  }

  function quantMatmul(
    typeArg: GgmlWeightType | number, blocks: Uint8Array, x: Float32Array, out: Float32Array, M: number, N: number, K: number, options?: QuantMatmulOptions,
  ): void {
    const fn = "quantMatmul";
    checkCount(fn, "M", M);
    checkCount(fn, "N", N);
    const type = weightArgs(fn, typeArg, blocks, N, K);
    checkArray(fn, "x", x, "Float32Array");
    checkArray(fn, "out", out, "Float32Array");
    checkLength(fn, "x", x, M * K, `M×K = ${M}×${K}`, false);
    checkLength(fn, "out", out, M * N, `M×N = ${M}×${N}`, false);
    if (overlaps(out, x)) throw new RangeError(`${fn}: out must not overlap x`);
    const path = options?.path ?? "auto";
    if (!QUANT_PATHS.includes(path)) throw new RangeError(`${fn}: path must be ${QUANT_PATHS.join(", ")}, got ${String(path)}`);
    const backend = chosenBackend(fn, options);
    native.quantMatmul(GGML_WEIGHT_TYPES[type].id, blocks, x, out, M, N, K, path, backend);
  }

  function quantMatmulDotMany(operands: readonly DotOperand[], x: Float32Array, M: number, K: number, options?: MatmulOptions): void {
    const fn = "quantMatmulDotMany";
    checkCount(fn, "M", M);
    if (!Array.isArray(operands)) throw new TypeError(`${fn}: operands must be an array`);
    checkArray(fn, "x", x, "Float32Array");
    checkLength(fn, "x", x, M * K, `M×K = ${M}×${K}`, false);
    const nativeOperands = operands.map((op, i) => {
      const where = `${fn}: operands[${i}]`;
      checkCount(where, "N", op.N);
      const type = weightArgs(where, op.type, op.blocks, op.N, K);
      checkArray(where, "out", op.out, "Float32Array");
      checkLength(where, "out", op.out, M * op.N, `M×N = ${M}×${op.N}`, false);
      if (overlaps(op.out, x)) throw new RangeError(`${where}.out must not overlap x`);
      for (let j = 0; j < i; j++) if (overlaps(op.out, operands[j].out)) throw new RangeError(`${where}.out overlaps operands[${j}].out`);
      return { type: GGML_WEIGHT_TYPES[type].id, blocks: op.blocks, out: op.out, N: op.N };
    });
    const backend = chosenBackend(fn, options);
    native.quantMatmulDotMany(nativeOperands, x, M, K, backend);
  }

  function dequantizeRows(typeArg: GgmlWeightType | number, blocks: Uint8Array, out: Float32Array, rows: number, K: number): void {
    const fn = "dequantizeRows";
    checkCount(fn, "rows", rows);
    const type = weightArgs(fn, typeArg, blocks, rows, K);
    checkArray(fn, "out", out, "Float32Array");
    checkLength(fn, "out", out, rows * K, `rows×K = ${rows}×${K}`, false);
    native.dequantizeRows(GGML_WEIGHT_TYPES[type].id, blocks, out, rows, K);
  }

  return {
    name: `native (${defaultBackend})`,
    gemmBackend: () => defaultBackend,
    gemmBackends: () => native.gemmBackends(),
    simd: () => native.simd(),
    int8GemmVnni: () => native.int8GemmVnni(),
    threads: () => native.threads(),
    setThreads: (threads: number) => {
      checkCount("setThreads", "threads", threads, 1);
      native.setThreads(threads);
    },
    matmulTransposed,
    attend,
    attendHeads,
    attendStep,
    attendPrefill,
    rmsNorm,
    swiglu,
    quantMatmul,
    quantMatmulDotMany,
    dequantizeRows,
    adviseHugePages: (bytes: Uint8Array) => {
      checkArray("adviseHugePages", "bytes", bytes, "Uint8Array");
      return native.adviseHugePages(bytes);
    },
  };
}
