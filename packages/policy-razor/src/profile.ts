/**
 * The head profile: per layer and query head, the mean echo and induction attention measured by calibration
 * (calibration.ts), and the KV heads selected as retrieval heads. Stored as JSON, one file per model:
 *   { model, numLayers, numHeads, numKvHeads, echo: number[L][H], induction: number[L][H],
 *     retrieval: [{ layer, kvHead }], params }
 * The report draws it; the policy re-selects from the scores with its own fractions (ablations need no recalibration).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { RazorkvError } from "@razorkv/core";

export interface RetrievalHead {
  readonly layer: number;
  readonly kvHead: number;
}

/** Calibration settings as they were run (calibration.ts documents each one). */
export interface CalibrationSettings {
  readonly blockLength: number;
  readonly repeats: number;
  readonly seed: number;
  readonly tokenRange: readonly [number, number];
  readonly bosId: number | null;
  readonly inductionFraction: number;
  readonly echoFraction: number;
}

export interface HeadProfile {
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  /** [layer][query head] */
  readonly echo: readonly (readonly number[])[];
  readonly induction: readonly (readonly number[])[];
  readonly retrieval: readonly RetrievalHead[];
  readonly params: CalibrationSettings;
}

export interface SelectionFractions {
  /** Share of all KV heads protected for the highest induction scores (paper: 14%). */
  readonly inductionFraction: number;
  /** Share protected for the highest echo scores (paper: 1%). */
  readonly echoFraction: number;
}

/**
 * RazorAttention's selection (arXiv 2407.15891 §3.2, DESIGN §4): a KV head scores the max over its query heads (a
 * group is retrieval if any of its heads is); over all N = layers × KV heads, the top round(inductionFraction · N)
 * by induction and the top round(echoFraction · N) by echo are protected. Ties go to the earlier (layer, KV head).
 * Returned in (layer, kvHead) order.
 */
export function selectRetrievalHeads(
  profile: Pick<HeadProfile, "numLayers" | "numHeads" | "numKvHeads" | "echo" | "induction">,
  fractions: SelectionFractions,
): RetrievalHead[] {
  const { numLayers: L, numHeads: H, numKvHeads: K } = profile;
  const g = H / K;
  const n = L * K;
  const groupMax = (scores: readonly (readonly number[])[]) =>
    Array.from({ length: n }, (_, i) => Math.max(...scores[Math.floor(i / K)].slice((i % K) * g, (i % K + 1) * g)));
  const top = (scores: number[], count: number) =>
    Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, count);
  const chosen = new Set([
    ...top(groupMax(profile.induction), Math.round(fractions.inductionFraction * n)),
    ...top(groupMax(profile.echo), Math.round(fractions.echoFraction * n)),
  ]);
  return [...chosen].sort((a, b) => a - b).map((i) => ({ layer: Math.floor(i / K), kvHead: i % K }));
}

/**
 * The profile as a policy with other fractions uses it: the same scores, that policy's own selection, and the
 * fractions it used in `params` (so a reader of the file sees how the heads were chosen). Ablations of the protected
 * share re-select this way instead of recalibrating.
 */
export function withSelection(profile: HeadProfile, fractions: SelectionFractions): HeadProfile {
  const { inductionFraction, echoFraction } = fractions;
  return { ...profile, retrieval: selectRetrievalHeads(profile, fractions), params: { ...profile.params, inductionFraction, echoFraction } };
}

/** Validates a parsed profile JSON; `source` (a file or "params.profile") names it in errors. */
export function parseProfile(value: unknown, source: string): HeadProfile {
  const fail = (field: string, expected: string): never => {
    throw new RazorkvError(`${source}: ${field}: expected ${expected}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) fail("profile", "a head-profile object (see `razorkv calibrate`)");
  const v = value as Record<string, unknown>;
  if (typeof v.model !== "string") fail("model", "a string");
  const dims = ["numLayers", "numHeads", "numKvHeads"].map((k) => {
    const x = v[k];
    if (typeof x !== "number" || !Number.isInteger(x) || x <= 0) fail(k, "a positive integer");
    return x as number;
  });
  const [L, H, K] = dims;
  if (H % K !== 0) fail("numHeads", `a multiple of numKvHeads ${K}, got ${H}`);
  for (const field of ["echo", "induction"]) {
    const m = v[field];
    if (!Array.isArray(m) || m.length !== L) fail(field, `an array of ${L} layers`);
    (m as unknown[]).forEach((row, l) => {
      if (!Array.isArray(row) || row.length !== H || row.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
        fail(`${field}[${l}]`, `${H} finite numbers (one per query head)`);
      }
    });
  }
  if (!Array.isArray(v.retrieval)) fail("retrieval", "an array of {layer, kvHead}");
  (v.retrieval as unknown[]).forEach((r, i) => {
    const e = r as Record<string, unknown>;
    if (!e || !Number.isInteger(e.layer) || !Number.isInteger(e.kvHead) || (e.layer as number) < 0 || (e.layer as number) >= L || (e.kvHead as number) < 0 || (e.kvHead as number) >= K) {
      fail(`retrieval[${i}]`, `{layer in [0, ${L}), kvHead in [0, ${K})}`);
    }
  });
  if (!v.params || typeof v.params !== "object") fail("params", "the calibration settings object");
  return value as HeadProfile;
}

export function readProfile(path: string): HeadProfile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RazorkvError(`${path}: cannot read the head profile (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RazorkvError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseProfile(json, path);
}

/** Writes atomically (temp file + rename), so a reader never sees half a profile. */
export function writeProfile(path: string, profile: HeadProfile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(profile, null, 1) + "\n");
  renameSync(tmp, path);
}

/** `$RAZORKV_CACHE_DIR/profiles`, else `$XDG_CACHE_HOME/razorkv/profiles`, else `~/.cache/razorkv/profiles`. */
export function profileCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RAZORKV_CACHE_DIR) return join(env.RAZORKV_CACHE_DIR, "profiles");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "razorkv", "profiles");
}

/**
 * A name as a profile file's stem: characters other than letters, digits, '.', '_' and '-' become '_', and no leading
 * '.' or '_' (a model path such as ./model.gguf must not make a hidden file).
 */
export function profileFileStem(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "model";
}

/**
 * The cache file of `modelRef`'s profile: `<profileFileStem(ref)>.json` for the default calibration input, with
 * `-<hash of the overrides>` when the calibration input was changed (block length, repeats, seed, token range).
 */
export function profileCachePath(modelRef: string, inputOverrides: Record<string, unknown> = {}, dir = profileCacheDir()): string {
  const safe = profileFileStem(modelRef);
  const given = Object.keys(inputOverrides).filter((k) => inputOverrides[k] !== undefined).sort();
  if (given.length === 0) return join(dir, `${safe}.json`);
  const canonical = JSON.stringify(given.map((k) => [k, inputOverrides[k]]));
  return join(dir, `${safe}-${createHash("sha256").update(canonical).digest("hex").slice(0, 12)}.json`);
}

/** The cached default profile of `modelRef`, or a RazorkvError that says how to make one. */
export function cachedProfile(modelRef: string, dir = profileCacheDir()): HeadProfile {
  const path = profileCachePath(modelRef, {}, dir);
  if (!existsSync(path)) {
    throw new RazorkvError(`razor: no head profile for model "${modelRef}" at ${path}; run \`pnpm razorkv calibrate --model ${modelRef}\` or pass params.profile`);
  }
  return readProfile(path);
}
