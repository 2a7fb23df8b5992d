/**
 * 1-D pooling of per-position scores with an odd `kernel` and same padding: the max of the in-range neighbours, or
 * their sum / kernel (zero padding counted in the mean) — PyTorch's max_pool1d / avg_pool1d with padding
 * (kernel − 1)/2, as SnapKV's code (Li et al. 2024, arXiv 2404.14469) and HeadKV's apply them before top-k.
 *
 * @param scores one score per position
 * @param kernel odd window size ≥ 1
 * @returns the pooled scores, same length
 */
export function pool1d(scores: ArrayLike<number>, kernel: number, mode: "max" | "avg"): Float64Array {
  const n = scores.length;
  const r = (kernel - 1) / 2;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = mode === "max" ? -Infinity : 0;
    for (let j = Math.max(0, i - r); j <= Math.min(n - 1, i + r); j++) acc = mode === "max" ? Math.max(acc, scores[j]) : acc + scores[j];
    out[i] = mode === "max" ? acc : acc / kernel;
  }
  return out;
}
