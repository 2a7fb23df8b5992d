import { describe, expect, it } from "vitest";
import { ropeFrequencies } from "../model/rope.js";
import { llama3RopeFactors } from "./real-shaped.js";

// The shaped files themselves are written, loaded and run end to end by eval-runner's real-shaped-models.test.ts.

describe("llama3RopeFactors", () => {
  it("divides RoPE's frequencies as transformers' llama3 scaling does (Llama 3.1 8B's head and a small one)", () => {
    const llama3 = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } as const;
    for (const headDim of [128, 8]) {
      const factors = llama3RopeFactors(500000, headDim).map(Math.fround);
      const viaFactors = ropeFrequencies(headDim, 500000, { type: "frequency-factors", factors }).invFreq;
      const reference = ropeFrequencies(headDim, 500000, llama3).invFreq;
      // within float32 rounding: the converter divides in float32 too, transformers multiplies by the smoothing
      for (let i = 0; i < headDim / 2; i++) {
        expect(Math.abs(viaFactors[i] - reference[i]) / reference[i], `head ${headDim}, frequency ${i}`).toBeLessThan(1e-6);
      }
      // the small head keeps the three regimes: unscaled, smoothed and divided by the factor
      if (headDim === 8) expect(factors.map((f) => (f === 1 ? "1" : f === 8 ? "8" : "smooth"))).toEqual(["1", "1", "smooth", "8"]);
    }
  });
});
