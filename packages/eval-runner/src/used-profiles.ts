/**
 * profiles/ of a results folder: the RazorAttention head selections the experiment used, for the report to draw
 * (report/src/schema.ts names the files). The calibrated selection is `<model>.json`, copied byte for byte from the
 * profile cache. A variant that re-selects from the same scores with other fractions (an ablation of the protected
 * share or of the echo heads) gets `<model>@<policy label>.json`, so the report shows the heads it really kept whole;
 * variants that only change sinks or the compensation token share the model's file.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseParams } from "@razorkv/core";
import { params as razorParams, profileFileStem, readProfile, withSelection, writeProfile, type RetrievalHead } from "@razorkv/policy-razor";
import type { PolicySpec } from "./manifest.js";

const sameHeads = (a: readonly RetrievalHead[], b: readonly RetrievalHead[]) =>
  a.length === b.length && a.every((h, i) => h.layer === b[i].layer && h.kvHead === b[i].kvHead);

/** Writes the selection `spec` (a razor policy with an "auto" profile) uses and returns the file's path. */
export function writeUsedProfile(outDir: string, modelRef: string, spec: Pick<PolicySpec, "label" | "params" | "where">, cachedPath: string): string {
  const calibrated = readProfile(cachedPath);
  const used = withSelection(calibrated, parseParams(razorParams, spec.params, spec.where));
  const dir = join(outDir, "profiles");
  mkdirSync(dir, { recursive: true });
  if (sameHeads(used.retrieval, calibrated.retrieval)) {
    const path = join(dir, `${profileFileStem(modelRef)}.json`);
    copyFileSync(cachedPath, path);
    return path;
  }
  const path = join(dir, `${profileFileStem(modelRef)}@${profileFileStem(spec.label)}.json`);
  writeProfile(path, used);
  return path;
}
