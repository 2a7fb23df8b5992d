/**
 * `razorkv report <results-folder>`: renders <results-folder>/report.html from the files an experiment wrote
 * (results.jsonl, summary.json, profiles/*.json; @razorkv/report reads nothing else) and prints its path as one JSON
 * line. The page is self-contained: it opens from disk with no network. `--markdown` prints the summary's tables
 * instead, for a README.
 */
import { Command } from "commander";
import { RazorkvError } from "@razorkv/core";
import {
  budgetRetention, loadResults, pairedTableMarkdown, renderReport, ReportInputError, retentionTableMarkdown, scoreTableMarkdown,
  type ResultRow, type Summary,
} from "@razorkv/report";

/**
 * Per task: the score table of every mode, then the 95%-retention table (tasks without a Full reference skip it),
 * then, with `pairedPolicy`, that policy's paired comparisons with every other policy of the task.
 */
export function summaryMarkdown(summary: Summary, rows: readonly ResultRow[] = [], pairedPolicy?: string): string {
  const tasks = [...new Set(summary.cells.map((c) => c.task))];
  const withReference = new Set(budgetRetention(summary).map((f) => f.task));
  const parts: string[] = [];
  for (const task of tasks) {
    const modes = [...new Set(summary.cells.filter((c) => c.task === task).map((c) => c.mode))];
    parts.push(`### ${task}`, "", ...modes.flatMap((mode) => [scoreTableMarkdown(summary, task, mode), ""]));
    if (withReference.has(task)) parts.push("Smallest budget keeping 95% of Full's score:", "", retentionTableMarkdown(summary, task), "");
    if (pairedPolicy !== undefined && rows.some((r) => r.task === task && r.policyLabel === pairedPolicy)) {
      parts.push(pairedTableMarkdown(rows, { task, policy: pairedPolicy }), "");
    }
  }
  return parts.join("\n");
}

export function reportCommand(): Command {
  return new Command("report")
    .description("render <results-folder>/report.html (self-contained, opens offline) from an experiment's result files")
    .argument("<results-folder>", "an experiment's output folder, the one holding results.jsonl")
    .option("--markdown", "print Markdown tables of the summary (score vs budget, smallest budget keeping 95% of Full) instead (default: render report.html)")
    .option("--paired <label>", "with --markdown: also the paired tests of policy <label> against every other policy of each task (default: none)")
    .action(async (folder: string, options: { markdown?: boolean; paired?: string }) => {
      try {
        if (options.paired !== undefined && !options.markdown) throw new RazorkvError("--paired: only with --markdown (report.html always holds the paired tests)");
        if (options.markdown) {
          const data = loadResults(folder);
          if (options.paired !== undefined && !data.rows.some((r) => r.policyLabel === options.paired)) {
            const labels = [...new Set(data.rows.map((r) => r.policyLabel))].join(", ");
            throw new RazorkvError(`--paired: no policy labelled "${options.paired}" in ${folder}; its labels are ${labels}`);
          }
          process.stdout.write(summaryMarkdown(data.summary, data.rows, options.paired));
          return;
        }
        process.stdout.write(JSON.stringify({ report: await renderReport(folder) }) + "\n");
      } catch (error) {
        // missing folder or file, a line that is not JSON (file:line), a field of the wrong type: the user's to fix
        if (error instanceof ReportInputError) throw new RazorkvError(error.message);
        throw error;
      }
    });
}
