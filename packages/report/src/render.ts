/** `renderReport(dir)`: results folder → <dir>/report.html. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { keyFindings } from "./findings.js";
import { loadLibraries, renderHtml } from "./html.js";
import { loadResults, ReportInputError } from "./load.js";
import { buildSpecs } from "./specs.js";

/**
 * Reads an experiment's results folder (results.jsonl, summary.json, heads/*.json), writes the self-contained
 * <dir>/report.html and returns its path. Unreadable or malformed inputs throw ReportInputError naming the file.
 */
export async function renderReport(resultsDir: string): Promise<string> {
  const data = loadResults(resultsDir);
  const specs = buildSpecs(data.rows, data.summary, data.heads);
  const html = renderHtml({ data, specs, findings: keyFindings(data.summary, data.rows, data.heads), libraries: loadLibraries() });
  const path = join(resultsDir, "report.html");
  try {
    writeFileSync(path, html);
  } catch (error) {
    throw new ReportInputError(`${path}: cannot write the report (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return path;
}
