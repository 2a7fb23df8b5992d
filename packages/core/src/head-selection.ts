/**
 * The one shape in which a head-level method (RazorAttention's retrieval heads, DuoAttention's streaming heads,
 * retrieval heads, HeadKV) exports which heads it treats specially and why: per (layer, head) scores of named kinds,
 * and the protected set of KV heads. A policy's preparation step derives it from its artefact
 * (`PreparationStep.headSelection`); the runner writes it to `<results>/heads/` with the labels of the policies that
 * used it; the report draws it for any policy, titled from the file (report/src/schema.ts reads the same format).
 *
 *   { format: "razorkv.head-selection/1", policy, title, description, rule, model, numLayers, numHeads, numKvHeads,
 *     scores: [{ kind, description, per: "query-head" | "kv-head", groupReduce?, values: number[L][heads] }],
 *     protected: [{ layer, kvHead }], params, usedBy? }
 */
import { RazorkvError } from "./errors.js";

export const HEAD_SELECTION_FORMAT = "razorkv.head-selection/1";

/** One kind of per-head score, e.g. RazorAttention's "induction". */
export interface HeadScore {
  /** Short name, e.g. "induction", "retrieval", "streaming gate". */
  readonly kind: string;
  /** One line: what the score measures and on what input. */
  readonly description: string;
  /** Whether `values[layer]` has one entry per query head (numHeads) or per KV head (numKvHeads). */
  readonly per: "query-head" | "kv-head";
  /** For per-query-head scores: how the method reduces a GQA group to its KV head's score. Absent: mean. */
  readonly groupReduce?: "max" | "mean";
  /** [layer][head]: finite numbers. */
  readonly values: readonly (readonly number[])[];
}

export interface HeadRef {
  readonly layer: number;
  readonly kvHead: number;
}

export interface HeadSelection {
  readonly format: typeof HEAD_SELECTION_FORMAT;
  /** The policy's short name (its definition's `name`). */
  readonly policy: string;
  /** What the selection is, for chart titles: e.g. "RazorAttention retrieval heads". */
  readonly title: string;
  /** A caption: how the scores were measured and what a protected head keeps. */
  readonly description: string;
  /** One line: how the protected set follows from the scores, e.g. "top 14% by induction + top 1% by echo". */
  readonly rule: string;
  /** The model reference the scores were measured on. */
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly scores: readonly HeadScore[];
  /** The KV heads the policy treats specially (keeps whole, gives the full budget), in (layer, kvHead) order. */
  readonly protected: readonly HeadRef[];
  /** The settings that produced scores and selection (preparation inputs, selection fractions…). */
  readonly params: Readonly<Record<string, unknown>>;
  /** The policy labels of an experiment that used this selection (written by the runner). */
  readonly usedBy?: readonly string[];
}

/** A KV head's score of kind `score`: its own value, or the reduction of its query heads' values. */
export function kvHeadScore(selection: Pick<HeadSelection, "numHeads" | "numKvHeads">, score: HeadScore, layer: number, kvHead: number): number {
  const row = score.values[layer];
  if (score.per === "kv-head") return row[kvHead];
  const g = selection.numHeads / selection.numKvHeads;
  const group = row.slice(kvHead * g, (kvHead + 1) * g);
  return score.groupReduce === "max" ? Math.max(...group) : group.reduce((a, b) => a + b, 0) / group.length;
}

/**
 * The head counts a head-level artefact carries (a head selection, a policy's prepared scores): numLayers, numHeads
 * and numKvHeads positive integers, numHeads a multiple of numKvHeads. `fail(field, expected, found)` reports the
 * first that is not, and must throw.
 */
export function checkHeadCounts(
  v: Readonly<Record<string, unknown>>,
  fail: (field: string, expected: string, found: unknown) => never,
): { numLayers: number; numHeads: number; numKvHeads: number } {
  for (const k of ["numLayers", "numHeads", "numKvHeads"]) {
    if (typeof v[k] !== "number" || !Number.isInteger(v[k]) || (v[k] as number) <= 0) fail(k, "a positive integer", v[k]);
  }
  const [numLayers, numHeads, numKvHeads] = [v.numLayers, v.numHeads, v.numKvHeads] as number[];
  if (numHeads % numKvHeads !== 0) fail("numHeads", `a multiple of numKvHeads (${numKvHeads})`, numHeads);
  return { numLayers, numHeads, numKvHeads };
}

/** Checks a parsed head-selection file; `source` (a path) names it in the one-line error. */
export function parseHeadSelection(value: unknown, source: string): HeadSelection {
  const fail = (field: string, expected: string, found: unknown): never => {
    const text = JSON.stringify(found) ?? String(found);
    throw new RazorkvError(`${source}: ${field}: expected ${expected}, found ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) return fail("selection", "a head-selection object", value);
  const v = value as Record<string, unknown>;
  if (v.format !== HEAD_SELECTION_FORMAT) fail("format", `"${HEAD_SELECTION_FORMAT}"`, v.format);
  for (const k of ["policy", "title", "description", "rule", "model"]) if (typeof v[k] !== "string") fail(k, "a string", v[k]);
  const { numLayers: L, numHeads: H, numKvHeads: K } = checkHeadCounts(v, fail);
  if (!Array.isArray(v.scores)) fail("scores", "an array of scores", v.scores);
  (v.scores as unknown[]).forEach((s, i) => {
    const e = (s ?? {}) as Record<string, unknown>;
    if (typeof e.kind !== "string" || e.kind === "") fail(`scores[${i}].kind`, "a non-empty string", e.kind);
    if (typeof e.description !== "string") fail(`scores[${i}].description`, "a string", e.description);
    if (e.per !== "query-head" && e.per !== "kv-head") fail(`scores[${i}].per`, `"query-head" or "kv-head"`, e.per);
    if (e.groupReduce !== undefined && e.groupReduce !== "max" && e.groupReduce !== "mean") fail(`scores[${i}].groupReduce`, `"max", "mean" or nothing`, e.groupReduce);
    const width = e.per === "query-head" ? H : K;
    if (!Array.isArray(e.values) || e.values.length !== L) fail(`scores[${i}].values`, `an array of ${L} layers`, e.values);
    (e.values as unknown[]).forEach((row, l) => {
      if (!Array.isArray(row) || row.length !== width || row.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
        fail(`scores[${i}].values[${l}]`, `${width} finite numbers (one per ${e.per})`, row);
      }
    });
  });
  if (new Set((v.scores as { kind: string }[]).map((s) => s.kind)).size !== (v.scores as unknown[]).length) fail("scores", "distinct kinds", (v.scores as { kind: string }[]).map((s) => s.kind));
  if (!Array.isArray(v.protected)) fail("protected", "an array of {layer, kvHead}", v.protected);
  (v.protected as unknown[]).forEach((r, i) => {
    const e = (r ?? {}) as Record<string, unknown>;
    const ok = Number.isInteger(e.layer) && Number.isInteger(e.kvHead) && (e.layer as number) >= 0 && (e.layer as number) < L &&
      (e.kvHead as number) >= 0 && (e.kvHead as number) < K;
    if (!ok) fail(`protected[${i}]`, `{layer in [0, ${L}), kvHead in [0, ${K})}`, r);
  });
  if (!v.params || typeof v.params !== "object" || Array.isArray(v.params)) fail("params", "an object", v.params);
  if (v.usedBy !== undefined && (!Array.isArray(v.usedBy) || v.usedBy.some((l) => typeof l !== "string"))) fail("usedBy", "an array of policy labels", v.usedBy);
  return value as HeadSelection;
}
