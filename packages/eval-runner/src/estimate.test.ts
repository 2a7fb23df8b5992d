/** The dry-run estimate's arithmetic, with a cost model whose answer can be worked out by hand. */
import { describe, expect, it } from "vitest";
import { kvBudget } from "@razorkv/core";
import type { LanguageModel } from "@razorkv/model-zoo";
import { estimateWith, type CostModel } from "./estimate.js";
import type { Sample } from "./tasks/index.js";

const ids = (n: number) => ({ ids: Array.from({ length: n }, (_, i) => i) });
const sample = (context: number, query: number, answer: number): Sample => ({
  id: `s${context}`, task: "t", contextLength: context, context: ids(context), query: ids(query),
  target: { kind: "generate", answers: ["x"], maxNewTokens: answer, metric: "contains" },
});
// segments given as ids never reach the tokenizer
const lm = { tokenizer: {} } as unknown as LanguageModel;
const cost: CostModel = { prefillLinear: 1e-3, prefillQuadratic: 1e-7, stepFixed: 0.05, rowFixed: 0.01, rowPerToken: 1e-5 };

describe("the dry-run estimate", () => {
  it("adds a quadratic prefill, a question pass per cell and batched decode steps", () => {
    const budgets = [kvBudget(1), kvBudget(0.5)];
    const e = estimateWith(cost, lm, [sample(1000, 10, 4)], budgets, true);
    const prefill = 1000 * 1e-3 + 1e6 * 1e-7; // 1.1 s
    const question = 2 * 10 * 1e-3; // 0.02 s
    const steps = 4 * (0.05 + 2 * 0.01 + 1e-5 * 1000 * 1.5); // 0.34 s
    expect(e.seconds).toBeCloseTo(prefill + question + steps, 12);
    expect(e).toMatchObject({ samples: 1, cells: 2, prefillTokens: 1000, decodeSteps: 4 });
  });

  it("the naive protocol pays a prefill and a step's fixed cost per cell", () => {
    const budgets = [kvBudget(1), kvBudget(0.5), kvBudget(0.3)];
    const shared = estimateWith(cost, lm, [sample(8000, 10, 12)], budgets, true);
    const naive = estimateWith(cost, lm, [sample(8000, 10, 12)], budgets, false);
    expect(naive.prefillTokens).toBe(3 * 8000);
    expect(naive.seconds - shared.seconds).toBeCloseTo(2 * (8 + 6.4) + 12 * 2 * 0.05, 9);
  });
});
