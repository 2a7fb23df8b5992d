/**
 * The two operations the forward pass spends its time in, behind one interface so that the native addon
 * (kernels-cpu) can replace the plain-TypeScript reference without the pass knowing which one runs.
 */
import { attendReference, type AttentionArgs, type LayerAttentionStats } from "@razorkv/core";
import { matmulTransposedReference } from "./ops.js";

export interface ComputeBackend {
  /** Short name for logs and benchmark rows, e.g. "typescript" or "native (openblas)". */
  readonly name: string;
  /** out[M×N] = x[M×K] · w[N×K]ᵀ */
  matmulTransposed(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number): void;
  /** Attention of new queries over one layer of the cache, with the semantics of core's attendReference. */
  attend(args: AttentionArgs): LayerAttentionStats;
}

export const typescriptBackend: ComputeBackend = {
  name: "typescript",
  matmulTransposed: matmulTransposedReference,
  attend: attendReference,
};
