/**
 * examples/kubernetes cannot run here (no cluster), so its Jobs are held to what the CLI and the sharding expect:
 * the sweep Job is Indexed with RAZORKV_SHARD_COUNT equal to its completions, every container runs a razorkv command
 * with options that command has, and the prepare, sweep and merge Jobs agree on the manifest and the results folder.
 * (examples/slurm runs for real in slurm.test.ts.)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { mergeCommand } from "./commands/merge.js";
import { runCommand } from "./commands/run.js";
import { calibrateCommand } from "./commands/calibrate.js";

const DIR = fileURLToPath(new URL("../../../examples/kubernetes/", import.meta.url));

interface Container {
  args: string[];
  env?: { name: string; value: string }[];
}
interface Job {
  kind: string;
  metadata: { name: string };
  spec: { completionMode?: string; completions?: number; parallelism?: number; template: { spec: { containers: Container[]; volumes: unknown[] } } };
}

const job = (file: string) => parse(readFileSync(join(DIR, file), "utf8")) as Job;
const container = (j: Job) => j.spec.template.spec.containers[0];
const envOf = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;

/** Parses `args` with the real command's parser, without running its action. */
function parseArgs(command: ReturnType<typeof runCommand>, args: string[]): { operands: string[]; opts: Record<string, unknown> } {
  command.exitOverride().action(() => {});
  command.parse(args, { from: "user" });
  return { operands: command.args, opts: command.opts() };
}

describe("examples/kubernetes", () => {
  const sweep = job("sweep-job.yaml");
  const prepare = job("prepare-job.yaml");
  const merge = job("merge-job.yaml");

  it("the sweep is an Indexed Job whose pods know the shard count", () => {
    expect(sweep.kind).toBe("Job");
    expect(sweep.spec.completionMode).toBe("Indexed");
    expect(envOf(container(sweep), "RAZORKV_SHARD_COUNT")).toBe(String(sweep.spec.completions));
  });

  it("each Job runs a razorkv command with options it has, on one manifest and one results folder", () => {
    const [runName, ...runArgs] = container(sweep).args;
    expect(runName).toBe("run");
    const run = parseArgs(runCommand(), runArgs);
    const [prepName, ...prepArgs] = container(prepare).args;
    expect(["prepare", "calibrate"]).toContain(prepName);
    const prep = parseArgs(calibrateCommand(), prepArgs);
    expect(prep.opts.manifest).toBe(run.operands[0]);
    const [mergeName, ...mergeArgs] = container(merge).args;
    expect(mergeName).toBe("merge");
    expect(parseArgs(mergeCommand(), mergeArgs).operands).toEqual([run.opts.out]);
  });

  it("the pods that prepare and the pods that read share the cache", () => {
    for (const name of ["XDG_CACHE_HOME", "HF_HOME"]) expect(envOf(container(prepare), name)).toBe(envOf(container(sweep), name));
  });
});
