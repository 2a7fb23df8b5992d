import { readFileSync } from "node:fs";
import { RazorkvError } from "@razorkv/core";

/** One parsed JSONL line and where it came from (1-based line number), for error messages. */
export interface JsonlRecord {
  readonly line: number;
  readonly value: Record<string, unknown>;
}

/**
 * Reads the first `limit` non-blank lines of a JSONL file (all when undefined). `param` names the task
 * parameter that gave the path, so a missing file is reported as the user wrote it.
 */
export function readJsonl(task: string, param: string, path: string, limit?: number): JsonlRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RazorkvError(`${task}: parameter "${param}": cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  const records: JsonlRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && (limit === undefined || records.length < limit); i++) {
    const raw = lines[i].trim();
    if (raw.length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new RazorkvError(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new RazorkvError(`${path}:${i + 1}: expected a JSON object per line, found ${Array.isArray(value) ? "an array" : typeof value}`);
    }
    records.push({ line: i + 1, value: value as Record<string, unknown> });
  }
  return records;
}

export function stringField(path: string, record: JsonlRecord, field: string, optional: true): string | undefined;
export function stringField(path: string, record: JsonlRecord, field: string, optional?: false): string;
export function stringField(path: string, record: JsonlRecord, field: string, optional = false): string | undefined {
  const v = record.value[field];
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw new RazorkvError(`${path}:${record.line}: missing field "${field}" (a string)`);
  }
  if (typeof v !== "string") throw new RazorkvError(`${path}:${record.line}: field "${field}" must be a string, found ${typeof v}`);
  return v;
}

export function stringListField(path: string, record: JsonlRecord, field: string): string[] {
  const v = record.value[field];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) {
    throw new RazorkvError(`${path}:${record.line}: field "${field}" must be a non-empty list of strings`);
  }
  return v as string[];
}
