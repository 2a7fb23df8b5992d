/**
 * The operations the forward pass spends its time in, behind one interface so that the native addon
 * (kernels-cpu) can replace the plain-TypeScript reference without the pass knowing which one runs: the matrix
 * products and attention, and the two per-element operations that cost most when V8 runs them (SwiGLU's exp over
 * every FFN activation, RMSNorm twice per layer). What stays in TypeScript (RoPE from tables, residual adds, the
 * cache's bookkeeping) is a few percent of a step.
 */
import { attendReference, type AttentionArgs, type LayerAttentionStats } from "@razorkv/core";
import type { StepAttentionArgs } from "@razorkv/kernels-cpu";
import { dequantize } from "../formats/dequant.js";
import { gegluTanh, matmulBlocksReference, matmulTransposedReference, rmsNorm, swiglu } from "./ops.js";
import type { BlockMatrix, WeightMatrix } from "./types.js";

/**
 * How a product with a quantized matrix treats x: "dot" quantizes each row of x to 8-bit blocks and sums integer
 * products (llama.cpp's scheme; a decode step), "dequant" decodes W to f32 panels and runs the f32 GEMM (a prefill:
 * the float result within rounding), "int8" is the dot path's arithmetic for a prefill's many rows (kernels-cpu's
 * 8-bit GEMM; LlamaModelOptions.prefillProducts), "auto" lets the kernel choose by M (kernels-cpu: dot up to 48 rows).
 * The TypeScript reference computes every path in f32.
 */
export type QuantPath = "auto" | "dot" | "dequant" | "int8";

export interface ComputeBackend {
  /** Short name for logs and benchmark rows, e.g. "typescript" or "native (openblas)". */
  readonly name: string;
  /** out[M×N] = x[M×K] · w[N×K]ᵀ */
  matmulTransposed(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number): void;
  /** Attention of new queries over one layer of the cache, with the semantics of core's attendReference. */
  attend(args: AttentionArgs): LayerAttentionStats;
  /** RMSNorm of each of the `rows` rows of x, scaled by weight, into out (which may be x). */
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, eps: number): void;
  /** gate ← silu(gate) ⊙ up, in place. */
  swiglu(gate: Float32Array, up: Float32Array): void;
  /** gate ← gelu_tanh(gate) ⊙ up, in place (Gemma's GeGLU); absent: the TypeScript `gegluTanh`. */
  gegluTanh?(gate: Float32Array, up: Float32Array): void;
  /**
   * out[M×N] = x[M×K] · Wᵀ with W [N×K] as raw blocks of ggml type `type` (kernels-cpu's quantMatmul, whose
   * docstring states the dot path's error bound). Absent: `matmulBlocksReference` (decode rows, then f32 dots).
   */
  quantMatmul?(type: number, blocks: Uint8Array, x: Float32Array, out: Float32Array, M: number, N: number, K: number, options?: { readonly path?: QuantPath }): void;
  /**
   * The "dot" path of several block matrices that multiply the same x [M×K], in one call (kernels-cpu's
   * quantMatmulDotMany: x quantized once, one dispatch). Each out gets the bits quantMatmul's "dot" path gives it.
   * Absent: one quantMatmul per matrix.
   */
  quantMatmulDotMany?(operands: readonly { type: number; blocks: Uint8Array; out: Float32Array; N: number }[], x: Float32Array, M: number, K: number): void;
  /** out[rows×K] = the first `rows` rows of the blocks decoded to f32 (gguf-py's values). Absent: formats/dequant.ts. */
  dequantizeRows?(type: number, blocks: Uint8Array, out: Float32Array, rows: number, K: number): void;
  /**
   * One layer of a decode step over several sequences in one call, each sequence's result the same as `attend` on
   * it alone (kernels-cpu's attendStep). Absent: `attend` per sequence. A wrapper that overrides `attend` (to observe
   * it) must override or drop this one too.
   */
  attendStep?(args: StepAttentionArgs): LayerAttentionStats[];
}

/**
 * out[M × w.rows] = x[M × w.cols] · wᵀ on `backend`: f32 matrices through its matmulTransposed, block matrices
 * through its quantMatmul (with `path`), or the TypeScript reference when it has none.
 */
export function matmulWeight(backend: ComputeBackend, w: WeightMatrix, x: Float32Array, out: Float32Array, M: number, path: QuantPath = "auto"): void {
  if (w.kind === "f32") backend.matmulTransposed(x, w.data, out, M, w.rows, w.cols);
  else if (backend.quantMatmul) backend.quantMatmul(w.type, w.bytes, x, out, M, w.rows, w.cols, { path });
  else matmulBlocksReference(w.type, w.bytes, w.rowBytes, x, out, M, w.rows, w.cols, w.name);
}

/**
 * outs[i][M × ws[i].rows] = x[M × K] · ws[i]ᵀ for matrices that share x (a layer's Q, K, V; its gate and up), on the
 * "dot" path: one quantMatmulDotMany call when the backend has it and every matrix is blocks, else one matmulWeight
 * per matrix. The bits are the same either way.
 */
export function matmulWeightsDot(backend: ComputeBackend, ws: readonly WeightMatrix[], x: Float32Array, outs: readonly Float32Array[], M: number): void {
  const blocks = ws.filter((w): w is BlockMatrix => w.kind === "blocks");
  if (backend.quantMatmulDotMany && ws.length > 1 && blocks.length === ws.length) {
    backend.quantMatmulDotMany(blocks.map((w, i) => ({ type: w.type, blocks: w.bytes, out: outs[i], N: w.rows })), x, M, ws[0].cols);
    return;
  }
  ws.forEach((w, i) => matmulWeight(backend, w, x, outs[i], M, "dot"));
}

/** Row `row` of `w` as f32 into out[0 … w.cols) (the embedding lookup: one row decoded per token). */
export function weightRow(backend: ComputeBackend, w: WeightMatrix, row: number, out: Float32Array): void {
  if (!Number.isInteger(row) || row < 0 || row >= w.rows) throw new RangeError(`${w.name}: row ${row} outside [0, ${w.rows})`);
  if (w.kind === "f32") {
    out.set(w.data.subarray(row * w.cols, (row + 1) * w.cols));
    return;
  }
  const bytes = w.bytes.subarray(row * w.rowBytes, (row + 1) * w.rowBytes);
  if (backend.dequantizeRows) backend.dequantizeRows(w.type, bytes, out.subarray(0, w.cols), 1, w.cols);
  else out.set(dequantize(w.type, bytes, w.cols, `${w.name} row ${row}`));
}

export const typescriptBackend: ComputeBackend = {
  name: "typescript",
  matmulTransposed: matmulTransposedReference,
  attend: attendReference,
  rmsNorm,
  swiglu,
  gegluTanh,
};
