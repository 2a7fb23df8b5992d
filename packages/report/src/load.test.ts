import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadResults, parseResultsJsonl, ReportInputError } from "./load.js";
import { summarizeRows } from "./summarize.js";
import { fixtureHeadSelection, fixtureRows, writeFixture } from "./testing/fixture.js";

const fresh = () => mkdtempSync(join(tmpdir(), "razorkv-report-load-"));

function expectInputError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ReportInputError);
  const message = (caught as Error).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain("\n");
}

describe("loadResults", () => {
  it("reads the fixture folder: rows, summary.json, head selections, the csv", () => {
    const dir = fresh();
    const fixture = writeFixture(dir);
    const data = loadResults(dir);
    expect(data.rows).toHaveLength(fixture.rows.length);
    expect(data.summarySource).toBe("summary.json");
    expect(data.summary.cells).toHaveLength(fixture.summary.cells.length);
    expect(data.heads.map((h) => h.file)).toEqual(["heads/synthetic-fixture-model@razor.json"]);
    expect(data.heads[0].selection).toEqual(fixture.heads);
    expect(data.hasCsv).toBe(true);
    expect(data.hasManifest).toBe(true);
  });

  it("recomputes the summary when summary.json is missing (a run in progress)", () => {
    const dir = fresh();
    const fixture = writeFixture(dir, { withoutSummary: true, withoutHeads: true });
    const data = loadResults(dir);
    expect(data.summarySource).toBe("results.jsonl");
    expect(data.summary.cells).toEqual(fixture.summary.cells);
    expect(data.heads).toEqual([]);
  });

  it("reads any policy's head selections, with the labels the file names, in the sweep order of those labels", () => {
    const dir = fresh();
    const fixture = writeFixture(dir);
    // another head-level policy, measured per KV head, used by a label that runs before "razor" and by an unknown one
    const other = {
      ...fixture.heads, policy: "some-other-method", title: "Streaming heads", rule: "lowest 3 gates", usedBy: ["full", "gone"],
      scores: [{ kind: "gate", description: "a per-KV-head gate", per: "kv-head", values: fixture.heads.scores[0].values.map((row) => row.slice(0, 3)) }],
      protected: fixture.heads.protected.slice(0, 3),
    };
    writeFileSync(join(dir, "heads", "synthetic-fixture-model@other.json"), JSON.stringify(other));
    // a file without usedBy: drawn, used by no label, after the others
    const { usedBy: _, ...unlabelled } = fixture.heads;
    writeFileSync(join(dir, "heads", "a-first-by-name.json"), JSON.stringify(unlabelled));
    const data = loadResults(dir);
    const firstRow = (label: string) => data.rows.findIndex((r) => r.policyLabel === label);
    expect(firstRow("full")).toBeLessThan(firstRow("razor"));
    expect(data.heads.map((h) => [h.file, h.selection.usedBy])).toEqual([
      ["heads/synthetic-fixture-model@other.json", ["full", "gone"]],
      ["heads/synthetic-fixture-model@razor.json", ["razor"]],
      ["heads/a-first-by-name.json", []],
    ]);
    expect(data.heads[0].selection.scores[0].per).toBe("kv-head");
  });

  it("reads null interval bounds in summary.json as unbounded", () => {
    const dir = fresh();
    const fixture = writeFixture(dir);
    const cells = fixture.summary.cells.map((c, i) => (i === 0 ? { ...c, n: 1, ciLow: null, ciHigh: null } : c));
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ experiment: "x", cells, infeasibleCells: fixture.summary.infeasibleCells }));
    const data = loadResults(dir);
    expect(data.summary.cells[0].ciLow).toBe(-Infinity);
    expect(data.summary.cells[0].ciHigh).toBe(Infinity);
  });

  it("names the folder when it or results.jsonl is missing", () => {
    const dir = fresh();
    expectInputError(() => loadResults(join(dir, "nope")), /nope: no such results folder/);
    expectInputError(() => loadResults(dir), /results\.jsonl: missing/);
    writeFileSync(join(dir, "results.jsonl"), "\n");
    expectInputError(() => loadResults(dir), /results\.jsonl: no result rows yet/);
    writeFileSync(join(dir, "file"), "");
    expectInputError(() => loadResults(join(dir, "file")), /not a folder/);
  });

  it("names the file and line of a line that is not JSON, or a field of the wrong type", () => {
    const [a, b] = fixtureRows();
    const file = "/r/results.jsonl";
    expectInputError(() => parseResultsJsonl(`${JSON.stringify(a)}\n{"experiment": \n${JSON.stringify(b)}\n`, file), /^\/r\/results\.jsonl:2: not valid JSON/);
    expectInputError(() => parseResultsJsonl(`${JSON.stringify(a)}\n{"experiment": "x"`, file), /:2: not valid JSON \(the last line is incomplete/);
    expectInputError(() => parseResultsJsonl(`${JSON.stringify({ ...a, score: "high" })}\n`, file), /:1: field "score": expected a finite number, found "high"/);
    expectInputError(() => parseResultsJsonl(`${JSON.stringify({ ...a, depth: "mid" })}\n`, file), /:1: field "depth"/);
    expectInputError(() => parseResultsJsonl(`[1, 2]\n`, file), /:1: expected a result row object/);
    expect(parseResultsJsonl(`${JSON.stringify(a)}\n\n${JSON.stringify(b)}\n`, file)).toHaveLength(2);
  });

  it("reads both kinds of row, and names a field that does not belong to the row's status", () => {
    const rows = fixtureRows();
    const ok = rows.find((r) => r.status === "ok")!;
    const bad = rows.find((r) => r.status === "infeasible")!;
    const file = "/r/results.jsonl";
    expect(parseResultsJsonl(`${JSON.stringify(ok)}\n${JSON.stringify(bad)}\n`, file).map((r) => r.status)).toEqual(["ok", "infeasible"]);
    const line = (row: object) => `${JSON.stringify(row)}\n`;
    const { status: _status, ...noStatus } = ok;
    expectInputError(() => parseResultsJsonl(line(noStatus), file), /:1: field "status": expected "ok" or "infeasible" \(a row written before rows had a status/);
    expectInputError(() => parseResultsJsonl(line({ ...ok, status: "failed" }), file), /:1: field "status": expected "ok" or "infeasible", found "failed"/);
    expectInputError(() => parseResultsJsonl(line({ ...ok, reason: "" }), file), /:1: field "reason": expected no "reason" on a row with status "ok", found ""/);
    expectInputError(() => parseResultsJsonl(line({ ...bad, score: 0 }), file), /:1: field "score": expected no "score" on a row with status "infeasible", found 0/);
    expectInputError(() => parseResultsJsonl(line({ ...bad, reason: " " }), file), /:1: field "reason": expected a one-line reason/);
    const { reason: _reason, ...noReason } = bad;
    expectInputError(() => parseResultsJsonl(line(noReason), file), /:1: field "reason": expected a string, found nothing/);
    const { budgetAnswer: _answer, ...noAnswer } = ok;
    expectInputError(() => parseResultsJsonl(line(noAnswer), file), /:1: field "budgetAnswer": expected a finite number, found nothing/);
    expectInputError(() => parseResultsJsonl(line({ ...ok, protocol: "evict" }), file), /:1: field "protocol": expected "append" or "hold-budget", found "evict"/);
    expectInputError(() => parseResultsJsonl(line({ ...bad, key: 7 }), file), /:1: field "key": expected a string, found 7/);
    expectInputError(() => parseResultsJsonl(line({ ...ok, prefillProducts: "fp8" }), file), /:1: field "prefillProducts": expected "f32" or "int8", found "fp8"/);
  });

  it("reads a row from before prefillProducts existed as an f32 row, and keeps an int8 row's", () => {
    const ok = fixtureRows().find((r) => r.status === "ok")!;
    const { prefillProducts: _, ...before } = ok;
    const file = "/r/results.jsonl";
    expect(parseResultsJsonl(`${JSON.stringify(before)}\n`, file)[0].prefillProducts).toBe("f32");
    expect(parseResultsJsonl(`${JSON.stringify({ ...ok, prefillProducts: "int8" })}\n`, file)[0].prefillProducts).toBe("int8");
  });

  it("names summary.json and head-selection files that are not what they should be", () => {
    const dir = fresh();
    writeFixture(dir);
    writeFileSync(join(dir, "summary.json"), "{ nope");
    expectInputError(() => loadResults(dir), /summary\.json: not valid JSON/);
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ experiment: "x", cells: [{ task: 3 }] }));
    expectInputError(() => loadResults(dir), /summary\.json: cells\[0\]\.model: expected a string/);
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ experiment: "x", cells: [] }));
    expectInputError(() => loadResults(dir), /summary\.json: field "infeasibleCells": expected an array/);
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ experiment: "x", cells: [], infeasibleCells: [{ model: "m", task: "t", mode: "query-aware", policyLabel: "p", metric: "exact", budgetNominal: 0.1, infeasible: 2 }] }));
    expectInputError(() => loadResults(dir), /summary\.json: infeasibleCells\[0\]\.reason: expected a string, found nothing/);
    const dir2 = fresh();
    writeFixture(dir2);
    mkdirSync(join(dir2, "heads"), { recursive: true });
    const bad = { ...fixtureHeadSelection(), numLayers: 2 };
    writeFileSync(join(dir2, "heads", "bad.json"), JSON.stringify(bad));
    expectInputError(() => loadResults(dir2), /heads\/bad\.json: field "scores\[0\]\.values": expected an array of 2 layers, found "30 layers"/);
    writeFileSync(join(dir2, "heads", "bad.json"), JSON.stringify({ ...fixtureHeadSelection(), format: undefined }));
    expectInputError(() => loadResults(dir2), /heads\/bad\.json: field "format": expected "razorkv\.head-selection\/1", found nothing/);
    writeFileSync(join(dir2, "heads", "bad.json"), JSON.stringify({ ...fixtureHeadSelection(), protected: [{ layer: 0, kvHead: 3 }] }));
    expectInputError(() => loadResults(dir2), /heads\/bad\.json: field "protected\[0\]": expected \{layer in \[0, 30\), kvHead in \[0, 3\)\}/);
  });
});

describe("the recomputed summary", () => {
  it("one cell per (task, policy, budget) in first-seen order", () => {
    const rows = fixtureRows();
    const cells = summarizeRows(rows).cells;
    expect(cells).toHaveLength(4 * (1 + 4 + 5 * 3));
    expect(cells[0]).toMatchObject({ task: "niah-single", policyLabel: "full", budgetNominal: 1, n: 30, infeasible: 0 });
  });

  it("means over the scored rows; infeasible samples counted per cell; cells with none scored listed apart with the first reason", () => {
    const rows = fixtureRows();
    const summary = summarizeRows(rows);
    // razor at 0.2 lost the 1024-token samples: niah-single 10 of 30, passkey 6 of 12
    const razor02 = summary.cells.find((c) => c.task === "niah-single" && c.policyLabel === "razor" && c.budgetNominal === 0.2)!;
    expect([razor02.n, razor02.infeasible]).toEqual([20, 10]);
    const scored = rows.filter((r) => r.status === "ok" && r.task === "niah-single" && r.policyLabel === "razor" && r.budgetNominal === 0.2);
    expect(razor02.mean).toBeCloseTo(scored.reduce((s, r) => s + (r.status === "ok" ? r.score : NaN), 0) / scored.length, 12);
    expect(razor02.budgetAnswerMean).toBeCloseTo(scored.reduce((s, r) => s + (r.status === "ok" ? r.budgetAnswer : NaN), 0) / scored.length, 12);
    expect(razor02.budgetAnswerMean).toBeGreaterThan(razor02.budgetRealizedMean);
    expect(summary.cells.find((c) => c.task === "passkey" && c.policyLabel === "razor" && c.budgetNominal === 0.2)).toMatchObject({ n: 6, infeasible: 6 });
    expect(summary.cells.filter((c) => c.policyLabel !== "razor" || c.budgetNominal > 0.2).every((c) => c.infeasible === 0)).toBe(true);
    // razor at 0.1: no sample could run, in any task
    expect(summary.infeasibleCells.map((c) => [c.task, c.policyLabel, c.budgetNominal, c.infeasible])).toEqual([
      ["niah-single", "razor", 0.1, 30], ["passkey", "razor", 0.1, 12], ["repeated-tokens", "razor", 0.1, 6], ["lm-loss", "razor", 0.1, 6],
    ]);
    const first = rows.find((r) => r.status === "infeasible" && r.task === "niah-single" && r.budgetNominal === 0.1)!;
    expect(summary.infeasibleCells[0].reason).toBe(first.status === "infeasible" ? first.reason : "");
    expect(summary.infeasibleCells[0].reason).toMatch(/^niah-single sample niah-single\/seed7\/L1024\/d0\/0, cell razor@0\.1: kvBudget 0\.1 is below/);
  });
});
