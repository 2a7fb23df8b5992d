/**
 * `razorkv calibrate --model <ref> [--out file.json]`: RazorAttention's head calibration (DESIGN §4). Scores echo
 * and induction for every query head on BOS + K random tokens repeated 4 times, selects the retrieval heads, caches
 * the profile per model (policy-razor's `profile: "auto"` reads it from there) and prints the selection.
 */
import { writeFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { RazorkvError } from "@razorkv/core";
import { loadLanguageModel } from "@razorkv/model-zoo";
import { loadOrCalibrate, resolveCalibration, type CalibrationParams, type HeadProfile } from "@razorkv/policy-razor";
import { positiveInteger } from "./parse.js";

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

export function calibrateCommand(): Command {
  return new Command("calibrate")
    .description("RazorAttention calibration: echo/induction score per head on repeated random tokens; writes the head profile JSON")
    .requiredOption("--model <ref>", "model alias, hf:<org>/<name>@<revision>[:<file>], or a local path (use the same reference as the manifest)")
    .option("--out <file>", "also write the profile JSON to this file")
    .addOption(new Option("--block-length <K>", "random block length (default min(2500, ⌊(context − 1)/4⌋))").argParser(positiveInteger("--block-length")))
    .addOption(new Option("--seed <n>", "seed of the random block").argParser(positiveInteger("--seed")))
    .addOption(new Option("--induction-fraction <x>", "share of KV heads protected by induction score (paper 0.14)").argParser(fraction("--induction-fraction")))
    .addOption(new Option("--echo-fraction <x>", "share of KV heads protected by echo score (paper 0.01)").argParser(fraction("--echo-fraction")))
    .option("--cache-dir <dir>", "profile cache (default $RAZORKV_CACHE_DIR/profiles, $XDG_CACHE_HOME/razorkv/profiles or ~/.cache/razorkv/profiles)")
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
      const settings = resolveCalibration(lm.model.config, params);
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
          throw new RazorkvError(`${opts.out}: cannot write the profile (${(error as NodeJS.ErrnoException).code ?? error})`);
        }
      }
      process.stdout.write(profileSummary(profile));
    });
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

function fraction(flag: string): (value: string) => number {
  return (value) => {
    const x = Number(value);
    if (value.trim() === "" || !Number.isFinite(x) || x < 0 || x > 1) throw new InvalidArgumentError(`${flag} expects a fraction in [0, 1], got "${value}"`);
    return x;
  };
}
