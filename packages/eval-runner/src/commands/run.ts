import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import { RazorkvError } from "@razorkv/core";
import { renderReport, ReportInputError } from "@razorkv/report";
import { loadLanguageModel } from "@razorkv/model-zoo";
import { loadManifest } from "../manifest.js";
import { checkPolicies, runExperiment, sweepCells, taskSamples } from "../experiment.js";
import { findInfeasible, type SampleUnit } from "../feasibility.js";
import { estimateSweep } from "../estimate.js";
import { formatDuration } from "../progress.js";
import type { Sample } from "../tasks/index.js";

const DEFAULT_MANIFEST = "experiments/default.yaml";

export function runCommand(): Command {
  return new Command("run")
    .description(`run an experiment manifest (default ${DEFAULT_MANIFEST}); rerunning resumes where it stopped`)
    .argument("[manifest]", "YAML experiment manifest", DEFAULT_MANIFEST)
    .option("--dry-run", "print the number of cells and samples and an estimate of the time, then stop", false)
    .option("--no-share-prefill", "prefill every cell separately (the naive protocol), for comparison")
    .option("--no-report", "do not render report.html at the end")
    .option("--out <dir>", "results folder instead of the manifest's (e.g. to rerun a committed experiment and diff results.csv)")
    .action(async (path: string, opts: { dryRun: boolean; sharePrefill: boolean; report: boolean; out?: string }) => {
      if (!existsSync(path)) throw new RazorkvError(`${path}: no such manifest`);
      const loaded = loadManifest(path);
      const manifest = opts.out ? { ...loaded, output: resolve(opts.out) } : loaded;
      await checkPolicies(manifest);
      if (opts.dryRun) {
        for (const modelRef of manifest.models) {
          const lm = await loadLanguageModel(modelRef);
          const samples: Sample[] = [];
          const units: SampleUnit[] = [];
          for (const t of manifest.tasks) {
            for (const s of taskSamples(t, lm.tokenizer, manifest.seed)) {
              for (const mode of t.modes) {
                samples.push(s);
                units.push({ task: t.label, sample: s, mode });
              }
            }
          }
          const budgets = manifest.policies.flatMap((p) => p.budgets);
          const e = estimateSweep(lm, samples, budgets, opts.sharePrefill);
          process.stdout.write(
            `${manifest.name} on ${modelRef}: ${e.samples} samples × ${e.cells} cells = ${e.samples * e.cells} result rows; ` +
              `${e.prefillTokens} prefill tokens, ${e.decodeSteps} answer tokens per cell at most; estimated ${formatDuration(e.seconds * 1000)} at most ` +
              `(${opts.sharePrefill ? "shared prefill" : "prefill per cell"}, backend ${lm.model.backend.name})\n`,
          );
          const infeasible = findInfeasible(lm, units, await sweepCells(manifest, modelRef));
          const rows = infeasible.reduce((n, c) => n + c.samples, 0);
          process.stdout.write(`${rows} of those rows will be infeasible${infeasible.length > 0 ? ":" : ""}\n`);
          for (const c of infeasible) {
            process.stdout.write(`  ${c.task} ${c.mode} cell ${c.cell}: ${c.samples} sample${c.samples === 1 ? "" : "s"}, e.g. ${c.firstReason}\n`);
          }
        }
        return;
      }
      const { outDir } = await runExperiment(manifest, { sharePrefill: opts.sharePrefill });
      if (opts.report) {
        let html: string;
        try {
          html = await renderReport(outDir);
        } catch (error) {
          if (error instanceof ReportInputError) throw new RazorkvError(error.message);
          throw error;
        }
        process.stdout.write(`report: ${html}\n`);
      } else {
        process.stdout.write(`results: ${outDir}\n`);
      }
    });
}
