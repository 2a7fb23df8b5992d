/**
 * `razorkv calibrate --model <ref> [--out file.json]`: RazorAttention's head calibration (DESIGN §4). Scores echo
 * and induction for every query head on BOS + K random tokens repeated 4 times, selects the retrieval heads, caches
 * the profile per model (policy-razor's `profile: "auto"` reads it from there). Prints one JSON line on stdout
 * ({"model", "profile" (the cached file), "fromCache", "kvHeads", "protected": [{layer, kvHead, induction, echo}]});
 * progress and the same selection as a table go to stderr.
 */
import { writeFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { loadLanguageModel } from "@razorkv/model-zoo";
import { loadOrCalibrate, resolveCalibration, type CalibrationParams, type HeadProfile } from "@razorkv/policy-razor";
import { fraction, MODEL_HELP, modelRef, nonEmpty, nonNegativeInteger, positiveInteger } from "./parse.js";

interface CalibrateOptions {
  model: string;
  out?: string;
  blockLength?: number;
  seed?: number;
  inductionFraction?: number;
  echoFraction?: number;
  cacheDir?: string;
  force: boolean;
}

/** calibration settings → the options that set them, so that a refused value names what the user typed */
const FLAGS: Record<string, string> = {
  blockLength: "--block-length", seed: "--seed", inductionFraction: "--induction-fraction", echoFraction: "--echo-fraction",
};

export function calibrateCommand(): Command {
  return new Command("calibrate")
    .description("RazorAttention calibration: echo/induction score per head on repeated random tokens; caches the head profile, prints it as one JSON line")
    .addOption(new Option("--model <ref>", `${MODEL_HELP}; use the same reference as the manifest`).argParser(modelRef("--model")).makeOptionMandatory())
    .addOption(new Option("--out <file>", "also write the profile JSON to this file (default: only the cache)").argParser(nonEmpty("--out", "a file path")))
    .addOption(new Option("--block-length <K>", "random block length, K ≥ 2 (default: min(2500, ⌊(context − 1)/4⌋), 2047 for SmolLM2)").argParser(positiveInteger("--block-length", 2)))
    .addOption(new Option("--seed <n>", "seed of the random block, an integer ≥ 0 (default: 2407)").argParser(nonNegativeInteger("--seed")))
    .addOption(new Option("--induction-fraction <x>", "share of KV heads protected by induction score (default: 0.14, the paper's)").argParser(fraction("--induction-fraction")))
    .addOption(new Option("--echo-fraction <x>", "share of KV heads protected by echo score (default: 0.01, the paper's)").argParser(fraction("--echo-fraction")))
    .addOption(
      new Option("--cache-dir <dir>", "profile cache (default: $RAZORKV_CACHE_DIR/profiles, $XDG_CACHE_HOME/razorkv/profiles or ~/.cache/razorkv/profiles)")
        .argParser(nonEmpty("--cache-dir", "a folder")),
    )
    .option("--force", "recalibrate even when a cached profile matches", false)
    .action(async (opts: CalibrateOptions) => {
      const lm = await loadLanguageModel(opts.model);
      const params: CalibrationParams = {
        bosId: lm.tokenizer.bosId ?? null,
        ...(opts.blockLength !== undefined ? { blockLength: opts.blockLength } : {}),
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        ...(opts.inductionFraction !== undefined ? { inductionFraction: opts.inductionFraction } : {}),
        ...(opts.echoFraction !== undefined ? { echoFraction: opts.echoFraction } : {}),
      };
      let settings;
      try {
        settings = resolveCalibration(lm.model.config, params);
      } catch (error) {
        // "calibration: blockLength: expected …, got 5000" → "--block-length: expected …, got 5000"
        const field = error instanceof RazorkvError ? /^calibration: (\w+):/.exec(error.message)?.[1] : undefined;
        if (field !== undefined && FLAGS[field]) throw new RazorkvError(error instanceof Error ? error.message.replace(`calibration: ${field}`, FLAGS[field]) : String(error));
        throw error;
      }
      const inputLength = settings.blockLength * settings.repeats + (settings.bosId === null ? 0 : 1);
      const started = Date.now();
      process.stderr.write(`calibrate: ${opts.model}: one full-attention prefill of ${inputLength} tokens (K = ${settings.blockLength}) unless cached…\n`);
      const { profile, path, fromCache } = loadOrCalibrate({
        modelRef: opts.model,
        model: lm.model,
        params,
        force: opts.force,
        ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      });
      process.stderr.write(`calibrate: ${fromCache ? "cached profile" : `calibrated in ${((Date.now() - started) / 1000).toFixed(1)} s, cached`}: ${path}\n`);
      if (opts.out) {
        try {
          await writeFile(opts.out, JSON.stringify(profile, null, 1) + "\n");
        } catch (error) {
          throw new RazorkvError(`--out ${opts.out}: cannot write the profile (${(error as NodeJS.ErrnoException).code ?? error})`);
        }
      }
      process.stderr.write(profileSummary(profile));
      process.stdout.write(JSON.stringify(profileResult(profile, opts.model, path, fromCache)) + "\n");
    });
}

/** Group max of a per-query-head score over KV head `kv`'s query heads (a group is retrieval if any head is). */
function groupMax(profile: HeadProfile, m: HeadProfile["echo"], layer: number, kv: number): number {
  const g = profile.numHeads / profile.numKvHeads;
  return Math.max(...m[layer].slice(kv * g, (kv + 1) * g));
}

/** The JSON line `calibrate` prints: where the profile is and the protected KV heads with their scores. */
export function profileResult(profile: HeadProfile, model: string, path: string, fromCache: boolean) {
  return {
    model,
    profile: path,
    fromCache,
    kvHeads: profile.numLayers * profile.numKvHeads,
    inductionFraction: profile.params.inductionFraction,
    echoFraction: profile.params.echoFraction,
    protected: profile.retrieval.map((r) => ({
      layer: r.layer,
      kvHead: r.kvHead,
      induction: groupMax(profile, profile.induction, r.layer, r.kvHead),
      echo: groupMax(profile, profile.echo, r.layer, r.kvHead),
    })),
  };
}

/** The retrieval heads with their scores, and the selected heads' induction against the median KV head's. */
export function profileSummary(profile: HeadProfile): string {
  const { numLayers: L, numHeads: H, numKvHeads: K } = profile;
  const g = H / K;
  const groupMax = (m: HeadProfile["echo"], layer: number, kv: number) => Math.max(...m[layer].slice(kv * g, (kv + 1) * g));
  const all: number[] = [];
  for (let l = 0; l < L; l++) for (let kv = 0; kv < K; kv++) all.push(groupMax(profile.induction, l, kv));
  const sorted = [...all].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const lines = [
    `${profile.model}: ${profile.retrieval.length} of ${L * K} KV heads protected (${((100 * profile.retrieval.length) / (L * K)).toFixed(1)}%; ` +
      `induction top ${profile.params.inductionFraction}, echo top ${profile.params.echoFraction})`,
    "layer  kvHead  induction  echo",
    ...profile.retrieval.map(
      (r) =>
        `${String(r.layer).padStart(5)}  ${String(r.kvHead).padStart(6)}  ${groupMax(profile.induction, r.layer, r.kvHead).toFixed(4).padStart(9)}  ` +
        `${groupMax(profile.echo, r.layer, r.kvHead).toFixed(4)}`,
    ),
  ];
  const selected = profile.retrieval.map((r) => groupMax(profile.induction, r.layer, r.kvHead));
  const mean = selected.length ? selected.reduce((a, b) => a + b, 0) / selected.length : Number.NaN;
  lines.push(`induction: selected heads mean ${mean.toFixed(4)}, median KV head ${median.toFixed(4)} (${(mean / median).toFixed(1)}×)`);
  return lines.join("\n") + "\n";
}
