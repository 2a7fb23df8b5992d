/**
 * `razorkv merge <folder…> [--out DIR] [--no-report]`: the shards of a sweep (`razorkv run --shard K/N`, a Slurm job
 * array, a Kubernetes Indexed Job) → one results folder, as a single process would have written it (merge.ts), then
 * report.html. Prints one JSON line on stdout ({"results", "rows", "infeasible", "shards", "report"}).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { defaultMergeOutput, findShardDirs, mergeShards } from "../merge.js";
import { checkOwnFolder, renderResults } from "./run.js";
import { nonEmpty } from "./parse.js";

export function mergeCommand(): Command {
  return new Command("merge")
    .description("merge the shards of a sweep (razorkv run --shard K/N) into its results folder and render its report")
    .argument("<folders...>", "a results folder holding shards/<K>-of-<N>/, or shard folders themselves")
    .addOption(new Option("--out <dir>", "results folder to merge into (default: the one the shards sit in)").argParser(nonEmpty("--out", "a folder")))
    .option("--no-report", "do not render report.html (default: render it)")
    .action(async (folders: string[], opts: { out?: string; report: boolean }) => {
      const dirs = findShardDirs(folders);
      const target = opts.out ?? defaultMergeOutput(dirs);
      const manifestCopy = join(dirs[0], "manifest.yaml");
      if (target !== undefined && existsSync(manifestCopy)) {
        const name = (parseYaml(readFileSync(manifestCopy, "utf8")) as { name?: unknown } | null)?.name;
        if (typeof name === "string") checkOwnFolder(target, name, manifestCopy, opts.out !== undefined);
      }
      const { outDir, rows, shards } = mergeShards(dirs, opts.out);
      const html = opts.report ? await renderResults(outDir) : null;
      const infeasible = rows.filter((r) => r.status === "infeasible").length;
      process.stderr.write(`merged ${shards} shards: ${rows.length} rows (${infeasible} infeasible) into ${outDir}\n`);
      process.stdout.write(JSON.stringify({ results: outDir, rows: rows.length, infeasible, shards, report: html }) + "\n");
    });
}
