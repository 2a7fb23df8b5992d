/**
 * The head profile: per layer and query head, the mean echo and induction attention measured by calibration
 * (calibration.ts), and the KV heads selected as retrieval heads. It is the artefact of RazorAttention's preparation
 * step (index.ts), cached by core per model file and calibration input:
 *   { model, numLayers, numHeads, numKvHeads, echo: number[L][H], induction: number[L][H],
 *     retrieval: [{ layer, kvHead }], params }
 * The policy re-selects from the scores with its own fractions (ablations need no recalibration), and exports that
 * selection as core's HeadSelection, which the report draws.
 */
import { readFileSync } from "node:fs";
import { HEAD_SELECTION_FORMAT, RazorkvError, serializeArtefact, writeFileAtomic, type HeadSelection } from "@razorkv/core";

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

/** Writes the profile as the preparation cache does (core's serializeArtefact), atomically (temp file + rename). */
export function writeProfile(path: string, profile: HeadProfile): void {
  writeFileAtomic(path, serializeArtefact(profile));
}

/** The selection's share as a percentage without trailing zeros: 0.14 → "14%", 0.005 → "0.5%". */
function percent(x: number): string {
  return `${Number((x * 100).toFixed(2))}%`;
}

/**
 * The profile as core's HeadSelection (the shape the report draws for any policy): echo and induction per query
 * head, reduced to a KV head by the max over its group as the selection does, and the KV heads a policy with
 * `fractions` protects.
 */
export function headSelectionOf(profile: HeadProfile, fractions: SelectionFractions): HeadSelection {
  const { inductionFraction, echoFraction } = fractions;
  const input = `BOS + ${profile.params.blockLength} random tokens repeated ${profile.params.repeats} times`;
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: "razor",
    title: "RazorAttention retrieval heads",
    description:
      `Calibration once per model, query-independent, on ${input} (arXiv 2407.15891 §3.2). Echo: a head's attention from a ` +
      "token to its earlier copies; induction: attention to the token that followed each earlier copy. A KV head scores " +
      "the max over its query heads. Protected KV heads keep their whole cache; every other KV head keeps its attention " +
      "sinks, a recent window and, with compensation on, one compensation token.",
    rule: `top ${percent(inductionFraction)} of KV heads by induction + top ${percent(echoFraction)} by echo`,
    model: profile.model,
    numLayers: profile.numLayers,
    numHeads: profile.numHeads,
    numKvHeads: profile.numKvHeads,
    scores: [
      { kind: "echo", description: "mean attention on earlier copies of the same token", per: "query-head", groupReduce: "max", values: profile.echo },
      { kind: "induction", description: "mean attention on the token after each earlier copy", per: "query-head", groupReduce: "max", values: profile.induction },
    ],
    protected: selectRetrievalHeads(profile, fractions),
    params: { ...profile.params, inductionFraction, echoFraction },
  };
}
