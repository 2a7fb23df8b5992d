/**
 * The operations the forward pass spends its time in, behind one interface so that the native addon
 * (kernels-cpu) can replace the plain-TypeScript reference without the pass knowing which one runs: the matrix
 * products and attention, and the two per-element operations that cost most when V8 runs them (SwiGLU's exp over
 * every FFN activation, RMSNorm twice per layer). What stays in TypeScript (RoPE from tables, residual adds, the
 * cache's bookkeeping) is a few percent of a step.
 */
import { attendReference, type AttentionArgs, type LayerAttentionStats } from "@razorkv/core";
import { gegluTanh, matmulTransposedReference, rmsNorm, swiglu } from "./ops.js";

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
}

export const typescriptBackend: ComputeBackend = {
  name: "typescript",
  matmulTransposed: matmulTransposedReference,
  attend: attendReference,
  rmsNorm,
  swiglu,
  gegluTanh,
};
