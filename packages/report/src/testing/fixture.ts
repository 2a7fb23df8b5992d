/**
 * A SYNTHETIC results folder for the report's rendering tests: invented numbers in the exact file formats an
 * experiment writes (schema.ts), shaped like a real sweep so every chart has something to draw. Nothing here was
 * measured; the experiment and model names say so, and no report built from it should be read as a result.
 *
 * Shape: 5 policies (full at budget 1 only; razor, snapkv, h2o, streamingllm at {1, 0.5, 0.3, 0.2, 0.1}) × 4 tasks
 * (niah-single over 3 lengths × 5 depths and passkey over 2 × 3, contains-match; repeated-tokens, token accuracy;
 * lm-loss, NLL) × a few samples each, and a head profile of 30 layers × 9 query heads / 3 KV heads. Infeasible rows,
 * invented too: razor at 0.1 on every sample (below its protected share: a cell with no feasible sample) and at 0.2
 * on the 1024-token samples (a cell that lost some samples).
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mulberry32 } from "@razorkv/core";
import { HEAD_SELECTION_FORMAT, RESULT_COLUMNS, type HeadSelection, type Mode, type ResultRow, type Summary } from "../schema.js";
import { summarizeRows } from "../summarize.js";

export const FIXTURE_EXPERIMENT = "synthetic-fixture";
export const FIXTURE_MODEL = "synthetic/fixture-model-30L (not a real model)";

interface PolicySpec {
  readonly policy: string;
  readonly label: string;
  readonly params: Record<string, unknown>;
  readonly budgets: readonly number[];
}

const ALL_BUDGETS = [1, 0.5, 0.3, 0.2, 0.1];

export const FIXTURE_POLICIES: readonly PolicySpec[] = [
  { policy: "full", label: "full", params: {}, budgets: [1] },
  { policy: "razor", label: "razor", params: { inductionFraction: 0.14, echoFraction: 0.01, sinks: 4 }, budgets: ALL_BUDGETS },
  { policy: "snapkv", label: "snapkv", params: { window: 32, kernel: 7, pooling: "max" }, budgets: ALL_BUDGETS },
  { policy: "h2o", label: "h2o", params: { accumulate: "sum", recentShare: 0.5 }, budgets: ALL_BUDGETS },
  { policy: "streamingllm", label: "streamingllm", params: { sinks: 4 }, budgets: ALL_BUDGETS },
];

const LAYERS = 30;
const HEADS = 9;
const KV_HEADS = 3;
const HEAD_DIM = 64;
/** Keys and values, 2 bytes per element, every layer and KV head: bytes per cached token. */
const BYTES_PER_TOKEN = 2 * 2 * LAYERS * KV_HEADS * HEAD_DIM;
/** RazorAttention keeps its protected heads (14 of 90) whole, plus sinks and a window elsewhere: an invented floor. */
const RAZOR_FLOOR = 0.16;
const FIXTURE_MODEL_DIGEST = createHash("sha256").update(FIXTURE_MODEL).digest("hex");

/** Why a cell cannot run a sample (invented, shaped like the runner's reasons), or null when it can. */
function infeasibleReason(policy: string, budget: number, s: SampleSpec): string | null {
  if (policy !== "razor") return null;
  const floor = s.targetLength <= 1024 ? 0.21 : RAZOR_FLOOR;
  if (budget >= floor) return null;
  return `${s.task} sample ${s.sampleId}, cell razor@${budget}: kvBudget ${budget} is below the ${floor} RazorAttention must keep ` +
    `(14 of 90 KV heads protected whole, plus 4 sinks and the recent window per other head) at ${s.targetLength} tokens`;
}

/** Invented chance that a policy finds the needle: what the charts should make visible, not a claim. */
function findProbability(policy: string, budget: number, depth: number): number {
  if (budget >= 1) return 0.97;
  switch (policy) {
    case "razor":
      return budget >= 0.3 ? 0.93 : 0.82;
    case "snapkv":
      return { 0.5: 0.88, 0.3: 0.66, 0.2: 0.5, 0.1: 0.35 }[budget] ?? 0.5;
    case "h2o":
      return { 0.5: 0.8, 0.3: 0.5, 0.2: 0.35, 0.1: 0.2 }[budget] ?? 0.4;
    case "streamingllm":
      // keeps the start (sinks) and the most recent `budget` of the context: finds needles that sit in that window
      return depth >= 1 - budget || depth === 0 ? 0.9 : 0.05;
    default:
      return 0.97;
  }
}

/** Invented quality loss per policy at a budget, in [0, 1] (0 = like the full cache). */
function loss(policy: string, budget: number): number {
  if (budget >= 1) return 0;
  const scale = { razor: 0.15, snapkv: 0.5, h2o: 0.6, streamingllm: 0.9 }[policy] ?? 0;
  return scale * (1 - budget) ** 2;
}

interface SampleSpec {
  readonly task: string;
  readonly metric: string;
  readonly sampleId: string;
  readonly targetLength: number;
  readonly depth: number | null;
}

function samples(): SampleSpec[] {
  const out: SampleSpec[] = [];
  for (const length of [1024, 2048, 4096]) {
    for (const depth of [0, 0.25, 0.5, 0.75, 1]) {
      for (let i = 0; i < 2; i++) out.push({ task: "niah-single", metric: "contains", sampleId: `niah-single/seed7/L${length}/d${depth * 100}/${i}`, targetLength: length, depth });
    }
  }
  for (const length of [1024, 4096]) {
    for (const depth of [0, 0.5, 1]) {
      for (let i = 0; i < 2; i++) out.push({ task: "passkey", metric: "contains", sampleId: `passkey/seed7/L${length}/d${depth * 100}/${i}`, targetLength: length, depth });
    }
  }
  for (let i = 0; i < 6; i++) out.push({ task: "repeated-tokens", metric: "token-accuracy", sampleId: `repeated-tokens/seed7/${i}`, targetLength: 2048, depth: null });
  for (let i = 0; i < 6; i++) out.push({ task: "lm-loss", metric: "nll", sampleId: `lm-loss/seed7/${i}`, targetLength: 2048, depth: null });
  return out;
}

/** The synthetic result rows, in sweep order (per sample, every cell). */
export function fixtureRows(seed = 7): ResultRow[] {
  const rand = mulberry32(seed);
  const noise = (width: number) => (rand() - 0.5) * width;
  const mode: Mode = "query-agnostic";
  const rows: ResultRow[] = [];
  for (const s of samples()) {
    const promptTokens = s.targetLength + 20 + Math.floor(rand() * 12);
    // query-agnostic: the context is prefilled and compressed, the question (the last 20 tokens) appended after
    const questionTokens = 20;
    const prefillTokens = promptTokens - questionTokens;
    // one shared prefill per sample (DESIGN §2): the same wall time in every cell's row
    const prefillMs = (prefillTokens / 2400) * 1000 * (1 + noise(0.1));
    for (const p of FIXTURE_POLICIES) {
      for (const budget of p.budgets) {
        const identity = {
          experiment: FIXTURE_EXPERIMENT,
          model: FIXTURE_MODEL,
          modelDigest: FIXTURE_MODEL_DIGEST,
          task: s.task,
          sampleId: s.sampleId,
          mode,
          protocol: "append" as const,
          prefillProducts: "f32" as const,
          targetLength: s.targetLength,
          promptTokens,
          depth: s.depth,
          policy: p.policy,
          policyParams: JSON.stringify(p.params),
          policyLabel: p.label,
          cell: `${p.label}@${budget}`,
          budgetNominal: budget,
          metric: s.metric,
        };
        const key = createHash("sha256").update(JSON.stringify([identity, seed])).digest("hex");
        const reason = infeasibleReason(p.policy, budget, s);
        // razor at 0.1 is new to the fixture: it draws nothing, so every other row keeps the numbers it had
        if (reason !== null && budget < 0.2) {
          rows.push({ ...identity, key, status: "infeasible", reason });
          continue;
        }
        const realized = budget >= 1 ? 1 : budget + (p.policy === "razor" ? 0.004 : 0) + noise(0.002);
        // RazorAttention's compensation token: one extra entry per compressed KV head, counted in the bytes
        const extra = p.policy === "razor" && budget < 1 ? 77 / (LAYERS * KV_HEADS) : 0;
        const kvBytesFull = prefillTokens * BYTES_PER_TOKEN;
        let score: number;
        let prediction = "";
        let decodeTokens: number;
        if (s.metric === "contains") {
          const found = rand() < findProbability(p.policy, budget, s.depth ?? 0);
          score = found ? 1 : 0;
          const value = 100000 + Math.floor(rand() * 900000);
          prediction = found ? `The special magic number is ${value}.` : `I could not find a number in the text.`;
          decodeTokens = 8 + Math.floor(rand() * 12);
        } else if (s.metric === "token-accuracy") {
          score = Math.min(1, Math.max(0, 0.96 - 0.9 * loss(p.policy, budget) + noise(0.06)));
          decodeTokens = 64;
        } else {
          score = 2.85 + 1.6 * loss(p.policy, budget) + noise(0.25);
          decodeTokens = 128;
        }
        const decodeRate = 45 / (0.35 + 0.65 * budget);
        const decodeMs = (decodeTokens / decodeRate) * 1000 * (1 + noise(0.1));
        if (reason !== null) {
          rows.push({ ...identity, key, status: "infeasible", reason });
          continue;
        }
        // "append": the question and then the answer are added to the compressed cache uncompressed
        const kept = Math.min(1, realized) * prefillTokens + extra;
        const kvBytes = Math.round(kept * BYTES_PER_TOKEN);
        rows.push({
          ...identity,
          key,
          status: "ok",
          prefillTokens,
          budgetRealized: realized,
          budgetAnswer: (kept + questionTokens) / promptTokens,
          budgetEnd: (kept + questionTokens + decodeTokens) / (promptTokens + decodeTokens),
          kvBytes,
          kvBytesAnswer: kvBytes + questionTokens * BYTES_PER_TOKEN,
          kvBytesEnd: kvBytes + (questionTokens + decodeTokens) * BYTES_PER_TOKEN,
          kvBytesFull,
          score,
          prediction,
          prefillMs,
          decodeMs,
          decodeTokens,
        });
      }
    }
  }
  return rows;
}

/**
 * A synthetic head selection shaped like RazorAttention's: low background scores, a dozen strong induction heads in
 * the middle layers and two echo heads; the protected set chosen the way policy-razor chooses it (per KV head the
 * max over its query heads, top 14% by induction ∪ top 1% by echo).
 */
export function fixtureHeadSelection(seed = 11): HeadSelection {
  const rand = mulberry32(seed);
  const echo: number[][] = [];
  const induction: number[][] = [];
  for (let l = 0; l < LAYERS; l++) {
    echo.push(Array.from({ length: HEADS }, () => 0.002 + 0.03 * rand() ** 3));
    induction.push(Array.from({ length: HEADS }, () => 0.003 + 0.05 * rand() ** 3));
  }
  const strongInduction = [[6, 4], [9, 1], [11, 7], [12, 2], [14, 5], [15, 0], [17, 8], [17, 7], [19, 3], [21, 6], [23, 1], [24, 4], [26, 8], [27, 2]];
  for (const [l, h] of strongInduction) induction[l][h] = 0.35 + 0.55 * rand();
  for (const [l, h] of [[2, 5], [4, 0]]) echo[l][h] = 0.4 + 0.4 * rand();
  const g = HEADS / KV_HEADS;
  const n = LAYERS * KV_HEADS;
  const groupMax = (m: number[][]) => Array.from({ length: n }, (_, i) => Math.max(...m[Math.floor(i / KV_HEADS)].slice((i % KV_HEADS) * g, (i % KV_HEADS + 1) * g)));
  const top = (scores: number[], count: number) => Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, count);
  const chosen = new Set([...top(groupMax(induction), Math.round(0.14 * n)), ...top(groupMax(echo), Math.round(0.01 * n))]);
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: "razor",
    title: "RazorAttention retrieval heads",
    description: "SYNTHETIC fixture: invented echo and induction scores.",
    rule: "top 14% of KV heads by induction + top 1% by echo",
    model: FIXTURE_MODEL,
    numLayers: LAYERS,
    numHeads: HEADS,
    numKvHeads: KV_HEADS,
    scores: [
      { kind: "echo", description: "attention on earlier copies of the same token", per: "query-head", groupReduce: "max", values: echo },
      { kind: "induction", description: "attention on the token after each earlier copy", per: "query-head", groupReduce: "max", values: induction },
    ],
    protected: [...chosen].sort((a, b) => a - b).map((i) => ({ layer: Math.floor(i / KV_HEADS), kvHead: i % KV_HEADS })),
    params: { blockLength: 511, repeats: 4, seed: 2407, tokenRange: [1000, 30000], bosId: 1, inductionFraction: 0.14, echoFraction: 0.01 },
    usedBy: ["razor"],
  };
}

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface FixtureOptions {
  /** Leave summary.json out (a run still in progress); default false. */
  readonly withoutSummary?: boolean;
  readonly withoutHeads?: boolean;
}

export interface Fixture {
  readonly dir: string;
  readonly rows: ResultRow[];
  readonly summary: Summary;
  readonly heads: HeadSelection;
}

/** Writes the synthetic results folder into `dir`: results.jsonl, results.csv, summary.json, manifest.yaml, heads/. */
export function writeFixture(dir: string, options: FixtureOptions = {}): Fixture {
  mkdirSync(join(dir, "heads"), { recursive: true });
  const rows = fixtureRows();
  const summary = summarizeRows(rows);
  const heads = fixtureHeadSelection();
  writeFileSync(join(dir, "results.jsonl"), rows.map((r) => JSON.stringify(r) + "\n").join(""));
  const field = (r: ResultRow, c: (typeof RESULT_COLUMNS)[number]) => csvField((r as unknown as Record<string, unknown>)[c]);
  const csv = [RESULT_COLUMNS.join(","), ...rows.map((r) => RESULT_COLUMNS.map((c) => field(r, c)).join(","))].join("\n") + "\n";
  writeFileSync(join(dir, "results.csv"), csv);
  if (!options.withoutSummary) writeFileSync(join(dir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  if (!options.withoutHeads) writeFileSync(join(dir, "heads", "synthetic-fixture-model@razor.json"), JSON.stringify(heads, null, 1) + "\n");
  writeFileSync(
    join(dir, "manifest.yaml"),
    `# SYNTHETIC fixture for @razorkv/report rendering tests: invented numbers, not an experiment\nname: ${FIXTURE_EXPERIMENT}\n`,
  );
  return { dir, rows, summary, heads };
}
