/**
 * Markdown tables of an experiment's summary, for a README or a paper draft (`razorkv report <dir> --markdown`):
 * score vs budget per policy, and the smallest budget that keeps 95% of the full cache's score. The committed
 * README's tables are these functions' output on the committed results (a test holds them equal).
 */
import { budgetRetention, type RetentionFinding } from "./findings.js";
import { fmt, fmtBudget, interval } from "./format.js";
import type { Summary, SummaryCell } from "./schema.js";
import { metricLabel, taskTitle } from "./specs.js";

const row = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;

function cellText(c: SummaryCell | undefined): string {
  if (!c) return "";
  const ci = Number.isFinite(c.ciLow) && Number.isFinite(c.ciHigh) ? ` [${fmt(c.ciLow, 2)}, ${fmt(c.ciHigh, 2)}]` : "";
  return `${fmt(c.mean, 2)}${ci}`;
}

/** One task in one mode: a row per policy, a column per budget, "mean [95% interval]" in each cell. */
export function scoreTableMarkdown(summary: Summary, task: string, mode: string): string {
  const cells = summary.cells.filter((c) => c.task === task && c.mode === mode);
  if (cells.length === 0) throw new Error(`no summary cells for task "${task}" in mode ${mode}`);
  const budgets = [...new Set(cells.map((c) => c.budgetNominal))].sort((a, b) => b - a);
  const labels = [...new Set(cells.map((c) => c.policyLabel))];
  const n = [...new Set(cells.map((c) => c.n))];
  const lines = [
    `${taskTitle(task)}, ${mode}: ${metricLabel(cells[0].metric)}, mean [95% interval], n = ${n.join("/")} per cell`,
    "",
    row(["policy", ...budgets.map((b) => `budget ${fmtBudget(b)}`)]),
    row(["---", ...budgets.map(() => "---:")]),
    ...labels.map((l) => row([l, ...budgets.map((b) => cellText(cells.find((c) => c.policyLabel === l && c.budgetNominal === b)))])),
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
