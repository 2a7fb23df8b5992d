/**
 * The checks every policy must pass, as one function a policy package's tests call (no test-framework dependency:
 * it throws an Error describing the first violation):
 *   - the realized budget equals the nominal one within one entry per head (DESIGN §3), at every budget and
 *     length asked, and — for policies with a decode hook — after every decode step;
 *   - compress leaves the full cache untouched and shares no mutable storage with it;
 *   - a compressed head holds a subsequence of the full head (same positions, keys and values, in order);
 *   - `checkFeasible` (what --dry-run asks) rejects exactly the budgets `compress` rejects, with the same words.
 */
import { assertRealizedBudget, kvBudget } from "../budget.js";
import type { KvCache } from "../cache.js";
import { RazorkvError } from "../errors.js";
import { checkFeasible, nominalKvBudget, type CompressionPolicy } from "../policy.js";
import { randomDecodeStep, randomPrefill, type RandomShape } from "./prefill.js";
import { mulberry32 } from "./random.js";

export interface ConformanceOptions {
  readonly shape: RandomShape;
  readonly lengths: readonly number[];
  readonly budgets: readonly number[];
  readonly seed?: number;
  /** Decode steps run after each compression when the policy has a decode hook (default 12). */
  readonly decodeSteps?: number;
}

export interface ConformanceRow {
  readonly length: number;
  readonly budget: number;
  readonly nominal: number;
  readonly realized: number;
}

export function checkPolicyConformance(policy: CompressionPolicy, options: ConformanceOptions): ConformanceRow[] {
  const rows: ConformanceRow[] = [];
  for (const length of options.lengths) {
    const { cache: full, stats } = randomPrefill({ ...options.shape, length, seed: (options.seed ?? 1) + length, stats: policy.statsRequest });
    const snapshot = full.clone();
    for (const b of options.budgets) {
      const where = `${policy.name} at kvBudget ${b}, length ${length}`;
      const budget = kvBudget(b);
      const dryRun = refusal(() => checkFeasible(policy, length, budget, full));
      const run = refusal(() => policy.compress(full, stats, budget));
      if (dryRun !== run) {
        throw new Error(`${where}: checkFeasible says ${JSON.stringify(dryRun ?? "feasible")} but compress says ${JSON.stringify(run ?? "feasible")}`);
      }
      if (run !== null) continue;
      const compressed = policy.compress(full, stats, budget);
      if (!sameCache(full, snapshot)) throw new Error(`${where}: compress modified the full cache`);
      checkSubsequence(full, compressed, where);
      const nominal = nominalKvBudget(policy, full, budget);
      assertRealizedBudget(compressed, nominal, where);
      rows.push({ length, budget: b, nominal, realized: compressed.realizedBudget() });
      if (policy.decode) {
        const session = policy.decode.start(compressed, stats, budget);
        const rand = mulberry32(length * 31 + Math.round(b * 1000));
        for (let step = 0; step < (options.decodeSteps ?? 12); step++) {
          session.afterForward(randomDecodeStep(compressed, rand, options.shape.numHeads, policy.decode.statsRequest));
          assertRealizedBudget(compressed, nominal, `${where}, decode step ${step + 1}`);
        }
        if (!sameCache(full, snapshot)) throw new Error(`${where}: decoding the compressed cache modified the full cache`);
      }
    }
  }
  return rows;
}

/** The RazorkvError message `f` throws, or null when it returns; other errors propagate. */
function refusal(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (error) {
    if (error instanceof RazorkvError) return error.message;
    throw error;
  }
}

function sameCache(a: KvCache, b: KvCache): boolean {
  if (a.nextPosition !== b.nextPosition || a.heads.length !== b.heads.length) return false;
  return a.heads.every((h, i) => {
    const g = b.heads[i];
    const n = h.length * h.headDim;
    return (
      h.length === g.length &&
      h.compensation === g.compensation &&
      equal(h.positions.subarray(0, h.length), g.positions.subarray(0, g.length)) &&
      equal(h.keys.subarray(0, n), g.keys.subarray(0, n)) &&
      equal(h.values.subarray(0, n), g.values.subarray(0, n))
    );
  });
}

function checkSubsequence(full: KvCache, compressed: KvCache, where: string): void {
  if (compressed.nextPosition !== full.nextPosition) {
    throw new Error(`${where}: compressed cache has nextPosition ${compressed.nextPosition}, the full one ${full.nextPosition}`);
  }
  compressed.heads.forEach((h, i) => {
    const f = full.heads[i];
    if (h.keys.buffer === f.keys.buffer || h.values.buffer === f.values.buffer || h.positions.buffer === f.positions.buffer) {
      throw new Error(`${where}: head ${i} shares storage with the full cache`);
    }
    // a head the model holds at its sliding window is at its own bound: policies keep it whole (DESIGN §3)
    if (full.heldByWindow(i) && (h.length !== f.length || h.compensation)) {
      throw new Error(`${where}: head ${i} is held at its layer's sliding window (${f.length} entries) but the policy kept ${h.length}${h.compensation ? " and a compensation slot" : ""}`);
    }
    // the full cache holds consecutive positions from positions[0] (0 unless a window dropped the oldest)
    const first = f.length > 0 ? f.positions[0] : 0;
    let previous = -1;
    for (let s = 0; s < h.length; s++) {
      const p = h.positions[s];
      if (p <= previous || p < first || p - first >= f.length) throw new Error(`${where}: head ${i} slot ${s} has position ${p} after ${previous}`);
      previous = p;
      if (!equal(h.key(s), f.key(p - first)) || !equal(h.value(s), f.value(p - first))) throw new Error(`${where}: head ${i} slot ${s} is not position ${p}'s entry`);
    }
  });
}

function equal(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}
