/**
 * Per-model preparation for every policy of a manifest that declares a step (core's `PolicyDefinition.prepare`), and
 * what a results folder keeps of it. Nothing here knows a policy by name: a policy that prepares something, and a
 * head-level method that exports its head selection, need no line outside its own package.
 *
 *   <out>/prepared/<policy>/<model stem>-<key16>.json   byte copies of the cache files the run used (the artefacts)
 *   <out>/heads/<model stem>@<policy label>.json        core's HeadSelection of every policy that exports one, with
 *                                                       `usedBy`: the labels of the policies that protected exactly
 *                                                       these heads (variants that only change how the other heads
 *                                                       are compressed share one file, named after the first label)
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  canonicalJson, fileStem, loadPolicy, parseParams, planPreparation, RazorkvError, readPrepared, runPreparation, serializeArtefact, writeFileAtomic,
  type HeadSelection, type PolicyDefinition, type Prepared, type PreparationModel, type PreparationModelInfo, type PreparationPlan,
} from "@razorkv/core";
import type { PolicySpec } from "./manifest.js";

/** A manifest policy entry with its package loaded and its params validated. */
export interface LoadedSpec {
  readonly spec: PolicySpec;
  readonly definition: PolicyDefinition;
  readonly packageName: string;
  readonly params: unknown;
}

/** What one policy entry prepared on one model (null: nothing to prepare). */
export interface SpecPreparation extends LoadedSpec {
  readonly prepared: Prepared | null;
  /** A dry run's artefact that the cache does not hold yet: what the run will prepare. */
  readonly missing?: PreparationPlan;
}

/** Prefixes a RazorkvError with the manifest place, so that a bad field names the line a user fixes. */
export function atSpec<T>(where: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof RazorkvError) throw new RazorkvError(`${where}: ${error.message}`);
    throw error;
  }
}

/** Loads the policy package of `spec` and validates its params; errors name the manifest place. */
export async function loadSpec(spec: PolicySpec): Promise<LoadedSpec> {
  try {
    const loaded = await loadPolicy(spec.name);
    return { spec, definition: loaded.definition, packageName: loaded.packageName, params: parseParams(loaded.definition.params, spec.params, loaded.packageName) };
  } catch (error) {
    if (error instanceof RazorkvError) throw new RazorkvError(`${spec.where}: ${error.message}`);
    throw error;
  }
}

export interface PrepareSpecsOptions {
  /** Default: core's preparationCacheDir(). */
  readonly cacheDir?: string;
  /** Rerun every step even when its artefact is cached. */
  readonly force?: boolean;
  /** Only read the cache (a dry run): an artefact that is not there stays unprepared. */
  readonly cacheOnly?: boolean;
  readonly log?: (line: string) => void;
}

/**
 * Prepares, in manifest order, every entry whose policy declares a step that these params need: from the cache when
 * it holds the artefact for this model file and inputs, else by running the step (once per distinct artefact).
 */
export function prepareSpecs(specs: readonly LoadedSpec[], model: PreparationModel | PreparationModelInfo, options: PrepareSpecsOptions = {}): SpecPreparation[] {
  const log = options.log ?? (() => {});
  const done = new Map<string, Prepared>();
  return specs.map((s) => {
    const plan = atSpec(s.spec.where, () => planPreparation(s.definition, s.params, model, options.cacheDir));
    if (!plan) return { ...s, prepared: null };
    const seen = done.get(plan.path);
    if (seen) return { ...s, prepared: seen };
    const cached = options.force ? null : atSpec(s.spec.where, () => readPrepared(plan, s.definition));
    let prepared: Prepared | null = cached === null ? null : { plan, artefact: cached, fromCache: true };
    if (prepared) {
      log(`${s.spec.label}: prepared artefact from ${plan.path}`);
    } else if (options.cacheOnly || !("prefill" in model)) {
      log(`${s.spec.label}: not prepared yet for ${model.ref} (${plan.path}); the run prepares it, then checks its cells`);
      return { ...s, prepared: null, missing: plan };
    } else {
      const started = Date.now();
      log(`${s.spec.label}: ${s.definition.prepare!.description} (${model.ref})…`);
      const artefact = atSpec(s.spec.where, () => runPreparation(plan, s.definition, model, log));
      prepared = { plan, artefact, fromCache: false };
      log(`${s.spec.label}: prepared in ${((Date.now() - started) / 1000).toFixed(1)} s → ${plan.path}`);
    }
    if (prepared) done.set(plan.path, prepared);
    return { ...s, prepared };
  });
}

/** The head selection an entry exports, when its policy has one and something was prepared. */
export function headSelectionOf(s: SpecPreparation): HeadSelection | null {
  const step = s.definition.prepare;
  if (!s.prepared || !step?.headSelection) return null;
  return atSpec(s.spec.where, () => step.headSelection!(s.prepared!.artefact as never, s.params as never));
}

/** Removes what a previous run of this folder prepared: the run rewrites it for every model. */
export function clearPreparedArtefacts(outDir: string): void {
  for (const dir of ["prepared", "heads"]) rmSync(join(outDir, dir), { recursive: true, force: true });
}

/**
 * Writes into `outDir` the artefacts `preparations` used on `modelRef` and the head selections they export (see the
 * file comment). Returns the paths written, relative to `outDir`.
 */
export function writePreparedArtefacts(outDir: string, modelRef: string, preparations: readonly SpecPreparation[]): string[] {
  const written: string[] = [];
  const copied = new Set<string>();
  for (const s of preparations) {
    if (!s.prepared || copied.has(s.prepared.plan.path)) continue;
    copied.add(s.prepared.plan.path);
    const rel = join("prepared", fileStem(s.prepared.plan.policy), s.prepared.plan.file);
    mkdirSync(join(outDir, "prepared", fileStem(s.prepared.plan.policy)), { recursive: true });
    copyFileSync(s.prepared.plan.path, join(outDir, rel));
    written.push(rel);
  }
  const groups = new Map<string, { selection: HeadSelection; labels: string[] }>();
  for (const s of preparations) {
    const selection = headSelectionOf(s);
    if (!selection) continue;
    const id = canonicalJson(selection);
    const group = groups.get(id);
    if (group) group.labels.push(s.spec.label);
    else groups.set(id, { selection, labels: [s.spec.label] });
  }
  for (const { selection, labels } of groups.values()) {
    const rel = join("heads", `${fileStem(modelRef)}@${fileStem(labels[0])}.json`);
    writeFileAtomic(join(outDir, rel), serializeArtefact({ ...selection, usedBy: labels }));
    written.push(rel);
  }
  return written;
}
