import { compile } from "vega-lite";
import * as vega from "vega";
import { describe, expect, it } from "vitest";
import { keyFindings, nearestBudget } from "./findings.js";
import { isScored, type Summary } from "./schema.js";
import {
  buildSpecs, chartMeta, headLabel, headSelectionSpecs, memorySpecs, needleSpecs, scoreSpecs, throughputSpecs, type VegaLiteSpec,
} from "./specs.js";
import { summarizeRows } from "./summarize.js";
import { fixtureHeadSelection, fixtureRows } from "./testing/fixture.js";

const rows = fixtureRows();
const scored = rows.filter(isScored);
const summary = summarizeRows(rows);
const selection = fixtureHeadSelection();
const loaded = { file: "heads/synthetic-fixture-model@razor.json", selection };

interface SceneNode {
  marktype?: string;
  role?: string;
  items?: SceneNode[];
}

/** Items drawn by data marks (role "mark"), walking the Vega scenegraph: axes, legends and titles do not count. */
function dataMarkItems(node: SceneNode): number {
  let n = node.role === "mark" && node.marktype !== "group" ? (node.items?.length ?? 0) : 0;
  for (const child of node.items ?? []) n += dataMarkItems(child);
  return n;
}

/** Compiles with Vega-Lite (collecting every warning) and runs the Vega view headless. */
async function render(spec: VegaLiteSpec): Promise<{ warnings: string[]; marks: number; svg: string }> {
  const warnings: string[] = [];
  const logger = {
    level() { return this as never; },
    warn: (...args: unknown[]) => { warnings.push(args.join(" ")); return logger as never; },
    info: () => logger as never,
    debug: () => logger as never,
    error: (...args: unknown[]) => { warnings.push(`error: ${args.join(" ")}`); return logger as never; },
  };
  const { spec: vg } = compile(spec, { logger: logger as never });
  const view = new vega.View(vega.parse(vg), { renderer: "none" });
  await view.runAsync();
  const svg = await view.toSVG();
  const marks = dataMarkItems((view.scenegraph() as unknown as { root: SceneNode }).root);
  view.finalize();
  return { warnings, marks, svg };
}

describe("spec builders on the synthetic fixture", () => {
  const specs = buildSpecs(rows, summary, [loaded]);

  it("build every chart: one score chart per task, a heatmap per needle task, the head selection, memory, two throughput", () => {
    expect(scoreSpecs(rows, summary)).toHaveLength(4);
    expect(needleSpecs(rows, summary)).toHaveLength(2);
    expect(headSelectionSpecs([loaded])).toHaveLength(1);
    expect(memorySpecs(rows, summary)).toHaveLength(1);
    expect(throughputSpecs(rows, summary)).toHaveLength(2);
    expect(specs).toHaveLength(10);
    expect(specs.map((s) => chartMeta(s).section)).toEqual([
      "scores", "scores", "scores", "scores", "needle", "needle", "heads", "memory", "throughput", "throughput",
    ]);
  });

  it("every title names the mode, the task and the metric", () => {
    const title = (spec: VegaLiteSpec) => (spec.title as { text: string }).text;
    expect(scoreSpecs(rows, summary).map(title)).toEqual([
      "Needle in a haystack, one needle (niah-single), query-agnostic: answer found in output (share of samples)",
      expect.stringMatching(/^Passkey retrieval \(passkey\), query-agnostic: /),
      expect.stringMatching(/^Continuing a repeated random-token sequence \(repeated-tokens\), query-agnostic: /),
      "Language-model loss on the continuation of a long text (lm-loss), query-agnostic: mean NLL, nats per token (lower is better)",
    ]);
    expect(title(needleSpecs(rows, summary)[0])).toBe(
      "Needle in a haystack, one needle (niah-single), query-agnostic: answer found in output (share of samples), by context length and needle depth",
    );
    expect(title(headSelectionSpecs([loaded])[0])).toBe("RazorAttention retrieval heads of synthetic/fixture-model-30L (not a real model) (razor): echo and induction score per head");
    for (const spec of [...memorySpecs(rows, summary), ...throughputSpecs(rows, summary)]) {
      expect(title(spec)).toMatch(/^All tasks \(niah-single, passkey, [a-z-, ]+\), query-agnostic: (realized KV budget|prefill throughput|decode throughput)/);
    }
  });

  it("the needle heatmaps of the two query modes carry different titles", () => {
    const aware = rows.map((r) => ({ ...r, mode: "query-aware" as const, key: `${r.key}-aware` }));
    const both = [...rows, ...aware];
    const titles = needleSpecs(both, summarizeRows(both)).map((s) => (s.title as { text: string }).text);
    expect(titles.filter((t) => t.includes("(niah-single)"))).toEqual([
      expect.stringContaining("(niah-single), query-agnostic: answer found in output"),
      expect.stringContaining("(niah-single), query-aware: answer found in output"),
    ]);
    expect(new Set(titles).size).toBe(titles.length);
  });

  it("every spec compiles without a Vega-Lite warning and draws data marks headless", async () => {
    for (const spec of specs) {
      const { warnings, marks, svg } = await render(spec);
      const title = JSON.stringify(spec.title);
      expect(warnings, title).toEqual([]);
      expect(marks, title).toBeGreaterThan(0);
      expect(svg).toContain("<svg");
    }
  }, 60_000);

  it("specs are self-contained: inline data only, no URL", () => {
    for (const spec of specs) {
      const text = JSON.stringify(spec);
      expect(text).not.toMatch(/https?:/);
      expect(text).not.toMatch(/"url"\s*:/);
    }
  });

  it("labels NLL as lower-is-better and fixes bounded metrics to [0, 1]", () => {
    const [niah, , , lmLoss] = scoreSpecs(rows, summary);
    expect(JSON.stringify(lmLoss)).toContain("mean NLL, nats per token (lower is better)");
    expect(JSON.stringify(niah)).toContain('"domain":[0,1]');
    expect(JSON.stringify(niah)).toContain("KV budget (fraction of the full KV cache kept)");
  });

  it("draws a policy run only at the full budget as a reference line, and keeps the others' exact budgets", () => {
    const [niah] = scoreSpecs(rows, summary);
    const values = (niah as { data: { values: { policy: string; budget: number; reference: boolean }[] } }).data.values;
    expect(values.filter((v) => v.reference).map((v) => v.policy)).toEqual(["full"]);
    expect(values.filter((v) => v.policy === "razor").map((v) => v.budget)).toEqual([1, 0.5, 0.3, 0.2]);
  });

  it("an unbounded interval (one sample) becomes null, not a bar to infinity", () => {
    const one: Summary = { experiment: "x", cells: [{ ...summary.cells[0], n: 1, ciLow: -Infinity, ciHigh: Infinity }], infeasibleCells: [] };
    const [spec] = scoreSpecs([], one);
    const [value] = (spec as { data: { values: { ciLow: number | null; ciHigh: number | null }[] } }).data.values;
    expect(value.ciLow).toBeNull();
    expect(value.ciHigh).toBeNull();
  });

  it("needle heatmaps average the samples of each (policy, budget, length, depth) cell", () => {
    const [niah] = needleSpecs(rows, summary);
    const values = (niah as { data: { values: { policy: string; budget: number; length: number; depth: number; mean: number; n: number }[] } }).data.values;
    // cells × lengths × depths; razor at 0.2 lost its 1024-token samples (infeasible) and at 0.1 every sample
    expect(values).toHaveLength((1 + 3 + 5 * 3) * 3 * 5 + 2 * 5);
    expect(values.filter((v) => v.policy === "razor" && v.budget === 0.2).map((v) => v.length)).not.toContain(1024);
    expect(values.filter((v) => v.policy === "razor" && v.budget === 0.1)).toEqual([]);
    const cell = values.find((v) => v.policy === "h2o" && v.budget === 0.3 && v.length === 2048 && v.depth === 0.5)!;
    const expected = scored.filter((r) => r.task === "niah-single" && r.policyLabel === "h2o" && r.budgetNominal === 0.3 && r.targetLength === 2048 && r.depth === 0.5);
    expect(cell.n).toBe(expected.length);
    expect(cell.mean).toBeCloseTo(expected.reduce((s, r) => s + r.score, 0) / expected.length, 12);
  });

  it("a head selection: a panel per score, every query head of each protected KV head marked, titles from the file", () => {
    const [spec] = headSelectionSpecs([loaded]);
    type Value = { layer: number; head: number; kvHead: number; score: number; protected: boolean };
    const panels = (spec as { hconcat: { data: { values: Value[] }; title: { text: string } }[] }).hconcat;
    expect(panels.map((p) => p.title.text)).toEqual(["echo score per query head", "induction score per query head"]);
    panels.forEach((panel, k) => {
      const values = panel.data.values;
      expect(values).toHaveLength(30 * 9);
      expect(values.find((v) => v.layer === 17 && v.head === 8)!.score).toBe(selection.scores[k].values[17][8]);
      const marked = values.filter((v) => v.protected);
      expect(marked).toHaveLength(selection.protected.length * 3);
      for (const r of selection.protected) expect(marked.filter((v) => v.layer === r.layer && v.kvHead === r.kvHead)).toHaveLength(3);
    });
    expect((spec.title as { subtitle: string }).subtitle).toBe(`${selection.protected.length} of 90 KV heads protected (top 14% of KV heads by induction + top 1% by echo); 30 layers × 3 KV heads, 9 query heads per layer`);
    expect(chartMeta(spec).caption).toMatch(/^SYNTHETIC fixture: invented echo and induction scores\. Outlined in red: the \d+ of 90 protected KV heads/);
  });

  it("any policy's selection, per KV head too, draws without warnings", async () => {
    const other = {
      file: "heads/x@other.json",
      selection: {
        ...selection, policy: "other", title: "Streaming heads", rule: "lowest 3", usedBy: [],
        scores: [{ kind: "gate", description: "per KV head", per: "kv-head" as const, values: selection.scores[0].values.map((row) => row.slice(0, 3)) }],
      },
    };
    const [spec] = headSelectionSpecs([other]);
    expect((spec.title as { text: string }).text).toBe("Streaming heads of synthetic/fixture-model-30L (not a real model): gate score per head");
    const values = (spec as { hconcat: { data: { values: { protected: boolean }[] } }[] }).hconcat[0].data.values;
    expect(values).toHaveLength(30 * 3);
    expect(values.filter((v) => v.protected)).toHaveLength(selection.protected.length);
    const { warnings, marks } = await render(spec);
    expect(warnings).toEqual([]);
    expect(marks).toBe(30 * 3 + selection.protected.length);
  });

  it("realized budget after compression and at the answer, means of the scored rows; throughput is tokens per second", () => {
    const [memory] = memorySpecs(rows, summary);
    type MemoryValue = { policy: string; budget: number; realized: number; answer: number; n: number };
    const panels = (memory as { hconcat: { layer: { data?: { values: MemoryValue[] } }[] }[] }).hconcat;
    expect(panels).toHaveLength(2);
    const mem = panels[1].layer[1].data!.values;
    const full = mem.find((v) => v.policy === "full")!;
    expect(full.realized).toBeCloseTo(1, 9);
    expect(full.answer).toBeCloseTo(1, 9);
    // "append": the uncompressed question lifts the budget the cell answered with above the nominal one
    const razor = mem.find((v) => v.policy === "razor" && v.budget === 0.3)!;
    const razorRows = scored.filter((r) => r.policyLabel === "razor" && r.budgetNominal === 0.3);
    expect(razor.n).toBe(razorRows.length);
    expect(razor.answer).toBeCloseTo(razorRows.reduce((s, r) => s + r.budgetAnswer, 0) / razorRows.length, 12);
    expect(razor.answer).toBeGreaterThan(razor.realized);
    expect(razor.realized).toBeGreaterThan(0.3);
    expect(mem.find((v) => v.policy === "razor" && v.budget === 0.1)).toBeUndefined();
    const [prefill, decode] = throughputSpecs(rows, summary);
    const p = (prefill as { data: { values: { policy: string; rate: number }[] } }).data.values;
    const fullRows = scored.filter((r) => r.policyLabel === "full");
    expect(p.find((v) => v.policy === "full")!.rate).toBeCloseTo(
      fullRows.reduce((s, r) => s + r.prefillTokens / (r.prefillMs / 1000), 0) / fullRows.length, 6);
    const d = (decode as { data: { values: { policy: string; budget: number; rate: number }[] } }).data.values;
    expect(d.find((v) => v.policy === "snapkv" && v.budget === 0.1)!.rate).toBeGreaterThan(d.find((v) => v.policy === "snapkv" && v.budget === 1)!.rate);
  });

  it("an experiment without needle tasks, head selections or timings simply has fewer charts", () => {
    const plain = rows.filter((r) => r.depth === null).map((r) => (isScored(r) ? { ...r, prefillMs: 0, decodeMs: 0 } : r));
    const s = summarizeRows(plain);
    const sections = buildSpecs(plain, s, []).map((x) => chartMeta(x).section);
    expect(sections).toEqual(["scores", "scores", "memory"]);
  });
});

describe("key findings", () => {
  it("names the best policy per task at budget 0.3, with its interval, and the protected heads", () => {
    const findings = keyFindings(summary, rows, [loaded]);
    const niah = findings.tasks.find((t) => t.task === "niah-single")!;
    expect(niah.budget).toBe(0.3);
    expect(niah.ranking[0].policyLabel).toBe("razor");
    expect(niah.ranking.map((r) => r.policyLabel).sort()).toEqual(["h2o", "razor", "snapkv", "streamingllm"]);
    expect(niah.references.map((r) => r.policyLabel)).toEqual(["full"]);
    const lm = findings.tasks.find((t) => t.task === "lm-loss")!;
    expect(lm.lowerIsBetter).toBe(true);
    for (let i = 1; i < lm.ranking.length; i++) expect(lm.ranking[i].mean).toBeGreaterThanOrEqual(lm.ranking[i - 1].mean);
    expect(findings.heads[0].protectedHeads).toEqual(selection.protected.map((r) => headLabel(r.layer, r.kvHead)));
    expect(findings.heads[0].title).toBe("RazorAttention retrieval heads");
    expect(findings.heads[0].protectedHeads[0]).toMatch(/^L\d+·kv\d$/);
    expect(findings.heads[0].usedBy).toEqual(["razor"]);
  });

  it("tests the best policy against each other one, and each against the full cache, paired by sample", () => {
    const findings = keyFindings(summary, rows, [loaded]);
    const niah = findings.tasks.find((t) => t.task === "niah-single")!;
    expect(niah.versusBest.map((c) => [c.a.policyLabel, c.b.policyLabel])).toEqual(niah.ranking.slice(1).map((r) => ["razor", r.policyLabel]));
    expect(niah.versusReference.map((c) => [c.a.policyLabel, c.a.budget, c.b.policyLabel, c.b.budget])).toEqual(
      niah.ranking.map((r) => [r.policyLabel, 0.3, "full", 1]));
    for (const c of [...niah.versusBest, ...niah.versusReference]) {
      expect(c.n).toBe(30);
      expect(c.test!.method).toBe("mcnemar-exact");
    }
    // the McNemar counts, recounted from the rows: razor vs h2o at 0.3
    const score = (label: string, id: string) => {
      const r = scored.find((x) => x.task === "niah-single" && x.policyLabel === label && x.budgetNominal === 0.3 && x.sampleId === id)!;
      return r.score;
    };
    const ids = [...new Set(scored.filter((r) => r.task === "niah-single").map((r) => r.sampleId))];
    const h2o = niah.versusBest.find((c) => c.b.policyLabel === "h2o")!.test!;
    expect(h2o.aOnly).toBe(ids.filter((id) => score("razor", id) === 1 && score("h2o", id) === 0).length);
    expect(h2o.bOnly).toBe(ids.filter((id) => score("razor", id) === 0 && score("h2o", id) === 1).length);
    expect(h2o.difference).toBeCloseTo(h2o.meanA - h2o.meanB, 15);
    const lm = findings.tasks.find((t) => t.task === "lm-loss")!;
    expect(lm.versusBest.every((c) => c.test!.method === "paired-bootstrap" && c.n === 6)).toBe(true);
    // at 0.2 razor lost its 1024-token samples: its comparisons pair only the 20 samples scored in both cells
    const at02 = keyFindings(summary, rows, [loaded], 0.2).tasks.find((t) => t.task === "niah-single")!;
    const withRazor = [...at02.versusBest, ...at02.versusReference].filter((c) => c.a.policyLabel === "razor" || c.b.policyLabel === "razor");
    expect(withRazor.length).toBeGreaterThan(0);
    for (const c of withRazor) expect(c.n).toBe(20);
  });

  it("falls back to the nearest compressed budget, ties to the lower one", () => {
    expect(nearestBudget([1, 0.5, 0.25], 0.3)).toBe(0.25);
    expect(nearestBudget([1, 0.4, 0.2], 0.3)).toBe(0.2);
    expect(nearestBudget([1, 0.6], 0.3)).toBe(0.6);
    expect(nearestBudget([1], 0.3)).toBe(1);
  });
});
