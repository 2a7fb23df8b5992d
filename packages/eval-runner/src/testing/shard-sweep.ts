/**
 * Test-only: a small sweep on the real model for the sharding tests (sharding.test.ts, slurm.test.ts), and the
 * comparison a merged folder must pass against a single process's.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderReport } from "@razorkv/report";

/**
 * A manifest with RazorAttention in it (so the shards also carry a prepared head profile), two tasks of unequal
 * lengths (so the cost balance matters) and 8 units × 5 cells = 40 rows; about 10 s in one process on 2 idle cores.
 */
export function writeShardManifest(dir: string, name = "shard-sweep"): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: ${name}
seed: 11
models: [smollm2-135m-instruct]
budgets: [0.5, 0.3]
policies:
  - name: full
    budgets: [1.0]
  - name: streamingllm
  - name: razor
tasks:
  - type: passkey
    params: { lengths: [320], depths: [0.25, 0.75], samplesPerCell: 2, maxNewTokens: 6 }
  - type: repeated-tokens
    params: { lengths: [300], samplesPerLength: 3, continuationTokens: 6 }
  - type: repeated-tokens
    label: repeated-long
    params: { lengths: [1100], samplesPerLength: 1, continuationTokens: 6 }
`);
  return path;
}

/** The files a merge must reproduce byte for byte. */
export const MERGED_FILES = ["results.csv", "summary.json", "manifest.yaml"] as const;

/**
 * Every other file of a results folder, path → content: what the policies prepared (prepared/, heads/). The run's own
 * files and the shards are left out.
 */
export function artefactFiles(dir: string): Map<string, string> {
  const own = new Set(["results.jsonl", "results.csv", "summary.json", "manifest.yaml", "report.html", "shards"]);
  const files = new Map<string, string>();
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(dir, sub)).sort()) {
      const rel = sub === "" ? name : join(sub, name);
      if (sub === "" && own.has(name)) continue;
      if (statSync(join(dir, rel)).isDirectory()) walk(rel);
      else files.set(rel, readFileSync(join(dir, rel), "utf8"));
    }
  };
  walk("");
  return files;
}

/**
 * report.html of the single-process folder `whole`, re-rendered with the wall-clock fields (prefillMs, decodeMs) of
 * the merged rows: the only inputs two runs of one sweep do not share. Equal bytes to the merged report.html mean the
 * merge changed nothing else the report shows.
 */
export async function singleReportWithTimingsOf(whole: string, merged: string): Promise<string> {
  const copy = mkdtempSync(join(tmpdir(), "razorkv-report-"));
  cpSync(whole, copy, { recursive: true });
  const timings = new Map<string, { prefillMs?: number; decodeMs?: number }>();
  for (const line of readFileSync(join(merged, "results.jsonl"), "utf8").split("\n").filter(Boolean)) {
    const r = JSON.parse(line) as { key: string; prefillMs?: number; decodeMs?: number };
    timings.set(r.key, { prefillMs: r.prefillMs, decodeMs: r.decodeMs });
  }
  const rows = readFileSync(join(whole, "results.jsonl"), "utf8").split("\n").filter(Boolean).map((line) => {
    const r = JSON.parse(line) as Record<string, unknown> & { key: string };
    const t = timings.get(r.key);
    if (t && "prefillMs" in r) return JSON.stringify({ ...r, prefillMs: t.prefillMs, decodeMs: t.decodeMs });
    return line;
  });
  writeFileSync(join(copy, "results.jsonl"), rows.map((l) => l + "\n").join(""));
  return readFileSync(await renderReport(copy), "utf8");
}
