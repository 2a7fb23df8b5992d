/**
 * The shared-prefill scheduler must give every cell exactly what the naive protocol (its own prefill, decoded
 * alone) gives it: sharing and batching are an optimisation, never a change of result. Checked on a random-weight
 * model with the plain-TypeScript backend, whose row computations do not depend on the batch.
 */
import { describe, expect, it } from "vitest";
import { createPolicy, kvBudget } from "@razorkv/core";
import { LlamaModel, randomWeights, tinyConfig, type Tokenizer } from "@razorkv/model-zoo";
import type { ResultRow } from "@razorkv/report";
import { runSample, type Cell, type SampleContext } from "./scheduler.js";
import type { Sample } from "./tasks/index.js";

const config = tinyConfig({ vocabSize: 64, numLayers: 2 });
const model = new LlamaModel(randomWeights(config, 21));
const tokenizer: Tokenizer = {
  encode: (text) => Array.from(text, (ch) => ch.charCodeAt(0) % 64),
  decode: (ids) => ids.map((id) => String.fromCharCode(97 + (id % 26))).join(""),
  vocabSize: 64, bosId: null, eosId: 63,
  tokenId: () => undefined,
  applyChatTemplate: (m) => m.map((x) => x.content).join("\n"),
  isEndOfGeneration: (id) => id === 63,
};
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 17 + seed * 5) % 60);

const samples: Sample[] = [
  {
    id: "gen", task: "t", contextLength: 90, context: { ids: ids(90, 1) }, query: { ids: ids(5, 2) },
    target: { kind: "generate", answers: ["abc"], maxNewTokens: 6, metric: "contains" },
  },
  {
    id: "cont", task: "t", contextLength: 80, context: { ids: ids(80, 3) }, query: { ids: [7] },
    target: { kind: "continuation", continuation: { ids: ids(9, 4) }, metric: "nll" },
  },
];

async function cells(): Promise<Cell[]> {
  const out: Cell[] = [];
  const specs: [string, Record<string, unknown>][] = [["full", {}], ["streamingllm", {}], ["h2o", {}], ["snapkv", { window: 8, kernelSize: 3 }]];
  for (const [name, params] of specs) {
    const policy = await createPolicy(name, params);
    for (const b of name === "full" ? [1] : [0.5, 0.3]) {
      out.push({ policy, label: name, params: JSON.stringify(params), budget: kvBudget(b), id: `${name}@${b}` });
    }
  }
  return out;
}

const strip = (r: ResultRow) => ({ ...r, prefillMs: 0, decodeMs: 0 });

describe("runSample", () => {
  for (const mode of ["query-agnostic", "query-aware"] as const) {
    it(`${mode}: one shared prefill + batched decode equals a prefill and decode per cell`, async () => {
      const all = await cells();
      const ctx: SampleContext = { experiment: "x", modelRef: "random", model, tokenizer, task: "t", mode };
      for (const sample of samples) {
        const shared = runSample(ctx, sample, all).map(strip);
        const naive = all.flatMap((c) => runSample(ctx, sample, [c])).map(strip);
        expect(shared).toEqual(naive);
        // the budget was realized and recorded, and compressed cells hold fewer entries than full
        for (const row of shared) {
          expect(Math.abs(row.budgetRealized - row.budgetNominal)).toBeLessThan(0.05);
          if (row.policy !== "full") expect(row.kvBytes).toBeLessThan(row.kvBytesFull);
        }
        expect(shared.every((r) => Number.isFinite(r.score))).toBe(true);
        expect(shared.find((r) => r.cell === "full@1")!.decodeTokens).toBeGreaterThan(0);
      }
    });
  }

  it("refuses a sample that does not fit the model's context", async () => {
    const small = new LlamaModel(randomWeights(tinyConfig({ vocabSize: 64, maxContext: 50 }), 2));
    const ctx: SampleContext = { experiment: "x", modelRef: "random", model: small, tokenizer, task: "t", mode: "query-agnostic" };
    expect(() => runSample(ctx, samples[0], [])).toThrow(/exceed the model's context of 50/);
  });
});
