/**
 * Paired comparisons of two cells of one task. Every cell of a task runs on the same samples (one sampleId per sample
 * under every policy and budget, DESIGN §2), so two cells are compared sample by sample: pairs are matched by (model,
 * task, mode, sampleId), and only samples scored in both cells count (a sample infeasible in either cell drops out of
 * that comparison, which is why each comparison shows its own n). The tests are stats.ts's `pairedTest`: exact
 * McNemar for 0/1 scores, a seeded paired bootstrap otherwise.
 */
import { isScored, lowerIsBetter, type Mode, type ResultRow, type ScoredRow } from "./schema.js";
import { pairedTest, type BootstrapOptions, type PairedTest } from "./stats.js";

/** One side of a comparison: a policy at a budget (the model, task, mode and metric are the comparison's). */
export interface CellSide {
  readonly policyLabel: string;
  readonly budget: number;
}

export interface PairedCells {
  readonly model: string;
  readonly task: string;
  readonly mode: Mode;
  readonly metric: string;
}

export interface PairedComparison extends PairedCells {
  readonly lowerIsBetter: boolean;
  readonly a: CellSide;
  readonly b: CellSide;
  /** Samples scored in both cells (the pairs); 0 when they share none, and then `test` is null. */
  readonly n: number;
  /** The test of A − B over the pairs; null when there is no pair. */
  readonly test: PairedTest | null;
}

function cellRows(rows: readonly ResultRow[], on: PairedCells, side: CellSide): Map<string, ScoredRow> {
  const bySample = new Map<string, ScoredRow>();
  for (const r of rows) {
    if (!isScored(r) || r.model !== on.model || r.task !== on.task || r.mode !== on.mode || r.metric !== on.metric) continue;
    if (r.policyLabel !== side.policyLabel || r.budgetNominal !== side.budget) continue;
    if (bySample.has(r.sampleId)) {
      throw new Error(
        `paired comparison: sample "${r.sampleId}" is scored twice in cell ${side.policyLabel} @ ${side.budget} of ${on.task} (${on.mode}); ` +
          "each (cell × sample) must be one row",
      );
    }
    bySample.set(r.sampleId, r);
  }
  return bySample;
}

/** The scores of the samples scored in both cells, in A's row order: `a[i]` and `b[i]` are one sample's. */
export function pairedScores(rows: readonly ResultRow[], on: PairedCells, a: CellSide, b: CellSide): { sampleIds: string[]; a: number[]; b: number[] } {
  const rowsA = cellRows(rows, on, a);
  const rowsB = cellRows(rows, on, b);
  const out = { sampleIds: [] as string[], a: [] as number[], b: [] as number[] };
  for (const [sampleId, ra] of rowsA) {
    const rb = rowsB.get(sampleId);
    if (!rb) continue;
    out.sampleIds.push(sampleId);
    out.a.push(ra.score);
    out.b.push(rb.score);
  }
  return out;
}

/** Compares cell A with cell B of one task, sample by sample; the difference is A − B in the metric's units. */
export function comparePaired(rows: readonly ResultRow[], on: PairedCells, a: CellSide, b: CellSide, options: BootstrapOptions = {}): PairedComparison {
  const pairs = pairedScores(rows, on, a, b);
  const test = pairs.a.length > 0 ? pairedTest(pairs.a, pairs.b, options) : null;
  return { ...on, lowerIsBetter: lowerIsBetter(on.metric), a, b, n: pairs.a.length, test };
}
