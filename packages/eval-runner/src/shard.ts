/**
 * Sharding a sweep over independent processes (a Slurm job array, a Kubernetes Indexed Job, or plain shells): shard
 * K of N runs a deterministic share of the manifest's units — a unit is one (model, task, sample, mode), the one
 * prefill that every cell of the sweep shares — into its own folder `<output>/shards/<K>-of-<N>/`, where no other
 * shard writes. Each shard records the whole sweep's plan (plan.json); `razorkv merge` checks the plans agree and
 * that every planned row is there exactly once, then writes the results a single process would have written.
 *
 * The share is balanced by estimated cost (progress.ts `sampleWork`: a 8K-token sample costs several 1K ones) with
 * the longest-processing-time rule (Graham 1969): units by cost, longest first, each to the least-loaded shard. It is
 * computed per model, so every shard holds about 1/N of each model's work, and depends only on the manifest, the
 * tokenizer and N — every shard computes the same assignment without talking to the others.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RazorkvError } from "@razorkv/core";

/** Shard `index` (0-based) of `count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** "K/N" as the command line and the logs write it. */
export function describeShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/** Parses `--shard K/N` (0 ≤ K < N, integers). Errors name the option and what was found. */
export function parseShard(text: string, where = "--shard"): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new RazorkvError(`${where}: expected K/N (shard K of N, counted from 0, e.g. 0/4), found ${JSON.stringify(text)}`);
  return checkShard(Number(m[1]), Number(m[2]), where);
}

function checkShard(index: number, count: number, where: string): Shard {
  if (!Number.isSafeInteger(count) || count < 1) throw new RazorkvError(`${where}: the shard count must be a positive integer, found ${count}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new RazorkvError(`${where}: shard index ${index} is outside 0…${count - 1} (${count} shards, counted from 0)`);
  }
  return { index, count };
}

/**
 * The shard a scheduler's environment asks for, or undefined outside one:
 * - Slurm job arrays: with RAZORKV_SHARD_COUNT set, SLURM_ARRAY_TASK_ID of RAZORKV_SHARD_COUNT — the form that lets
 *   one task be resubmitted alone (`RAZORKV_SHARD_COUNT=4 sbatch --array=2 …` reruns shard 2/4; examples/slurm sets
 *   it). Without it, SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, for an array of
 *   consecutive ids (`--array=0-7` or `1-8`; a step or a list with gaps has no K/N reading and is refused);
 * - Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX of RAZORKV_SHARD_COUNT (the Job's `completions`; Kubernetes does
 *   not pass the count to the pod, so the Job spec sets it, as examples/kubernetes does).
 * An explicit `--shard` wins over both.
 */
export function shardFromEnv(env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  const slurmId = env.SLURM_ARRAY_TASK_ID;
  const fixedCount = env.RAZORKV_SHARD_COUNT;
  if (slurmId !== undefined && slurmId !== "" && fixedCount !== undefined && fixedCount !== "") {
    return checkShard(Number(slurmId), Number(fixedCount), `Slurm array task ${slurmId} with RAZORKV_SHARD_COUNT=${fixedCount}`);
  }
  if (slurmId !== undefined && slurmId !== "") {
    const id = Number(slurmId);
    const min = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    const max = Number(env.SLURM_ARRAY_TASK_MAX ?? Number.NaN);
    const count = Number(env.SLURM_ARRAY_TASK_COUNT ?? Number.NaN);
    const step = Number(env.SLURM_ARRAY_TASK_STEP ?? 1);
    const where = `Slurm array task ${slurmId} (SLURM_ARRAY_TASK_MIN=${env.SLURM_ARRAY_TASK_MIN}, MAX=${env.SLURM_ARRAY_TASK_MAX}, COUNT=${env.SLURM_ARRAY_TASK_COUNT}, STEP=${env.SLURM_ARRAY_TASK_STEP})`;
    if (step !== 1 || !Number.isFinite(max) || max - min + 1 !== count) {
      throw new RazorkvError(`${where}: shards need an array of consecutive ids (--array=0-${Number.isFinite(count) ? count - 1 : "N"}); pass --shard K/N to choose explicitly`);
    }
    return checkShard(id - min, count, where);
  }
  const k8sIndex = env.JOB_COMPLETION_INDEX;
  if (k8sIndex !== undefined && k8sIndex !== "") {
    const where = `Kubernetes JOB_COMPLETION_INDEX=${k8sIndex}`;
    const count = env.RAZORKV_SHARD_COUNT;
    if (count === undefined || count === "") {
      throw new RazorkvError(`${where}: set RAZORKV_SHARD_COUNT to the Job's completions (Kubernetes does not tell a pod the count), or pass --shard K/N`);
    }
    return checkShard(Number(k8sIndex), Number(count), `${where}, RAZORKV_SHARD_COUNT=${count}`);
  }
  return undefined;
}

/**
 * Longest processing time first: which shard each item goes to, given each item's cost. Ties (equal costs) keep the
 * items' order, and equal loads go to the lowest shard index, so the result depends on nothing but its arguments.
 *
 * @param costs per item, ≥ 0
 * @returns per item, its shard index in [0, count)
 */
export function assignByCost(costs: readonly number[], count: number): number[] {
  const order = costs.map((c, i) => i).sort((a, b) => costs[b] - costs[a] || a - b);
  const load = new Array<number>(count).fill(0);
  const shardOf = new Array<number>(costs.length);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    shardOf[i] = best;
    load[best] += costs[i];
  }
  return shardOf;
}

/** The folder of shard K of N inside a sweep's output folder. */
export function shardDir(output: string, shard: Shard): string {
  return join(output, "shards", `${shard.index}-of-${shard.count}`);
}

/** The shards/ folder's entries look like this; anything else in it is not ours. */
export const SHARD_DIR_PATTERN = /^(\d+)-of-(\d+)$/;

/**
 * plan.json of a shard: enough for `razorkv merge` to check, without a model, that the shards belong together and
 * that every row is there. `order` is the whole sweep's row keys in sweep order (results.csv's order); `assigned`
 * the ones this shard computes.
 */
export interface ShardPlan {
  readonly experiment: string;
  /** SHA-256 of the manifest's text as run: two manifests that differ anywhere are different sweeps. */
  readonly manifestSha256: string;
  /** experiment.ts ROW_VERSION: what a row holds for the same inputs. */
  readonly rowVersion: number;
  readonly shard: Shard;
  readonly order: readonly string[];
  readonly assigned: readonly string[];
}

export const PLAN_FILE = "plan.json";

/** Writes plan.json atomically (aside, then renamed), so a shard killed while writing leaves the old one or none. */
export function writePlan(dir: string, plan: ShardPlan): void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, PLAN_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(plan) + "\n");
  renameSync(`${path}.tmp`, path);
}

/** Reads a shard's plan.json; errors name the file and what is wrong with it. */
export function readPlan(dir: string): ShardPlan {
  const path = join(dir, PLAN_FILE);
  if (!existsSync(path)) throw new RazorkvError(`${dir}: no ${PLAN_FILE}; not a shard folder written by razorkv run --shard (or the shard never started)`);
  let plan: ShardPlan;
  try {
    plan = JSON.parse(readFileSync(path, "utf8")) as ShardPlan;
  } catch {
    throw new RazorkvError(`${path}: not JSON; rerun that shard to rewrite it`);
  }
  const ok =
    typeof plan.experiment === "string" && typeof plan.manifestSha256 === "string" && typeof plan.rowVersion === "number" &&
    Array.isArray(plan.order) && Array.isArray(plan.assigned) && plan.shard && Number.isInteger(plan.shard.index) && Number.isInteger(plan.shard.count);
  if (!ok) throw new RazorkvError(`${path}: expected experiment, manifestSha256, rowVersion, shard, order and assigned; rerun that shard to rewrite it`);
  return plan;
}
