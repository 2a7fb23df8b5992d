/** The retention finding and its Markdown table, on hand-built summaries whose answers are known. */
import { describe, expect, it } from "vitest";
import { budgetRetention } from "./findings.js";
import { retentionTableMarkdown, scoreTableMarkdown } from "./markdown.js";
import type { Summary, SummaryCell } from "./schema.js";

function cell(task: string, policyLabel: string, budgetNominal: number, mean: number, metric = "contains"): SummaryCell {
  return {
    model: "m", task, mode: "query-agnostic", policyLabel, policy: policyLabel, policyParams: "{}", budgetNominal, metric,
    n: 20, mean, ciLow: Math.max(0, mean - 0.1), ciHigh: mean + 0.1, budgetRealizedMean: budgetNominal, budgetAnswerMean: budgetNominal, kvBytesMean: 1000 * budgetNominal, infeasible: 0,
  };
}

const summary: Summary = {
  experiment: "t",
  cells: [
    cell("niah-single", "full", 1, 1),
    // holds at 0.5 and 0.3, fails at 0.2: the recovery at 0.1 does not count
    ...[[0.5, 0.96], [0.3, 0.95], [0.2, 0.9], [0.1, 0.99]].map(([b, m]) => cell("niah-single", "razor", b, m)),
    ...[[0.5, 0.9], [0.3, 0.5]].map(([b, m]) => cell("niah-single", "h2o", b, m)),
    cell("lm-loss", "full", 1, 2, "nll"),
    // NLL: at most 2 / 0.95 = 2.105 holds
    ...[[0.5, 2.1], [0.3, 2.2]].map(([b, m]) => cell("lm-loss", "razor", b, m, "nll")),
  ],
  infeasibleCells: [],
};

describe("budget retention", () => {
  it("gives the smallest budget from which every larger budget keeps 95% of Full", () => {
    const [niah, lm] = budgetRetention(summary);
    expect(niah.reference).toMatchObject({ policyLabel: "full", mean: 1 });
    expect(niah.policies.map((p) => [p.policyLabel, p.smallestBudget])).toEqual([["razor", 0.3], ["h2o", null]]);
    expect(niah.policies[0].at).toMatchObject({ mean: 0.95, ciLow: 0.85 });
    expect(lm.lowerIsBetter).toBe(true);
    expect(lm.policies.map((p) => [p.policyLabel, p.smallestBudget])).toEqual([["razor", 0.5]]);
    expect(budgetRetention(summary, 0.99)[0].policies[0].smallestBudget).toBe(null);
  });

  it("renders as Markdown tables", () => {
    expect(retentionTableMarkdown(summary, "niah-single")).toBe(
      [
        "| policy | query-agnostic |",
        "| --- | --- |",
        "| full (reference) | 1: 1.000 [0.900, 1.100] |",
        "| razor | **0.3**: 0.950 [0.850, 1.050] |",
        "| h2o | none of 0.5, 0.3 (at 0.5: 0.900 [0.800, 1.000]) |",
      ].join("\n"),
    );
    const scores = scoreTableMarkdown(summary, "niah-single", "query-agnostic").split("\n");
    expect(scores[2]).toBe("| policy | budget 1 | budget 0.5 | budget 0.3 | budget 0.2 | budget 0.1 |");
    expect(scores[5]).toBe("| razor |  | 0.96 [0.86, 1.06] | 0.95 [0.85, 1.05] | 0.90 [0.80, 1.00] | 0.99 [0.89, 1.09] |");
    expect(() => retentionTableMarkdown(summary, "passkey")).toThrow(/no full-cache reference/);
  });
});
