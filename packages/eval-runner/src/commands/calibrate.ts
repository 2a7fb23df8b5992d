/**
 * `razorkv calibrate --model <ref> [--policy <name> [--params JSON]]… | [--manifest <file>]` (alias `razorkv prepare`):
 * runs the per-model preparation step of policies (core's `PolicyDefinition.prepare`: a head calibration, a
 * retrieval-head scoring run) on one model, or finds its artefact in the cache, exactly as `razorkv run` would before
 * its first sample. Which policies: those named with --policy (params from --params), the entries of a manifest, or by
 * default every policy package of the workspace that declares a step, with its default params — so that adding a
 * policy with a preparation step needs no change here.
 *
 * Prints one JSON line on stdout: {"model", "digest", "prepared": [{"label", "policy", "artefact" (the cache file),
 * "fromCache", "inputs", "heads"?: {"title", "rule", "kvHeads", "protected": [{layer, kvHead, scores: {<kind>: x}}]}}]};
 * progress and every head selection as a table go to stderr.
 */
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { findWorkspaceRoot, kvHeadScore, RazorkvError, workspacePackageDirs, type HeadSelection } from "@razorkv/core";
import { loadLanguageModel, modelDigest } from "@razorkv/model-zoo";
import { loadManifest, type PolicySpec } from "../manifest.js";
import { preparationModel } from "../preparation-model.js";
import { headSelectionOf, loadSpec, prepareSpecs, type LoadedSpec } from "../prepared-artefacts.js";
import { MODEL_HELP, modelRef, nonEmpty } from "./parse.js";

interface CalibrateOptions {
  model?: string;
  policy: string[];
  params?: Record<string, unknown>;
  manifest?: string;
  out?: string;
  cacheDir?: string;
  force: boolean;
}

/** Parser of --params: a JSON object. */
function jsonObject(flag: string): (value: string) => Record<string, unknown> {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError(`${flag} expects a JSON object, got "${value}"`);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new InvalidArgumentError(`${flag} expects a JSON object, got "${value}"`);
    return parsed as Record<string, unknown>;
  };
}

/**
 * Every workspace package whose name has a `policy-` segment and whose definition declares a preparation step; a
 * package that cannot be loaded is skipped with a line on stderr.
 */
async function preparingWorkspacePolicies(log: (line: string) => void): Promise<LoadedSpec[]> {
  const root = findWorkspaceRoot(process.cwd());
  if (!root) throw new RazorkvError(`calibrate: no pnpm workspace (pnpm-workspace.yaml) at or above ${process.cwd()}; name the policies with --policy`);
  const found: LoadedSpec[] = [];
  for (const dir of workspacePackageDirs(root)) {
    const name = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string }).name;
    if (typeof name !== "string" || !/(^|\/)policy-[^/]+$/.test(name)) continue;
    let s: LoadedSpec;
    try {
      s = await loadSpec(cliSpec(name, {}));
    } catch (error) {
      // a package someone is still writing (not built, not exporting a definition yet) is not this command's business
      if (!(error instanceof RazorkvError)) throw error;
      log(`skipped ${name}: ${error.message.replace(/^--policy \S+: /, "")}`);
      continue;
    }
    if (s.definition.prepare) found.push(s);
  }
  if (found.length === 0) throw new RazorkvError(`calibrate: no policy package of the workspace at ${root} declares a preparation step`);
  return found;
}

function cliSpec(name: string, params: Record<string, unknown>): PolicySpec {
  return { name, label: name.replace(/^.*\/(policy-)?/, "").replace(/^policy-/, ""), params, budgets: [], where: `--policy ${name}` };
}

export function calibrateCommand(): Command {
  return new Command("calibrate")
    .alias("prepare")
    .description(
      "run the per-model preparation step of policies (e.g. a head calibration) on a model, or find it cached; " +
        "prints what was prepared as one JSON line",
    )
    .addOption(new Option("--model <ref>", `${MODEL_HELP.replace(" (required)", "")}; use the same reference as the manifest (default: the manifest's models)`).argParser(modelRef("--model")))
    .addOption(
      new Option("--policy <name>", "a policy package or short name; repeat for several")
        .argParser((value: string, previous: string[]) => [...previous, nonEmpty("--policy", "a policy name")(value)])
        .default([], "the manifest's policies, else every workspace policy with a preparation step"),
    )
    .addOption(new Option("--params <json>", "params of the --policy entries, a JSON object, as in a manifest (default: {})").argParser(jsonObject("--params")))
    .addOption(new Option("--manifest <file>", "prepare every policy entry of this manifest, with its params (default: none)").argParser(nonEmpty("--manifest", "a manifest path")))
    .addOption(new Option("--out <file>", "also copy the artefact to this file, when one policy was prepared (default: only the cache)").argParser(nonEmpty("--out", "a file path")))
    .addOption(
      new Option("--cache-dir <dir>", "artefact cache (default: $RAZORKV_CACHE_DIR/prepared, $XDG_CACHE_HOME/razorkv/prepared or ~/.cache/razorkv/prepared)")
        .argParser(nonEmpty("--cache-dir", "a folder")),
    )
    .option("--force", "run the steps even when the cache holds their artefacts", false)
    .action(async (opts: CalibrateOptions) => {
      if (opts.manifest && opts.policy.length > 0) throw new RazorkvError("calibrate: give --manifest or --policy, not both");
      if (opts.params && opts.policy.length === 0) throw new RazorkvError("calibrate: --params needs a --policy it applies to");
      const manifest = opts.manifest ? loadManifest(opts.manifest) : null;
      const models = opts.model ? [opts.model] : (manifest?.models ?? []);
      if (models.length === 0) throw new RazorkvError("calibrate: required option '--model <ref>' not specified (or give --manifest)");
      const log = (line: string) => process.stderr.write(`calibrate: ${line}\n`);
      const specs: LoadedSpec[] = [];
      if (manifest) for (const spec of manifest.policies) specs.push(await loadSpec(spec));
      else if (opts.policy.length > 0) for (const name of opts.policy) specs.push(await loadSpec(cliSpec(name, opts.params ?? {})));
      else specs.push(...(await preparingWorkspacePolicies(log)));
      const results = [];
      for (const ref of models) {
        const lm = await loadLanguageModel(ref);
        const digest = modelDigest(lm.loaded);
        const preparations = prepareSpecs(specs, preparationModel(lm, digest), { force: opts.force, log, ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}) });
        const prepared = preparations.filter((p) => p.prepared !== null);
        if (prepared.length === 0) log(`${ref}: none of ${specs.map((s) => s.spec.label).join(", ")} needs preparation with these params`);
        for (const p of prepared) {
          const selection = headSelectionOf(p);
          if (selection) process.stderr.write(selectionSummary(selection, p.spec.label));
        }
        if (opts.out) {
          const artefacts = [...new Set(prepared.map((p) => p.prepared!.plan.path))];
          if (artefacts.length !== 1 || models.length !== 1) throw new RazorkvError(`--out ${opts.out}: ${artefacts.length * models.length} artefacts were prepared; --out takes one (name one --policy and one --model)`);
          try {
            copyFileSync(artefacts[0], opts.out);
          } catch (error) {
            throw new RazorkvError(`--out ${opts.out}: cannot write the artefact (${(error as NodeJS.ErrnoException).code ?? error})`);
          }
        }
        results.push({
          model: ref,
          digest,
          prepared: prepared.map((p) => {
            const selection = headSelectionOf(p);
            return {
              label: p.spec.label,
              policy: p.definition.name,
              artefact: p.prepared!.plan.path,
              fromCache: p.prepared!.fromCache,
              inputs: p.prepared!.plan.inputs,
              ...(selection ? { heads: headsResult(selection) } : {}),
            };
          }),
        });
      }
      for (const r of results) process.stdout.write(JSON.stringify(r) + "\n");
    });
}

/** A selection's KV-head score of every kind, keyed by kind. */
function kvScores(selection: HeadSelection, layer: number, kvHead: number): Record<string, number> {
  return Object.fromEntries(selection.scores.map((s) => [s.kind, kvHeadScore(selection, s, layer, kvHead)]));
}

/** What the JSON line says of a head selection: the protected KV heads with their scores. */
export function headsResult(selection: HeadSelection) {
  return {
    title: selection.title,
    rule: selection.rule,
    kvHeads: selection.numLayers * selection.numKvHeads,
    protected: selection.protected.map((r) => ({ layer: r.layer, kvHead: r.kvHead, scores: kvScores(selection, r.layer, r.kvHead) })),
  };
}

/** The protected heads as a table, and per score kind the protected heads' mean against the median KV head's. */
export function selectionSummary(selection: HeadSelection, label: string): string {
  const { numLayers: L, numKvHeads: K } = selection;
  const kinds = selection.scores.map((s) => s.kind);
  const lines = [
    `${label}: ${selection.title} of ${selection.model}: ${selection.protected.length} of ${L * K} KV heads protected ` +
      `(${((100 * selection.protected.length) / (L * K)).toFixed(1)}%; ${selection.rule})`,
    ["layer", "kvHead", ...kinds].map((k, i) => (i < 2 ? k.padStart(6) : k.padStart(Math.max(9, k.length)))).join("  "),
    ...selection.protected.map((r) => {
      const scores = kvScores(selection, r.layer, r.kvHead);
      return [String(r.layer).padStart(6), String(r.kvHead).padStart(6), ...kinds.map((k) => scores[k].toFixed(4).padStart(Math.max(9, k.length)))].join("  ");
    }),
  ];
  for (const score of selection.scores) {
    const all: number[] = [];
    for (let l = 0; l < L; l++) for (let kv = 0; kv < K; kv++) all.push(kvHeadScore(selection, score, l, kv));
    const sorted = [...all].sort((a, b) => a - b);
    const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    const chosen = selection.protected.map((r) => kvHeadScore(selection, score, r.layer, r.kvHead));
    const mean = chosen.length ? chosen.reduce((a, b) => a + b, 0) / chosen.length : Number.NaN;
    lines.push(`${score.kind}: protected heads mean ${mean.toFixed(4)}, median KV head ${median.toFixed(4)} (${(mean / median).toFixed(1)}×)`);
  }
  return lines.join("\n") + "\n";
}
