/**
 * `razorkv run [manifest] [--dry-run] [--no-share-prefill] [--no-report] [--out DIR] [--shard K/N]`: runs an experiment
 * manifest into its results folder, resuming what is there. Prints one JSON line on stdout when it is done
 * ({"results", "rows", "infeasible", "report"}, plus "shard" for a shard); progress and logs go to stderr.
 * `--dry-run` prints its plan as text instead. A shard (`--shard`, or a Slurm array task / Kubernetes indexed pod:
 * shard.ts) runs its share into <output>/shards/<K>-of-<N>/ and renders no report; `razorkv merge` does that.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { RazorkvError } from "@razorkv/core";
import { renderReport, ReportInputError } from "@razorkv/report";
import { loadLanguageModel } from "@razorkv/model-zoo";
import { loadManifest } from "../manifest.js";
import { checkPolicies, modelUnits, runExperiment, sweepCells, unitsInShard } from "../experiment.js";
import { findInfeasible, type SampleUnit } from "../feasibility.js";
import { estimateSweep } from "../estimate.js";
import { formatDuration } from "../progress.js";
import type { Sample } from "../tasks/index.js";
import { nonEmpty } from "./parse.js";
import { describeShard, parseShard, shardDir, shardFromEnv, type Shard } from "../shard.js";

const DEFAULT_MANIFEST = "experiments/default.yaml";

export function runCommand(): Command {
  return new Command("run")
    .description(`run an experiment manifest (default ${DEFAULT_MANIFEST}); rerunning resumes where it stopped`)
    .argument("[manifest]", "YAML experiment manifest", DEFAULT_MANIFEST)
    .option("--dry-run", "print the number of cells and samples and an estimate of the time, then stop", false)
    .option("--no-share-prefill", "prefill every cell separately (the naive protocol), for comparison (default: one shared prefill per sample)")
    .option("--no-report", "do not render report.html at the end (default: render it)")
    .addOption(
      new Option("--out <dir>", "results folder instead of the manifest's (default: its output field, else reports/<name>)")
        .argParser(nonEmpty("--out", "a folder")),
    )
    .addOption(
      new Option(
        "--shard <K/N>",
        "run shard K of N (from 0) into <out>/shards/<K>-of-<N>/, then merge with razorkv merge (default: from SLURM_ARRAY_TASK_ID/COUNT, or JOB_COMPLETION_INDEX and RAZORKV_SHARD_COUNT, when set; else the whole sweep)",
      ).argParser((v: string) => parseShard(v)),
    )
    .action(async (path: string, opts: { dryRun: boolean; sharePrefill: boolean; report: boolean; out?: string; shard?: Shard }) => {
      if (!existsSync(path)) throw new RazorkvError(`${path}: no such manifest`);
      const loaded = loadManifest(path);
      const manifest = opts.out ? { ...loaded, output: resolve(opts.out) } : loaded;
      const shard = opts.shard ?? shardFromEnv();
      if (!opts.dryRun) {
        checkOwnFolder(manifest.output, manifest.name, path, opts.out !== undefined);
        if (shard) checkOwnFolder(shardDir(manifest.output, shard), manifest.name, path, opts.out !== undefined);
      }
      await checkPolicies(manifest);
      if (opts.dryRun) {
        for (const modelRef of manifest.models) {
          // the sweep's own model: an int8 manifest on a machine without the native kernels is refused here too
          const lm = await loadLanguageModel(modelRef, { model: { prefillProducts: manifest.prefillProducts } });
          // a shard's plan is its own share of the units, as the run assigns them
          const all = modelUnits(manifest, modelRef, lm);
          const inShard = unitsInShard(all, shard);
          const units: SampleUnit[] = all.filter((_, i) => inShard[i]).map((u) => ({ task: u.task.label, sample: u.sample, mode: u.mode }));
          const samples: Sample[] = units.map((u) => u.sample);
          const budgets = manifest.policies.flatMap((p) => p.budgets);
          const e = estimateSweep(lm, samples, budgets, opts.sharePrefill);
          const share = shard ? `shard ${describeShard(shard)} (${units.length} of the sweep's ${all.length} sample-modes): ` : "";
          process.stdout.write(
            `${share}${manifest.name} on ${modelRef}: ${e.samples} samples × ${e.cells} cells = ${e.samples * e.cells} result rows; ` +
              `${e.prefillTokens} prefill tokens, ${e.decodeSteps} answer tokens per cell at most; estimated ${formatDuration(e.seconds * 1000)} at most ` +
              `(${opts.sharePrefill ? "shared prefill" : "prefill per cell"}, ${manifest.prefillProducts} prefill products, backend ${lm.model.backend.name})\n`,
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
      const { outDir, rows } = await runExperiment(manifest, { sharePrefill: opts.sharePrefill, shard });
      if (shard) {
        const infeasible = rows.filter((r) => r.status === "infeasible").length;
        process.stderr.write(`shard ${describeShard(shard)} done; when every shard is, merge them: razorkv merge ${manifest.output}\n`);
        process.stdout.write(JSON.stringify({ results: outDir, rows: rows.length, infeasible, report: null, shard: describeShard(shard) }) + "\n");
        return;
      }
      const html = opts.report ? await renderResults(outDir) : null;
      const infeasible = rows.filter((r) => r.status === "infeasible").length;
      process.stdout.write(JSON.stringify({ results: outDir, rows: rows.length, infeasible, report: html }) + "\n");
    });
}

/** Renders `<dir>/report.html` and returns its path; a results file the report cannot read is the user's error. */
export async function renderResults(dir: string): Promise<string> {
  try {
    return await renderReport(dir);
  } catch (error) {
    if (error instanceof ReportInputError) throw new RazorkvError(error.message);
    throw error;
  }
}

/** The experiment name a results folder belongs to: its manifest.yaml's `name`, else its first row's, else none. */
export function folderExperiment(dir: string): { name: string; source: string } | undefined {
  const manifestPath = join(dir, "manifest.yaml");
  if (existsSync(manifestPath)) {
    try {
      const name = (parseYaml(readFileSync(manifestPath, "utf8")) as { name?: unknown } | null)?.name;
      if (typeof name === "string") return { name, source: manifestPath };
    } catch {
      // an unreadable copy says nothing; the rows may
    }
  }
  const rowsPath = join(dir, "results.jsonl");
  if (existsSync(rowsPath)) {
    // the first line only: a results file can be hundreds of megabytes
    const fd = openSync(rowsPath, "r");
    const head = Buffer.alloc(64 * 1024);
    const n = readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    const first = head.subarray(0, n).toString("utf8").split("\n")[0];
    try {
      const name = (JSON.parse(first) as { experiment?: unknown }).experiment;
      if (typeof name === "string") return { name, source: rowsPath };
    } catch {
      // a torn or foreign line: the results store reports it with its line number
    }
  }
  return undefined;
}

/**
 * Refuses a results folder written by another manifest. Rows are keyed by their inputs, the experiment's name
 * included, so a run there would take none of its rows and drop them all at the end; the same manifest, edited,
 * keeps its name and reruns into its folder as before.
 */
export function checkOwnFolder(dir: string, name: string, manifestPath: string, fromOut: boolean): void {
  const owner = folderExperiment(dir);
  if (owner === undefined || owner.name === name) return;
  throw new RazorkvError(
    `${manifestPath} (name: ${name}) would run into ${dir}${fromOut ? " (--out)" : ""}, which holds the results of manifest "${owner.name}" ` +
      `(${owner.source}); its rows would be dropped: give another folder with --out, or the same name to continue that experiment`,
  );
}
