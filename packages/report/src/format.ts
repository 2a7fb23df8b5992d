/** Number formats shared by the HTML report and its Markdown tables. */
import type { RankedPolicy } from "./findings.js";

export function fmt(x: number | null, digits = 3): string {
  if (x === null || !Number.isFinite(x)) return "—";
  return x.toFixed(digits);
}

/** A budget as the manifest wrote it (0.3, not 0.30000000000000004). */
export function fmtBudget(x: number): string {
  return String(Number(x.toPrecision(6)));
}

export function interval(r: Pick<RankedPolicy, "ciLow" | "ciHigh">): string {
  return r.ciLow === null || r.ciHigh === null ? "interval unbounded (1 sample)" : `[${fmt(r.ciLow)}, ${fmt(r.ciHigh)}]`;
}
