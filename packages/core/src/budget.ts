/**
 * Budgets (DESIGN §3). The canonical unit is `kvBudget`: the fraction of the full cache's entries kept, counted
 * over all layers and KV heads, compensation slots included (1 = full cache). A manifest may instead give a
 * `compressionRatio` (fraction removed, kvpress's convention) or a token count per head; both convert to a
 * kvBudget once the sequence length is known.
 */
import type { KvCache } from "./cache.js";
import { RazorkvError } from "./errors.js";

export type Budget =
  | { readonly kind: "kvBudget"; readonly value: number }
  | { readonly kind: "compressionRatio"; readonly value: number }
  | { readonly kind: "tokens"; readonly value: number };

export const kvBudget = (value: number): Budget => ({ kind: "kvBudget", value });
export const compressionRatio = (value: number): Budget => ({ kind: "compressionRatio", value });
export const tokenBudget = (value: number): Budget => ({ kind: "tokens", value });

/** "kvBudget 0.3", "compressionRatio 0.7", "tokens 512": how errors and logs name a budget. */
export function describeBudget(budget: Budget): string {
  return `${budget.kind} ${budget.value}`;
}

/**
 * The kvBudget `budget` stands for on a sequence of `sequenceLength` tokens. Throws a RazorkvError naming the
 * field when the budget keeps nothing (≤ 0) or more than the full cache (> 1).
 */
export function toKvBudget(budget: Budget, sequenceLength: number): number {
  if (!Number.isInteger(sequenceLength) || sequenceLength <= 0) {
    throw new RazorkvError(`budget: the sequence must hold at least one token, got length ${sequenceLength}`);
  }
  const v = budget.value;
  const field = `budget.${budget.kind}`;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new RazorkvError(`${field}: expected a number, got ${String(v)}`);
  switch (budget.kind) {
    case "kvBudget":
      if (v <= 0 || v > 1) throw new RazorkvError(`${field}: expected a fraction of the cache kept in (0, 1], got ${v}`);
      return v;
    case "compressionRatio":
      if (v < 0 || v >= 1) {
        throw new RazorkvError(`${field}: expected a fraction of the cache removed in [0, 1), got ${v}${v >= 1 ? " (it keeps nothing)" : ""}`);
      }
      return 1 - v;
    case "tokens":
      if (!Number.isInteger(v) || v <= 0) throw new RazorkvError(`${field}: expected a positive whole number of tokens per head, got ${v}`);
      if (v > sequenceLength) {
        throw new RazorkvError(`${field}: ${v} tokens per head exceed the sequence length ${sequenceLength} (kvBudget ${(v / sequenceLength).toFixed(3)} > 1)`);
      }
      return v / sequenceLength;
  }
}

/**
 * Parses a budget as manifests and the CLI write it: `{kvBudget: 0.3}`, `{compressionRatio: 0.7}`, `{tokens: 512}`
 * or a bare number (a kvBudget). `where` names the source in errors.
 */
export function parseBudget(input: unknown, where: string): Budget {
  if (typeof input === "number") return kvBudget(input);
  if (input && typeof input === "object" && !Array.isArray(input)) {
    const entries = Object.entries(input as Record<string, unknown>);
    const kinds = ["kvBudget", "compressionRatio", "tokens"] as const;
    if (entries.length === 1 && (kinds as readonly string[]).includes(entries[0][0]) && typeof entries[0][1] === "number") {
      return { kind: entries[0][0] as Budget["kind"], value: entries[0][1] };
    }
  }
  throw new RazorkvError(`${where}: a budget is a number (kvBudget) or one of {kvBudget: x}, {compressionRatio: x}, {tokens: n}; got ${JSON.stringify(input)}`);
}

/** Entries a uniform policy keeps in every head: round(kvBudget · N), at least 0, at most N. */
export function entriesPerHead(kvBudgetValue: number, sequenceLength: number): number {
  return Math.min(sequenceLength, Math.max(0, Math.round(kvBudgetValue * sequenceLength)));
}

/** How far the cache's realized budget is from `nominal`, in entries per head (signed: positive = over budget). */
export function budgetMissPerHead(cache: KvCache, nominal: number): number {
  const full = cache.fullEntryCount();
  if (cache.heads.length === 0) return 0;
  return (cache.entryCount() - nominal * full) / cache.heads.length;
}

/**
 * DESIGN §3: a cell whose realized budget misses the nominal one by more than one token per head is an error, not
 * a result. Throws a RazorkvError saying by how much; `where` names the cell.
 */
export function assertRealizedBudget(cache: KvCache, nominal: number, where = "compressed cache"): void {
  const miss = budgetMissPerHead(cache, nominal);
  if (!(Math.abs(miss) <= 1 + 1e-9)) {
    throw new RazorkvError(
      `${where}: realized kvBudget ${cache.realizedBudget().toFixed(4)} misses the nominal ${nominal.toFixed(4)} by ` +
        `${Math.abs(miss).toFixed(2)} entries per head (${cache.entryCount()} of ${cache.fullEntryCount()} entries held over ` +
        `${cache.heads.length} heads); at most 1 per head is allowed`,
    );
  }
}
