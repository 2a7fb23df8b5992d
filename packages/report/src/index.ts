export * from "./schema.js";
export { ReportInputError, loadResults, parseHeadSelection, parseResultRow, parseResultsJsonl, parseSummary } from "./load.js";
export type { LoadedHeadSelection, ResultsData } from "./load.js";
export { metricRange, summarizeRows } from "./summarize.js";
export {
  binomialTwoSidedHalf, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, confidenceInterval, mcnemarExact, mean, meanConfidenceInterval,
  newcombePairedInterval, PAIRED_METHOD_NAMES, pairedBootstrap, pairedTest, sampleStd, studentT975, UNIT_RANGE,
  wilsonInterval, Z975,
} from "./stats.js";
export type { BootstrapOptions, ConfidenceInterval, MetricRange, PairedMethod, PairedTest } from "./stats.js";
export { comparePaired, pairedScores } from "./paired.js";
export type { CellSide, PairedCells, PairedComparison } from "./paired.js";
export {
  buildSpecs, chartMeta, headLabel, headSelectionSpecs, memorySpecs, metricLabel, needleSpecs, policyOrder,
  scoreSpecs, taskTitle, throughputSpecs,
} from "./specs.js";
export type { ChartMeta, ChartSection, VegaLiteSpec } from "./specs.js";
export { budgetRetention, keyFindings, nearestBudget } from "./findings.js";
export type { HeadFinding, KeyFindings, RankedPolicy, RetentionEntry, RetentionFinding, TaskFinding } from "./findings.js";
export { pairedTableMarkdown, retentionTableMarkdown, scoreTableMarkdown } from "./markdown.js";
export type { PairedTableOptions } from "./markdown.js";
export { escapeHtml, loadLibraries, renderHtml, scriptJson } from "./html.js";
export type { InlineLibrary, RenderHtmlInput } from "./html.js";
export { renderReport } from "./render.js";
