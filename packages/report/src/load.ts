/**
 * Reading an experiment's result files (schema.ts) into memory, with errors a user can act on: each names the file,
 * the line or field, what was expected and what was found. The report never trusts a file it did not check: a run
 * killed mid-write leaves a half line in results.jsonl, and that must read as such, not as a chart with a hole.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  ANSWER_PROTOCOLS, HEAD_SELECTION_FORMAT, PREFILL_PRODUCTS, withPrefillProducts, type AnswerProtocol, type HeadSelection, type PrefillProducts, type InfeasibleCell, type ResultRow, type Summary, type SummaryCell,
} from "./schema.js";
import { summarizeRows } from "./summarize.js";

/** A results folder or file the report cannot read; the message is one line and names the file. */
export class ReportInputError extends Error {
  override readonly name = "ReportInputError";
}

export interface LoadedHeadSelection {
  /** The file under <results>/heads/ it came from, e.g. "heads/smollm2-135m-instruct@razor.json". */
  readonly file: string;
  readonly selection: HeadSelection;
}

export interface ResultsData {
  readonly dir: string;
  readonly rows: readonly ResultRow[];
  readonly summary: Summary;
  /** Where the means and intervals came from: the runner's summary.json, or recomputed here when it is missing. */
  readonly summarySource: "summary.json" | "results.jsonl";
  /** Every head selection in heads/, in sweep order of the policy labels that used them. */
  readonly heads: readonly LoadedHeadSelection[];
  /** Whether <results>/results.csv exists (the report links it). */
  readonly hasCsv: boolean;
  /** Whether <results>/manifest.yaml exists (the report links it). */
  readonly hasManifest: boolean;
}

/** Fields every row has, scored or not (schema.ts RowIdentity). */
const STRING_FIELDS = ["experiment", "key", "model", "modelDigest", "task", "sampleId", "policy", "policyParams", "policyLabel", "cell", "metric"] as const;
const NUMBER_FIELDS = ["targetLength", "promptTokens", "budgetNominal"] as const;
/** Fields only a scored row (status "ok") has. */
const SCORED_STRINGS = ["prediction"] as const;
const SCORED_NUMBERS = [
  "prefillTokens", "budgetRealized", "budgetAnswer", "budgetEnd", "kvBytes", "kvBytesAnswer", "kvBytesEnd", "kvBytesFull", "score",
  "prefillMs", "decodeMs", "decodeTokens",
] as const;
/** Fields only an infeasible row has. */
const INFEASIBLE_STRINGS = ["reason"] as const;

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Checks one parsed results.jsonl line; `where` is "file:line". A row is scored (status "ok") or infeasible, and carries
 * the fields of its kind only: a score on an infeasible row, or a reason on a scored one, is a writer's bug that would
 * otherwise be read as a result.
 */
export function parseResultRow(value: unknown, where: string): ResultRow {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new ReportInputError(`${where}: expected a result row object, found ${describe(value)}`);
  }
  const v = value as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new ReportInputError(`${where}: field "${field}": expected ${expected}, found ${describe(v[field])}`);
  };
  if (v.status !== "ok" && v.status !== "infeasible") {
    fail("status", `"ok" or "infeasible"${v.status === undefined ? " (a row written before rows had a status: rerun the experiment)" : ""}`);
  }
  const scored = v.status === "ok";
  const strings = [...STRING_FIELDS, ...(scored ? SCORED_STRINGS : INFEASIBLE_STRINGS)];
  const numbers = [...NUMBER_FIELDS, ...(scored ? SCORED_NUMBERS : [])];
  for (const field of strings) {
    if (typeof v[field] !== "string") fail(field, "a string");
  }
  for (const field of numbers) {
    const x = v[field];
    if (typeof x !== "number" || !Number.isFinite(x)) fail(field, "a finite number");
  }
  if (!scored && (v.reason as string).trim() === "") fail("reason", "a one-line reason the cell could not run this sample");
  for (const field of scored ? INFEASIBLE_STRINGS : [...SCORED_STRINGS, ...SCORED_NUMBERS]) {
    if (field in v) fail(field, `no "${field}" on a row with status "${v.status as string}"`);
  }
  if (v.depth !== null && (typeof v.depth !== "number" || !Number.isFinite(v.depth))) fail("depth", "a number in [0, 1] or null");
  if (v.mode !== "query-agnostic" && v.mode !== "query-aware") fail("mode", `"query-agnostic" or "query-aware"`);
  if (!ANSWER_PROTOCOLS.includes(v.protocol as AnswerProtocol)) fail("protocol", ANSWER_PROTOCOLS.map((p) => `"${p}"`).join(" or "));
  // a row from before the field existed was prefilled in f32 (its key is the same: the field enters keys only as int8)
  const row = withPrefillProducts(v);
  if (!PREFILL_PRODUCTS.includes(row.prefillProducts as PrefillProducts)) fail("prefillProducts", PREFILL_PRODUCTS.map((p) => `"${p}"`).join(" or "));
  return row as unknown as ResultRow;
}

/** Parses results.jsonl text; blank lines are skipped, anything else must be one valid row. */
export function parseResultsJsonl(text: string, file: string): ResultRow[] {
  const rows: ResultRow[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const cut = i === lines.length - 1 && !text.endsWith("\n") ? " (the last line is incomplete: was the run interrupted while writing?)" : "";
      throw new ReportInputError(`${file}:${i + 1}: not valid JSON${cut}: ${(error as Error).message}`);
    }
    rows.push(parseResultRow(value, `${file}:${i + 1}`));
  });
  return rows;
}

const CELL_STRINGS = ["model", "task", "mode", "policyLabel", "policy", "policyParams", "metric"] as const;
const CELL_NUMBERS = ["budgetNominal", "n", "mean", "budgetRealizedMean", "budgetAnswerMean", "kvBytesMean", "infeasible"] as const;
const INFEASIBLE_CELL_STRINGS = ["model", "task", "mode", "policyLabel", "metric", "reason"] as const;
const INFEASIBLE_CELL_NUMBERS = ["budgetNominal", "infeasible"] as const;

/** Checks summary.json; ciLow/ciHigh may be null (JSON's spelling of ±∞: the t interval of a single sample). */
export function parseSummary(value: unknown, file: string): Summary {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new ReportInputError(`${file}: expected a summary object, found ${describe(value)}`);
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.cells)) throw new ReportInputError(`${file}: field "cells": expected an array, found ${describe(v.cells)}`);
  const cells = v.cells.map((c: unknown, i: number): SummaryCell => {
    const where = `${file}: cells[${i}]`;
    if (!c || typeof c !== "object") throw new ReportInputError(`${where}: expected a cell object, found ${describe(c)}`);
    const cell = c as Record<string, unknown>;
    for (const field of CELL_STRINGS) {
      if (typeof cell[field] !== "string") throw new ReportInputError(`${where}.${field}: expected a string, found ${describe(cell[field])}`);
    }
    for (const field of CELL_NUMBERS) {
      if (typeof cell[field] !== "number" || !Number.isFinite(cell[field])) {
        throw new ReportInputError(`${where}.${field}: expected a finite number, found ${describe(cell[field])}`);
      }
    }
    for (const field of ["ciLow", "ciHigh"] as const) {
      if (cell[field] !== null && typeof cell[field] !== "number") {
        throw new ReportInputError(`${where}.${field}: expected a number or null, found ${describe(cell[field])}`);
      }
    }
    const bound = (x: unknown, infinite: number) => (typeof x === "number" ? x : infinite);
    return { ...(cell as unknown as SummaryCell), ciLow: bound(cell.ciLow, -Infinity), ciHigh: bound(cell.ciHigh, Infinity) };
  });
  if (!Array.isArray(v.infeasibleCells)) {
    throw new ReportInputError(`${file}: field "infeasibleCells": expected an array (empty when every cell ran), found ${describe(v.infeasibleCells)}`);
  }
  const infeasibleCells = v.infeasibleCells.map((c: unknown, i: number): InfeasibleCell => {
    const where = `${file}: infeasibleCells[${i}]`;
    if (!c || typeof c !== "object") throw new ReportInputError(`${where}: expected a cell object, found ${describe(c)}`);
    const cell = c as Record<string, unknown>;
    for (const field of INFEASIBLE_CELL_STRINGS) {
      if (typeof cell[field] !== "string") throw new ReportInputError(`${where}.${field}: expected a string, found ${describe(cell[field])}`);
    }
    for (const field of INFEASIBLE_CELL_NUMBERS) {
      if (typeof cell[field] !== "number" || !Number.isFinite(cell[field])) {
        throw new ReportInputError(`${where}.${field}: expected a finite number, found ${describe(cell[field])}`);
      }
    }
    return cell as unknown as InfeasibleCell;
  });
  return {
    experiment: typeof v.experiment === "string" ? v.experiment : "",
    cells,
    infeasibleCells,
  };
}

/** Checks a head-selection file (schema.ts HeadSelection); `usedBy` may be absent (none recorded). */
export function parseHeadSelection(value: unknown, file: string): HeadSelection {
  const fail = (field: string, expected: string, found: unknown): never => {
    throw new ReportInputError(`${file}: field "${field}": expected ${expected}, found ${describe(found)}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) fail("selection", "a head-selection object", value);
  const v = value as Record<string, unknown>;
  if (v.format !== HEAD_SELECTION_FORMAT) fail("format", `"${HEAD_SELECTION_FORMAT}"`, v.format);
  for (const k of ["policy", "title", "description", "rule", "model"]) if (typeof v[k] !== "string") fail(k, "a string", v[k]);
  for (const k of ["numLayers", "numHeads", "numKvHeads"]) {
    if (typeof v[k] !== "number" || !Number.isInteger(v[k]) || (v[k] as number) <= 0) fail(k, "a positive integer", v[k]);
  }
  const [L, H, K] = [v.numLayers, v.numHeads, v.numKvHeads] as number[];
  if (H % K !== 0) fail("numHeads", `a multiple of numKvHeads (${K})`, H);
  if (!Array.isArray(v.scores)) fail("scores", "an array of per-head scores", v.scores);
  (v.scores as unknown[]).forEach((score, i) => {
    const e = (score ?? {}) as Record<string, unknown>;
    if (typeof e.kind !== "string" || e.kind === "") fail(`scores[${i}].kind`, "a non-empty string", e.kind);
    if (typeof e.description !== "string") fail(`scores[${i}].description`, "a string", e.description);
    if (e.per !== "query-head" && e.per !== "kv-head") fail(`scores[${i}].per`, `"query-head" or "kv-head"`, e.per);
    const width = e.per === "query-head" ? H : K;
    const m = e.values;
    if (!Array.isArray(m) || m.length !== L) fail(`scores[${i}].values`, `an array of ${L} layers`, Array.isArray(m) ? `${m.length} layers` : m);
    (m as unknown[]).forEach((row, l) => {
      if (!Array.isArray(row) || row.length !== width || row.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
        fail(`scores[${i}].values[${l}]`, `${width} finite numbers (one per ${e.per})`, row);
      }
    });
  });
  if (!Array.isArray(v.protected)) fail("protected", "an array of {layer, kvHead}", v.protected);
  (v.protected as unknown[]).forEach((r, i) => {
    const e = (r ?? {}) as Record<string, unknown>;
    const ok = Number.isInteger(e.layer) && Number.isInteger(e.kvHead) && (e.layer as number) >= 0 && (e.layer as number) < L &&
      (e.kvHead as number) >= 0 && (e.kvHead as number) < K;
    if (!ok) fail(`protected[${i}]`, `{layer in [0, ${L}), kvHead in [0, ${K})}`, r);
  });
  if (v.usedBy !== undefined && (!Array.isArray(v.usedBy) || v.usedBy.some((l) => typeof l !== "string"))) fail("usedBy", "an array of policy labels", v.usedBy);
  return {
    ...(value as HeadSelection),
    params: (v.params && typeof v.params === "object" ? v.params : {}) as Record<string, unknown>,
    usedBy: (v.usedBy as string[] | undefined) ?? [],
  };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ReportInputError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ReportInputError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Reads <dir>/results.jsonl (required), summary.json (recomputed from the rows when absent, e.g. while a run is still
 * going) and heads/*.json (optional).
 */
export function loadResults(dir: string): ResultsData {
  if (!existsSync(dir)) throw new ReportInputError(`${dir}: no such results folder`);
  if (!statSync(dir).isDirectory()) throw new ReportInputError(`${dir}: not a folder (pass the experiment's results folder, which holds results.jsonl)`);
  const jsonl = join(dir, "results.jsonl");
  if (!existsSync(jsonl)) throw new ReportInputError(`${jsonl}: missing; is ${dir} an experiment's results folder?`);
  let text: string;
  try {
    text = readFileSync(jsonl, "utf8");
  } catch (error) {
    throw new ReportInputError(`${jsonl}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const rows = parseResultsJsonl(text, jsonl);
  if (rows.length === 0) throw new ReportInputError(`${jsonl}: no result rows yet`);

  const summaryFile = join(dir, "summary.json");
  const fromFile = existsSync(summaryFile);
  const summary = fromFile ? parseSummary(readJson(summaryFile), summaryFile) : summarizeRows(rows);
  if (summary.cells.length === 0 && summary.infeasibleCells.length === 0) throw new ReportInputError(`${summaryFile}: no cells`);

  const headsDir = join(dir, "heads");
  const heads: LoadedHeadSelection[] = [];
  if (existsSync(headsDir) && statSync(headsDir).isDirectory()) {
    for (const name of readdirSync(headsDir).filter((n) => n.endsWith(".json")).sort()) {
      const file = join(headsDir, name);
      heads.push({ file: `heads/${name}`, selection: parseHeadSelection(readJson(file), file) });
    }
    // in sweep order: by the first row of any policy label that used the selection
    const firstRow = new Map<string, number>();
    rows.forEach((r, i) => firstRow.has(r.policyLabel) || firstRow.set(r.policyLabel, i));
    const rank = (h: LoadedHeadSelection) => Math.min(Infinity, ...h.selection.usedBy.map((l) => firstRow.get(l) ?? Infinity));
    heads.sort((a, b) => rank(a) - rank(b) || (a.file < b.file ? -1 : 1));
  }
  return { dir, rows, summary, summarySource: fromFile ? "summary.json" : "results.jsonl", heads,
    hasCsv: existsSync(join(dir, "results.csv")), hasManifest: existsSync(join(dir, "manifest.yaml")) };
}
