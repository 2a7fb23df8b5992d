/**
 * The on-the-fly head scores against kvpress's own computation: test/kvpress_reference.py runs the steps of kvpress's
 * `duo_attention_on_the_fly` with transformers on a tiny random Llama (GQA, YaRN RoPE whose attention factor scales cos
 * and sin) over fixed token ids, and wrote test/fixtures/kvpress-on-the-fly.json. Here the same ids go through
 * razorkv's forward pass with an observer (MeanQueryKeyObserver: mean query and key taken back to before RoPE with the
 * model's RoPE) and onTheFlyScores; every query head's and KV head's score must match.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AttentionObserver, RotaryEmbedding } from "@razorkv/core";
import { LlamaModel, openModel, Rope, typescriptBackend, type ComputeBackend } from "@razorkv/model-zoo";
import { describe, expect, it } from "vitest";
import { kvHeadScores, MeanQueryKeyObserver, onTheFlyScores } from "./index.js";

const fixtures = new URL("../test/fixtures/", import.meta.url).pathname;
const reference = JSON.parse(readFileSync(join(fixtures, "kvpress-on-the-fly.json"), "utf8")) as {
  queryLength: number;
  texts: number[][];
  perQueryHead: number[][];
  perKvHead: number[][];
};

/** The engine with every layer's attention inputs reported to `observers` (what the runner's adapter does). */
async function observedModel(observers: AttentionObserver[]): Promise<{ model: LlamaModel; rotary: RotaryEmbedding }> {
  const { weights } = await openModel(join(fixtures, "kvpress-llama"));
  const backend: ComputeBackend = {
    ...typescriptBackend,
    attend(args) {
      const stats = typescriptBackend.attend(args);
      const scale = args.scale ?? 1 / Math.sqrt(args.cache.headDim);
      for (const o of observers) o.observe({ layer: args.layer, numHeads: args.numHeads, cache: args.cache, queries: args.queries, queryPositions: args.queryPositions, scale });
      return stats;
    },
  };
  const c = weights.config;
  const rope = new Rope(c.headDim, c.ropeTheta, c.ropeScaling);
  const d = c.headDim;
  const rotary: RotaryEmbedding = {
    rotate(_layer, v, heads, positions, inverse) {
      if (!inverse) return rope.apply(v, heads, positions);
      // (a, b) → (a·c − b·s, b·c + a·s) with c, s read off a rotated unit vector; undone by (a·c + b·s, b·c − a·s)/(c² + s²)
      const unit = new Float32Array(positions.length * d);
      for (let r = 0; r < positions.length; r++) unit.fill(1, r * d, r * d + d / 2);
      rope.apply(unit, 1, positions);
      for (let r = 0; r < positions.length; r++) {
        for (let h = 0; h < heads; h++) {
          for (let i = 0; i < d / 2; i++) {
            const [cs, sn] = [unit[r * d + i], unit[r * d + d / 2 + i]];
            const at = (r * heads + h) * d + i;
            const [a, b] = [v[at], v[at + d / 2]];
            v[at] = (a * cs + b * sn) / (cs * cs + sn * sn);
            v[at + d / 2] = (b * cs - a * sn) / (cs * cs + sn * sn);
          }
        }
      }
    },
  };
  return { model: new LlamaModel(weights, backend), rotary };
}

describe("on-the-fly scores against kvpress (transformers)", () => {
  it("every query head's and KV head's score within 2e-5 of kvpress's, averaged over two texts", async () => {
    const observers: AttentionObserver[] = [];
    const { model, rotary } = await observedModel(observers);
    const { numLayers: L, numHeads: H, numKvHeads: K, headDim: d } = model.config;
    const ours = Array.from({ length: L }, () => new Array<number>(H).fill(0));
    for (const ids of reference.texts) {
      const observer = new MeanQueryKeyObserver(rotary);
      observers.splice(0, observers.length, observer);
      model.prefill(ids, { logits: "none" });
      for (let l = 0; l < L; l++) {
        const { query, key } = observer.means(l);
        const s = onTheFlyScores(query, key, H, K, d, reference.queryLength, observer.scales[l], (v, heads, positions) => rotary.rotate(l, v, heads, positions));
        s.forEach((x, h) => (ours[l][h] += x / reference.texts.length));
      }
    }
    let worst = 0;
    ours.forEach((row, l) => row.forEach((x, h) => (worst = Math.max(worst, Math.abs(x - reference.perQueryHead[l][h])))));
    const kv = kvHeadScores({ numHeads: H, numKvHeads: K, per: "query-head", scores: ours });
    kv.forEach((row, l) => row.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - reference.perKvHead[l][k])))));
    console.info(`kvpress on-the-fly parity: max |Δ score| = ${worst.toExponential(2)} over ${L * H} query heads and ${L * K} KV heads`);
    expect(worst).toBeLessThan(2e-5);
    // the scores do tell heads apart (a test of near-uniform attention would pass almost anything)
    const flat = reference.perKvHead.flat();
    expect(Math.max(...flat) - Math.min(...flat)).toBeGreaterThan(0.2);
  });
});
