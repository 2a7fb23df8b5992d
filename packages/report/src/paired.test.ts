/** Pairing rows by sample, and the Markdown table of paired comparisons, on hand-built rows whose answers are known. */
import { describe, expect, it } from "vitest";
import { fmtDifference } from "./format.js";
import { pairedTableMarkdown } from "./markdown.js";
import { comparePaired, pairedScores } from "./paired.js";
import type { ResultRow } from "./schema.js";
import { newcombePairedInterval } from "./stats.js";

function row(policyLabel: string, budgetNominal: number, sample: number, score: number | "infeasible", task = "passkey", metric = "contains"): ResultRow {
  const identity = {
    experiment: "t", key: `${policyLabel}/${budgetNominal}/${sample}`, model: "m", modelDigest: "d", task, sampleId: `s${sample}`,
    mode: "query-agnostic" as const, protocol: "append" as const, prefillProducts: "f32" as const, targetLength: 100, promptTokens: 110, depth: null, policy: policyLabel,
    policyParams: "{}", policyLabel, cell: `${policyLabel}@${budgetNominal}`, budgetNominal, metric,
  };
  if (score === "infeasible") return { ...identity, status: "infeasible", reason: `s${sample}: cannot` };
  return {
    ...identity, status: "ok", prefillTokens: 100, budgetRealized: budgetNominal, budgetAnswer: budgetNominal, budgetEnd: budgetNominal,
    kvBytes: 1, kvBytesAnswer: 1, kvBytesEnd: 1, kvBytesFull: 1, score, prediction: "", prefillMs: 1, decodeMs: 1, decodeTokens: 1,
  };
}

const S = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
// razor at 0.5: right on s0–s7, wrong on s8, infeasible on s9; snapkv at 0.5: right on s0–s2 only; everyone right at 1
const rows: ResultRow[] = [
  ...S.map((i) => row("full", 1, i, 1)),
  ...S.map((i) => row("razor", 1, i, 1)),
  ...S.map((i) => row("razor", 0.5, i, i < 8 ? 1 : i === 8 ? 0 : "infeasible")),
  ...S.map((i) => row("snapkv", 1, i, 1)),
  // listed in another order: pairing goes by sampleId, not by position
  ...[...S].reverse().map((i) => row("snapkv", 0.5, i, i < 3 ? 1 : 0)),
];
const on = { model: "m", task: "passkey", mode: "query-agnostic" as const, metric: "contains" };

describe("paired comparisons", () => {
  it("pairs by sampleId and keeps only the samples scored in both cells", () => {
    const pairs = pairedScores(rows, on, { policyLabel: "razor", budget: 0.5 }, { policyLabel: "snapkv", budget: 0.5 });
    expect(pairs.sampleIds).toEqual(["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]);
    expect(pairs.a).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(pairs.b).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0]);
    const c = comparePaired(rows, on, { policyLabel: "razor", budget: 0.5 }, { policyLabel: "snapkv", budget: 0.5 });
    expect(c.n).toBe(9);
    expect(c.test).toMatchObject({ method: "mcnemar-exact", aOnly: 5, bOnly: 0, p: 2 / 32 });
    expect(c.test!.difference).toBeCloseTo(5 / 9, 15);
    expect(comparePaired(rows, on, { policyLabel: "razor", budget: 0.5 }, { policyLabel: "razor", budget: 0.3 })).toMatchObject({ n: 0, test: null });
  });

  it("refuses a cell with two rows for one sample", () => {
    const twice = [...rows, row("razor", 1, 3, 0)];
    expect(() => comparePaired(twice, on, { policyLabel: "razor", budget: 1 }, { policyLabel: "full", budget: 1 })).toThrow(/sample "s3" is scored twice in cell razor @ 1/);
  });

  it("tables one policy against every other, at its budgets, and against the full-cache reference at 1", () => {
    const lines = pairedTableMarkdown(rows, { task: "passkey", policy: "razor" }).split("\n");
    expect(lines[0]).toMatch(/^Passkey retrieval \(passkey\): razor \(A\) vs each other policy \(B\), paired by sample; .*positive: A better.*exact McNemar/);
    expect(lines[2]).toBe("| mode | razor budget | B | A − B [95% CI] | p | n | test |");
    const ci = (both: number, aOnly: number, bOnly: number, neither: number, d: number) => fmtDifference({ difference: d, ...newcombePairedInterval(both, aOnly, bOnly, neither) });
    expect(lines.slice(4)).toEqual([
      `| query-agnostic | 1 | full | ${ci(10, 0, 0, 0, 0)} | 1.00 | 10 | exact McNemar |`,
      `| query-agnostic | 1 | snapkv | ${ci(10, 0, 0, 0, 0)} | 1.00 | 10 | exact McNemar |`,
      `| query-agnostic | 0.5 | full @ 1 | ${ci(8, 0, 1, 0, -1 / 9)} | 1.00 | 9 | exact McNemar |`,
      `| query-agnostic | 0.5 | snapkv | ${ci(3, 5, 0, 1, 5 / 9)} | 0.063 | 9 | exact McNemar |`,
    ]);
    expect(lines[7]).toMatch(/^\| query-agnostic \| 0\.5 \| snapkv \| \+0\.556 \[\+0\.\d{3}, \+0\.\d{3}\] \|/);
    expect(() => pairedTableMarkdown(rows, { task: "passkey", policy: "h2o" })).toThrow(/policy "h2o" has no rows/);
    expect(() => pairedTableMarkdown(rows, { task: "niah", policy: "razor" })).toThrow(/no rows for task "niah"/);
  });

  it("uses the paired bootstrap for continuous scores, NLL's sign noted", () => {
    const nll = [0, 1, 2, 3, 4, 5].flatMap((i) => [row("razor", 0.5, i, 3 + i / 10, "lm-loss", "nll"), row("h2o", 0.5, i, 3.2 + i / 10, "lm-loss", "nll")]);
    const lines = pairedTableMarkdown(nll, { task: "lm-loss", policy: "razor", resamples: 500, seed: 1 }).split("\n");
    expect(lines[0]).toContain("(negative: A better)");
    expect(lines[0]).toContain("paired bootstrap (500 resamples, seed 1");
    // every difference is −0.2: the interval has zero width, p is the smallest 500 resamples can show
    expect(lines[4]).toBe("| query-agnostic | 0.5 | h2o | -0.200 [-0.200, -0.200] | 0.004 | 6 | paired bootstrap |");
  });
});
