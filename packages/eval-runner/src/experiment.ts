/**
 * An experiment end to end: manifest → policies (resolved by package name, params validated) → per model: load, the
 * policies' per-model preparation (cached; prepared-artefacts.ts), samples → per sample and mode: one shared prefill
 * fanned out to every cell → rows in the results store → results.csv and summary.json. Everything that can be
 * checked without the model is checked first.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalJson, describeBudget, instantiatePolicy, RazorkvError, toKvBudget, type Budget, type CompressionPolicy } from "@razorkv/core";
import { loadLanguageModel, modelDigest, type LanguageModel, type PrefillProducts } from "@razorkv/model-zoo";
import type { AnswerProtocol, Mode, ResultRow } from "@razorkv/report";
import { isPathParam, type Manifest, type TaskSpec } from "./manifest.js";
import { createProgress, formatDuration, sampleWork } from "./progress.js";
import { ResultsStore } from "./results-store.js";
import { runSample, type Cell, type KeyedCell } from "./scheduler.js";
import { TASKS, type Sample } from "./tasks/index.js";
import { assignByCost, describeShard, shardDir, writePlan, type Shard } from "./shard.js";
import { preparationModel } from "./preparation-model.js";
import {
  atSpec, clearPreparedArtefacts, loadSpec, prepareSpecs, writePreparedArtefacts, type LoadedSpec, type SpecPreparation,
} from "./prepared-artefacts.js";

export { canonicalJson };

export interface RunOptions {
  /** Share one prefill across all cells of a sample (default) or prefill per cell (the naive protocol). */
  readonly sharePrefill: boolean;
  /** Run only this shard's share of the units, into its own folder (shard.ts); absent: the whole sweep. */
  readonly shard?: Shard;
  readonly log?: (line: string) => void;
}

/**
 * A manifest entry's policy for one model, with the artefact its preparation step made for that model (absent:
 * nothing prepared — a policy that needs one refuses when used). Errors name the manifest place.
 */
export function instantiate(s: LoadedSpec, modelRef: string, prepared?: unknown): CompressionPolicy {
  const context = { modelRef, ...(prepared !== undefined ? { prepared } : {}) };
  return atSpec(s.spec.where, () => instantiatePolicy(s.definition, s.spec.params, context, s.packageName));
}

/** Loads every policy package of the manifest, in order, and validates its params. */
export async function loadSpecs(manifest: Manifest): Promise<LoadedSpec[]> {
  const specs: LoadedSpec[] = [];
  for (const spec of manifest.policies) specs.push(await loadSpec(spec));
  return specs;
}

/** Validates every policy package and its params against the manifest before any model loads. */
export async function checkPolicies(manifest: Manifest): Promise<void> {
  for (const s of await loadSpecs(manifest)) instantiate(s, manifest.models[0]);
}

export function cellId(label: string, budget: Cell["budget"]): string {
  return `${label}@${describeBudget(budget)}`;
}

export interface Unit {
  readonly modelRef: string;
  readonly task: TaskSpec;
  readonly sample: Sample;
  readonly mode: Mode;
}

/**
 * Bumped whenever the harness changes what a row holds for the same inputs (scoring, answer-time protocol, row
 * fields): rows of an older version are recomputed, never reused. 2: answer protocols, realized budgets at answer
 * time, infeasible rows, whole predictions, documents tokenized as data. 3: weights stay in their file's type, and a
 * generation step multiplies them with 8-bit activations (#19), so a greedy answer can fork after a near-tie
 * (teacher-forced NLLs keep the f32 products); a cell's key holds the digest of its policy's prepared artefact.
 * The row field prefillProducts came without a bump: every older row was prefilled in f32 and reads as such.
 */
export const ROW_VERSION = 3;

/** Everything that can change one result row (DESIGN §3, Determinism). */
export interface RowInputs {
  readonly experiment: string;
  readonly modelRef: string;
  readonly modelDigest: string;
  readonly seed: number;
  readonly protocol: AnswerProtocol;
  /** The manifest's prefillProducts. */
  readonly prefillProducts: PrefillProducts;
  readonly task: Pick<TaskSpec, "type" | "label" | "params">;
  readonly sample: Sample;
  readonly mode: Mode;
  readonly cell: Pick<Cell, "label" | "params" | "budget" | "prepared"> & { readonly policy: string };
}

/**
 * The results store's key of a row: hex SHA-256 of the canonical JSON of its inputs, the sample's whole content
 * (segments and target) and the digest of the policy's prepared artefact (a calibration, head scores) included, so an edited manifest, task file, model file or harness version recomputes
 * exactly the rows it changes. Names (experiment, labels) are in it too: a row carries them, and a renamed cell
 * must not keep its old name.
 */
export function rowKey(inputs: RowInputs): string {
  const { experiment, modelRef, modelDigest, seed, protocol, prefillProducts, task, sample, mode, cell } = inputs;
  const canonical = canonicalJson({
    version: ROW_VERSION, experiment, modelRef, modelDigest, seed, protocol, mode,
    // only when not the default, so that the f32 rows of every existing results folder keep their keys
    ...(prefillProducts !== undefined && prefillProducts !== "f32" ? { prefillProducts } : {}),
    // a path param names where the data sits, not what it is (the sample's content is in the key): leave it out, so
    // that a committed report stays valid in another checkout
    task: { type: task.type, label: task.label, params: Object.fromEntries(Object.entries(task.params).filter(([k]) => !isPathParam(k))) },
    sample,
    cell: { policy: cell.policy, label: cell.label, params: cell.params, budget: cell.budget, ...(cell.prepared !== undefined ? { prepared: cell.prepared } : {}) },
  });
  return createHash("sha256").update(canonical).digest("hex");
}

export async function runExperiment(manifest: Manifest, options: RunOptions): Promise<{ rows: ResultRow[]; outDir: string; elapsedMs: number }> {
  const log = options.log ?? ((line) => process.stderr.write(line + "\n"));
  const started = Date.now();
  await checkPolicies(manifest);
  const { shard } = options;
  const outDir = shard ? shardDir(manifest.output, shard) : manifest.output;
  const store = ResultsStore.open(outDir);
  writeFileSync(join(outDir, "manifest.yaml"), manifest.text);
  if (shard) log(`shard ${describeShard(shard)} of ${manifest.name}: its share of the units into ${outDir}`);
  if (store.completedCount > 0) log(`resuming: ${store.completedCount} rows already in ${store.jsonlPath}`);
  // rewritten below for every model, from the cache: nothing a previous manifest prepared survives
  clearPreparedArtefacts(outDir);
  /** The whole sweep's row keys in sweep order, and (sharded) the ones this shard computes. */
  const order: string[] = [];
  const assigned: string[] = [];

  let recomputed = 0;
  for (const modelRef of manifest.models) {
    const lm = await loadLanguageModel(modelRef, { model: { prefillProducts: manifest.prefillProducts } });
    const digest = modelDigest(lm.loaded);
    log(
      `model ${modelRef}: ${lm.model.config.numLayers} layers, ${lm.model.config.numKvHeads} KV heads, backend ${lm.model.backend.name}, ` +
        `${lm.model.prefillProducts} prefill products, sha256 ${digest.slice(0, 12)}`,
    );
    const cells = await modelCells(manifest, outDir, modelRef, lm, digest, log);
    const allUnits = modelUnits(manifest, modelRef, lm);
    const keyed = (u: Unit): KeyedCell[] =>
      cells.map((cell) => ({
        cell,
        key: rowKey({
          experiment: manifest.name, modelRef, modelDigest: digest, seed: manifest.seed, protocol: manifest.answerProtocol,
          prefillProducts: manifest.prefillProducts, task: u.task, sample: u.sample, mode: u.mode, cell: { policy: cell.policy.name, label: cell.label, params: cell.params, budget: cell.budget, prepared: cell.prepared },
        }),
      }));
    const allUnitCells = allUnits.map(keyed);
    for (const kc of allUnitCells) order.push(...kc.map((c) => c.key));
    // every row of a sample costs the same share of its prefill and decode
    const rowWork = (u: Unit) => sampleWork(u.sample.contextLength);
    const inShard = unitsInShard(allUnits, shard);
    const mine = (_: unknown, i: number) => inShard[i];
    const units = allUnits.filter(mine);
    const unitCells = allUnitCells.filter(mine);
    for (const kc of unitCells) assigned.push(...kc.map((c) => c.key));
    const total = { rows: units.length * cells.length, work: units.reduce((w, u) => w + rowWork(u) * cells.length, 0) };
    let done = { rows: 0, work: 0 };
    const add = (u: Unit, rows: number) => (done = { rows: done.rows + rows, work: done.work + rowWork(u) * rows });
    units.forEach((u, i) => add(u, unitCells[i].filter((c) => store.has(c.key)).length));
    const progress = createProgress(total);
    try {
      units.forEach((u, i) => {
        // only the rows whose inputs changed, or that were never computed: the GEMM gives a row the same bits
        // whatever else is in its batch (kernels-cpu), so a subset of a sample's cells reproduces their rows
        const pending = unitCells[i].filter((c) => !store.has(c.key));
        if (pending.length === 0) return;
        const ctx = {
          experiment: manifest.name, modelRef, modelDigest: digest, model: lm.model, tokenizer: lm.tokenizer,
          task: u.task.label, mode: u.mode, protocol: manifest.answerProtocol,
        };
        const batches = options.sharePrefill ? [pending] : pending.map((c) => [c]);
        for (const batch of batches) {
          const before = store.completedCount;
          store.append(runSample(ctx, u.sample, batch));
          recomputed += store.completedCount - before;
          progress.update(add(u, store.completedCount - before), `${u.task.label} ${u.sample.id} ${u.mode}`);
        }
      });
    } finally {
      progress.stop();
    }
  }
  const { rows, dropped } = store.finalize(manifest.name, shard ? assigned : order);
  store.close();
  // written last: a shard folder with a plan is a finished shard, which is what `razorkv merge` checks for
  if (shard) {
    writePlan(outDir, {
      experiment: manifest.name, manifestSha256: createHash("sha256").update(manifest.text).digest("hex"), rowVersion: ROW_VERSION,
      shard, order, assigned,
    });
  }
  const elapsedMs = Date.now() - started;
  const infeasible = rows.filter((r) => r.status === "infeasible").length;
  log(
    `computed ${recomputed} rows, kept ${rows.length - recomputed} from ${store.jsonlPath}` +
      `${dropped > 0 ? `, left out ${dropped} stored rows whose inputs are no longer in the manifest` : ""}; ` +
      `wrote ${rows.length} rows (${infeasible} infeasible) to ${join(outDir, "results.csv")} in ${formatDuration(elapsedMs)}`,
  );
  return { rows, outDir, elapsedMs };
}

/**
 * One cell per (manifest entry, budget), each entry's policy instantiated with what it prepared. An entry whose
 * artefact a dry run did not find is checked only for the budget's own conversion: what it can keep is known once
 * the run has prepared it.
 */
function cellsOf(preparations: readonly SpecPreparation[], modelRef: string): Cell[] {
  const cells: Cell[] = [];
  for (const p of preparations) {
    const made = instantiate(p, modelRef, p.prepared?.artefact);
    const policy: CompressionPolicy = p.missing
      ? Object.assign(Object.create(made) as CompressionPolicy, { checkFeasible: (n: number, budget: Budget) => void toKvBudget(budget, n) })
      : made;
    const { label, params } = p.spec;
    const prepared = p.prepared ? createHash("sha256").update(canonicalJson(p.prepared.artefact)).digest("hex") : undefined;
    for (const budget of p.spec.budgets) cells.push({ policy, label, params: canonicalJson(params), budget, id: cellId(label, budget), prepared });
  }
  return cells;
}

/**
 * The sweep's cells for one model without preparing anything (what --dry-run checks): artefacts the cache already
 * holds for this model file are used; a policy whose artefact is missing is checked once a run has prepared it.
 * `lm`: the model, when the caller has it loaded (else it is loaded here, only if some policy declares preparation).
 */
export async function sweepCells(manifest: Manifest, modelRef: string, lm?: LanguageModel, log: (line: string) => void = (line) => process.stderr.write(line + "\n")): Promise<Cell[]> {
  const specs = await loadSpecs(manifest);
  if (!specs.some((s) => s.definition.prepare)) return cellsOf(specs.map((s) => ({ ...s, prepared: null })), modelRef);
  const model = lm ?? (await loadLanguageModel(modelRef));
  return cellsOf(prepareSpecs(specs, preparationModel(model, modelDigest(model.loaded)), { cacheOnly: true, log }), modelRef);
}

/**
 * The sweep's cells for one model, after every policy's per-model preparation (run, or found cached for this model
 * file); what was prepared, and the head selections it exports, are copied into the results folder.
 */
async function modelCells(manifest: Manifest, outDir: string, modelRef: string, lm: LanguageModel, digest: string, log: (line: string) => void): Promise<Cell[]> {
  const preparations = prepareSpecs(await loadSpecs(manifest), preparationModel(lm, digest), { log });
  writePreparedArtefacts(outDir, modelRef, preparations);
  return cellsOf(preparations, modelRef);
}

/**
 * Which of a model's units (in sweep order) shard `shard` computes: all of them without a shard, else its share of
 * assignByCost over each unit's progress cost (sampleWork of its context). The run and `--dry-run` both ask here.
 */
export function unitsInShard(units: readonly Unit[], shard: Shard | undefined): boolean[] {
  if (!shard) return units.map(() => true);
  return assignByCost(units.map((u) => sampleWork(u.sample.contextLength)), shard.count).map((owner) => owner === shard.index);
}

/** A model's units: every task's samples × the task's modes, in sweep order. */
export function modelUnits(manifest: Manifest, modelRef: string, lm: LanguageModel): Unit[] {
  const units: Unit[] = [];
  for (const task of manifest.tasks) {
    for (const sample of taskSamples(task, lm.tokenizer, manifest.seed)) {
      for (const mode of task.modes) units.push({ modelRef, task, sample, mode });
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
