/**
 * `razorkv doctor [manifest] [--model <ref>]`: what this machine has for razorkv, one line per check on stdout:
 *   `ok      <check>: <what was found>`
 *   `warn    <check>: <what is missing> — fix: <command>`      (optional: slower, or a test that skips)
 *   `PROBLEM <check>: <what is missing> — fix: <command>`      (required: runs would fail)
 * Checks: the Node version, the native CPU kernels and their GEMM, the model in the local hub cache, chromium for
 * the report's browser test, and, given a manifest, the memory its largest sample needs against what is available
 * and, when it asks for prefillProducts: int8, whether the 8-bit GEMM runs here.
 * Exit status 1 when a required check fails, else 0. Loads nothing but the model (and only for the memory check).
 */
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { freemem } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, Option } from "commander";
import { findWorkspaceRoot, RazorkvError } from "@razorkv/core";
import { loadLanguageModel, parseModelRef, resolveModelRef, type LanguageModel } from "@razorkv/model-zoo";
import { loadManifest } from "../manifest.js";
import { taskSamples } from "../experiment.js";
import { MODEL_HELP, modelRef } from "./parse.js";

export type CheckLevel = "ok" | "warn" | "problem";

export interface Check {
  readonly name: string;
  readonly level: CheckLevel;
  /** What was found. */
  readonly detail: string;
  /** The command (or step) that fixes a warn or problem. */
  readonly fix?: string;
}

/** The Node major version package.json's engines field asks for. */
const NODE_MAJOR = 20;
const DEFAULT_MODEL = "smollm2-135m-instruct";
const GIB = 1024 ** 3;

export function formatCheck(c: Check): string {
  const tag = c.level === "ok" ? "ok     " : c.level === "warn" ? "warn   " : "PROBLEM";
  return `${tag} ${c.name}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ""}`;
}

export function checkNode(version = process.versions.node): Check {
  const major = Number(version.split(".")[0]);
  return major >= NODE_MAJOR
    ? { name: "node", level: "ok", detail: `v${version} (needs ${NODE_MAJOR} or newer)` }
    : { name: "node", level: "problem", detail: `v${version}, needs ${NODE_MAJOR} or newer`, fix: `install Node ${NODE_MAJOR} or newer (https://nodejs.org/en/download)` };
}

/** What kernels-cpu exports that the doctor reads (model-zoo depends on it; eval-runner reaches it through there). */
interface KernelsModule {
  loadKernels(): { name: string; gemmBackend(): string; gemmBackends(): string[]; simd(): string; threads(): number; int8GemmVnni(): boolean } | null;
  kernelsUnavailableReason(): string | null;
  kernelsDisabledByEnv(): boolean;
}

async function importKernels(): Promise<KernelsModule> {
  const modelZoo = createRequire(import.meta.url).resolve("@razorkv/model-zoo");
  return (await import(pathToFileURL(createRequire(modelZoo).resolve("@razorkv/kernels-cpu")).href)) as KernelsModule;
}

const REBUILD_KERNELS = "cd packages/kernels-cpu && npm run build";

export function checkKernels(k: KernelsModule): Check[] {
  const native = k.loadKernels();
  if (native === null) {
    const reason = k.kernelsUnavailableReason() ?? "unknown reason";
    if (k.kernelsDisabledByEnv()) {
      return [{ name: "native kernels", level: "warn", detail: `${reason}: the TypeScript reference runs, 50–100× slower`, fix: "unset RAZORKV_CPU_KERNELS" }];
    }
    return [{ name: "native kernels", level: "problem", detail: `not loaded (${reason})`, fix: `${REBUILD_KERNELS} (needs python3, make and a C++17 compiler)` }];
  }
  const detail = `${native.name}, SIMD ${native.simd()}, ${native.threads()} threads`;
  const gemm = native.gemmBackend();
  const checks: Check[] = [{ name: "native kernels", level: "ok", detail }];
  if (gemm === "openblas") checks.push({ name: "GEMM", level: "ok", detail: "OpenBLAS" });
  else {
    checks.push({
      name: "GEMM", level: "warn", detail: `own ${gemm} kernel (OpenBLAS was not found when the addon was built; prefill is slower)`,
      fix: `sudo apt-get install libopenblas-dev && ${REBUILD_KERNELS}`,
    });
  }
  return checks;
}

/**
 * A manifest asking for 8-bit prefill products (prefillProducts: int8): they need the native kernels (a run is
 * refused without them), and they are fast only where the 8-bit GEMM runs (AVX-512 VNNI; elsewhere the per-row dot
 * kernels, slower than the f32 prefill on long prompts).
 */
export function checkPrefillProducts(k: KernelsModule): Check {
  const native = k.loadKernels();
  if (native === null) {
    return { name: "int8 prefill", level: "problem", detail: "the manifest asks for prefillProducts: int8, which needs the native kernels (they are not loaded)", fix: "the native kernels' fix above, or prefillProducts: f32" };
  }
  return native.int8GemmVnni()
    ? { name: "int8 prefill", level: "ok", detail: "8-bit GEMM on AVX-512 VNNI" }
    : { name: "int8 prefill", level: "warn", detail: "no AVX-512 VNNI on this CPU: 8-bit prefills run the per-row dot kernels, slower than f32 on long prompts", fix: "prefillProducts: f32, or a CPU with AVX-512 VNNI" };
}

/** Where the model is, or how to get it: ../shared/bin/seed-hf-cache when the repository has one beside it. */
export async function checkModel(ref: string, root: string | null): Promise<{ check: Check; path?: string }> {
  try {
    const resolved = await resolveModelRef(ref, { offline: true });
    const size = statSync(resolved.path).isFile() ? ` (${(statSync(resolved.path).size / 1024 ** 2).toFixed(0)} MB)` : "";
    return { check: { name: "model", level: "ok", detail: `${ref} at ${resolved.path}${size}` }, path: resolved.path };
  } catch (error) {
    if (!(error instanceof RazorkvError)) throw error;
    const parsed = parseModelRef(ref);
    const seeder = root === null ? null : join(root, "..", "shared", "bin", "seed-hf-cache");
    const fix =
      parsed.kind === "local"
        ? `put the model at ${parsed.path}`
        : seeder !== null && existsSync(seeder) && ref === DEFAULT_MODEL
          ? `${relative(process.cwd(), seeder) || seeder}`
          : `razorkv generate --model ${ref} --prompt hi (fetches it from the hub; unset HF_HUB_OFFLINE)`;
    return { check: { name: "model", level: "problem", detail: `${ref} is not in the local cache (${error.message.split("; ")[0]})`, fix } };
  }
}

export function checkChromium(path = process.env.RAZORKV_CHROMIUM ?? "/usr/bin/chromium"): Check {
  return existsSync(path)
    ? { name: "chromium", level: "ok", detail: `${path} (the report's browser test)` }
    : {
        name: "chromium", level: "warn", detail: `no ${path}: the report's browser test is skipped (and fails under CI=true)`,
        fix: "sudo apt-get install chromium fonts-dejavu-core (or set RAZORKV_CHROMIUM to a Chromium binary)",
      };
}

/**
 * Bytes one sample of `contextTokens` needs beyond the loaded model, shared prefill: the full float32 cache
 * (K and V, every layer and KV head) plus one compressed copy per cell at its budget, and the prefill's largest
 * activations (the MLP's three intermediate rows and a handful of hidden-size rows per token, float32).
 */
export function sampleBytes(config: LanguageModel["model"]["config"], contextTokens: number, keptFractions: readonly number[]): number {
  const kvPerToken = config.numLayers * config.numKvHeads * config.headDim * 2 * 4;
  const cache = kvPerToken * contextTokens * (1 + keptFractions.reduce((s, f) => s + f, 0));
  const activations = contextTokens * (3 * config.intermediateSize + 8 * config.hiddenSize) * 4;
  return cache + activations;
}

export function checkMemory(needBytes: number, availableBytes: number, what: string): Check {
  const need = `${(needBytes / GIB).toFixed(1)} GiB`;
  const have = `${(availableBytes / GIB).toFixed(1)} GiB available`;
  return needBytes <= availableBytes
    ? { name: "memory", level: "ok", detail: `${what} needs at most about ${need}; ${have}` }
    : { name: "memory", level: "problem", detail: `${what} needs at most about ${need}, ${have}`, fix: "free memory (close other programs), or run shorter lengths / fewer cells" };
}

async function checkManifestMemory(path: string, lm: LanguageModel): Promise<Check> {
  const manifest = loadManifest(path);
  let largest = 0;
  let where = "";
  for (const task of manifest.tasks) {
    for (const s of taskSamples(task, lm.tokenizer, manifest.seed)) {
      if (s.contextLength > largest) (largest = s.contextLength), (where = `${task.label} ${s.id}`);
    }
  }
  const kept = manifest.policies.flatMap((p) => p.budgets).map((b) => (b.kind === "kvBudget" ? b.value : b.kind === "compressionRatio" ? 1 - b.value : 1));
  // the model as loaded, measured: weights, tokenizer and the runtime itself
  const need = process.memoryUsage().rss + sampleBytes(lm.model.config, largest, kept);
  return checkMemory(need, freemem(), `${path}'s largest sample (${where}, ${largest} tokens, ${kept.length} cells)`);
}

export async function doctorChecks(manifestPath: string | undefined, model: string): Promise<Check[]> {
  const root = findWorkspaceRoot(process.cwd());
  const checks: Check[] = [checkNode()];
  const kernels = await importKernels();
  checks.push(...checkKernels(kernels));
  const manifest = manifestPath === undefined ? undefined : loadManifest(manifestPath);
  if (manifest?.prefillProducts === "int8") checks.push(checkPrefillProducts(kernels));
  const modelToCheck = manifest?.models[0] ?? model;
  const { check, path } = await checkModel(modelToCheck, root);
  checks.push(check, checkChromium());
  if (manifestPath !== undefined) {
    if (path === undefined) checks.push({ name: "memory", level: "warn", detail: "not checked: the model is not in the cache", fix: "the model's fix above" });
    else checks.push(await checkManifestMemory(manifestPath, await loadLanguageModel(modelToCheck)));
  }
  return checks;
}

export function doctorCommand(): Command {
  return new Command("doctor")
    .description("check this machine: Node, native kernels and GEMM, the model cache, chromium, memory for a manifest; one line per check")
    .argument("[manifest]", "an experiment manifest whose largest sample's memory to check (default: none, memory not checked)")
    .addOption(new Option("--model <ref>", `${MODEL_HELP.replace(" (required)", "")}; the model to look for in the cache (default: the manifest's first, else ${DEFAULT_MODEL})`).argParser(modelRef("--model")).default(DEFAULT_MODEL))
    .action(async (manifest: string | undefined, opts: { model: string }) => {
      if (manifest !== undefined && !existsSync(manifest)) throw new RazorkvError(`${manifest}: no such manifest`);
      const checks = await doctorChecks(manifest, opts.model);
      process.stdout.write(checks.map(formatCheck).join("\n") + "\n");
      if (checks.some((c) => c.level === "problem")) process.exitCode = 1;
    });
}
