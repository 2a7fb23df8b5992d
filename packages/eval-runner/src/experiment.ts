/**
 * An experiment end to end: manifest → policies (resolved by package name, params validated) → per model: load,
 * RazorAttention profiles, samples → per sample and mode: one shared prefill fanned out to every cell → rows in the
 * results store → results.csv and summary.json. Everything that can be checked without the model is checked first.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPolicy, describeBudget, RazorkvError, type CompressionPolicy } from "@razorkv/core";
import { loadLanguageModel, type LanguageModel } from "@razorkv/model-zoo";
import { loadOrCalibrate } from "@razorkv/policy-razor";
import type { Mode, ResultRow } from "@razorkv/report";
import type { Manifest, PolicySpec, TaskSpec } from "./manifest.js";
import { createProgress, formatDuration, sampleWork } from "./progress.js";
import { ResultsStore, rowKey } from "./results-store.js";
import { runSample, type Cell } from "./scheduler.js";
import { TASKS, type Sample } from "./tasks/index.js";
import { writeUsedProfile } from "./used-profiles.js";

export interface RunOptions {
  /** Share one prefill across all cells of a sample (default) or prefill per cell (the naive protocol). */
  readonly sharePrefill: boolean;
  readonly log?: (line: string) => void;
}

/** Policies of the manifest, instantiated once per model (razor's "auto" profile is per model). */
async function instantiate(spec: PolicySpec, modelRef: string): Promise<CompressionPolicy> {
  try {
    return await createPolicy(spec.name, spec.params, { context: { modelRef } });
  } catch (error) {
    if (error instanceof RazorkvError) throw new RazorkvError(`${spec.where}: ${error.message}`);
    throw error;
  }
}

/** Validates every policy package and its params against the manifest before any model loads. */
export async function checkPolicies(manifest: Manifest): Promise<void> {
  for (const spec of manifest.policies) await instantiate(spec, manifest.models[0]);
}

export function cellId(label: string, budget: Cell["budget"]): string {
  return `${label}@${describeBudget(budget)}`;
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

interface Unit {
  readonly modelRef: string;
  readonly task: string;
  readonly sample: Sample;
  readonly mode: Mode;
}

export async function runExperiment(manifest: Manifest, options: RunOptions): Promise<{ rows: ResultRow[]; outDir: string; elapsedMs: number }> {
  const log = options.log ?? ((line) => process.stderr.write(line + "\n"));
  const started = Date.now();
  await checkPolicies(manifest);
  const store = ResultsStore.open(manifest.output);
  writeFileSync(join(manifest.output, "manifest.yaml"), manifest.text);
  if (store.completedCount > 0) log(`resuming: ${store.completedCount} rows already in ${store.jsonlPath}`);
  const order: string[] = [];

  for (const modelRef of manifest.models) {
    const lm = await loadLanguageModel(modelRef);
    log(`model ${modelRef}: ${lm.model.config.numLayers} layers, ${lm.model.config.numKvHeads} KV heads, backend ${lm.model.backend.name}`);
    const cells = await modelCells(manifest, modelRef, lm, log);
    const units = modelUnits(manifest, modelRef, lm);
    const keysOf = (u: Unit) => cells.map((c) => rowKey({ model: modelRef, task: u.task, sampleId: u.sample.id, mode: u.mode, cell: c.id }));
    for (const u of units) order.push(...keysOf(u));
    // every row of a sample costs the same share of its prefill and decode
    const rowWork = (u: Unit) => sampleWork(u.sample.contextLength);
    const total = { rows: units.length * cells.length, work: units.reduce((w, u) => w + rowWork(u) * cells.length, 0) };
    let done = { rows: 0, work: 0 };
    const add = (u: Unit, rows: number) => (done = { rows: done.rows + rows, work: done.work + rowWork(u) * rows });
    for (const u of units) add(u, keysOf(u).filter((k) => store.has(k)).length);
    const progress = createProgress(total);
    try {
      for (const u of units) {
        const keys = keysOf(u);
        const pending = cells.filter((_, i) => !store.has(keys[i]));
        if (pending.length === 0) continue;
        const ctx = { experiment: manifest.name, modelRef, model: lm.model, tokenizer: lm.tokenizer, task: u.task, mode: u.mode };
        // a sample is recomputed with all its cells, never a subset: the decode batch then has the same rows as in
        // an uninterrupted run, so the native GEMM rounds the same way and a resumed run matches bit for bit
        // (the store keeps the rows it already had)
        const batches = options.sharePrefill ? [cells] : pending.map((c) => [c]);
        for (const batch of batches) {
          const before = store.completedCount;
          store.append(runSample(ctx, u.sample, batch));
          progress.update(add(u, store.completedCount - before), `${u.task} ${u.sample.id} ${u.mode}`);
        }
      }
    } finally {
      progress.stop();
    }
  }
  const { rows } = store.finalize(manifest.name, order);
  store.close();
  const elapsedMs = Date.now() - started;
  log(`wrote ${rows.length} rows to ${join(manifest.output, "results.csv")} in ${formatDuration(elapsedMs)}`);
  return { rows, outDir: manifest.output, elapsedMs };
}

async function modelCells(manifest: Manifest, modelRef: string, lm: LanguageModel, log: (line: string) => void): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const spec of manifest.policies) {
    const policy = await instantiate(spec, modelRef);
    if (policy.name === "razor" && (spec.params.profile ?? "auto") === "auto") {
      const t = Date.now();
      // the calibration input starts with BOS (DESIGN §4), as `razorkv calibrate` builds it
      const { path, fromCache } = loadOrCalibrate({ modelRef, model: lm.model, params: { bosId: lm.tokenizer.bosId ?? null } });
      log(fromCache ? `razor: head profile from ${path}` : `razor: calibrated ${modelRef} in ${formatDuration(Date.now() - t)} → ${path}`);
      writeUsedProfile(manifest.output, modelRef, spec, path);
    }
    for (const budget of spec.budgets) {
      cells.push({ policy, label: spec.label, params: canonicalJson(spec.params), budget, id: cellId(spec.label, budget) });
    }
  }
  return cells;
}

function modelUnits(manifest: Manifest, modelRef: string, lm: LanguageModel): Unit[] {
  const units: Unit[] = [];
  for (const task of manifest.tasks) {
    for (const sample of taskSamples(task, lm.tokenizer, manifest.seed)) {
      for (const mode of task.modes) units.push({ modelRef, task: task.label, sample, mode });
    }
  }
  return units;
}

/** The samples of one manifest task; a task's parameter error is reported at its place in the manifest. */
export function taskSamples(task: TaskSpec, tokenizer: LanguageModel["tokenizer"], seed: number): Sample[] {
  const generate = TASKS[task.type] as (params: unknown, tokenizer: LanguageModel["tokenizer"], seed: number) => Sample[];
  try {
    return generate(task.params, tokenizer, seed);
  } catch (error) {
    if (error instanceof RazorkvError) throw new RazorkvError(`${task.where}: ${error.message}`);
    throw error;
  }
}
