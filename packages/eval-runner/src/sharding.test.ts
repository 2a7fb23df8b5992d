/**
 * A sweep run as three shards, one after the other, then merged, equals the same sweep run in one process: results.csv,
 * summary.json and manifest.yaml byte for byte, report.html too once the wall-clock columns agree. And `razorkv merge`
 * refuses, in one line, what would lose or duplicate a row. Real model, real CLI. (slurm.test.ts runs the same sweep
 * as a Slurm job array.)
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { registerMissing } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";
import { CLI } from "./testing/run-cli.js";
import { artefactFiles, MERGED_FILES, singleReportWithTimingsOf, writeShardManifest } from "./testing/shard-sweep.js";

const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, SLURM_ARRAY_TASK_ID: "", JOB_COMPLETION_INDEX: "" } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("a sweep in shards, merged (real model)", () => {
  if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
  const dir = mkdtempSync(join(tmpdir(), "razorkv-shards-"));
  const manifest = writeShardManifest(dir);
  const whole = join(dir, "whole");
  const sharded = join(dir, "sharded");

  beforeAll(async () => {
    const single = await cli(["run", manifest, "--out", whole]);
    expect(single.code, single.stderr).toBe(0);
    for (const k of [0, 1, 2]) {
      const shard = await cli(["run", manifest, "--out", sharded, "--shard", `${k}/3`]);
      expect(shard.code, shard.stderr).toBe(0);
      expect(JSON.parse(shard.stdout)).toMatchObject({ results: join(sharded, "shards", `${k}-of-3`), shard: `${k}/3`, report: null });
    }
  }, 600_000);

  it("each shard holds its share only, and the shares are balanced by cost", () => {
    const plans = [0, 1, 2].map((k) => JSON.parse(readFileSync(join(sharded, "shards", `${k}-of-3`, "plan.json"), "utf8")) as { order: string[]; assigned: string[] });
    const all = plans.flatMap((p) => p.assigned);
    expect(new Set(all).size).toBe(all.length);
    expect(new Set(all)).toEqual(new Set(plans[0].order));
    expect(plans[0].order).toHaveLength(40);
    // 5 cells per unit: a share is whole units
    for (const p of plans) expect(p.assigned.length % 5).toBe(0);
    // the one 1100-token unit outweighs any other, so LPT gives it a shard with fewer units
    expect(Math.min(...plans.map((p) => p.assigned.length))).toBeLessThan(Math.max(...plans.map((p) => p.assigned.length)));
  });

  it("--dry-run --shard plans the shard's own share: the rows its run computed, and the shares add up to the sweep", async () => {
    const rowsOf = (stdout: string) => Number(/= (\d+) result rows/.exec(stdout)?.[1]);
    const whole = await cli(["run", manifest, "--out", sharded, "--dry-run"]);
    expect(whole.code, whole.stderr).toBe(0);
    expect(rowsOf(whole.stdout)).toBe(40);
    let sum = 0;
    for (const k of [0, 1, 2]) {
      const r = await cli(["run", manifest, "--out", sharded, "--dry-run", "--shard", `${k}/3`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^shard ${k}/3 \\(\\d+ of the sweep's 8 sample-modes\\): `));
      const plan = JSON.parse(readFileSync(join(sharded, "shards", `${k}-of-3`, "plan.json"), "utf8")) as { assigned: string[] };
      expect(rowsOf(r.stdout)).toBe(plan.assigned.length);
      sum += rowsOf(r.stdout);
    }
    expect(sum).toBe(40);
  }, 120_000);

  it("merging a shard that has not finished is refused, naming it and the rerun", async () => {
    const plan = join(sharded, "shards", "1-of-3", "plan.json");
    renameSync(plan, `${plan}.away`);
    try {
      const r = await cli(["merge", sharded]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`razorkv: ${join(sharded, "shards", "1-of-3")}: this shard has not finished (no plan.json); rerun it with the same --shard (it resumes)\n`);
    } finally {
      renameSync(`${plan}.away`, plan);
    }
  });

  it("merged: results.csv, summary.json and manifest.yaml equal the single run's byte for byte; report.html too, wall-clock aside", async () => {
    const r = await cli(["merge", sharded]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ results: sharded, rows: 40, infeasible: 0, shards: 3, report: join(sharded, "report.html") });
    for (const f of MERGED_FILES) expect(readFileSync(join(sharded, f), "utf8"), f).toBe(readFileSync(join(whole, f), "utf8"));
    // what the policies prepared (RazorAttention's head profile and selection), made by each shard, is carried over
    const artefacts = artefactFiles(whole);
    expect(artefacts.size).toBeGreaterThan(0);
    expect(artefactFiles(sharded)).toEqual(artefacts);
    expect(readFileSync(join(sharded, "report.html"), "utf8")).toBe(await singleReportWithTimingsOf(whole, sharded));
  });

  it("shards of two manifests are refused in one line naming both", async () => {
    const other = writeShardManifest(dir, "other-sweep");
    writeFileSync(other, readFileSync(other, "utf8").replace("samplesPerLength: 3", "samplesPerLength: 2"));
    const otherOut = join(dir, "other");
    const r0 = await cli(["run", other, "--out", otherOut, "--shard", "0/3"]);
    expect(r0.code, r0.stderr).toBe(0);
    const a = join(sharded, "shards", "1-of-3");
    const b = join(otherOut, "shards", "0-of-3");
    const r = await cli(["merge", a, b, "--out", join(dir, "mixed")]);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^razorkv: cannot merge shards of two sweeps: ${a} \\(experiment "shard-sweep", manifest sha256 [0-9a-f]{12}, row version \\d+\\) and ${b} \\(experiment "other-sweep", manifest sha256 [0-9a-f]{12}, row version \\d+\\)\\n$`));
    expect(existsSync(join(dir, "mixed", "results.csv"))).toBe(false);
  }, 120_000);

  it("a missing shard is named, with the command that runs it", async () => {
    const r = await cli(["merge", join(sharded, "shards", "0-of-3"), join(sharded, "shards", "2-of-3"), "--out", join(dir, "partial")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('razorkv: shard 1/3 of experiment "shard-sweep" missing (found 2 of 3); run it with razorkv run <manifest> --shard 1/3\n');
  });
});
