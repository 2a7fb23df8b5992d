/** Number formats shared by the HTML report and its Markdown tables. */
import type { RankedPolicy } from "./findings.js";
import type { PairedMethod, PairedTest } from "./stats.js";

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

/** A signed number: "+0.133", "-0.050" (the sign of a difference is its direction). */
export function fmtSigned(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return "—";
  const text = x.toFixed(digits);
  // a difference that rounds to zero is shown unsigned: "-0.000" would claim a direction
  if (Number(text) === 0) return (0).toFixed(digits);
  return x > 0 ? `+${text}` : text;
}

/** A p-value: two decimals from 0.1 up, three below, "< 0.001" below that. */
export function fmtP(p: number): string {
  if (p < 0.001) return "< 0.001";
  if (p < 0.1) return p.toFixed(3);
  return p.toFixed(2);
}

/** "p = 0.041", "p < 0.001": a p-value in a sentence. */
export function pEquals(p: number): string {
  const text = fmtP(p);
  return text.startsWith("<") ? `p ${text}` : `p = ${text}`;
}

/** "mean difference [95% interval]" of a paired test, signed. */
export function fmtDifference(t: Pick<PairedTest, "difference" | "lower" | "upper">, digits = 3): string {
  return `${fmtSigned(t.difference, digits)} [${fmtSigned(t.lower, digits)}, ${fmtSigned(t.upper, digits)}]`;
}

/** A paired test's short name for a table cell. */
export function testName(method: PairedMethod): string {
  return method === "mcnemar-exact" ? "exact McNemar" : "paired bootstrap";
}
