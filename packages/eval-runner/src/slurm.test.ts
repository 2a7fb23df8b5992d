/**
 * A sweep on a real Slurm: a single-node cluster on localhost (Debian's munge, slurmctld, slurmd, started here in a
 * temp folder), the sweep submitted with examples/slurm/submit.sh as written (a 3-task job array, then the merge job
 * queued with --dependency=afterok), compared with the same sweep in one process. Then an array task killed halfway
 * and resubmitted alone: the merge completes with no row lost or duplicated. Real model, real CLI. Needs root; in CI
 * (.ci/run installs Slurm) a missing cluster fails the test instead of skipping it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerMissing } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";
import { CLI } from "./testing/run-cli.js";
import { artefactFiles, MERGED_FILES, singleReportWithTimingsOf, writeShardManifest } from "./testing/shard-sweep.js";
import { slurmMissing, startSlurm, type SlurmCluster } from "./testing/slurm-cluster.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples", "slurm");
const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);
const missing = slurmMissing();

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "") : [];
}

describe("a sweep as a Slurm job array (real single-node Slurm, real model)", () => {
  if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
  if (missing) return registerMissing("a single-node Slurm cluster", missing);
  const dir = mkdtempSync(join(tmpdir(), "razorkv-slurm-"));
  const manifest = writeShardManifest(dir);
  const whole = join(dir, "whole");
  let slurm: SlurmCluster;

  beforeAll(async () => {
    slurm = await startSlurm(join(dir, "cluster"));
    const single = spawnSync(process.execPath, [CLI, "run", manifest, "--out", whole], { encoding: "utf8", cwd: ROOT });
    expect(single.status, single.stderr).toBe(0);
  }, 600_000);
  afterAll(() => slurm?.stop());

  it("examples/slurm/submit.sh: a 3-task array, then the merge job (afterok), equals the single process byte for byte", async () => {
    const out = join(dir, "array");
    const submitted = JSON.parse(slurm.run(join(EXAMPLES, "submit.sh"), [manifest, "3", out, `--output=${join(dir, "job-%A_%a.log")}`], { cwd: ROOT })) as {
      array: string; merge: string; results: string;
    };
    await slurm.waitIdle([submitted.array, submitted.merge], 900_000);
    expect(slurm.states(submitted.array)).toEqual({ [`${submitted.array}_0`]: "COMPLETED", [`${submitted.array}_1`]: "COMPLETED", [`${submitted.array}_2`]: "COMPLETED" });
    expect(slurm.states(submitted.merge)).toEqual({ [submitted.merge]: "COMPLETED" });
    for (const k of [0, 1, 2]) expect(existsSync(join(out, "shards", `${k}-of-3`, "plan.json"))).toBe(true);
    for (const f of MERGED_FILES) expect(readFileSync(join(out, f), "utf8"), f).toBe(readFileSync(join(whole, f), "utf8"));
    expect(artefactFiles(out)).toEqual(artefactFiles(whole));
    expect(readFileSync(join(out, "report.html"), "utf8")).toBe(await singleReportWithTimingsOf(whole, out));
  }, 900_000);

  it("an array task killed halfway and resubmitted alone: the merge has every row once", async () => {
    const out = join(dir, "killed");
    const sbatch = (args: string[], env: Record<string, string> = {}) =>
      spawnSync("sbatch", ["--parsable", `--output=${join(dir, "killed-%A_%a.log")}`, ...args, join(EXAMPLES, "sweep.sbatch"), manifest, "--out", out], {
        cwd: ROOT, encoding: "utf8", env: { ...slurm.env, ...env },
      });
    const first = sbatch(["--array=0-2"], { RAZORKV_SHARD_COUNT: "3" });
    expect(first.status, first.stderr).toBe(0);
    const jobId = first.stdout.trim();
    // kill task 1 once it has written a row, before it can finish its share
    const rows1 = join(out, "shards", "1-of-3", "results.jsonl");
    const deadline = Date.now() + 600_000;
    while (lines(rows1).length === 0) {
      if (Date.now() > deadline) throw new Error(`array task ${jobId}_1 wrote no row in 10 minutes`);
      await new Promise((r) => setTimeout(r, 50));
    }
    slurm.run("scancel", ["--signal=KILL", `${jobId}_1`]);
    await slurm.waitIdle([jobId], 900_000);
    expect(slurm.states(jobId)[`${jobId}_1`]).toMatch(/CANCELLED|FAILED/);
    expect(lines(rows1).length).toBeGreaterThan(0);
    expect(existsSync(join(out, "shards", "1-of-3", "plan.json"))).toBe(false);

    // merging now is refused, naming the shard
    const early = spawnSync(process.execPath, [CLI, "merge", out], { encoding: "utf8" });
    expect(early.status).toBe(1);
    expect(early.stderr).toContain(`${join(out, "shards", "1-of-3")}: this shard has not finished (no plan.json); rerun it with the same --shard (it resumes)`);

    // resubmitted alone: a one-task array, told the count
    const again = sbatch(["--array=1"], { RAZORKV_SHARD_COUNT: "3" });
    expect(again.status, again.stderr).toBe(0);
    await slurm.waitIdle([again.stdout.trim()], 900_000);
    const resumed = readFileSync(join(dir, `killed-${again.stdout.trim()}_1.log`), "utf8");
    expect(resumed).toMatch(/resuming: [1-9]\d* rows already in/);

    const merged = spawnSync(process.execPath, [CLI, "merge", out], { encoding: "utf8" });
    expect(merged.status, merged.stderr).toBe(0);
    const keys = lines(join(out, "results.jsonl")).map((l) => (JSON.parse(l) as { key: string }).key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(lines(join(whole, "results.jsonl")).length);
    for (const f of MERGED_FILES) expect(readFileSync(join(out, f), "utf8"), f).toBe(readFileSync(join(whole, f), "utf8"));
  }, 900_000);
});
