export * from "./schema.js";
export { ReportInputError, loadResults, parseHeadProfile, parseResultRow, parseResultsJsonl, parseSummary } from "./load.js";
export type { LoadedProfile, ResultsData } from "./load.js";
export { interval95, studentT, summarizeRows, tQuantile975, wilson } from "./summarize.js";
export type { Interval } from "./summarize.js";
export {
  buildSpecs, chartMeta, headLabel, headProfileSpecs, lowerIsBetter, memorySpecs, metricLabel, needleSpecs, policyOrder,
  scoreSpecs, taskTitle, throughputSpecs,
} from "./specs.js";
export type { ChartMeta, ChartSection, VegaLiteSpec } from "./specs.js";
export { keyFindings, nearestBudget } from "./findings.js";
export type { HeadFinding, KeyFindings, RankedPolicy, TaskFinding } from "./findings.js";
export { escapeHtml, loadLibraries, renderHtml, scriptJson } from "./html.js";
export type { InlineLibrary, RenderHtmlInput } from "./html.js";
export { renderReport } from "./render.js";
