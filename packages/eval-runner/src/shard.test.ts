import { describe, expect, it } from "vitest";
import { assignByCost, parseShard, shardFromEnv } from "./shard.js";

describe("--shard K/N", () => {
  it("parses K/N counted from 0", () => {
    expect(parseShard("0/4")).toEqual({ index: 0, count: 4 });
    expect(parseShard(" 3/4 ")).toEqual({ index: 3, count: 4 });
  });
  it.each([
    ["4/4", "--shard: shard index 4 is outside 0…3 (4 shards, counted from 0)"],
    ["1/0", "--shard: the shard count must be a positive integer, found 0"],
    ["1-4", '--shard: expected K/N (shard K of N, counted from 0, e.g. 0/4), found "1-4"'],
    ["-1/4", '--shard: expected K/N (shard K of N, counted from 0, e.g. 0/4), found "-1/4"'],
  ])("refuses %s in one line", (text, message) => {
    expect(() => parseShard(text)).toThrow(message);
  });
});

describe("the shard a scheduler's environment asks for", () => {
  it("outside a scheduler: none", () => {
    expect(shardFromEnv({})).toBeUndefined();
  });
  it("a Slurm array of consecutive ids, from 0 or from 1", () => {
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "3", SLURM_ARRAY_TASK_COUNT: "4" })).toEqual({ index: 2, count: 4 });
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_MAX: "8", SLURM_ARRAY_TASK_COUNT: "8" })).toEqual({ index: 0, count: 8 });
  });
  it("a Slurm task resubmitted alone: RAZORKV_SHARD_COUNT gives the count its one-task array cannot", () => {
    const lone = { SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_MIN: "2", SLURM_ARRAY_TASK_MAX: "2", SLURM_ARRAY_TASK_COUNT: "1" };
    expect(shardFromEnv(lone)).toEqual({ index: 0, count: 1 });
    expect(shardFromEnv({ ...lone, RAZORKV_SHARD_COUNT: "4" })).toEqual({ index: 2, count: 4 });
  });
  it("refuses an array with a step or gaps, naming the variables", () => {
    expect(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: "4", SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_MAX: "6", SLURM_ARRAY_TASK_COUNT: "4", SLURM_ARRAY_TASK_STEP: "2" }))
      .toThrow("Slurm array task 4 (SLURM_ARRAY_TASK_MIN=0, MAX=6, COUNT=4, STEP=2): shards need an array of consecutive ids (--array=0-3); pass --shard K/N to choose explicitly");
  });
  it("a Kubernetes Indexed Job needs the count from RAZORKV_SHARD_COUNT", () => {
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: "1", RAZORKV_SHARD_COUNT: "3" })).toEqual({ index: 1, count: 3 });
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: "1" })).toThrow(
      "Kubernetes JOB_COMPLETION_INDEX=1: set RAZORKV_SHARD_COUNT to the Job's completions (Kubernetes does not tell a pod the count), or pass --shard K/N",
    );
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: "3", RAZORKV_SHARD_COUNT: "3" })).toThrow("shard index 3 is outside 0…2");
  });
});

describe("longest-processing-time assignment", () => {
  it("matches the rule worked by hand", () => {
    // 8 → s0; 7 → s1; 6 → s2; 5 → s2 (loads 8, 7, 6: least is s2) = 11; 4 → s1 = 11; 3 → s0 = 11
    expect(assignByCost([3, 8, 4, 7, 5, 6], 3)).toEqual([0, 0, 1, 1, 2, 2]);
  });
  it("keeps item order for equal costs and gives equal loads to the lowest shard", () => {
    expect(assignByCost([1, 1, 1, 1, 1], 2)).toEqual([0, 1, 0, 1, 0]);
  });
  it("balances within the largest item of the optimum on a real-looking sweep (Graham's bound)", () => {
    // context lengths 1K-32K as sampleWork weights, repeated as a needle sweep's depths repeat them
    const costs = [1024, 2048, 4096, 8192, 16384, 32768].flatMap((l) => Array.from({ length: 5 }, () => l + 512));
    const shards = assignByCost(costs, 4);
    const load = [0, 0, 0, 0];
    shards.forEach((s, i) => (load[s] += costs[i]));
    const ideal = costs.reduce((a, b) => a + b, 0) / 4;
    expect(Math.max(...load) - ideal).toBeLessThanOrEqual(Math.max(...costs));
    expect(Math.max(...load) / ideal).toBeLessThan(1.1);
  });
  it("every item goes to exactly one shard, and one shard takes all", () => {
    expect(assignByCost([5, 2, 9], 1)).toEqual([0, 0, 0]);
    expect(assignByCost([], 3)).toEqual([]);
  });
});
