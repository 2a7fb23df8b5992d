/**
 * Experiment manifests: YAML validated with zod. Every problem is reported as one RazorkvError line naming the
 * manifest file, the line, the field path and what was expected — before any model loads.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, parseDocument, isNode, type Document } from "yaml";
import { z } from "zod";
import { RazorkvError, parseBudget, type Budget } from "@razorkv/core";
import { ANSWER_PROTOCOLS, type AnswerProtocol, type Mode } from "@razorkv/report";
import type { PrefillProducts } from "@razorkv/model-zoo";
import { TASKS, type TaskName } from "./tasks/index.js";

const budget = z.union([
  z.number().gt(0, "a kvBudget must be > 0").lte(1, "a kvBudget must be ≤ 1"),
  z.strictObject({ kvBudget: z.number().gt(0, "a kvBudget must be > 0").lte(1, "a kvBudget must be ≤ 1") }),
  z.strictObject({ compressionRatio: z.number().gte(0, "a compressionRatio must be ≥ 0").lt(1, "a compressionRatio must be < 1") }),
  z.strictObject({ tokens: z.number().int().positive("a token budget must be a positive integer") }),
]);

const label = z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only");

const policyEntry = z.strictObject({
  /** Package name (`@razorkv/policy-snapkv`) or short name (`snapkv`). */
  name: z.string().min(1),
  /** Distinguishes variants of one policy (ablations); default: the name. */
  label: label.optional(),
  params: z.record(z.string(), z.unknown()).default({}),
  /** Budgets for this policy instead of the manifest's (e.g. Full at 1.0 only). */
  budgets: z.array(budget).min(1).optional(),
});

const mode = z.enum(["query-agnostic", "query-aware"] as const satisfies readonly Mode[]);

const taskEntry = z.strictObject({
  type: z.enum(Object.keys(TASKS) as [TaskName, ...TaskName[]]),
  label: label.optional(),
  params: z.record(z.string(), z.unknown()).default({}),
  /** Modes for this task instead of the manifest's (a task without a question gains nothing from query-aware). */
  modes: z.array(mode).min(1).optional(),
});

export const manifestSchema = z.strictObject({
  name: label,
  seed: z.number().int().nonnegative().default(0),
  models: z.array(z.string().min(1)).min(1),
  modes: z.array(mode).min(1).default(["query-agnostic"]),
  /** How the question and answer meet the compressed cache, the same for every cell (schema.ts AnswerProtocol). */
  answerProtocol: z.enum(ANSWER_PROTOCOLS as [AnswerProtocol, ...AnswerProtocol[]]).default("append"),
  /**
   * The arithmetic of every multi-token forward's products (a sample's prefill, a question fed to a cell):
   * "f32" (default, transformers' result within rounding) or "int8" (llama.cpp-style 8-bit activations: 1.4–1.9×
   * the f32 prefill's speed on SmolLM2 and a 1B-shaped Q4_K_M file; model-zoo's LlamaModelOptions.prefillProducts,
   * which needs the native kernels; F32/F16/BF16 matrices stay f32). A continuation
   * target's scoring forwards stay f32 (over a context prefilled with this arithmetic); preparation (head
   * profiles, calibrations) always runs f32. Part of every row's key when "int8".
   */
  prefillProducts: z.enum(["f32", "int8"] as const satisfies readonly PrefillProducts[]).default("f32"),
  budgets: z.array(budget).min(1),
  policies: z.array(policyEntry).min(1),
  tasks: z.array(taskEntry).min(1),
  /** Results folder, relative to the manifest's directory's parent project root (default reports/<name>). */
  output: z.string().min(1).optional(),
});

export type ManifestInput = z.infer<typeof manifestSchema>;

export interface PolicySpec {
  readonly name: string;
  readonly label: string;
  readonly params: Record<string, unknown>;
  readonly budgets: readonly Budget[];
  /** Where the entry sits, for error messages: "file:line: policies[2]". */
  readonly where: string;
}

export interface TaskSpec {
  readonly type: TaskName;
  readonly label: string;
  readonly params: Record<string, unknown>;
  /** The manifest's modes unless the task names its own. */
  readonly modes: readonly Mode[];
  readonly where: string;
}

export interface Manifest {
  readonly path: string;
  readonly text: string;
  readonly name: string;
  readonly seed: number;
  readonly models: readonly string[];
  readonly modes: readonly Mode[];
  readonly answerProtocol: AnswerProtocol;
  readonly prefillProducts: PrefillProducts;
  readonly policies: readonly PolicySpec[];
  readonly tasks: readonly TaskSpec[];
  readonly output: string;
}

/** Task parameters that name files: they must exist, relative paths resolved from the current directory. */
const PATH_PARAMS: readonly string[] = ["haystackDir", "haystackFile", "file"];

/** Whether a task parameter names a file or folder (resolved to an absolute path when the manifest is read). */
export function isPathParam(name: string): boolean {
  return PATH_PARAMS.includes(name);
}

export function loadManifest(path: string, cwd = process.cwd()): Manifest {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RazorkvError(`${path}: cannot read the manifest (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  return parseManifest(text, path, cwd);
}

export function parseManifest(text: string, path: string, cwd = process.cwd()): Manifest {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = lineCounter.linePos(e.pos[0]).line;
    throw new RazorkvError(`${path}:${line}: not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const at = (fieldPath: readonly PropertyKey[]) => `${path}:${lineOf(doc, lineCounter, fieldPath)}: ${formatPath(fieldPath)}`;
  const parsed = manifestSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RazorkvError(`${at(issue.path)}: ${describeIssue(issue, valueAt(doc.toJS(), issue.path))}`);
  }
  const m = parsed.data;
  const defaultBudgets = m.budgets.map((b, i) => parseBudget(b, at(["budgets", i])));
  const labels = new Set<string>();
  const policies = m.policies.map((p, i): PolicySpec => {
    const spec = {
      name: p.name,
      label: p.label ?? p.name.replace(/^@razorkv\/policy-/, "").replace(/^policy-/, ""),
      params: p.params,
      budgets: p.budgets ? p.budgets.map((b, j) => parseBudget(b, at(["policies", i, "budgets", j]))) : defaultBudgets,
      where: at(["policies", i]),
    };
    if (labels.has(spec.label)) throw new RazorkvError(`${at(["policies", i, "label"])}: label "${spec.label}" is used twice; give each variant its own label`);
    labels.add(spec.label);
    return spec;
  });
  const taskLabels = new Set<string>();
  const tasks = m.tasks.map((t, i): TaskSpec => {
    const params = { ...t.params };
    for (const key of PATH_PARAMS) {
      const value = params[key];
      if (value === undefined) continue;
      if (typeof value !== "string") throw new RazorkvError(`${at(["tasks", i, "params", key])}: expected a path, got ${JSON.stringify(value)}`);
      const full = isAbsolute(value) ? value : resolve(cwd, value);
      if (!existsSync(full)) throw new RazorkvError(`${at(["tasks", i, "params", key])}: ${value} does not exist (resolved to ${full})`);
      params[key] = full;
    }
    const spec = { type: t.type, label: t.label ?? t.type, params, modes: t.modes ?? m.modes, where: at(["tasks", i]) };
    if (taskLabels.has(spec.label)) throw new RazorkvError(`${at(["tasks", i, "label"])}: task label "${spec.label}" is used twice`);
    taskLabels.add(spec.label);
    return spec;
  });
  const output = m.output ? resolve(cwd, m.output) : resolve(cwd, "reports", m.name);
  return {
    path, text, name: m.name, seed: m.seed, models: m.models, modes: m.modes, answerProtocol: m.answerProtocol, prefillProducts: m.prefillProducts,
    policies, tasks, output,
  };
}

function lineOf(doc: Document, lineCounter: LineCounter, fieldPath: readonly PropertyKey[]): number {
  // the deepest node that exists along the path (a missing field points at its parent)
  for (let n = fieldPath.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(fieldPath.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    if (n > 0) {
      // a scalar value's key: find the pair in the parent map
      const parent = n === 1 ? doc.contents : doc.getIn(fieldPath.slice(0, n - 1) as unknown[], true);
      if (isNode(parent) && "items" in parent) {
        const items = (parent as { items: { key?: { value?: unknown; range?: [number, number, number] } }[] }).items;
        const pair = items.find((it) => it.key && it.key.value === fieldPath[n - 1]);
        if (pair?.key?.range) return lineCounter.linePos(pair.key.range[0]).line;
      }
    }
  }
  return 1;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

/** The value at `path` in the manifest as parsed (what an issue was about), or undefined. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, given: unknown): string {
  switch (issue.code) {
    case "unrecognized_keys":
      return `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${given === undefined ? "nothing" : JSON.stringify(given)}`;
    case "invalid_union": {
      // a budget: say what the forms are, and the most specific reason
      const inner = issue.errors.flat().find((e) => e.code === "too_small" || e.code === "too_big");
      return `expected a budget: a number in (0, 1] (kvBudget) or {kvBudget: x}, {compressionRatio: x}, {tokens: n}${inner ? ` (${inner.message})` : ""}`;
    }
    case "invalid_type":
      return issue.message.replace(/^Invalid input: /, "");
    default:
      return issue.message;
  }
}
