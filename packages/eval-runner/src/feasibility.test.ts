/**
 * --dry-run and the run must refuse the same (cell × sample) pairs with the same words: what the dry run lists is
 * exactly the infeasible rows the run then records.
 */
import { describe, expect, it } from "vitest";
import { createPolicy, kvBudget, tokenBudget, type Budget } from "@razorkv/core";
import { LlamaModel, randomWeights, tinyConfig, type LanguageModel, type Tokenizer } from "@razorkv/model-zoo";
import type { InfeasibleRow } from "@razorkv/report";
import { findInfeasible } from "./feasibility.js";
import { runSample, type Cell } from "./scheduler.js";
import type { Sample } from "./tasks/index.js";

const config = tinyConfig({ vocabSize: 64, numLayers: 2 }); // 2 layers × 2 KV heads
const model = new LlamaModel(randomWeights(config, 5));
const tokenizer: Tokenizer = {
  encode: (text) => Array.from(text, (ch) => ch.charCodeAt(0) % 60),
  decode: (ids) => ids.map((id) => String.fromCharCode(97 + (id % 26))).join(""),
  vocabSize: 64, bosId: null, eosId: 63, tokenId: () => undefined,
  applyChatTemplate: (m) => m.map((x) => x.content).join("\n"), isEndOfGeneration: (id) => id === 63,
};
// one induction head of the 4 is protected: kvBudget 0.25 is the least RazorAttention can keep
const profile = {
  model: "tiny", numLayers: 2, numHeads: config.numHeads, numKvHeads: 2,
  echo: [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], induction: [[0.9, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
  retrieval: [{ layer: 0, kvHead: 0 }], params: {},
};
const sample: Sample = {
  id: "s40", task: "t", contextLength: 40, context: { ids: Array.from({ length: 40 }, (_, i) => i % 60) }, query: { ids: [1, 2, 3] },
  target: { kind: "generate", answers: ["x"], maxNewTokens: 2, metric: "contains" },
};

async function cell(name: string, params: Record<string, unknown>, budget: Budget): Promise<Cell> {
  return { policy: await createPolicy(name, params), label: name, params: JSON.stringify(params), budget, id: `${name}@${budget.kind} ${budget.value}` };
}

describe("findInfeasible (what --dry-run lists)", () => {
  it("lists exactly the cells the run records as infeasible, with the run's reasons", async () => {
    const razor = { profile, inductionFraction: 0.25, echoFraction: 0 };
    const cells = [
      await cell("razor", razor, kvBudget(0.2)),
      await cell("razor", razor, kvBudget(0.5)),
      await cell("snapkv", { window: 16, kernelSize: 3 }, kvBudget(0.3)),
      await cell("streamingllm", {}, tokenBudget(64)),
      await cell("full", {}, kvBudget(1)),
    ];
    const lm = { model, tokenizer } as unknown as LanguageModel;
    const listed = findInfeasible(lm, [{ task: "t", sample, mode: "query-agnostic" }], cells);
    expect(listed.map((c) => c.cell)).toEqual(["razor@kvBudget 0.2", "snapkv@kvBudget 0.3", "streamingllm@tokens 64"]);
    expect(listed[0].firstReason).toMatch(/^sample s40: razor: kvBudget 0\.2 is below the protected share 0\.2500 \(1 of 4 KV heads/);

    const rows = runSample(
      { experiment: "x", modelRef: "tiny", modelDigest: "0".repeat(64), model, tokenizer, task: "t", mode: "query-agnostic", protocol: "append" },
      sample,
      cells.map((c) => ({ cell: c, key: c.id })),
    );
    const recorded = rows.filter((r): r is InfeasibleRow => r.status === "infeasible");
    expect(recorded.map((r) => r.cell)).toEqual(listed.map((c) => c.cell));
    // the same words, the run's prefixed with the task and cell
    recorded.forEach((r, i) => expect(r.reason).toBe(`t sample s40, cell ${r.cell}: ${listed[i].firstReason.replace(/^sample s40: /, "")}`));
  });

  it("sees sliding windows: a budget below what the windowed layers alone hold is refused alike by the dry run and the run", async () => {
    // layer 0 attends through an 8-token window, layer 1 to everything: at 40 tokens the model holds 2·8 + 2·40 entries
    const windowed = new LlamaModel(randomWeights(tinyConfig({ vocabSize: 64, numLayers: 2, layerWindows: [8, null] }), 6));
    const cells = [await cell("streamingllm", {}, kvBudget(0.1)), await cell("streamingllm", {}, kvBudget(0.5))];
    const lm = { model: windowed, tokenizer } as unknown as LanguageModel;
    const listed = findInfeasible(lm, [{ task: "t", sample, mode: "query-agnostic" }], cells);
    expect(listed.map((c) => c.cell)).toEqual(["streamingllm@kvBudget 0.1"]);
    expect(listed[0].firstReason).toMatch(/below what the model itself holds: the sliding-window layers hold 16 of the 96 entries/);
    const rows = runSample(
      { experiment: "x", modelRef: "tiny", modelDigest: "0".repeat(64), model: windowed, tokenizer, task: "t", mode: "query-agnostic", protocol: "append" },
      sample,
      cells.map((c) => ({ cell: c, key: c.id })),
    );
    expect(rows.map((r) => r.status)).toEqual(["infeasible", "ok"]);
    expect((rows[0] as InfeasibleRow).reason).toBe(`t sample s40, cell streamingllm@kvBudget 0.1: ${listed[0].firstReason.replace(/^sample s40: /, "")}`);
  });
});
