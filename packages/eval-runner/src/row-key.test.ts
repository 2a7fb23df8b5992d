/** What a row's key depends on (experiment.ts rowKey): every input that can change the row, and nothing else. */
import { describe, expect, it } from "vitest";
import { kvBudget } from "@razorkv/core";
import { rowKey, type RowInputs } from "./experiment.js";

const inputs: RowInputs = {
  experiment: "e", modelRef: "m", modelDigest: "d".repeat(64), seed: 1, protocol: "append", prefillProducts: "f32",
  task: { type: "passkey", label: "passkey", params: { lengths: [512] } },
  sample: { id: "s", task: "passkey", contextLength: 3, context: { ids: [1, 2, 3] }, query: { ids: [4] }, target: { kind: "generate", answers: ["x"], maxNewTokens: 2, metric: "contains" } },
  mode: "query-agnostic",
  cell: { policy: "p", label: "p", params: "{}", budget: kvBudget(0.5) },
};

/** rowKey(inputs) before prefillProducts existed (the harness at bb1ddf3, same inputs without the field). */
const KEY_BEFORE_PREFILL_PRODUCTS = "e3490d558270bb95c0739ea1f803231d8481fdd730bf6706a32e5f2d76dc579b";

describe("row keys", () => {
  it("a prepared artefact's digest is part of the key: a changed artefact recomputes its rows", () => {
    const a = rowKey({ ...inputs, cell: { ...inputs.cell, prepared: "a".repeat(64) } });
    const b = rowKey({ ...inputs, cell: { ...inputs.cell, prepared: "b".repeat(64) } });
    expect(a).not.toBe(b);
    expect(a).not.toBe(rowKey(inputs));
  });
  it("a policy without preparation keys as before, whether the field is absent or undefined", () => {
    expect(rowKey({ ...inputs, cell: { ...inputs.cell, prepared: undefined } })).toBe(rowKey(inputs));
  });
  it("8-bit prefill products are part of the key (the rows differ); f32, the default, adds nothing to it", () => {
    expect(rowKey({ ...inputs, prefillProducts: "int8" })).not.toBe(rowKey(inputs));
    // inputs from before the field existed (no prefillProducts at all) key as f32; and this row's key is the one
    // the harness gave it before the field existed (computed at bb1ddf3), so existing results are kept
    const { prefillProducts: _, ...before } = inputs;
    expect(rowKey(before as RowInputs)).toBe(rowKey(inputs));
    expect(rowKey(inputs)).toBe(KEY_BEFORE_PREFILL_PRODUCTS);
  });
  it("a path param does not enter the key; its content (the sample) does", () => {
    const moved = rowKey({ ...inputs, task: { ...inputs.task, params: { ...inputs.task.params, haystackDir: "/elsewhere" } } });
    expect(moved).toBe(rowKey({ ...inputs, task: { ...inputs.task, params: { ...inputs.task.params, haystackDir: "/here" } } }));
    expect(rowKey({ ...inputs, sample: { ...inputs.sample, context: { ids: [1, 2, 4] } } })).not.toBe(rowKey(inputs));
  });
});
