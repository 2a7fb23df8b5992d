/**
 * Vega-Lite specs of an experiment's charts: pure functions (rows, summary, head selections) → specs, with every dataset
 * aggregated here and inlined as `data.values`, so a spec renders without fetching anything. Each spec carries its
 * place in the report in `usermeta.razorkv` (section and caption).
 *
 * Conventions that hold across charts: one colour per policy label, the same in every chart (sweep order, Tableau
 * 10); the KV budget axis is the nominal kvBudget, the fraction of the full cache's entries kept (DESIGN §3); points
 * of different policies at one budget are nudged apart by a few pixels so their error bars do not hide each other
 * (tooltips give the exact budget).
 */
import type { Config, TopLevelSpec } from "vega-lite";
import type { LoadedHeadSelection } from "./load.js";
import { isScored, lowerIsBetter, type HeadScore, type ResultRow, type Summary, type SummaryCell } from "./schema.js";
import { cellsByTask, groupBy, referenceCells } from "./summarize.js";

export type VegaLiteSpec = TopLevelSpec;

export type ChartSection = "scores" | "needle" | "heads" | "memory" | "throughput";

export interface ChartMeta {
  readonly section: ChartSection;
  /** One or two sentences on how to read the chart, shown under it. */
  readonly caption: string;
}

/** The report metadata a spec built here carries. */
export function chartMeta(spec: VegaLiteSpec): ChartMeta {
  const meta = (spec.usermeta as { razorkv?: ChartMeta } | undefined)?.razorkv;
  if (!meta) throw new Error("chartMeta: the spec carries no usermeta.razorkv (was it built by @razorkv/report?)");
  return meta;
}

export const FONT = "'DejaVu Sans', 'Liberation Sans', Arial, sans-serif";

export const CHART_CONFIG: Config = {
  font: FONT,
  title: { anchor: "start", fontSize: 14, subtitleFontSize: 11, subtitleColor: "#555555", offset: 12 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", titleColor: "#333333" },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", labelLimit: 220 },
  header: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal" },
};


const METRIC_LABELS: Record<string, string> = {
  exact: "exact match (share of samples)",
  contains: "answer found in output (share of samples)",
  "token-f1": "token F1",
  "rouge-l": "ROUGE-L F-score",
  "token-accuracy": "next-token accuracy (greedy, teacher-forced)",
  nll: "mean NLL, nats per token (lower is better)",
  ppl: "perplexity (lower is better)",
  perplexity: "perplexity (lower is better)",
  "longbench-qa-f1": "LongBench QA F1",
  "longbench-rouge": "LongBench ROUGE-L",
  "longbench-classification": "LongBench classification score",
  "longbench-retrieval": "LongBench retrieval score",
  "longbench-retrieval-zh": "LongBench retrieval score",
  "longbench-count": "LongBench count score",
  "longbench-code-sim": "LongBench code edit similarity",
  "ruler-match-all": "RULER share of the values found (string_match_all)",
  "ruler-match-part": "RULER any value found (string_match_part)",
};

/** An axis title for a metric a reader understands without the code. */
export function metricLabel(metric: string): string {
  return METRIC_LABELS[metric] ?? (lowerIsBetter(metric) ? `${metric} (lower is better)` : metric);
}

const TASK_TITLES: Record<string, string> = {
  passkey: "Passkey retrieval",
  "niah-single": "Needle in a haystack, one needle",
  "niah-multikey": "Needle in a haystack, several keys",
  "repeated-tokens": "Continuing a repeated random-token sequence",
  "lm-loss": "Language-model loss on the continuation of a long text",
};

/** A readable task title, with the manifest's task name in parentheses. */
export function taskTitle(task: string): string {
  const known = TASK_TITLES[task];
  return known ? `${known} (${task})` : task;
}

/** Policy labels in sweep order (first appearance in the summary, then in the rows). */
export function policyOrder(rows: readonly ResultRow[], summary: Summary): string[] {
  const seen = new Set<string>();
  for (const c of summary.cells) seen.add(c.policyLabel);
  for (const r of rows) seen.add(r.policyLabel);
  return [...seen];
}

function colorEncoding(policies: readonly string[]) {
  return {
    field: "policy",
    type: "nominal" as const,
    title: "policy",
    scale: { domain: [...policies], scheme: "tableau10" },
    legend: { orient: "right" as const, symbolStrokeWidth: 2 },
  };
}

/** One line per policy with a point at each budget, the points carrying `tooltip`: the memory and throughput charts. */
function policyLines(x: object, y: object, policies: readonly string[], strokeWidth: number, tooltip: readonly object[]) {
  return [
    { mark: { type: "line" as const, strokeWidth }, encoding: { x, y, color: colorEncoding(policies) } },
    { mark: { type: "point" as const, filled: true, size: 45, opacity: 1 }, encoding: { x, y, color: colorEncoding(policies), tooltip: [...tooltip] } },
  ];
}

function nudge(policy: string, policies: readonly string[]): number {
  const i = Math.max(0, policies.indexOf(policy));
  return (i - (policies.length - 1) / 2) * 0.006;
}

/** Non-finite bounds (the unbounded t interval of one sample) become null: JSON has no ∞, Vega's isValid skips it. */
function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function distinct<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/**
 * The title of a chart of one task, mode and metric, as the Markdown tables name them: "Passkey retrieval (passkey),
 * query-aware: answer found in output (share of samples)". Every chart says its mode, also when the experiment ran one
 * mode only (two sections with one title could not be told apart); the model is named when the experiment has several.
 */
export function taskChartTitle(cell: { task: string; mode: string; metric: string; model: string }, models: readonly string[]): string {
  const model = distinct(models).length > 1 ? ` on ${cell.model}` : "";
  return `${taskTitle(cell.task)}, ${cell.mode}${model}: ${metricLabel(cell.metric)}`;
}

/** "All tasks (passkey, lm-loss), query-agnostic and query-aware": what a chart over every task's rows covers. */
function scopeTitle(rows: readonly { task: string; mode: string }[]): string {
  const tasks = distinct(rows.map((r) => r.task));
  const modes = distinct(rows.map((r) => r.mode));
  return `${tasks.length === 1 ? taskTitle(tasks[0]) : `All tasks (${tasks.join(", ")})`}, ${modes.join(" and ")}`;
}

function budgetAxis(budgets: readonly number[]) {
  return {
    title: "KV budget (fraction of the full KV cache kept)",
    values: [...budgets].sort((a, b) => a - b),
    format: "~g",
    grid: true,
  };
}

const BUDGET_SCALE = { domain: [0, 1.04], nice: false, zero: true };

/**
 * Score vs kvBudget, one chart per (task, metric) (and model and mode where the experiment has several): one line per
 * policy through the cell means, error bars the 95% interval over samples. A policy run at a single budget equal to
 * the largest (the full cache at 1.0) is drawn as a dashed horizontal reference line across the chart.
 */
export function scoreSpecs(rows: readonly ResultRow[], summary: Summary): VegaLiteSpec[] {
  const policies = policyOrder(rows, summary);
  const specs: VegaLiteSpec[] = [];
  for (const cells of cellsByTask(summary)) {
    const { metric } = cells[0];
    const lower = lowerIsBetter(metric);
    const budgets = distinct(cells.map((c) => c.budgetNominal));
    // with a single budget nothing is a reference: every policy ran there
    const references = new Set(budgets.length > 1 ? referenceCells(cells) : []);
    const isReference = (c: SummaryCell) => references.has(c);
    const values = cells.map((c) => ({
      policy: c.policyLabel,
      budget: c.budgetNominal,
      budgetPlot: c.budgetNominal + nudge(c.policyLabel, policies),
      mean: c.mean,
      ciLow: finiteOrNull(c.ciLow),
      ciHigh: finiteOrNull(c.ciHigh),
      n: c.n,
      realized: c.budgetRealizedMean,
      reference: isReference(c),
    }));
    const hasReference = values.some((v) => v.reference);
    const yTitle = metricLabel(metric);
    const bounded = !lower && cells.every((c) => c.mean >= 0 && c.mean <= 1);
    const y = {
      field: "mean",
      type: "quantitative" as const,
      title: yTitle,
      scale: bounded ? { domain: [0, 1], clamp: true } : { zero: false, nice: true },
    };
    const x = { field: "budgetPlot", type: "quantitative" as const, scale: BUDGET_SCALE, axis: budgetAxis(budgets) };
    const tooltip = [
      { field: "policy", type: "nominal" as const, title: "policy" },
      { field: "budget", type: "quantitative" as const, title: "KV budget (nominal)", format: "~g" },
      { field: "realized", type: "quantitative" as const, title: "KV budget (realized)", format: ".3f" },
      { field: "mean", type: "quantitative" as const, title: `mean ${metric}`, format: ".3f" },
      { field: "ciLow", type: "quantitative" as const, title: "95% interval low", format: ".3f" },
      { field: "ciHigh", type: "quantitative" as const, title: "95% interval high", format: ".3f" },
      { field: "n", type: "quantitative" as const, title: "samples" },
    ];
    const caption =
      `Mean ${metric} over samples for each policy at each KV budget; bars are 95% intervals ` +
      `(Wilson for right/wrong scores, Student t otherwise). ${lower ? "Lower is better." : "Higher is better."}` +
      (hasReference ? " Dashed: a policy run only at the full budget (the full cache), for reference." : "");
    specs.push({
      title: {
        text: taskChartTitle(cells[0], summary.cells.map((c) => c.model)),
        subtitle: `${yTitle} vs KV budget, one line per policy; bars: 95% interval over samples`,
      },
      description: caption,
      usermeta: { razorkv: { section: "scores", caption } },
      width: 400,
      height: 250,
      config: CHART_CONFIG,
      data: { values },
      layer: [
        ...(hasReference
          ? [
              {
                transform: [{ filter: "datum.reference" }],
                mark: { type: "rule" as const, strokeDash: [6, 4], strokeWidth: 1.5 },
                encoding: { y, color: colorEncoding(policies), tooltip },
              },
            ]
          : []),
        {
          transform: [{ filter: "!datum.reference && isValid(datum.ciLow) && isValid(datum.ciHigh)" }],
          mark: { type: "rule" as const, strokeWidth: 1.5, opacity: 0.7 },
          encoding: { x, y: { ...y, field: "ciLow" }, y2: { field: "ciHigh" }, color: colorEncoding(policies) },
        },
        {
          transform: [{ filter: "!datum.reference" }],
          mark: { type: "line" as const, strokeWidth: 2 },
          encoding: { x, y, color: colorEncoding(policies) },
        },
        {
          mark: { type: "point" as const, filled: true, size: 45, opacity: 1 },
          encoding: { x, y, color: colorEncoding(policies), tooltip },
        },
      ],
    });
  }
  return specs;
}

/**
 * Needle heatmaps: for every task whose rows carry a needle depth, the mean score per (context length × depth) cell,
 * one panel per policy (rows) and budget (columns, largest first).
 */
export function needleSpecs(rows: readonly ResultRow[], summary: Summary): VegaLiteSpec[] {
  const policies = policyOrder(rows, summary);
  const needleRows = rows.filter(isScored).filter((r) => r.depth !== null);
  const groups = groupBy(needleRows, (r) => JSON.stringify([r.model, r.mode, r.task, r.metric]));
  const specs: VegaLiteSpec[] = [];
  for (const group of groups.values()) {
    const { metric } = group[0];
    const cells = groupBy(group, (r) => JSON.stringify([r.policyLabel, r.budgetNominal, r.targetLength, r.depth]));
    const values = [...cells.values()].map((g) => ({
      policy: g[0].policyLabel,
      budget: g[0].budgetNominal,
      length: g[0].targetLength,
      depth: g[0].depth as number,
      mean: mean(g.map((r) => r.score)),
      n: g.length,
    }));
    const lengths = distinct(values.map((v) => v.length)).sort((a, b) => a - b);
    const depths = distinct(values.map((v) => v.depth)).sort((a, b) => a - b);
    const shownPolicies = policies.filter((p) => values.some((v) => v.policy === p));
    const lower = lowerIsBetter(metric);
    const bounded = !lower && values.every((v) => v.mean >= 0 && v.mean <= 1);
    const caption =
      `Each small grid is one policy (row) at one KV budget (column): cells are context length (x) × needle depth (y), ` +
      `coloured by the mean ${metric} over the samples of that cell${bounded ? " (1 = always found)" : ""}. ` +
      "A policy that keeps the needle shows a uniformly bright grid; a dark band at some depths shows where its evictions lose it. " +
      "A missing grid or square had no feasible sample (see \"Cells that could not run\").";
    specs.push({
      title: {
        text: `${taskChartTitle(group[0], needleRows.map((r) => r.model))}, by context length and needle depth`,
        subtitle: [
          `One row per policy, one grid per KV budget (largest first). In each grid: x = context length in tokens, y = needle depth`,
          `(0% = start of the context, 100% = end). Colour: ${metricLabel(metric)}, mean over samples.`,
        ],
      },
      description: caption,
      usermeta: { razorkv: { section: "needle", caption } },
      config: CHART_CONFIG,
      data: { values },
      // one row per policy, each faceted over its own budgets: a policy run at fewer budgets (the full cache at 1.0
      // only, RazorAttention above its protected share) gets fewer panels instead of empty ones
      vconcat: shownPolicies.map((policy, i) => ({
        title: { text: policy, anchor: "start" as const, fontSize: 12, fontWeight: "bold" as const, offset: 4 },
        transform: [{ filter: { field: "policy", equal: policy } }],
        facet: {
          column: {
            field: "budget",
            type: "ordinal" as const,
            sort: "descending" as const,
            header: { title: null, labelExpr: "'KV budget ' + datum.value", labelFontWeight: "bold" as const },
          },
        },
        spacing: 10,
        spec: {
          // wide enough for the "KV budget 0.5" header over a grid of few lengths
          width: { step: Math.max(16, Math.min(48, Math.ceil(104 / lengths.length))) },
          height: { step: Math.max(10, Math.min(20, Math.floor(110 / depths.length))) },
          mark: { type: "rect" as const, stroke: "#ffffff", strokeWidth: 0.5 },
          encoding: {
            x: {
              field: "length",
              type: "ordinal" as const,
              sort: lengths,
              title: i === shownPolicies.length - 1 ? "context length" : null,
              axis: { labelAngle: -45, labels: i === shownPolicies.length - 1 },
            },
            y: { field: "depth", type: "ordinal" as const, sort: depths, title: "depth", axis: { format: ".0%" } },
            color: {
              field: "mean",
              type: "quantitative" as const,
              title: lower ? `mean ${metric} (lower is better)` : `mean ${metric}`,
              scale: bounded ? { domain: [0, 1], scheme: "viridis" } : { scheme: "viridis", reverse: lower },
            },
            tooltip: [
              { field: "policy", type: "nominal" as const, title: "policy" },
              { field: "budget", type: "quantitative" as const, title: "KV budget", format: "~g" },
              { field: "length", type: "quantitative" as const, title: "context length (tokens)" },
              { field: "depth", type: "quantitative" as const, title: "needle depth", format: ".0%" },
              { field: "mean", type: "quantitative" as const, title: `mean ${metric}`, format: ".2f" },
              { field: "n", type: "quantitative" as const, title: "samples" },
            ],
          },
        },
      })),
      spacing: 6,
      resolve: { scale: { color: "shared" }, legend: { color: "shared" } },
    });
  }
  return specs;
}

/** "L17·kv2": layer 17, KV head 2 (both counted from 0, as in the head-selection file). */
export function headLabel(layer: number, kvHead: number): string {
  return `L${layer}·kv${kvHead}`;
}

/**
 * A head-level policy's selection (heads/*.json, any policy): one heatmap per score kind, layer × head (query heads or
 * KV heads, as the score is measured), with every head of each protected KV head outlined (such policies protect KV
 * heads; a KV head serves numHeads / numKvHeads query heads). Title, rule and caption come from the file.
 */
export function headSelectionSpecs(heads: readonly LoadedHeadSelection[]): VegaLiteSpec[] {
  return heads.map(({ selection }) => {
    const { numLayers: L, numHeads: H, numKvHeads: K } = selection;
    const g = H / K;
    const protectedSet = new Set(selection.protected.map((r) => `${r.layer}/${r.kvHead}`));
    const panel = (score: HeadScore) => {
      const perQuery = score.per === "query-head";
      const width = perQuery ? H : K;
      const values: { layer: number; head: number; kvHead: number; score: number; protected: boolean; kv: string; marker: string }[] = [];
      for (let layer = 0; layer < L; layer++) {
        for (let head = 0; head < width; head++) {
          const kvHead = perQuery ? Math.floor(head / g) : head;
          values.push({
            layer, head, kvHead, score: score.values[layer][head], protected: protectedSet.has(`${layer}/${kvHead}`), kv: headLabel(layer, kvHead),
            marker: "protected KV head",
          });
        }
      }
      const x = perQuery ? `query head (${g} per KV head)` : "KV head";
      return {
        data: { values },
        width: { step: Math.max(8, Math.min(18, Math.floor(220 / width))) },
        height: { step: Math.max(6, Math.min(14, Math.floor(480 / L))) },
        title: { text: `${score.kind} score per ${perQuery ? "query head" : "KV head"}`, subtitle: score.description, fontSize: 12, fontWeight: "normal" as const },
        layer: [
          {
            mark: { type: "rect" as const },
            encoding: {
              x: { field: "head", type: "ordinal" as const, title: x, axis: { labelAngle: 0 } },
              y: { field: "layer", type: "ordinal" as const, title: "layer" },
              color: { field: "score", type: "quantitative" as const, title: `${score.kind} score`, scale: { scheme: "blues" }, legend: { orient: "bottom" as const, gradientLength: 120 } },
              tooltip: [
                { field: "kv", type: "nominal" as const, title: "KV head" },
                ...(perQuery ? [{ field: "head", type: "ordinal" as const, title: "query head" }] : []),
                { field: "score", type: "quantitative" as const, title: `${score.kind} score`, format: ".4f" },
                { field: "protected", type: "nominal" as const, title: "protected" },
              ],
            },
          },
          ...(selection.protected.length > 0
            ? [
                {
                  transform: [{ filter: "datum.protected" }],
                  mark: { type: "rect" as const, fillOpacity: 0, strokeWidth: 2 },
                  encoding: {
                    x: { field: "head", type: "ordinal" as const },
                    y: { field: "layer", type: "ordinal" as const },
                    stroke: { field: "marker", type: "nominal" as const, title: null, scale: { range: ["#d62728"] }, legend: { orient: "bottom" as const, symbolType: "square" } },
                  },
                },
              ]
            : []),
        ],
      };
    };
    const usedBy = selection.usedBy.length ? ` (${selection.usedBy.join(", ")})` : "";
    const caption = `${selection.description} Outlined in red: the ${selection.protected.length} of ${L * K} protected KV heads (${selection.rule}).`;
    return {
      title: {
        text: `${selection.title} of ${selection.model}${usedBy}: ${selection.scores.map((sc) => sc.kind).join(" and ")} score per head`,
        subtitle: `${selection.protected.length} of ${L * K} KV heads protected (${selection.rule}); ${L} layers × ${K} KV heads, ${H} query heads per layer`,
      },
      description: caption,
      usermeta: { razorkv: { section: "heads", caption } },
      config: CHART_CONFIG,
      hconcat: selection.scores.map(panel),
      resolve: { scale: { color: "independent" as const } },
    } satisfies VegaLiteSpec;
  });
}

/**
 * Realized kvBudget vs the nominal one, against the line y = x, in two panels: right after compression (what the
 * policy kept of the prefill) and when the first answer token is predicted (budgetAnswer: the question is in the cache,
 * so this is the memory the cell answered with; under the "append" protocol it lies above the nominal budget by the
 * uncompressed question). Means over the scored rows of every task.
 */
export function memorySpecs(rows: readonly ResultRow[], summary: Summary): VegaLiteSpec[] {
  const policies = policyOrder(rows, summary);
  const usable = rows.filter(isScored).filter((r) => r.kvBytesFull > 0);
  if (usable.length === 0) return [];
  const groups = groupBy(usable, (r) => JSON.stringify([r.policyLabel, r.budgetNominal]));
  const MiB = 1024 * 1024;
  const values = [...groups.values()].map((g) => ({
    policy: g[0].policyLabel,
    budget: g[0].budgetNominal,
    budgetPlot: g[0].budgetNominal + nudge(g[0].policyLabel, policies),
    realized: mean(g.map((r) => r.budgetRealized)),
    answer: mean(g.map((r) => r.budgetAnswer)),
    end: mean(g.map((r) => r.budgetEnd)),
    kvMiB: mean(g.map((r) => r.kvBytes)) / MiB,
    answerMiB: mean(g.map((r) => r.kvBytesAnswer)) / MiB,
    fullMiB: mean(g.map((r) => r.kvBytesFull)) / MiB,
    n: g.length,
  }));
  const budgets = distinct(values.map((v) => v.budget));
  const protocols = distinct(usable.map((r) => r.protocol));
  const tooltip = [
    { field: "policy", type: "nominal", title: "policy" },
    { field: "budget", type: "quantitative", title: "KV budget (nominal)", format: "~g" },
    { field: "realized", type: "quantitative", title: "realized, after compression", format: ".3f" },
    { field: "answer", type: "quantitative", title: "realized, at the first answer token", format: ".3f" },
    { field: "end", type: "quantitative", title: "realized, after the last answer token", format: ".3f" },
    { field: "kvMiB", type: "quantitative", title: "KV cache after compression (MiB, mean)", format: ".2f" },
    { field: "answerMiB", type: "quantitative", title: "KV cache at the answer (MiB, mean)", format: ".2f" },
    { field: "fullMiB", type: "quantitative", title: "full prefill KV cache (MiB, mean)", format: ".2f" },
    { field: "n", type: "quantitative", title: "rows" },
  ] as const;
  const panel = (field: "realized" | "answer", title: string) => {
    const yTitle = "realized KV budget (fraction of the entries seen)";
    const x = { field: "budgetPlot", type: "quantitative" as const, scale: BUDGET_SCALE, axis: budgetAxis(budgets) };
    const y = { field, type: "quantitative" as const, title: yTitle, scale: { domain: [0, 1.04], nice: false } };
    return {
      width: 340,
      height: 260,
      title: { text: title, fontSize: 12, fontWeight: "normal" as const },
      layer: [
        {
          data: { values: [{ b: 0 }, { b: 1 }] },
          mark: { type: "line" as const, strokeDash: [5, 4], color: "#888888", strokeWidth: 1.5 },
          encoding: {
            x: { field: "b", type: "quantitative" as const, scale: BUDGET_SCALE, axis: budgetAxis(budgets) },
            y: { field: "b", type: "quantitative" as const, title: yTitle, scale: { domain: [0, 1.04], nice: false } },
          },
        },
        { data: { values }, layer: policyLines(x, y, policies, 1.5, tooltip) },
      ],
    };
  };
  const caption =
    "Entries the cache really holds (over all layers and KV heads, compensation slots included) as a fraction of the " +
    "entries the model has seen, mean over the scored rows of every task. Left: right after compression, against the " +
    "prefill. Right: when the first answer token is predicted, after the question was fed: the memory the cell answered " +
    `with (answer protocol: ${protocols.join(", ")}). On the dashed line the cache holds exactly its nominal budget; ` +
    "above it a policy keeps more than asked (e.g. compensation tokens, or an uncompressed question " +
    "appended), below it less.";
  return [
    {
      title: {
        text: `${scopeTitle(usable)}: realized KV budget (fraction of entries kept) vs nominal budget`,
        subtitle: "dashed: realized = nominal (y = x); left after compression, right at the first answer token",
      },
      description: caption,
      usermeta: { razorkv: { section: "memory", caption } },
      config: CHART_CONFIG,
      hconcat: [panel("realized", "after compression"), panel("answer", "at the first answer token (the memory the cell answered with)")],
    },
  ];
}

/**
 * Throughput: prefill tokens/s per policy (prefillTokens / prefill time) and decode tokens/s vs budget (decodeTokens /
 * decode time). Prefill runs once per sample with the full cache and is shared by every cell (DESIGN §2), so its bars
 * should agree across policies; decode speed is where a smaller cache should pay off.
 */
export function throughputSpecs(rows: readonly ResultRow[], summary: Summary): VegaLiteSpec[] {
  const policies = policyOrder(rows, summary);
  const specs: VegaLiteSpec[] = [];
  const scored = rows.filter(isScored);
  const prefillRows = scored.filter((r) => r.prefillMs > 0 && r.prefillTokens > 0);
  if (prefillRows.length > 0) {
    const byPolicy = groupBy(prefillRows, (r) => r.policyLabel);
    const values = [...byPolicy.values()].map((g) => {
      const rates = g.map((r) => r.prefillTokens / (r.prefillMs / 1000));
      return { policy: g[0].policyLabel, rate: mean(rates), low: Math.min(...rates), high: Math.max(...rates), n: g.length };
    });
    const caption =
      "Tokens per second of the full-attention prefill (the tokens compressed: the context, plus the question in " +
      "query-aware mode), mean over rows (thin line: slowest to fastest sample). " +
      "The prefill is shared by every policy and budget of a sample, so the bars should match; differences are timing noise.";
    const shown = policies.filter((p) => byPolicy.has(p));
    specs.push({
      title: { text: `${scopeTitle(prefillRows)}: prefill throughput (tokens/s) per policy`, subtitle: "prefilled tokens per second (higher is faster); one prefill per sample, shared by all policies" },
      description: caption,
      usermeta: { razorkv: { section: "throughput", caption } },
      width: { step: 44 },
      height: 240,
      config: CHART_CONFIG,
      data: { values },
      layer: [
        {
          mark: { type: "bar" },
          encoding: {
            x: { field: "policy", type: "nominal", sort: shown, title: "policy", axis: { labelAngle: -30 } },
            y: { field: "rate", type: "quantitative", title: "prefill tokens/s (mean)" },
            color: { ...colorEncoding(policies), legend: null },
            tooltip: [
              { field: "policy", type: "nominal", title: "policy" },
              { field: "rate", type: "quantitative", title: "tokens/s (mean)", format: ",.0f" },
              { field: "low", type: "quantitative", title: "slowest sample", format: ",.0f" },
              { field: "high", type: "quantitative", title: "fastest sample", format: ",.0f" },
              { field: "n", type: "quantitative", title: "rows" },
            ],
          },
        },
        {
          mark: { type: "rule", color: "#333333" },
          encoding: {
            x: { field: "policy", type: "nominal", sort: shown },
            y: { field: "low", type: "quantitative" },
            y2: { field: "high" },
          },
        },
      ],
    });
  }
  const decodeRows = scored.filter((r) => r.decodeMs > 0 && r.decodeTokens > 0);
  if (decodeRows.length > 0) {
    const groups = groupBy(decodeRows, (r) => JSON.stringify([r.policyLabel, r.budgetNominal]));
    const values = [...groups.values()].map((g) => ({
      policy: g[0].policyLabel,
      budget: g[0].budgetNominal,
      budgetPlot: g[0].budgetNominal + nudge(g[0].policyLabel, policies),
      rate: mean(g.map((r) => r.decodeTokens / (r.decodeMs / 1000))),
      n: g.length,
    }));
    const budgets = distinct(values.map((v) => v.budget));
    const x = { field: "budgetPlot", type: "quantitative" as const, scale: BUDGET_SCALE, axis: budgetAxis(budgets) };
    const y = { field: "rate", type: "quantitative" as const, title: "decode tokens/s (mean)", scale: { zero: true } };
    const caption =
      "Generated (and teacher-forced) tokens per second while decoding with the compressed cache, mean over rows with a " +
      "decode step. Several cells of a sample decode as one batch, so these are per-cell shares of batched steps.";
    specs.push({
      title: { text: `${scopeTitle(decodeRows)}: decode throughput (tokens/s) vs KV budget`, subtitle: "decode tokens per second (higher is faster), one line per policy" },
      description: caption,
      usermeta: { razorkv: { section: "throughput", caption } },
      width: 400,
      height: 240,
      config: CHART_CONFIG,
      data: { values },
      layer: policyLines(x, y, policies, 2, [
        { field: "policy", type: "nominal", title: "policy" },
        { field: "budget", type: "quantitative", title: "KV budget", format: "~g" },
        { field: "rate", type: "quantitative", title: "decode tokens/s", format: ",.1f" },
        { field: "n", type: "quantitative", title: "rows" },
      ]),
    });
  }
  return specs;
}

/** Every chart of the report, in reading order. */
export function buildSpecs(rows: readonly ResultRow[], summary: Summary, heads: readonly LoadedHeadSelection[]): VegaLiteSpec[] {
  return [
    ...scoreSpecs(rows, summary),
    ...needleSpecs(rows, summary),
    ...headSelectionSpecs(heads),
    ...memorySpecs(rows, summary),
    ...throughputSpecs(rows, summary),
  ];
}
