import { mulberry32, randomArray } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import { logProbability, logSoftmax } from "./ops.js";
import { Rope } from "./rope.js";

describe("logProbability", () => {
  it("is logSoftmax(logits)[id], to the bit, for every id of a vocabulary-sized row", () => {
    const logits = randomArray(mulberry32(5), 49152).map((x) => 12 * x);
    const full = logSoftmax(logits);
    for (const id of [0, 1, 17, 4095, 49151]) expect(Object.is(logProbability(logits, id), full[id])).toBe(true);
  });

  it("names an id outside the vocabulary", () => {
    expect(() => logProbability(new Float32Array(8), 8)).toThrow("token id 8 outside [0, 8)");
    expect(() => logProbability(new Float32Array(8), 1.5)).toThrow("token id 1.5");
  });
});

describe("Rope", () => {
  /** The rotation computed from the angle directly, as HF's LlamaRotaryEmbedding does (float32 angle, cos, sin). */
  function rotateDirect(x: Float32Array, numHeads: number, d: number, positions: number[], theta: number): Float32Array {
    const out = x.slice();
    const half = d / 2;
    positions.forEach((p, r) => {
      for (let i = 0; i < half; i++) {
        const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / d));
        const angle = Math.fround(p * invFreq);
        const cos = Math.fround(Math.cos(angle));
        const sin = Math.fround(Math.sin(angle));
        for (let h = 0; h < numHeads; h++) {
          const base = (r * numHeads + h) * d;
          const a = x[base + i];
          const b = x[base + i + half];
          out[base + i] = a * cos - b * sin;
          out[base + i + half] = b * cos + a * sin;
        }
      }
    });
    return out;
  }

  it("gives the direct rotation's floats at positions in any order, the tables growing as positions arrive", () => {
    const d = 64, heads = 3, theta = 100000;
    const rope = new Rope(d, theta);
    const rand = mulberry32(11);
    // a prefill, then decode positions beyond the first table, then a position far past it, then an early one again
    for (const positions of [[0, 1, 2, 3, 4, 5], [6], [7], [200, 201], [8191], [3, 0]]) {
      const x = randomArray(rand, positions.length * heads * d);
      const expected = rotateDirect(x, heads, d, positions, theta);
      rope.apply(x, heads, positions);
      expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(expected.buffer))).toBe(0);
    }
  });
});
