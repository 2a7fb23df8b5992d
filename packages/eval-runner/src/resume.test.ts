/**
 * An experiment killed with SIGKILL halfway and rerun ends with the same results.csv as an uninterrupted run, row
 * for row, and results.jsonl holds each row once. Runs the real CLI on the real model (small contexts).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { registerMissing } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";
import { CLI, runManifest } from "./testing/run-cli.js";

const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);

const dir = mkdtempSync(join(tmpdir(), "razorkv-resume-"));
function manifest(name: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: resume
seed: 7
models: [smollm2-135m-instruct]
budgets: [0.5, 0.3]
policies:
  - name: full
    budgets: [1.0]
  - name: streamingllm
  - name: h2o
  - name: snapkv
tasks:
  - type: passkey
    params: { lengths: [320], depths: [0.2, 0.8], samplesPerCell: 3, maxNewTokens: 6 }
  - type: repeated-tokens
    params: { lengths: [300], samplesPerLength: 4, continuationTokens: 6 }
output: ${join(dir, name)}
`);
  return path;
}


function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "") : [];
}

describe("resuming an interrupted experiment (real model)", () => {
  if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
  it("SIGKILL halfway, rerun: results.csv equals an uninterrupted run's, no row lost or duplicated", async () => {
    await runManifest(manifest("whole"));
    const expected = readFileSync(join(dir, "whole", "results.csv"), "utf8");
    const totalRows = lines(join(dir, "whole", "results.jsonl")).length;
    expect(totalRows).toBe(10 * 7); // (2 depths × 3 + 4) samples × 7 cells

    const path = manifest("killed");
    const jsonl = join(dir, "killed", "results.jsonl");
    const child = spawn(process.execPath, [CLI, "run", path, "--no-report"], { stdio: "ignore" });
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (lines(jsonl).length >= totalRows / 2) {
          clearInterval(timer);
          child.kill("SIGKILL");
          resolve();
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(timer);
        reject(new Error("the run finished before it could be killed halfway"));
      });
    });
    const atKill = lines(jsonl).length;
    expect(atKill).toBeLessThan(totalRows);
    expect(existsSync(join(dir, "killed", "results.csv"))).toBe(false);

    await runManifest(path);
    const rows = lines(jsonl).map((l) => JSON.parse(l) as { sampleId: string; cell: string; task: string });
    const keys = rows.map((r) => `${r.task}|${r.sampleId}|${r.cell}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(rows).toHaveLength(totalRows);
    expect(readFileSync(join(dir, "killed", "results.csv"), "utf8")).toBe(expected);
  }, 600_000);
});
