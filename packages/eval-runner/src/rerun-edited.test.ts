/**
 * Rows are tied to their inputs: rerunning an edited manifest into the same folder recomputes exactly the rows the
 * edit changed, keeps the others, and leaves nothing stale in results.jsonl, results.csv or the report's input.
 * The recomputed rows equal a fresh run's of the edited manifest, bit for bit. Runs the real CLI on the real model.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { registerMissing } from "@razorkv/core/testing";
import { resolveModelRef } from "@razorkv/model-zoo";
import { runManifest } from "./testing/run-cli.js";

const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);
const dir = mkdtempSync(join(tmpdir(), "razorkv-rerun-"));

function manifest(window: number, output: string, prefillProducts: "f32" | "int8" = "f32"): string {
  const path = join(dir, `window-${window}-${output}-${prefillProducts}.yaml`);
  writeFileSync(path, `name: rerun
seed: 3
models: [smollm2-135m-instruct]
prefillProducts: ${prefillProducts}
budgets: [0.5, 0.3]
policies:
  - name: full
    budgets: [1.0]
  - name: streamingllm
  - name: snapkv
    params: { window: ${window} }
tasks:
  - type: passkey
    params: { lengths: [300], depths: [0.5], samplesPerCell: 2, maxNewTokens: 6 }
  - type: repeated-tokens
    params: { lengths: [260], samplesPerLength: 2, continuationTokens: 6 }
output: ${join(dir, output)}
`);
  return path;
}


type CsvRow = Record<string, string>;
const csv = (folder: string): CsvRow[] => parse(readFileSync(join(dir, folder, "results.csv"), "utf8"), { columns: true }) as CsvRow[];
const jsonl = (folder: string) => readFileSync(join(dir, folder, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as CsvRow);

describe("rerunning an edited manifest (real model)", () => {
  if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
  it("recomputes only the edited policy's rows, which equal a fresh run's", async () => {
    await runManifest(manifest(16, "edited"));
    const before = csv("edited");
    expect(before).toHaveLength(4 * 5); // 4 samples × (full + 2 × streamingllm + 2 × snapkv)

    const log = await runManifest(manifest(24, "edited"));
    expect(log).toMatch(/computed 8 rows, kept 12 from .*results\.jsonl/); // snapkv's 2 budgets × 4 samples
    const after = csv("edited");
    const snap = after.filter((r) => r.policy === "snapkv");
    expect(snap).toHaveLength(8);
    expect(snap.every((r) => JSON.parse(r.policyParams).window === 24)).toBe(true);
    // nothing stale: the jsonl the report reads holds the sweep's rows only
    expect(jsonl("edited").map((r) => r.key).sort()).toEqual(after.map((r) => r.key).sort());
    // the untouched rows are the very rows of the first run
    const others = (rows: CsvRow[]) => rows.filter((r) => r.policy !== "snapkv");
    expect(others(after)).toEqual(others(before));

    // recomputing a subset of a sample's cells gives the bits a whole sweep gives
    await runManifest(manifest(24, "fresh"));
    expect(after).toEqual(csv("fresh"));

    // the prefill's arithmetic is an input of every row: 8-bit products recompute all 20, none is kept
    const int8Log = await runManifest(manifest(24, "edited", "int8"));
    expect(int8Log).toMatch(/computed 20 rows, kept 0 from .*results\.jsonl, left out 20 stored rows/);
    expect(int8Log).toMatch(/model smollm2-135m-instruct: .*, int8 prefill products, sha256/); // the model the rows came from
    const int8 = csv("edited");
    expect(int8.map((r) => r.key).filter((k) => after.some((a) => a.key === k))).toEqual([]);
    expect(jsonl("edited").map((r) => r.key).sort()).toEqual(int8.map((r) => r.key).sort());
    expect(int8.every((r) => r.status === "ok")).toBe(true);
    // and every row says so, in results.csv as in the report's raw table: an int8 row cannot pass for an f32 one
    expect(int8.map((r) => r.prefillProducts)).toEqual(int8.map(() => "int8"));
    expect(after.map((r) => r.prefillProducts)).toEqual(after.map(() => "f32"));
  }, 600_000);
});
