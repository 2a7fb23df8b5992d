/**
 * Plain-TypeScript tensor operations of the forward pass. Row-major f32 throughout. These are the reference the
 * native kernels are tested against, and the fallback when the addon is absent.
 */
import { dequantize } from "../formats/dequant.js";

/** out[m, n] = Σ_k x[m, k] · w[n, k]   (x: [M×K], w: [N×K] as PyTorch stores a linear layer, out: [M×N]). */
export function matmulTransposedReference(x: Float32Array, w: Float32Array, out: Float32Array, M: number, N: number, K: number): void {
  for (let m = 0; m < M; m++) {
    const xBase = m * K;
    for (let n = 0; n < N; n++) {
      const wBase = n * K;
      // four partial sums: independent chains let the JIT overlap the multiply-adds
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let k = 0;
      for (; k + 3 < K; k += 4) {
        s0 += x[xBase + k] * w[wBase + k];
        s1 += x[xBase + k + 1] * w[wBase + k + 1];
        s2 += x[xBase + k + 2] * w[wBase + k + 2];
        s3 += x[xBase + k + 3] * w[wBase + k + 3];
      }
      for (; k < K; k++) s0 += x[xBase + k] * w[wBase + k];
      out[m * N + n] = s0 + s1 + s2 + s3;
    }
  }
}

/** Decoded rows per panel of `matmulBlocksReference`: ≈ 1 MiB of f32 at a 4096-column matrix. */
const PANEL_VALUES = 1 << 18;

/**
 * out[m, n] = Σ_k x[m, k] · W[n, k] with W [N × K] held as raw blocks of ggml type `type` (rows of `rowBytes` bytes):
 * panels of W rows are decoded to f32 with formats/dequant.ts (gguf-py's values) and multiplied by
 * `matmulTransposedReference`, so the result has exactly the bits of that reference on the decoded matrix (the
 * TypeScript oracle for the native `quantMatmul`, which instead quantizes x to 8 bits for a decode step). Slow.
 */
export function matmulBlocksReference(
  type: number, bytes: Uint8Array, rowBytes: number, x: Float32Array, out: Float32Array, M: number, N: number, K: number, name = "weight",
): void {
  const panelRows = Math.max(1, Math.min(N, Math.floor(PANEL_VALUES / K)));
  const panelOut = new Float32Array(M * panelRows);
  for (let n0 = 0; n0 < N; n0 += panelRows) {
    const rows = Math.min(panelRows, N - n0);
    const panel = dequantize(type, bytes.subarray(n0 * rowBytes, (n0 + rows) * rowBytes), rows * K, `${name} rows ${n0}–${n0 + rows - 1}`);
    matmulTransposedReference(x, panel, panelOut, M, rows, K);
    for (let m = 0; m < M; m++) out.set(panelOut.subarray(m * rows, (m + 1) * rows), m * N + n0);
  }
}

/** RMSNorm (Zhang & Sennrich 2019) of each of the `rows` rows of x, scaled by weight, into out. */
export function rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, rows: number, eps: number): void {
  const n = weight.length;
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[base + i] * x[base + i];
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[base + i] = x[base + i] * inv * weight[i];
  }
}

/** gate ← silu(gate) ⊙ up, in place (SwiGLU, Shazeer 2020). */
export function swiglu(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/**
 * gate ← gelu(gate) ⊙ up, in place, with the tanh approximation of gelu (GeGLU as Gemma runs it: transformers'
 * gelu_pytorch_tanh, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).
 */
export function gegluTanh(gate: Float32Array, up: Float32Array): void {
  const c = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = 0.5 * g * (1 + Math.tanh(c * (g + 0.044715 * g * g * g))) * up[i];
  }
}

/** x → cap · tanh(x / cap), each step rounded to float32 as torch computes it (Gemma 2's logit soft-capping). */
export function softcapInPlace(x: Float32Array, cap: number): void {
  const f = Math.fround;
  const c = f(cap);
  for (let i = 0; i < x.length; i++) x[i] = f(f(Math.tanh(f(x[i] / c))) * c);
}

/** Adds `bias` to each of the rows of x ([rows × bias.length]). */
export function addBias(x: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length;
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) x[r * n + i] += bias[i];
}

export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** log Σ exp(logits), in float64 (the precision parity tests compare against). */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** log-softmax of one row, in float64. */
export function logSoftmax(logits: Float32Array): Float64Array {
  const lse = logSumExp(logits);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/**
 * log p(id) under softmax(logits): logSoftmax(logits)[id] without the vocabulary-sized array, which scoring a
 * continuation would otherwise allocate for every token of every cell.
 */
export function logProbability(logits: Float32Array, id: number): number {
  if (!Number.isInteger(id) || id < 0 || id >= logits.length) throw new RangeError(`logProbability: token id ${id} outside [0, ${logits.length})`);
  return logits[id] - logSumExp(logits);
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
