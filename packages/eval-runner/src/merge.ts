/**
 * `razorkv merge`: the shards of one sweep (shard.ts) → the results folder a single process would have written:
 * results.jsonl in sweep order, results.csv, summary.json, manifest.yaml and the artefacts the shards' policies
 * prepared. Nothing is merged unless every check passes: one manifest (same text, same row version), every shard
 * 0…N−1 present once, the shards agreeing on the sweep's rows, and every planned row present exactly once. Each
 * refusal is one line naming the folders and what to rerun.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { RazorkvError } from "@razorkv/core";
import type { ResultRow } from "@razorkv/report";
import { clearPreparedArtefacts } from "./prepared-artefacts.js";
import { ResultsStore } from "./results-store.js";
import { describeShard, PLAN_FILE, readPlan, SHARD_DIR_PATTERN, type ShardPlan } from "./shard.js";

/** Files of a shard folder that the merge rebuilds or checks instead of copying. */
const SHARD_OWN_FILES = new Set(["results.jsonl", "results.csv", "summary.json", "report.html", PLAN_FILE, "manifest.yaml"]);

export interface MergeResult {
  readonly outDir: string;
  readonly rows: ResultRow[];
  readonly shards: number;
}

interface FoundShard {
  readonly dir: string;
  readonly plan: ShardPlan;
}

/**
 * Shard folders named by `paths`: a path holding plan.json is a shard; a path with a shards/ folder stands for every
 * `K-of-N` folder in it (what `razorkv run --shard` writes under the manifest's output). A shard folder without
 * plan.json is one whose run has not finished.
 */
export function findShardDirs(paths: readonly string[]): string[] {
  const dirs: string[] = [];
  for (const p of paths) {
    if (!existsSync(p) || !statSync(p).isDirectory()) throw new RazorkvError(`${p}: no such folder`);
    if (existsSync(join(p, PLAN_FILE)) || SHARD_DIR_PATTERN.test(basename(p))) {
      dirs.push(resolve(p));
      continue;
    }
    const shards = join(p, "shards");
    const found = existsSync(shards) ? readdirSync(shards).filter((n) => SHARD_DIR_PATTERN.test(n)).sort() : [];
    if (found.length === 0) throw new RazorkvError(`${p}: neither a shard folder (no ${PLAN_FILE}) nor a results folder with shards/<K>-of-<N>/ in it`);
    dirs.push(...found.map((n) => resolve(shards, n)));
  }
  return [...new Set(dirs)];
}

/** The results folder a set of shard folders merges into by default: the one they all sit in as shards/<K>-of-<N>. */
export function defaultMergeOutput(dirs: readonly string[]): string | undefined {
  const parents = new Set(dirs.map((d) => (basename(dirname(d)) === "shards" ? dirname(dirname(d)) : "")));
  return parents.size === 1 && !parents.has("") ? [...parents][0] : undefined;
}

function describeSweep(s: FoundShard): string {
  return `${s.dir} (experiment "${s.plan.experiment}", manifest sha256 ${s.plan.manifestSha256.slice(0, 12)}, row version ${s.plan.rowVersion})`;
}

/** Checks that `shards` are all the shards of one sweep; returns them by index. */
function checkShards(shards: readonly FoundShard[]): FoundShard[] {
  const first = shards[0];
  for (const s of shards) {
    if (s.plan.manifestSha256 !== first.plan.manifestSha256 || s.plan.experiment !== first.plan.experiment || s.plan.rowVersion !== first.plan.rowVersion) {
      throw new RazorkvError(`cannot merge shards of two sweeps: ${describeSweep(first)} and ${describeSweep(s)}`);
    }
  }
  for (const s of shards) {
    if (s.plan.shard.count !== first.plan.shard.count) {
      throw new RazorkvError(
        `cannot merge a split into ${first.plan.shard.count} shards with one into ${s.plan.shard.count}: ${first.dir} is ${describeShard(first.plan.shard)}, ${s.dir} is ${describeShard(s.plan.shard)}`,
      );
    }
  }
  const n = first.plan.shard.count;
  // Array.from, not new Array(n): flatMap skips the holes of a sparse array, and the holes are what we look for
  const byIndex: (FoundShard | undefined)[] = Array.from({ length: n }, () => undefined);
  for (const s of shards) {
    const seen = byIndex[s.plan.shard.index];
    if (seen) throw new RazorkvError(`shard ${describeShard(s.plan.shard)} given twice: ${seen.dir} and ${s.dir}`);
    byIndex[s.plan.shard.index] = s;
  }
  const missing = byIndex.flatMap((s, i) => (s ? [] : [i]));
  if (missing.length > 0) {
    throw new RazorkvError(
      `shard${missing.length === 1 ? "" : "s"} ${missing.map((i) => `${i}/${n}`).join(", ")} of experiment "${first.plan.experiment}" missing ` +
        `(found ${shards.length} of ${n}); run ${missing.length === 1 ? `it with razorkv run <manifest> --shard ${missing[0]}/${n}` : `each with razorkv run <manifest> --shard K/${n}`}`,
    );
  }
  for (const s of shards) {
    const a = s.plan.order;
    const b = first.plan.order;
    if (a.length !== b.length || a.some((k, i) => k !== b[i])) {
      const i = a.findIndex((k, j) => k !== b[j]);
      throw new RazorkvError(
        `${s.dir} and ${first.dir} ran the same manifest but planned different rows (${a.length} vs ${b.length}, first difference at row ${i < 0 ? Math.min(a.length, b.length) : i}): ` +
          `different model files or harness builds on different machines; rerun one of them where the other ran`,
      );
    }
  }
  const owner = new Map<string, number>();
  for (const s of byIndex as FoundShard[]) {
    for (const key of s.plan.assigned) {
      const other = owner.get(key);
      if (other !== undefined) {
        throw new RazorkvError(`row ${key.slice(0, 12)} is planned by shards ${other}/${n} and ${describeShard(s.plan.shard)}: duplicated unit; rerun both with the same harness`);
      }
      owner.set(key, s.plan.shard.index);
    }
  }
  const unplanned = first.plan.order.filter((k) => !owner.has(k));
  if (unplanned.length > 0) throw new RazorkvError(`${unplanned.length} rows of the sweep belong to no shard (first: ${unplanned[0].slice(0, 12)}); rerun every shard with the same harness`);
  return byIndex as FoundShard[];
}

/** Copies what the shards' policies prepared (e.g. head selections), refusing two shards that disagree on a file. */
function copyArtefacts(shards: readonly FoundShard[], outDir: string): void {
  const source = new Map<string, string>();
  const walk = (root: string, dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (dir === root && (SHARD_OWN_FILES.has(name) || name.endsWith(".tmp"))) continue;
      if (statSync(path).isDirectory()) {
        walk(root, path);
        continue;
      }
      const seen = source.get(rel);
      if (seen === undefined) {
        source.set(rel, path);
      } else if (!readFileSync(seen).equals(readFileSync(path))) {
        throw new RazorkvError(`${seen} and ${path} differ: the shards prepared different artefacts for the same sweep (a cache that changed between them?); rerun one of them`);
      }
    }
  };
  for (const s of shards) walk(s.dir, s.dir);
  for (const [rel, path] of source) {
    mkdirSync(dirname(join(outDir, rel)), { recursive: true });
    cpSync(path, join(outDir, rel));
  }
}

/**
 * Merges the shards in `paths` (shard folders, or results folders holding shards/) into `out` (default: the results
 * folder they sit in). Writes results.jsonl, results.csv, summary.json, manifest.yaml and the prepared artefacts;
 * report.html is the caller's. Throws RazorkvError naming the shard and what to rerun when anything is missing.
 */
export function mergeShards(paths: readonly string[], out?: string): MergeResult {
  const dirs = findShardDirs(paths);
  const unfinished = dirs.filter((d) => !existsSync(join(d, PLAN_FILE)));
  if (unfinished.length > 0) {
    throw new RazorkvError(
      `${unfinished.join(", ")}: ${unfinished.length === 1 ? "this shard has" : "these shards have"} not finished (no ${PLAN_FILE}); rerun ${unfinished.length === 1 ? "it" : "them"} with the same --shard (it resumes)`,
    );
  }
  const shards = checkShards(dirs.map((dir) => ({ dir, plan: readPlan(dir) })));
  const outDir = resolve(out ?? defaultMergeOutput(dirs) ?? "");
  if (out === undefined && defaultMergeOutput(dirs) === undefined) {
    throw new RazorkvError(`the shard folders sit in different results folders (${dirs.join(", ")}): say where to merge with --out`);
  }
  const plan = shards[0].plan;
  const rows = new Map<string, string>();
  for (const s of shards) {
    const text = existsSync(join(s.dir, "results.jsonl")) ? readFileSync(join(s.dir, "results.jsonl"), "utf8") : "";
    const present = new Map<string, string>();
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const key = (JSON.parse(line) as { key?: unknown }).key;
      if (typeof key === "string") present.set(key, line);
    }
    const lacking = s.plan.assigned.filter((k) => !present.has(k));
    if (lacking.length > 0) {
      throw new RazorkvError(
        `shard ${describeShard(s.plan.shard)} (${s.dir}) lacks ${lacking.length} of its ${s.plan.assigned.length} rows; rerun it with --shard ${describeShard(s.plan.shard)} (it resumes)`,
      );
    }
    for (const k of s.plan.assigned) rows.set(k, present.get(k)!);
  }
  mkdirSync(outDir, { recursive: true });
  cpSync(join(shards[0].dir, "manifest.yaml"), join(outDir, "manifest.yaml"));
  // as a run does: the folder holds what this sweep's policies prepared, not an earlier sweep's
  clearPreparedArtefacts(outDir);
  copyArtefacts(shards, outDir);
  const store = ResultsStore.open(outDir);
  try {
    store.append(plan.order.filter((k) => !store.has(k)).map((k) => JSON.parse(rows.get(k)!) as ResultRow));
    const { rows: merged } = store.finalize(plan.experiment, plan.order);
    return { outDir, rows: merged, shards: shards.length };
  } finally {
    store.close();
  }
}
