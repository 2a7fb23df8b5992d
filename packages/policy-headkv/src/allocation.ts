/**
 * HeadKV's head-level budget allocation (Fu et al. 2024, arXiv 2410.19258 §3.2, eq. 3–4; headkv/snapkv_utils.py
 * `ReasonSnapKVCluster`). Every head has the same base budget B of selectable entries (the observation window is kept
 * on top of it). A share 1/β of it forms a shared pool; each head keeps B − ⌊B/β⌋ for itself and receives from the pool
 * in proportion to its normalized importance score s_h (Σ s_h = 1 over the H heads):
 *
 *   b_h = (B − ⌊B/β⌋) + s_h · ⌊B/β⌋ · H,        Σ_h b_h = H·B.
 *
 * β → 1 hands the whole budget out by score; large β approaches uniform SnapKV. The authors round each b_h and clip it
 * silently at the prefix length (`indices[:capacity]`); here a head's budget is capped at the `capacity` it can hold
 * (the prefix before the window) and the excess goes to the uncapped heads in proportion to their scores, and the
 * rounding is by largest remainder, so that Σ b_h = H·B exactly: HeadKV then holds the same memory as SnapKV at the
 * same budget, which the comparison needs.
 */

/**
 * Normalized shares of `scores` (non-negative): s^temperature / Σ s^temperature after a first normalization, as the
 * authors do (`head_score / sum`, `pow(temp)`, `/ sum`). All zero: equal shares (no head distinguished).
 */
export function scoreShares(scores: readonly number[], temperature = 1): number[] {
  const total = scores.reduce((a, b) => a + Math.max(0, b), 0);
  if (!(total > 0)) return scores.map(() => 1 / scores.length);
  const powered = scores.map((s) => Math.pow(Math.max(0, s) / total, temperature));
  const sum = powered.reduce((a, b) => a + b, 0);
  return powered.map((x) => x / sum);
}

/**
 * Per head, the selectable entries it keeps (the equation of the file comment), integers in [0, capacity] summing to
 * exactly shares.length · base.
 *
 * @param shares per head, non-negative, summing to 1.
 * @param base B, the uniform per-head budget beyond the window; at most `capacity`.
 * @param beta β ≥ 1: the pool is ⌊B/β⌋ per head.
 * @param capacity the most a head can hold (its prefix length).
 */
export function allocateHeadBudgets(shares: readonly number[], base: number, beta: number, capacity: number): number[] {
  const H = shares.length;
  if (!(beta >= 1)) throw new Error(`allocateHeadBudgets: beta must be ≥ 1, got ${beta}`);
  if (base < 0 || base > capacity) throw new Error(`allocateHeadBudgets: base ${base} outside [0, ${capacity}]`);
  const pool = Math.floor(base / beta);
  const own = base - pool;
  const ideal = shares.map((s) => own + s * pool * H);
  // cap at `capacity`, handing each excess to the uncapped heads by score (by count where their scores are all 0)
  const capped = new Array<boolean>(H).fill(false);
  for (;;) {
    let excess = 0;
    ideal.forEach((b, h) => {
      if (!capped[h] && b > capacity) {
        excess += b - capacity;
        ideal[h] = capacity;
        capped[h] = true;
      }
    });
    if (excess <= 1e-9) break;
    const open = ideal.map((_, h) => h).filter((h) => !capped[h]);
    const weight = open.reduce((a, h) => a + shares[h], 0);
    for (const h of open) ideal[h] += excess * (weight > 0 ? shares[h] / weight : 1 / open.length);
  }
  // largest remainder: floors, then one more entry to the largest fractions (ties: the earlier head) up to H·B
  const out = ideal.map((b) => Math.min(capacity, Math.floor(b + 1e-9)));
  let missing = H * base - out.reduce((a, b) => a + b, 0);
  const order = ideal.map((_, h) => h).sort((a, b) => ideal[b] - Math.floor(ideal[b] + 1e-9) - (ideal[a] - Math.floor(ideal[a] + 1e-9)) || a - b);
  for (const h of order) {
    if (missing <= 0) break;
    if (out[h] < capacity) {
      out[h]++;
      missing--;
    }
  }
  return out;
}
