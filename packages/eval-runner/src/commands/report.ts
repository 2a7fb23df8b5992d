/**
 * `razorkv report <results-folder>`: renders <results-folder>/report.html from the files an experiment wrote
 * (results.jsonl, summary.json, profiles/*.json; @razorkv/report reads nothing else) and prints its path. The page is
 * self-contained: it opens from disk with no network.
 */
import { Command } from "commander";
import { RazorkvError } from "@razorkv/core";
import { renderReport, ReportInputError } from "@razorkv/report";

export function reportCommand(): Command {
  return new Command("report")
    .description("render <results-folder>/report.html (self-contained, opens offline) from an experiment's result files")
    .argument("<results-folder>", "an experiment's output folder, the one holding results.jsonl")
    .action(async (folder: string) => {
      let path: string;
      try {
        path = await renderReport(folder);
      } catch (error) {
        // missing folder or file, a line that is not JSON (file:line), a field of the wrong type: the user's to fix
        if (error instanceof ReportInputError) throw new RazorkvError(error.message);
        throw error;
      }
      process.stdout.write(`report: ${path}\n`);
    });
}
