import { checkPolicyConformance, kvBudget, mulberry32, noStats, randomDecodeStep, randomPrefill, RazorkvError } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import streaming, { createStreamingLlm, params, streamingSlots } from "./index.js";
import { defaultParams } from "@razorkv/core";

const shape = { numLayers: 3, numHeads: 6, numKvHeads: 2, headDim: 5 };

describe("policy-streamingllm", () => {
  it("realizes the nominal budget at 0.1…0.9 on several lengths, and holds it while decoding", () => {
    const policy = streaming.create(defaultParams(params));
    checkPolicyConformance(policy, { shape, lengths: [57, 101, 263], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], decodeSteps: 20 });
  });

  it("with sliding-window layers (Gemma-shaped: windows shorter and longer than the prompt), leaves held heads whole and holds the budget", () => {
    const policy = streaming.create(defaultParams(params));
    const rows = checkPolicyConformance(policy, {
      shape: { ...shape, numLayers: 3, layerWindows: [48, null, 120] },
      lengths: [57, 101, 263], budgets: [0.2, 0.4, 0.6, 0.8, 0.9], decodeSteps: 30,
    });
    expect(rows.length).toBeGreaterThan(8);
  });

  it("keeps exactly the sinks and the most recent window", () => {
    expect(streamingSlots(10, 6, 4)).toEqual([0, 1, 2, 3, 8, 9]);
    expect(streamingSlots(10, 3, 0)).toEqual([7, 8, 9]);
    const { cache } = randomPrefill({ ...shape, length: 41 });
    const out = createStreamingLlm({ sinks: 4 }).compress(cache, noStats, kvBudget(0.3)); // 12 per head
    for (const h of out.heads) expect(Array.from(h.positions.subarray(0, h.length))).toEqual([0, 1, 2, 3, 33, 34, 35, 36, 37, 38, 39, 40]);
  });

  it("slides the window while decoding: the sinks stay, the oldest non-sink entry goes", () => {
    const { cache } = randomPrefill({ ...shape, length: 40 });
    const policy = createStreamingLlm({ sinks: 4 });
    const out = policy.compress(cache, noStats, kvBudget(0.5));
    const session = policy.decode!.start(out, noStats, kvBudget(0.5));
    const rand = mulberry32(9);
    for (let i = 0; i < 10; i++) session.afterForward(randomDecodeStep(out, rand, shape.numHeads));
    // 50 tokens at 0.5 → 25 entries: 4 sinks + the last 21 positions
    const expected = [0, 1, 2, 3, ...Array.from({ length: 21 }, (_, i) => 29 + i)];
    for (const h of out.heads) expect(Array.from(h.positions.subarray(0, h.length))).toEqual(expected);
  });

  it("rejects a budget too small for the sinks and one recent token", () => {
    const { cache } = randomPrefill({ ...shape, length: 30 });
    const policy = createStreamingLlm({ sinks: 4 });
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(RazorkvError);
    expect(() => policy.compress(cache, noStats, kvBudget(0.1))).toThrow(/keeps 3 of 30 entries per head, but streamingllm needs at least 5 \(4 sinks/);
  });
});
