/**
 * The cache of per-model preparation artefacts (preparation.ts), shared by every experiment and `razorkv calibrate`:
 *
 *   <cache>/prepared/<policy>/<model stem>-<first 16 hex of the key>.json
 *
 * with <cache> = $RAZORKV_CACHE_DIR, else $XDG_CACHE_HOME/razorkv, else ~/.cache/razorkv. The key is SHA-256 of the
 * canonical JSON of { policy, version, modelDigest, inputs }: the model file's digest (not its reference — an alias
 * moved to another revision is another model) and everything else the step's result depends on. The file holds the
 * artefact alone, as `serializeArtefact` writes it, so the results folder can keep a byte copy. Files are written to a
 * temporary name and renamed: two processes preparing the same model at once both write whole files, and a reader
 * sees one of them, never half.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { RazorkvError } from "./errors.js";
import type { PolicyDefinition } from "./policy.js";
import type { PreparationModel, PreparationModelInfo, PreparationStep } from "./preparation.js";

/** JSON with object keys sorted at every depth: equal values give equal text (cache and row keys). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A name as a file stem: characters other than letters, digits, '.', '_' and '-' become '_', and no leading '.' or
 * '_' (a model path such as ./model.gguf must not make a hidden file).
 */
export function fileStem(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "model";
}

/** `$RAZORKV_CACHE_DIR/prepared`, else `$XDG_CACHE_HOME/razorkv/prepared`, else `~/.cache/razorkv/prepared`. */
export function preparationCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RAZORKV_CACHE_DIR) return join(env.RAZORKV_CACHE_DIR, "prepared");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "razorkv", "prepared");
}

/** Hex SHA-256 of what determines an artefact. */
export function preparationKey(policy: string, version: number, modelDigest: string, inputs: Readonly<Record<string, unknown>>): string {
  return createHash("sha256").update(canonicalJson({ policy, version, modelDigest, inputs })).digest("hex");
}

/** Where one preparation's artefact is cached, and what identifies it. */
export interface PreparationPlan {
  readonly policy: string;
  readonly version: number;
  readonly modelRef: string;
  readonly modelDigest: string;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly key: string;
  /** `<model stem>-<key16>.json`: the cache file's name, and the copy's in a results folder. */
  readonly file: string;
  /** The cache file. */
  readonly path: string;
}

/** `definition.prepare`, or an error: callers check `definition.prepare` first. */
function stepOf(definition: PolicyDefinition): PreparationStep {
  if (!definition.prepare) throw new Error(`${definition.name}: the policy declares no preparation step`);
  return definition.prepare as PreparationStep;
}

/**
 * The plan for `definition` with validated `params` on `model`, or null when the policy declares no preparation or
 * these params need none. Cheap: runs nothing.
 */
export function planPreparation(definition: PolicyDefinition, params: unknown, model: PreparationModelInfo, cacheDir = preparationCacheDir()): PreparationPlan | null {
  if (!definition.prepare) return null;
  const step = stepOf(definition);
  const inputs = step.inputs(params as never, model);
  if (inputs === null) return null;
  const key = preparationKey(definition.name, step.version, model.digest, inputs);
  const file = `${fileStem(model.ref)}-${key.slice(0, 16)}.json`;
  return { policy: definition.name, version: step.version, modelRef: model.ref, modelDigest: model.digest, inputs, key, file, path: join(cacheDir, fileStem(definition.name), file) };
}

/** The artefact file's text: JSON with one-space indents and a final newline. */
export function serializeArtefact(artefact: unknown): string {
  return JSON.stringify(artefact, null, 1) + "\n";
}

/** Writes `text` to a temporary file beside `path` and renames it over `path` (atomic on one file system). */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw new RazorkvError(`${path}: cannot write (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** Reads and validates an artefact file; a RazorkvError names the file. */
export function readArtefact(path: string, definition: PolicyDefinition): unknown {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RazorkvError(`${path}: ${code ? `cannot read the prepared artefact (${code})` : `not valid JSON (${(error as Error).message})`}`);
  }
  return stepOf(definition).parse(json, path);
}

/** The cached artefact of `plan`, or null when there is none. */
export function readPrepared(plan: PreparationPlan, definition: PolicyDefinition): unknown | null {
  return existsSync(plan.path) ? readArtefact(plan.path, definition) : null;
}

/**
 * Runs the step, caches its artefact and returns it as a cache hit would (parsed back from the file's text, so a run
 * that prepared and a run that found the cache see the same numbers).
 */
export function runPreparation(plan: PreparationPlan, definition: PolicyDefinition, model: PreparationModel, log?: (line: string) => void): unknown {
  const step = stepOf(definition);
  const text = serializeArtefact(step.run(model, plan.inputs as Record<string, unknown>, log));
  writeFileAtomic(plan.path, text);
  return step.parse(JSON.parse(text), plan.path);
}

export interface Prepared {
  readonly plan: PreparationPlan;
  readonly artefact: unknown;
  readonly fromCache: boolean;
}

export interface PrepareOptions {
  /** Default: preparationCacheDir(). */
  readonly cacheDir?: string;
  /** Run the step even when the cache has the artefact. */
  readonly force?: boolean;
  readonly log?: (line: string) => void;
}

/**
 * The artefact `definition` with `params` needs on `model`: from the cache when it holds one for the same model file
 * and inputs, else by running the step (and caching it). Null when no preparation is needed.
 */
export function prepare(definition: PolicyDefinition, params: unknown, model: PreparationModel, options: PrepareOptions = {}): Prepared | null {
  const plan = planPreparation(definition, params, model, options.cacheDir);
  if (!plan) return null;
  const cached = options.force ? null : readPrepared(plan, definition);
  if (cached !== null) return { plan, artefact: cached, fromCache: true };
  return { plan, artefact: runPreparation(plan, definition, model, options.log), fromCache: false };
}
