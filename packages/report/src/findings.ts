/**
 * The "key findings" block at the top of the report, computed from the data: per task, the policies ranked at one
 * budget (0.3 by default, else the nearest budget the experiment ran), and per head profile the KV heads
 * RazorAttention protected. Plain data, so it is tested without a browser and rendered as text.
 */
import type { HeadProfile, Summary, SummaryCell } from "./schema.js";
import { headLabel, lowerIsBetter } from "./specs.js";

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
  /** Whether the best policy's 95% interval does not overlap the runner-up's. */
  readonly separated: boolean;
  /** The full-cache reference (policies run only at the task's largest budget), if any. */
  readonly references: readonly RankedPolicy[];
}

export interface HeadFinding {
  readonly model: string;
  readonly file: string;
  readonly totalKvHeads: number;
  /** "L17·kv2" labels, in (layer, KV head) order. */
  readonly protectedHeads: readonly string[];
}

export interface KeyFindings {
  readonly askedBudget: number;
  readonly tasks: readonly TaskFinding[];
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

export function keyFindings(summary: Summary, profiles: readonly { file: string; profile: HeadProfile }[], askedBudget = 0.3): KeyFindings {
  const groups = new Map<string, SummaryCell[]>();
  for (const c of summary.cells) {
    const key = JSON.stringify([c.model, c.mode, c.task, c.metric]);
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  const tasks = [...groups.values()].map((cells): TaskFinding => {
    const { model, mode, task, metric } = cells[0];
    const lower = lowerIsBetter(metric);
    const budgets = [...new Set(cells.map((c) => c.budgetNominal))];
    const budget = nearestBudget(budgets, askedBudget);
    const better = (a: SummaryCell, b: SummaryCell) => (lower ? a.mean - b.mean : b.mean - a.mean);
    const ranking = cells.filter((c) => c.budgetNominal === budget).sort(better).map(ranked);
    const max = Math.max(...budgets);
    const references = cells
      .filter((c) => c.budgetNominal === max && max !== budget && cells.filter((o) => o.policyLabel === c.policyLabel).length === 1)
      .map(ranked);
    const [best, second] = ranking;
    let separated = false;
    if (best && second && best.ciLow !== null && best.ciHigh !== null && second.ciLow !== null && second.ciHigh !== null) {
      separated = lower ? best.ciHigh < second.ciLow : best.ciLow > second.ciHigh;
    }
    return { model, mode, task, metric, lowerIsBetter: lower, budget, ranking, separated, references };
  });
  const heads = profiles.map(({ file, profile }): HeadFinding => ({
    model: profile.model,
    file,
    totalKvHeads: profile.numLayers * profile.numKvHeads,
    protectedHeads: [...profile.retrieval]
      .sort((a, b) => a.layer - b.layer || a.kvHead - b.kvHead)
      .map((r) => headLabel(r.layer, r.kvHead)),
  }));
  return { askedBudget, tasks, heads };
}
