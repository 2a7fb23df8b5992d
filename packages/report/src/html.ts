/**
 * The self-contained HTML report: one file that opens from disk with no network at all. Vega, Vega-Lite and
 * vega-embed are inlined from their published UMD builds, every chart's data is inlined in its spec, the only links
 * are relative ones to the result files beside the report. The page sets `window.__razorkvRendered`, a promise that
 * settles once every chart has been embedded (the browser test waits on it), and `window.__razorkvViews`, the Vega
 * views in chart order.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { KeyFindings, RetentionFinding, TaskFinding } from "./findings.js";
import { fmt, fmtBudget, fmtDifference, fmtP, interval, pEquals, testName } from "./format.js";
import type { ResultsData } from "./load.js";
import type { PairedComparison } from "./paired.js";
import type { InfeasibleRow, ResultRow, Summary, SummaryCell } from "./schema.js";
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED } from "./stats.js";
import { chartMeta, metricLabel, taskTitle, type ChartSection, type VegaLiteSpec } from "./specs.js";

export interface InlineLibrary {
  readonly name: string;
  readonly version: string;
  readonly license: string;
  readonly code: string;
}

/** The global each UMD build defines, in load order (vega-lite needs `vega`, vega-embed needs both). */
const LIBRARIES = ["vega", "vega-lite", "vega-embed"] as const;

/**
 * Reads the minified UMD builds from node_modules. Their package.json files are not exported, so the package root is
 * found by walking up from the resolved entry point; the build's path is the package's own `unpkg` field.
 */
export function loadLibraries(): InlineLibrary[] {
  const require = createRequire(import.meta.url);
  return LIBRARIES.map((name) => {
    let dir = dirname(require.resolve(name));
    for (;;) {
      const pkgFile = join(dir, "package.json");
      if (existsSync(pkgFile)) {
        const pkg = JSON.parse(readFileSync(pkgFile, "utf8")) as { name?: string; version?: string; license?: string; unpkg?: string };
        if (pkg.name === name) {
          if (!pkg.unpkg) throw new Error(`${pkgFile}: no "unpkg" field naming the UMD build to inline`);
          const code = readFileSync(join(dir, pkg.unpkg), "utf8");
          // An inline script ends at the first "</script" whatever the JavaScript around it means.
          if (/<\/script/i.test(code)) throw new Error(`${join(dir, pkg.unpkg)}: contains "</script", cannot be inlined`);
          return { name, version: pkg.version ?? "?", license: pkg.license ?? "?", code };
        }
      }
      const parent = dirname(dir);
      if (parent === dir) throw new Error(`${name}: package.json not found above ${require.resolve(name)}`);
      dir = parent;
    }
  });
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** JSON that is safe inside a <script> element (no "</script", no "<!--"). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

const SECTIONS: readonly { id: ChartSection; title: string; intro: string; empty: string }[] = [
  {
    id: "scores",
    title: "Score vs KV budget",
    intro: "For every task, the mean score of each policy at each KV budget, with its 95% interval over the scored samples " +
      "(a cell with no feasible sample has no point: see \"Cells that could not run\").",
    empty: "No summary cells.",
  },
  {
    id: "needle",
    title: "Needle-in-a-haystack heatmaps",
    intro: "Where in the context each policy loses the needle: context length × needle depth, per policy and budget.",
    empty: "No task with a needle depth (passkey, niah-single, niah-multikey) in this experiment.",
  },
  {
    id: "heads",
    title: "Head selections",
    intro: "Which KV heads each head-level policy protected, and why: the per-head scores it chose them by.",
    empty: "No head selection in heads/ (the experiment ran no policy that selects heads).",
  },
  {
    id: "memory",
    title: "Realized KV memory",
    intro: "Whether each policy holds the memory its budget promises, after compression and when it answers.",
    empty: "No row records the full cache's size.",
  },
  {
    id: "throughput",
    title: "Throughput",
    intro: "Prefill and decode speed, from the wall-clock columns of results.jsonl (they vary between machines and runs).",
    empty: "No timings recorded.",
  },
];


function findingsHtml(findings: KeyFindings, models: number, modes: number): string {
  const taskRows = findings.tasks.map((t) => {
    const [best, ...others] = t.ranking;
    const where = [models > 1 ? t.model : "", modes > 1 ? t.mode : ""].filter(Boolean).join(", ");
    const budgetNote = Math.abs(t.budget - findings.askedBudget) > 1e-9 ? ` <span class="muted">(nearest to ${fmtBudget(findings.askedBudget)})</span>` : "";
    const verdict = !best ? "" : others.length === 0 ? "only policy at this budget" : runnerUpVerdict(t);
    return `<tr>
<td><strong>${escapeHtml(taskTitle(t.task))}</strong>${where ? `<br><span class="muted">${escapeHtml(where)}</span>` : ""}<br><span class="muted">${escapeHtml(metricLabel(t.metric))}</span></td>
<td class="num">${fmtBudget(t.budget)}${budgetNote}</td>
<td>${best ? `<span class="policy">${escapeHtml(best.policyLabel)}</span> ${fmt(best.mean)} <span class="muted">${interval(best)}, n = ${best.n}</span><br><span class="muted">${verdict}</span>` : "—"}</td>
<td>${others.map((o) => `${escapeHtml(o.policyLabel)} ${fmt(o.mean)}`).join("<br>") || "—"}</td>
<td>${t.references.map((r) => `${escapeHtml(r.policyLabel)} ${fmt(r.mean)} <span class="muted">${interval(r)}</span>`).join("<br>") || "—"}</td>
</tr>`;
  });
  const heads = findings.heads.map(
    (h) => `<p><strong>${escapeHtml(h.model)}</strong>${h.usedBy.length ? `, ${h.usedBy.map((l) => `<span class="policy">${escapeHtml(l)}</span>`).join(", ")}` : ""} <span class="muted">(${escapeHtml(h.file)})</span>: ${escapeHtml(h.title)},
${h.protectedHeads.length} of ${h.totalKvHeads} KV heads protected (${((100 * h.protectedHeads.length) / h.totalKvHeads).toFixed(1)}%; ${escapeHtml(h.rule)}):</p>
<p class="heads">${h.protectedHeads.map((l) => `<span class="head">${escapeHtml(l)}</span>`).join(" ")}</p>`,
  );
  return `<section id="findings">
<h2>Key findings</h2>
<h3>Best policy per task at KV budget ${fmtBudget(findings.askedBudget)}</h3>
<table class="findings">
<thead><tr><th>task and metric</th><th>KV budget</th><th>best policy: mean [95% interval]</th><th>other policies (mean, best first)</th><th>full-cache reference</th></tr></thead>
<tbody>
${taskRows.join("\n")}
</tbody>
</table>
<p class="muted">"Best" is the highest mean (the lowest for NLL); the verdict under it is the paired test against the runner-up (below).</p>
<h3>Paired comparisons at that budget</h3>
${pairedHtml(findings, models, modes)}
<h3>Smallest KV budget that keeps 95% of the full cache's score</h3>
${retentionHtml(findings.retention, models, modes)}
<h3>Protected heads</h3>
${heads.length ? heads.join("\n") : `<p class="muted">No head selection in heads/.</p>`}
<p class="muted">L<i>n</i>·kv<i>k</i> = layer <i>n</i>, KV head <i>k</i>, both counted from 0.</p>
</section>`;
}

/** The best policy against the runner-up, in words: the paired test's difference, interval and p. */
function runnerUpVerdict(t: TaskFinding): string {
  const c = t.versusBest[0];
  if (!c?.test) return "no sample scored in both it and the runner-up: no paired test";
  const clear = c.test.p < 0.05;
  return `paired test vs ${escapeHtml(c.b.policyLabel)} (${testName(c.test.method)}, n = ${c.n}): ${fmtDifference(c.test)}, ${pEquals(c.test.p)}` +
    (clear ? "" : ": not a clear win");
}

function comparisonRow(c: PairedComparison, where: string): string {
  const t = c.test;
  const side = (s: PairedComparison["a"]) => `<span class="policy">${escapeHtml(s.policyLabel)}</span> @ ${fmtBudget(s.budget)}`;
  const better = t && t.difference !== 0 ? ((t.difference > 0) !== c.lowerIsBetter ? "A" : "B") : "";
  return `<tr>
<td>${escapeHtml(taskTitle(c.task))}${where ? `<br><span class="muted">${escapeHtml(where)}</span>` : ""}</td>
<td>${side(c.a)} vs ${side(c.b)}</td>
<td class="num">${c.n}</td>
<td class="num">${t ? `${fmtDifference(t)}${better ? ` <span class="muted">(${better} ${c.lowerIsBetter ? "lower" : "higher"})</span>` : ""}` : "—"}</td>
<td class="num">${t ? fmtP(t.p) : "—"}</td>
<td>${t ? testName(t.method) : "no sample scored in both"}</td>
</tr>`;
}

function pairedHtml(findings: KeyFindings, models: number, modes: number): string {
  const rows = findings.tasks.flatMap((t) => {
    const where = [models > 1 ? t.model : "", modes > 1 ? t.mode : ""].filter(Boolean).join(", ");
    return [...t.versusBest, ...t.versusReference].map((c) => comparisonRow(c, where));
  });
  if (rows.length === 0) return `<p class="muted">No task has two policies at one budget, nor a full-cache reference.</p>`;
  return `<p>Every cell of a task is run on the same samples, so two policies are compared <em>sample by sample</em>
(paired): a hard sample is hard for every policy, and pairing takes that shared difficulty out of the comparison. Pairs
are matched by model, task, mode and sample, and only samples scored in both cells count (n). For each task: the best
policy against each other policy at the ranking's budget, then each policy against the full-cache reference.</p>
<ul class="muted">
<li>0/1 scores (found or not): the <strong>exact McNemar test</strong>, a two-sided exact binomial test on the discordant
pairs (samples one policy got right and the other wrong), with Newcombe's (1998) hybrid score interval for the
difference of paired proportions (method 10).</li>
<li>Continuous scores (token accuracy, F1, NLL): a <strong>paired bootstrap</strong> of the mean per-sample difference,
${BOOTSTRAP_RESAMPLES.toLocaleString("en")} resamples from a fixed seed (${BOOTSTRAP_SEED}, so the report is the same every time it is built),
95% percentile interval, two-sided p from the share of resampled means on either side of 0.</li>
</ul>
<table class="findings">
<thead><tr><th>task</th><th>A vs B</th><th>n paired</th><th>A − B: mean [95% interval]</th><th>p (two-sided)</th><th>test</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p class="muted">Each p is for its own comparison; with many comparisons some fall below 0.05 by chance (no correction
for multiplicity is applied). For NLL a negative difference means A is better. With few pairs (under about 20) the
bootstrap's interval is too narrow and its p too small: it only resamples the pairs it has.</p>`;
}

/** Cells with infeasible samples: wholly infeasible cells (no mean) and cells that lost some samples. */
function infeasibleHtml(summary: Summary, rows: readonly ResultRow[], models: number, modes: number): string {
  const firstReason = new Map<string, InfeasibleRow>();
  const key = (c: { model: string; task: string; mode: string; policyLabel: string; budgetNominal: number; metric: string }) =>
    JSON.stringify([c.model, c.task, c.mode, c.policyLabel, c.budgetNominal, c.metric]);
  for (const r of rows) if (r.status === "infeasible" && !firstReason.has(key(r))) firstReason.set(key(r), r);
  const entries = [
    ...summary.infeasibleCells.map((c) => ({ ...c, scored: 0 })),
    ...summary.cells.filter((c) => c.infeasible > 0).map((c) => ({ ...c, scored: c.n, reason: firstReason.get(key(c))?.reason ?? "" })),
  ];
  const infeasibleRows = rows.filter((r) => r.status === "infeasible").length;
  if (entries.length === 0) return `<p>Every cell ran on every sample: no infeasible row.</p>`;
  const body = entries.map((e) => {
    const where = [models > 1 ? e.model : "", modes > 1 ? e.mode : ""].filter(Boolean).join(", ");
    return `<tr>
<td>${escapeHtml(taskTitle(e.task))}${where ? `<br><span class="muted">${escapeHtml(where)}</span>` : ""}</td>
<td><span class="policy">${escapeHtml(e.policyLabel)}</span></td>
<td class="num">${fmtBudget(e.budgetNominal)}</td>
<td class="num">${e.infeasible}</td>
<td class="num">${e.scored}</td>
<td>${escapeHtml(e.reason)}</td>
</tr>`;
  });
  return `<p>${summary.infeasibleCells.length} cell${summary.infeasibleCells.length === 1 ? "" : "s"} could not run on any sample and
${entries.length - summary.infeasibleCells.length} on some (${infeasibleRows} infeasible row${infeasibleRows === 1 ? "" : "s"} in results.jsonl).
An infeasible (cell × sample) is one the policy cannot run as asked: a budget below what it must keep, a record too
short for its observation window, a prompt longer than the model's context. It is recorded with its reason, not scored:
means, intervals and charts use the scored samples only, and a paired comparison drops a sample that is infeasible in
either of its cells.</p>
<table class="findings">
<thead><tr><th>task</th><th>policy</th><th>KV budget</th><th>infeasible samples</th><th>scored samples</th><th>reason (first infeasible sample)</th></tr></thead>
<tbody>
${body.join("\n")}
</tbody>
</table>`;
}

function retentionHtml(retention: readonly RetentionFinding[], models: number, modes: number): string {
  if (retention.length === 0) return `<p class="muted">No task has a full-cache reference (a policy run at budget 1 only).</p>`;
  const rows = retention.map((r) => {
    const where = [models > 1 ? r.model : "", modes > 1 ? r.mode : ""].filter(Boolean).join(", ");
    const cells = r.policies.map((p) =>
      p.smallestBudget === null || !p.at
        ? `<span class="policy">${escapeHtml(p.policyLabel)}</span> <span class="muted">none of ${p.budgets.map(fmtBudget).join(", ")}; at ${fmtBudget(p.budgets[0])}: ${fmt(p.atLargest.mean)} ${interval(p.atLargest)}</span>`
        : `<span class="policy">${escapeHtml(p.policyLabel)}</span> ${fmtBudget(p.smallestBudget)}: ${fmt(p.at.mean)} <span class="muted">${interval(p.at)}</span>`,
    );
    return `<tr>
<td><strong>${escapeHtml(taskTitle(r.task))}</strong>${where ? `<br><span class="muted">${escapeHtml(where)}</span>` : ""}</td>
<td>${fmt(r.reference.mean)} <span class="muted">${interval(r.reference)}</span></td>
<td>${cells.join("<br>")}</td>
</tr>`;
  });
  return `<table class="findings">
<thead><tr><th>task</th><th>full cache: mean [95% interval]</th><th>policy: smallest budget kept, its mean [95% interval]</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p class="muted">A budget counts when the policy's mean is at least 95% of the full cache's there and at every larger budget it ran
(for NLL: at most 1/0.95 of it). Means only: compare the intervals before calling two policies different.</p>`;
}

interface TableData {
  readonly columns: readonly { key: string; label: string; numeric: boolean; digits?: number }[];
  readonly rows: readonly (string | number | null)[][];
}

function rawTable(rows: readonly ResultRow[]): TableData {
  const columns = [
    { key: "task", label: "task", numeric: false },
    { key: "sampleId", label: "sample", numeric: false },
    { key: "policyLabel", label: "policy", numeric: false },
    { key: "budgetNominal", label: "KV budget", numeric: true },
    { key: "status", label: "status", numeric: false },
    { key: "budgetRealized", label: "realized budget", numeric: true, digits: 4 },
    { key: "budgetAnswer", label: "budget at answer", numeric: true, digits: 4 },
    { key: "targetLength", label: "target length", numeric: true },
    { key: "promptTokens", label: "prompt tokens", numeric: true },
    { key: "depth", label: "depth", numeric: true },
    { key: "metric", label: "metric", numeric: false },
    { key: "score", label: "score", numeric: true, digits: 4 },
    { key: "prediction", label: "prediction", numeric: false },
    { key: "reason", label: "reason (infeasible)", numeric: false },
    { key: "kvBytes", label: "KV bytes", numeric: true },
    { key: "prefillMs", label: "prefill ms", numeric: true, digits: 1 },
    { key: "decodeMs", label: "decode ms", numeric: true, digits: 1 },
    { key: "decodeTokens", label: "decode tokens", numeric: true },
    { key: "model", label: "model", numeric: false },
    { key: "mode", label: "mode", numeric: false },
    { key: "protocol", label: "answer protocol", numeric: false },
    { key: "prefillProducts", label: "prefill products", numeric: false },
  ] as const;
  return {
    columns,
    // a field the row's kind does not have (an infeasible row's score, a scored row's reason) is an empty cell
    rows: rows.map((r) => columns.map((c) => ((r as unknown as Record<string, string | number | null | undefined>)[c.key] ?? null))),
  };
}

function cellTable(cells: readonly SummaryCell[]): TableData {
  const columns = [
    { key: "task", label: "task", numeric: false },
    { key: "policyLabel", label: "policy", numeric: false },
    { key: "budgetNominal", label: "KV budget", numeric: true },
    { key: "budgetRealizedMean", label: "realized budget", numeric: true, digits: 4 },
    { key: "budgetAnswerMean", label: "budget at answer", numeric: true, digits: 4 },
    { key: "metric", label: "metric", numeric: false },
    { key: "n", label: "samples", numeric: true },
    { key: "infeasible", label: "infeasible samples", numeric: true },
    { key: "mean", label: "mean", numeric: true, digits: 4 },
    { key: "ciLow", label: "95% low", numeric: true, digits: 4 },
    { key: "ciHigh", label: "95% high", numeric: true, digits: 4 },
    { key: "kvBytesMean", label: "KV bytes (mean)", numeric: true, digits: 0 },
    { key: "model", label: "model", numeric: false },
    { key: "mode", label: "mode", numeric: false },
  ] as const;
  return {
    columns,
    rows: cells.map((c) =>
      columns.map((col) => {
        const v = c[col.key as keyof SummaryCell];
        return typeof v === "number" && !Number.isFinite(v) ? null : v;
      }),
    ),
  };
}

const CSS = `
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font-family: ${"'DejaVu Sans', 'Liberation Sans', Arial, sans-serif"}; color: var(--ink); background: #ffffff; font-size: 14px; line-height: 1.45; }
header, main { max-width: 1500px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; border-bottom: 1px solid var(--line); padding-bottom: 12px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 28px 0 6px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
a { color: var(--accent); }
.charts { display: flex; flex-wrap: wrap; gap: 18px 28px; align-items: flex-start; }
figure.chart { margin: 8px 0; max-width: 100%; overflow-x: auto; }
figure.chart figcaption { color: var(--muted); font-size: 12.5px; max-width: 560px; margin-top: 4px; }
.chart-error { color: #b42318; font-weight: bold; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.findings td { max-width: 420px; }
.policy { font-weight: bold; }
.heads { display: flex; flex-wrap: wrap; gap: 6px; }
.head { font-family: 'DejaVu Sans Mono', monospace; background: #fde8e8; border: 1px solid #d62728; border-radius: 4px; padding: 1px 6px; }
.sortable th button { all: unset; cursor: pointer; display: block; width: 100%; }
.sortable th button:hover, .sortable th button:focus { text-decoration: underline; }
.sortable th[aria-sort="ascending"] button::after { content: " ▲"; }
.sortable th[aria-sort="descending"] button::after { content: " ▼"; }
.table-tools { display: flex; gap: 12px; align-items: center; margin: 6px 0; flex-wrap: wrap; }
.table-wrap { overflow-x: auto; max-width: 100%; }
td.text { max-width: 260px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
footer { max-width: 1500px; margin: 32px auto 24px; padding: 8px 24px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
`;

/** The page's own script: embeds every chart, then makes the tables sortable. Plain ES2020, no modules. */
const CLIENT_SCRIPT = `
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("razorkv-data").textContent);
  var views = [];
  window.__razorkvViews = views;
  var jobs = data.charts.map(function (spec, i) {
    var el = document.getElementById("chart-" + i);
    return vegaEmbed(el, spec, { mode: "vega-lite", actions: false, renderer: "svg" }).then(
      function (result) { views[i] = result.view; el.setAttribute("data-rendered", "true"); return result.view; },
      function (error) {
        el.textContent = "This chart could not be drawn: " + (error && error.message ? error.message : error);
        el.className += " chart-error";
        console.error("razorkv report: chart " + i + " failed:", error);
        throw error;
      });
  });
  window.__razorkvRendered = Promise.all(jobs).then(function () { return views.length; });

  function formatCell(value, column) {
    if (value === null || value === undefined) return "";
    if (column.numeric && typeof value === "number" && column.digits !== undefined) return value.toFixed(column.digits);
    return String(value);
  }

  function sortableTable(id, table, pageSize) {
    var root = document.getElementById(id);
    var state = { column: -1, direction: 1, filter: "", page: 0 };
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var filter = document.createElement("input");
    filter.type = "search";
    filter.placeholder = "filter rows (any column contains…)";
    filter.size = 36;
    filter.setAttribute("aria-label", "filter rows");
    var info = document.createElement("span");
    info.className = "muted";
    var prev = document.createElement("button");
    prev.textContent = "◀ previous";
    var next = document.createElement("button");
    next.textContent = "next ▶";
    tools.append(filter, prev, next, info);
    var wrap = document.createElement("div");
    wrap.className = "table-wrap";
    var el = document.createElement("table");
    el.className = "sortable";
    var thead = el.createTHead();
    var headRow = thead.insertRow();
    var headers = table.columns.map(function (column, c) {
      var th = document.createElement("th");
      th.setAttribute("aria-sort", "none");
      var button = document.createElement("button");
      button.textContent = column.label;
      button.title = "sort by " + column.label;
      button.addEventListener("click", function () {
        state.direction = state.column === c ? -state.direction : 1;
        state.column = c;
        state.page = 0;
        render();
      });
      th.appendChild(button);
      headRow.appendChild(th);
      return th;
    });
    var tbody = el.createTBody();
    wrap.appendChild(el);
    root.append(tools, wrap);
    var keys = table.rows.map(function (row) { return row.join(" ").toLowerCase(); });
    function compare(a, b) {
      var x = a[state.column], y = b[state.column];
      if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
      if (y === null || y === undefined) return -1;
      var d = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return d * state.direction;
    }
    function render() {
      var rows = table.rows.filter(function (row, i) { return state.filter === "" || keys[i].indexOf(state.filter) >= 0; });
      if (state.column >= 0) rows = rows.slice().sort(compare);
      var pages = Math.max(1, Math.ceil(rows.length / pageSize));
      state.page = Math.min(state.page, pages - 1);
      var shown = rows.slice(state.page * pageSize, (state.page + 1) * pageSize);
      tbody.replaceChildren();
      shown.forEach(function (row) {
        var tr = tbody.insertRow();
        row.forEach(function (value, c) {
          var td = tr.insertCell();
          var column = table.columns[c];
          td.textContent = formatCell(value, column);
          td.className = column.numeric ? "num" : "text";
          if (!column.numeric && value) td.title = String(value);
        });
      });
      headers.forEach(function (th, c) {
        th.setAttribute("aria-sort", c === state.column ? (state.direction > 0 ? "ascending" : "descending") : "none");
      });
      info.textContent = rows.length === 0 ? "no matching rows" :
        "rows " + (state.page * pageSize + 1) + "–" + (state.page * pageSize + shown.length) + " of " + rows.length +
        (rows.length !== table.rows.length ? " matching (" + table.rows.length + " in all)" : "") + "; click a column header to sort";
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }
    filter.addEventListener("input", function () { state.filter = filter.value.trim().toLowerCase(); state.page = 0; render(); });
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    next.addEventListener("click", function () { state.page += 1; render(); });
    render();
  }
  sortableTable("cells-table", data.tables.cells, 50);
  sortableTable("raw-table", data.tables.raw, 25);
})();
`;

export interface RenderHtmlInput {
  readonly data: ResultsData;
  readonly specs: readonly VegaLiteSpec[];
  readonly findings: KeyFindings;
  readonly libraries: readonly InlineLibrary[];
}

/** The report page as a string. Every link in it is relative; every script is inline. */
export function renderHtml({ data, specs, findings, libraries }: RenderHtmlInput): string {
  const { rows, summary } = data;
  const experiment = summary.experiment || rows[0]?.experiment || "experiment";
  const uniq = <T>(xs: readonly T[]) => [...new Set(xs)];
  const models = uniq(rows.map((r) => r.model));
  const modes = uniq(rows.map((r) => r.mode));
  const tasks = uniq(rows.map((r) => r.task));
  const policies = uniq(rows.map((r) => r.policyLabel));
  const budgets = uniq(rows.map((r) => r.budgetNominal)).sort((a, b) => b - a);
  const samples = uniq(rows.map((r) => `${r.model}\u0000${r.task}\u0000${r.sampleId}`)).length;
  const infeasibleRows = rows.filter((r) => r.status === "infeasible").length;

  const files = [
    data.hasCsv ? `<a href="results.csv">results.csv</a> (every deterministic column)` : `<span class="muted">results.csv (not found beside this report)</span>`,
    `<a href="results.jsonl">results.jsonl</a> (with timings)`,
    data.summarySource === "summary.json" ? `<a href="summary.json">summary.json</a>` : `<span class="muted">summary.json missing: means and intervals recomputed from results.jsonl</span>`,
    data.hasManifest ? `<a href="manifest.yaml">manifest.yaml</a>` : "",
  ].filter(Boolean);

  const metas = specs.map((spec) => chartMeta(spec));
  const sections = SECTIONS.map((section) => {
    const figures = specs
      .map((spec, i) => ({ spec, i, meta: metas[i] }))
      .filter((f) => f.meta.section === section.id)
      .map(({ spec, i, meta }) => {
        const title = typeof spec.title === "object" && spec.title && "text" in spec.title ? String(spec.title.text) : `chart ${i + 1}`;
        return `<figure class="chart"><div class="vega-chart" id="chart-${i}" data-section="${section.id}" role="img" aria-label="${escapeHtml(title)}"></div><figcaption>${escapeHtml(meta.caption)}</figcaption></figure>`;
      });
    return `<section id="${section.id}">
<h2>${escapeHtml(section.title)}</h2>
<p class="muted">${escapeHtml(section.intro)}</p>
${figures.length ? `<div class="charts">\n${figures.join("\n")}\n</div>` : `<p>${escapeHtml(section.empty)}</p>`}
</section>`;
  });

  const payload = { charts: specs, tables: { cells: cellTable(summary.cells), raw: rawTable(rows) } };
  const libs = libraries.map((l) => `<script>/* ${l.name} ${l.version} (${l.license} licence), inlined so the report opens offline */\n${l.code}\n</script>`);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(experiment)} — razorkv KV-cache compression report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>KV-cache compression report: ${escapeHtml(experiment)}</h1>
<p class="muted">How much of each task's quality each KV-cache compression policy keeps as the cache shrinks.
The KV budget is the fraction of the full cache's key/value entries kept, over all layers and KV heads (1 = full cache).</p>
<dl class="meta">
<dt>model${models.length > 1 ? "s" : ""}</dt><dd>${models.map(escapeHtml).join(", ")}</dd>
<dt>mode</dt><dd>${modes.map(escapeHtml).join(", ")}</dd>
<dt>tasks</dt><dd>${tasks.map(escapeHtml).join(", ")}</dd>
<dt>policies</dt><dd>${policies.map(escapeHtml).join(", ")}</dd>
<dt>KV budgets</dt><dd>${budgets.map(fmtBudget).join(", ")}</dd>
<dt>size</dt><dd>${rows.length} result rows (${infeasibleRows} infeasible), ${samples} samples, ${summary.cells.length + summary.infeasibleCells.length} cells (task × policy × budget)${summary.infeasibleCells.length ? `, ${summary.infeasibleCells.length} of them with no feasible sample` : ""}</dd>
<dt>files</dt><dd>${files.join(" · ")}</dd>
</dl>
</header>
<main>
${findingsHtml(findings, models.length, modes.length)}
<section id="infeasible">
<h2>Cells that could not run</h2>
${infeasibleHtml(summary, rows, models.length, modes.length)}
</section>
${sections.join("\n")}
<section id="cells">
<h2>Summary per cell</h2>
<p class="muted">Mean and 95% interval over the scored samples of every (task, policy, budget) cell${data.summarySource === "summary.json" ? ", from summary.json" : ", recomputed from results.jsonl"}. Click a column header to sort.</p>
<div id="cells-table"></div>
</section>
<section id="raw">
<h2>Raw results</h2>
<p class="muted">One row per (sample × policy × budget) from results.jsonl, scored ("ok") or infeasible (with its reason); ${data.hasCsv ? `<a href="results.csv">results.csv</a> has the same rows without the timing columns` : "results.csv was not found beside this report"}.</p>
<div id="raw-table"></div>
</section>
</main>
<footer>Generated by <code>razorkv report</code> from the files in this folder. Charts drawn with ${libraries.map((l) => `${escapeHtml(l.name)} ${escapeHtml(l.version)}`).join(", ")}, inlined: the page makes no network request.</footer>
${libs.join("\n")}
<script type="application/json" id="razorkv-data">${scriptJson(payload)}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
