/**
 * The "key findings" block at the top of the report, computed from the data: per task, the policies ranked at one
 * budget (0.3 by default, else the nearest budget the experiment ran) with a paired test of the best against each
 * other policy and of each against the full-cache reference (paired.ts), and per head selection (heads/*.json) the KV
 * heads a head-level policy protected. Plain data, so it is tested without a browser and rendered as text.
 */
import type { LoadedHeadSelection } from "./load.js";
import { comparePaired, type PairedComparison } from "./paired.js";
import { lowerIsBetter, type ResultRow, type Summary, type SummaryCell } from "./schema.js";
import type { BootstrapOptions } from "./stats.js";
import { headLabel } from "./specs.js";
import { cellsByTask, referenceCells } from "./summarize.js";

export interface RankedPolicy {
  readonly policyLabel: string;
  readonly mean: number;
  /** Null where the interval is unbounded (a single sample). */
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
  readonly n: number;
}

export interface TaskFinding {
  readonly model: string;
  readonly mode: string;
  readonly task: string;
  readonly metric: string;
  readonly lowerIsBetter: boolean;
  /** The budget the ranking is at: the one asked for, or the nearest the task has below the full budget. */
  readonly budget: number;
  /** Best first. */
  readonly ranking: readonly RankedPolicy[];
  /** The full-cache reference (policies run only at the task's largest budget), if any. */
  readonly references: readonly RankedPolicy[];
  /** The best policy (A) against each other policy of the ranking (B), at the ranking's budget, in ranking order. */
  readonly versusBest: readonly PairedComparison[];
  /** Each policy of the ranking (A) against each full-cache reference (B, at its own budget), in ranking order. */
  readonly versusReference: readonly PairedComparison[];
}

export interface HeadFinding {
  readonly model: string;
  readonly file: string;
  /** What the selection is (the file's title) and how it was made (its rule). */
  readonly title: string;
  readonly rule: string;
  /** The policy labels that protected these heads. */
  readonly usedBy: readonly string[];
  readonly totalKvHeads: number;
  /** "L17·kv2" labels, in (layer, KV head) order. */
  readonly protectedHeads: readonly string[];
}

/** A policy's smallest budget that keeps `fraction` of the full cache's score (see `budgetRetention`). */
export interface RetentionEntry {
  readonly policyLabel: string;
  /** Null when no tested budget holds (or the largest one already fails). */
  readonly smallestBudget: number | null;
  /** The policy's score at `smallestBudget`. */
  readonly at: RankedPolicy | null;
  /** The budgets the policy ran at, largest first. */
  readonly budgets: readonly number[];
  /** The policy's score at the largest of them: how far off it is when no budget holds. */
  readonly atLargest: RankedPolicy;
}

export interface RetentionFinding {
  readonly model: string;
  readonly mode: string;
  readonly task: string;
  readonly metric: string;
  readonly lowerIsBetter: boolean;
  readonly fraction: number;
  /** The full-cache reference the fraction is of. */
  readonly reference: RankedPolicy;
  readonly policies: readonly RetentionEntry[];
}

export interface KeyFindings {
  readonly askedBudget: number;
  readonly tasks: readonly TaskFinding[];
  /** Per task, the smallest budget at which each policy keeps 95% of the full cache's score. */
  readonly retention: readonly RetentionFinding[];
  readonly heads: readonly HeadFinding[];
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

function ranked(c: SummaryCell): RankedPolicy {
  return { policyLabel: c.policyLabel, mean: c.mean, ciLow: finite(c.ciLow), ciHigh: finite(c.ciHigh), n: c.n };
}

/** The budget nearest `asked` among those below the largest (compression, not the full cache); ties go lower. */
export function nearestBudget(budgets: readonly number[], asked: number): number {
  const max = Math.max(...budgets);
  const candidates = budgets.filter((b) => b < max);
  const pool = candidates.length > 0 ? candidates : budgets;
  return [...pool].sort((a, b) => Math.abs(a - asked) - Math.abs(b - asked) || a - b)[0];
}

/**
 * Per task with a full-cache reference (`referenceCells`; preferably one that kept every entry): for each other policy, the smallest budget b such that at b and at every
 * larger budget it ran, its mean keeps `fraction` of the reference's (mean ≥ fraction·full, or for NLL
 * mean ≤ full/fraction). Requiring every larger budget too keeps a lucky dip in a noisy curve from being reported
 * as the policy's operating point.
 */
export function budgetRetention(summary: Summary, fraction = 0.95): RetentionFinding[] {
  const findings: RetentionFinding[] = [];
  for (const cells of cellsByTask(summary)) {
    const candidates = referenceCells(cells);
    // the full cache itself when a reference kept every entry (realized kvBudget 1), else the first reference
    const ref = candidates.find((c) => c.budgetRealizedMean >= 1 - 1e-9) ?? candidates[0];
    if (!ref) continue;
    const { model, mode, task, metric } = cells[0];
    const lower = lowerIsBetter(metric);
    const keeps = (c: SummaryCell) => (lower ? c.mean * fraction <= ref.mean : c.mean >= fraction * ref.mean);
    const labels = [...new Set(cells.map((c) => c.policyLabel))].filter((l) => l !== ref.policyLabel);
    const policies = labels.map((policyLabel): RetentionEntry => {
      const curve = cells.filter((c) => c.policyLabel === policyLabel).sort((a, b) => b.budgetNominal - a.budgetNominal);
      let held: SummaryCell | null = null;
      for (const c of curve) {
        if (!keeps(c)) break;
        held = c;
      }
      return {
        policyLabel, smallestBudget: held?.budgetNominal ?? null, at: held ? ranked(held) : null,
        budgets: curve.map((c) => c.budgetNominal), atLargest: ranked(curve[0]),
      };
    });
    findings.push({ model, mode, task, metric, lowerIsBetter: lower, fraction, reference: ranked(ref), policies });
  }
  return findings;
}

/**
 * The findings of an experiment. `rows` are results.jsonl's, for the paired tests (the summary has no per-sample
 * scores); `options` seeds their bootstrap.
 */
export function keyFindings(
  summary: Summary, rows: readonly ResultRow[], heads: readonly LoadedHeadSelection[], askedBudget = 0.3, options: BootstrapOptions = {},
): KeyFindings {
  const tasks = cellsByTask(summary).map((cells): TaskFinding => {
    const { model, mode, task, metric } = cells[0];
    const lower = lowerIsBetter(metric);
    const budgets = [...new Set(cells.map((c) => c.budgetNominal))];
    const budget = nearestBudget(budgets, askedBudget);
    const better = (a: SummaryCell, b: SummaryCell) => (lower ? a.mean - b.mean : b.mean - a.mean);
    const ranking = cells.filter((c) => c.budgetNominal === budget).sort(better).map(ranked);
    // the ranking's budget is the largest only when it is the task's one budget: then nothing is a reference
    const referenceList = budget === Math.max(...budgets) ? [] : referenceCells(cells);
    const on = { model, task, mode, metric };
    const at = (policyLabel: string, b: number) => ({ policyLabel, budget: b });
    const [best, ...others] = ranking;
    const versusBest = best ? others.map((o) => comparePaired(rows, on, at(best.policyLabel, budget), at(o.policyLabel, budget), options)) : [];
    const versusReference = referenceList.flatMap((ref) =>
      ranking.map((r) => comparePaired(rows, on, at(r.policyLabel, budget), at(ref.policyLabel, ref.budgetNominal), options)),
    );
    return { model, mode, task, metric, lowerIsBetter: lower, budget, ranking, references: referenceList.map(ranked), versusBest, versusReference };
  });
  const headFindings = heads.map(({ file, selection }): HeadFinding => ({
    model: selection.model,
    file,
    title: selection.title,
    rule: selection.rule,
    usedBy: selection.usedBy,
    totalKvHeads: selection.numLayers * selection.numKvHeads,
    protectedHeads: [...selection.protected]
      .sort((a, b) => a.layer - b.layer || a.kvHead - b.kvHead)
      .map((r) => headLabel(r.layer, r.kvHead)),
  }));
  return { askedBudget, tasks, retention: budgetRetention(summary), heads: headFindings };
}
