/**
 * Markdown tables of an experiment's results, for a README or a paper draft (`razorkv report <dir> --markdown`):
 * score vs budget per policy, the smallest budget that keeps 95% of the full cache's score, and paired comparisons of
 * one policy against every other. The committed README's tables are these functions' output on the committed results
 * (a test holds them equal).
 */
import { budgetRetention, type RetentionFinding } from "./findings.js";
import { fmt, fmtBudget, fmtDifference, fmtP, interval, testName } from "./format.js";
import { comparePaired, type PairedComparison } from "./paired.js";
import { lowerIsBetter, type InfeasibleCell, type ResultRow, type Summary, type SummaryCell } from "./schema.js";
import { metricLabel, taskTitle } from "./specs.js";
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, type BootstrapOptions } from "./stats.js";

const row = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;

function cellText(c: SummaryCell | undefined, infeasible: InfeasibleCell | undefined): string {
  if (infeasible) return `infeasible (${infeasible.infeasible})`;
  if (!c) return "";
  const ci = Number.isFinite(c.ciLow) && Number.isFinite(c.ciHigh) ? ` [${fmt(c.ciLow, 2)}, ${fmt(c.ciHigh, 2)}]` : "";
  return `${fmt(c.mean, 2)}${ci}${c.infeasible > 0 ? ` (${c.infeasible} infeasible)` : ""}`;
}

/**
 * One task in one mode: a row per policy, a column per budget, "mean [95% interval]" over the scored samples in each
 * cell, "(k infeasible)" after it when k samples could not run, "infeasible (k)" for a cell none of whose could.
 */
export function scoreTableMarkdown(summary: Summary, task: string, mode: string): string {
  const cells = summary.cells.filter((c) => c.task === task && c.mode === mode);
  const infeasible = summary.infeasibleCells.filter((c) => c.task === task && c.mode === mode);
  if (cells.length === 0) throw new Error(`no summary cells for task "${task}" in mode ${mode}`);
  const budgets = [...new Set([...cells, ...infeasible].map((c) => c.budgetNominal))].sort((a, b) => b - a);
  const labels = [...new Set([...cells, ...infeasible].map((c) => c.policyLabel))];
  const n = [...new Set(cells.map((c) => c.n))];
  const lines = [
    `${taskTitle(task)}, ${mode}: ${metricLabel(cells[0].metric)}, mean [95% interval], n = ${n.join("/")} per cell`,
    "",
    row(["policy", ...budgets.map((b) => `budget ${fmtBudget(b)}`)]),
    row(["---", ...budgets.map(() => "---:")]),
    ...labels.map((l) => row([
      l,
      ...budgets.map((b) => {
        const at = (c: { policyLabel: string; budgetNominal: number }) => c.policyLabel === l && c.budgetNominal === b;
        return cellText(cells.find(at), infeasible.find(at));
      }),
    ])),
  ];
  return lines.join("\n");
}

/** A row per policy, a column per mode: the smallest budget keeping 95% of Full's score on `task`, with its interval. */
export function retentionTableMarkdown(summary: Summary, task: string, fraction = 0.95): string {
  const findings = budgetRetention(summary, fraction).filter((f) => f.task === task);
  if (findings.length === 0) throw new Error(`task "${task}" has no full-cache reference in this summary`);
  const labels = [...new Set(findings.flatMap((f) => f.policies.map((p) => p.policyLabel)))];
  const entry = (f: RetentionFinding, label: string) => {
    const p = f.policies.find((q) => q.policyLabel === label);
    if (!p) return "";
    if (p.smallestBudget === null || !p.at) {
      return `none of ${p.budgets.map(fmtBudget).join(", ")} (at ${fmtBudget(p.budgets[0])}: ${fmt(p.atLargest.mean)} ${interval(p.atLargest)})`;
    }
    return `**${fmtBudget(p.smallestBudget)}**: ${fmt(p.at.mean)} ${interval(p.at)}`;
  };
  const lines = [
    row(["policy", ...findings.map((f) => f.mode)]),
    row(["---", ...findings.map(() => "---")]),
    row(["full (reference)", ...findings.map((f) => `1: ${fmt(f.reference.mean)} ${interval(f.reference)}`)]),
    ...labels.map((l) => row([l, ...findings.map((f) => entry(f, l))])),
  ];
  return lines.join("\n");
}

export interface PairedTableOptions extends BootstrapOptions {
  readonly task: string;
  /** The policy label every row compares (A), e.g. "razor". */
  readonly policy: string;
  /** Only this mode (default: every mode of the task, in first-seen order). */
  readonly mode?: string;
  /** The model, required when the rows hold several. */
  readonly model?: string;
}

/**
 * Paired comparisons of one policy (A) against every other policy (B) of a task: a row per mode, A's budget and B,
 * with "A − B: mean [95% interval]", the two-sided p, the number of paired samples and the test. B runs at A's budget,
 * except a full-cache reference (a policy run only at the task's largest budget), which is compared at its own budget
 * with A at each of A's. Rows: modes in first-seen order, A's budgets largest first, then B in sweep order.
 */
export function pairedTableMarkdown(rows: readonly ResultRow[], options: PairedTableOptions): string {
  const { task, policy } = options;
  const models = [...new Set(rows.filter((r) => r.task === task).map((r) => r.model))];
  if (models.length === 0) throw new Error(`pairedTableMarkdown: no rows for task "${task}"`);
  if (options.model === undefined && models.length > 1) {
    throw new Error(`pairedTableMarkdown: task "${task}" ran on ${models.length} models (${models.join(", ")}): pass options.model`);
  }
  const model = options.model ?? models[0];
  const ofTask = rows.filter((r) => r.task === task && r.model === model && (options.mode === undefined || r.mode === options.mode));
  if (!ofTask.some((r) => r.policyLabel === policy)) throw new Error(`pairedTableMarkdown: policy "${policy}" has no rows for task "${task}" on ${model}`);
  const metrics = [...new Set(ofTask.map((r) => r.metric))];
  if (metrics.length > 1) throw new Error(`pairedTableMarkdown: task "${task}" has several metrics (${metrics.join(", ")})`);
  const metric = metrics[0];
  const labels = [...new Set(ofTask.map((r) => r.policyLabel))].filter((l) => l !== policy);
  const budgetsOf = (l: string, mode: string) =>
    [...new Set(ofTask.filter((r) => r.policyLabel === l && r.mode === mode).map((r) => r.budgetNominal))].sort((a, b) => b - a);
  const comparisons: PairedComparison[] = [];
  for (const mode of [...new Set(ofTask.map((r) => r.mode))]) {
    const largest = Math.max(...ofTask.filter((r) => r.mode === mode).map((r) => r.budgetNominal));
    const on = { model, task, mode, metric };
    for (const budget of budgetsOf(policy, mode)) {
      for (const other of labels) {
        const budgets = budgetsOf(other, mode);
        const isReference = budgets.length === 1 && budgets[0] === largest;
        const at = budgets.includes(budget) ? budget : isReference ? largest : null;
        if (at === null) continue;
        comparisons.push(comparePaired(rows, on, { policyLabel: policy, budget }, { policyLabel: other, budget: at }, options));
      }
    }
  }
  const lower = lowerIsBetter(metric);
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const seed = options.seed ?? BOOTSTRAP_SEED;
  const lines = [
    `${taskTitle(task)}: ${policy} (A) vs each other policy (B), paired by sample; ${metricLabel(metric)}, ` +
      `A − B: mean [95% interval]${lower ? " (negative: A better)" : " (positive: A better)"}, two-sided p, n = samples scored in both. ` +
      `Tests: exact McNemar with Newcombe's method-10 interval for 0/1 scores; paired bootstrap (${resamples} resamples, seed ${seed}, ` +
      "percentile interval) otherwise.",
    "",
    row(["mode", `${policy} budget`, "B", "A − B [95% CI]", "p", "n", "test"]),
    row(["---", "---:", "---", "---:", "---:", "---:", "---"]),
    ...comparisons.map((c) =>
      row([
        c.mode,
        fmtBudget(c.a.budget),
        c.b.budget === c.a.budget ? c.b.policyLabel : `${c.b.policyLabel} @ ${fmtBudget(c.b.budget)}`,
        c.test ? fmtDifference(c.test) : "no common sample",
        c.test ? fmtP(c.test.p) : "",
        String(c.n),
        c.test ? testName(c.test.method) : "",
      ]),
    ),
  ];
  return lines.join("\n");
}
