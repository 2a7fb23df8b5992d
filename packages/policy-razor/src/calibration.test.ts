import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  kvHeadScore, mulberry32, parseHeadSelection, parseParams, planPreparation, prepare, RazorkvError, serializeArtefact,
  type AttentionStatsRequest, type PolicyDefinition, type PreparationModel,
} from "@razorkv/core";
import { LlamaModel, weightsFromMap, type LlamaConfig, type Tensor } from "@razorkv/model-zoo";
import { afterAll, describe, expect, it } from "vitest";
import { calibrate, calibrationInput, resolveCalibration, type CalibrationModel } from "./calibration.js";
import razor, { params as razorParams } from "./index.js";
import { readProfile, selectRetrievalHeads } from "./profile.js";

/** The engine's model as calibration sees it (the runner's adapter does the same for core's PreparationModel). */
const calibrationView = (m: LlamaModel): CalibrationModel => ({ shape: m.config, prefill: (tokens, options) => m.prefill(tokens, options) });

/**
 * A 2-layer Llama with three planted heads and everything else silent (zero queries: uniform attention).
 * Residual stream (48): [0,16) the token's ±1 code, [16,32) the previous token's code (written by layer 0),
 * 32 a constant 4, the rest 0, so every position has the same RMS and RMSNorm is a fixed scale.
 *   layer 0, query head 0 (KV head 0): previous-token head. Query and key come from the constant through RoPE's
 *     fast planes 0…3, the key pre-rotated by one position, so q(i)·k(j) ∝ Σ cos θ_t (j + 1 − i): maximal at j = i − 1.
 *     It copies that token's code into [16,32).
 *   layer 0, query head 2 (KV head 1): echo head. Query and key = the token's code in RoPE's slow planes 8…15
 *     (θ ≤ 10⁻³ at ropeTheta 10⁶: rotation is negligible over the context): attends to earlier copies of itself.
 *   layer 1, query head 0 (KV head 0): induction head. Query = the token's code, key = the previous token's code:
 *     attends to the token after each earlier copy of the current one.
 */
function plantedModel(options: { withPreviousTokenHead?: boolean } = {}): LlamaModel {
  const config: LlamaConfig = {
    architecture: "llama", numLayers: 2, hiddenSize: 48, intermediateSize: 8, numHeads: 4, numKvHeads: 2, headDim: 32,
    vocabSize: 64, rmsNormEps: 1e-6, ropeTheta: 1e6, maxContext: 81, tiedEmbeddings: true, qkvBias: false,
  };
  const D = config.hiddenSize;
  const d = config.headDim;
  const half = d / 2;
  const tensors = new Map<string, Tensor>();
  const zeros = (name: string, shape: number[]) => {
    const t = { name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
    tensors.set(name, t);
    return t.data;
  };
  const rand = mulberry32(99);
  const emb = zeros("token_embd.weight", [config.vocabSize, D]);
  for (let t = 0; t < config.vocabSize; t++) {
    for (let a = 0; a < 16; a++) emb[t * D + a] = rand() < 0.5 ? -1 : 1;
    emb[t * D + 32] = 4;
  }
  zeros("output_norm.weight", [D]).fill(1);
  const norm0 = Math.sqrt(32 / 48); // RMS of a layer-0 residual: 16 code entries of ±1 and the constant 4
  const slow = Array.from({ length: 16 }, (_, a) => (a < 8 ? 8 + a : 16 + a)); // dims of RoPE planes 8…15
  const theta = (t: number) => 1 / Math.pow(config.ropeTheta, (2 * t) / d);
  for (let l = 0; l < 2; l++) {
    const p = `blk.${l}.`;
    zeros(p + "attn_norm.weight", [D]).fill(1);
    zeros(p + "ffn_norm.weight", [D]).fill(1);
    zeros(p + "ffn_gate.weight", [config.intermediateSize, D]);
    zeros(p + "ffn_up.weight", [config.intermediateSize, D]);
    zeros(p + "ffn_down.weight", [D, config.intermediateSize]);
    const wq = zeros(p + "attn_q.weight", [config.numHeads * d, D]);
    const wk = zeros(p + "attn_k.weight", [config.numKvHeads * d, D]);
    const wv = zeros(p + "attn_v.weight", [config.numKvHeads * d, D]);
    const wo = zeros(p + "attn_output.weight", [D, config.numHeads * d]);
    const constant = 4 / norm0;
    if (l === 0) {
      for (let t = 0; t < 4; t++) {
        wq[(0 * d + t) * D + 32] = 100 / constant;
        wk[(0 * d + t) * D + 32] = Math.cos(theta(t)) / constant;
        wk[(0 * d + t + half) * D + 32] = Math.sin(theta(t)) / constant;
      }
      for (let a = 0; a < 16; a++) {
        wv[(0 * d + a) * D + a] = norm0; // value = the token's code, ±1
        if (options.withPreviousTokenHead !== false) wo[(16 + a) * (config.numHeads * d) + 0 * d + a] = 1;
        wq[(2 * d + slow[a]) * D + a] = 8 * norm0;
        wk[(1 * d + slow[a]) * D + a] = norm0;
      }
    } else {
      for (let a = 0; a < 16; a++) {
        wq[(0 * d + slow[a]) * D + a] = 8;
        wk[(0 * d + slow[a]) * D + 16 + a] = 1;
      }
    }
  }
  return new LlamaModel(weightsFromMap(config, tensors, "planted test model"));
}

const argmax2d = (m: readonly (readonly number[])[]) => {
  let best = [0, 0];
  m.forEach((row, l) => row.forEach((x, h) => (x > m[best[0]][best[1]] ? (best = [l, h]) : null)));
  return best;
};

describe("calibration on a model with planted heads", () => {
  const model = plantedModel();
  const params = { bosId: 1, tokenRange: [8, 64] as const };
  const profile = calibrate(calibrationView(model), "planted", params);

  it("uses BOS + K random ordinary tokens repeated 4 times, K = min(2500, ⌊(maxContext − 1)/4⌋)", () => {
    const s = resolveCalibration(model.config, params);
    expect(s.blockLength).toBe(20);
    const { tokens, stats } = calibrationInput(s);
    expect(tokens.length).toBe(81);
    expect(tokens[0]).toBe(1);
    for (let i = 1; i < 61; i++) expect(tokens[i + 20]).toBe(tokens[i]);
    expect(Math.min(...tokens.slice(1))).toBeGreaterThanOrEqual(8);
    expect(stats).toEqual({ repeatedSequence: { period: 20, firstPosition: 1 } });
    expect(() => resolveCalibration(model.config, { ...params, blockLength: 21 })).toThrow(/blockLength: expected a block whose 4 copies \+ BOS fit the model's context of 81 \(K ≤ 20\)/);
  });

  it("scores the planted induction and echo heads highest, the others low", () => {
    expect(argmax2d(profile.induction)).toEqual([1, 0]);
    expect(argmax2d(profile.echo)).toEqual([0, 2]);
    expect(profile.induction[1][0]).toBeGreaterThan(0.6); // < 1: the random block repeats a few ids
    expect(profile.echo[0][2]).toBeGreaterThan(0.4);
    // the previous-token head attends to i − 1: neither an earlier copy nor its successor
    expect(profile.echo[0][0]).toBeLessThan(0.05);
    expect(profile.induction[0][0]).toBeLessThan(0.05);
    for (const [l, h] of [[0, 1], [0, 3], [1, 1], [1, 2], [1, 3]]) {
      // uniform attention: about one copy among i + 1 keys
      expect(profile.induction[l][h]).toBeLessThan(0.1);
      expect(profile.echo[l][h]).toBeLessThan(0.1);
    }
  });

  it("ranks the planted heads first and protects them", () => {
    // 2 layers × 2 KV heads: default fractions protect round(0.14·4) = 1 head by induction, round(0.01·4) = 0 by echo
    expect(profile.retrieval).toEqual([{ layer: 1, kvHead: 0 }]);
    expect(selectRetrievalHeads(profile, { inductionFraction: 0.25, echoFraction: 0.25 })).toEqual([
      { layer: 0, kvHead: 1 },
      { layer: 1, kvHead: 0 },
    ]);
  });

  it("needs the previous-token head: without it the induction head finds nothing", () => {
    const ablated = calibrate(calibrationView(plantedModel({ withPreviousTokenHead: false })), "ablated", params);
    expect(ablated.induction[1][0]).toBeLessThan(0.2);
  });
});

describe("calibration as the policy's preparation step", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-profiles-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const definition = razor as unknown as PolicyDefinition;
  const p = (raw: Record<string, unknown> = {}) => parseParams(razorParams, raw, "razor");

  /** A stand-in model: scores planted by formula, and a count of prefills. */
  const fake = (digest = "digest-1") => {
    const m = {
      ref: "hf:org/some model@abc",
      digest,
      prefills: 0,
      shape: { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 500, maxContext: 401, layerWindows: [null, null, null], attentionScale: 1 },
      tokenizer: { bosId: 1 } as PreparationModel["tokenizer"],
      prefill(tokens: ArrayLike<number>, options: { stats?: AttentionStatsRequest } = {}) {
        m.prefills++;
        expect(tokens.length).toBe(401);
        expect(options.stats?.repeatedSequence).toEqual({ period: 100, firstPosition: 1 });
        const stats = Array.from({ length: 3 }, (_, l) => ({
          echo: Float64Array.from({ length: 4 }, (_, h) => (l === 2 && h === 3 ? 0.9 : 0.01 * h)),
          induction: Float64Array.from({ length: 4 }, (_, h) => (l === 1 && h === 0 ? 0.8 : 0.02 * l)),
        }));
        return { stats, logits: new Float32Array(0), sequence: {} as never };
      },
    };
    return m satisfies PreparationModel & CalibrationModel;
  };

  it("inputs: the resolved calibration settings (block from the context, BOS from the tokenizer); none for an explicit profile", () => {
    const model = fake();
    expect(definition.prepare!.inputs(p(), model)).toEqual({ blockLength: 100, repeats: 4, seed: 2407, tokenRange: [125, 500], bosId: 1 });
    expect(definition.prepare!.inputs(p({ calibration: { seed: 5, blockLength: 50 } }), model)).toMatchObject({ blockLength: 50, seed: 5 });
    expect(() => definition.prepare!.inputs(p({ calibration: { blockLength: 200 } }), model)).toThrow(/calibration: blockLength: expected a block whose 4 copies \+ BOS fit the model's context of 401 \(K ≤ 100\)/);
    const explicit = calibrate(model, "m", { bosId: 1 });
    expect(definition.prepare!.inputs(p({ profile: explicit }), model)).toBeNull();
  });

  it("calibrates once per model file and input, caches the profile byte for byte, and every fraction re-selects from it", () => {
    const model = fake();
    const first = prepare(definition, p(), model, { cacheDir: dir })!;
    expect(first.fromCache).toBe(false);
    expect(readFileSync(first.plan.path, "utf8")).toBe(serializeArtefact(calibrate(fake(), "hf:org/some model@abc", { bosId: 1 })));
    expect(readProfile(first.plan.path)).toEqual(first.artefact);
    expect((first.artefact as { retrieval: unknown }).retrieval).toEqual([{ layer: 1, kvHead: 0 }]);
    const again = prepare(definition, p({ echoFraction: 0.2 }), model, { cacheDir: dir })!;
    expect(again.fromCache).toBe(true);
    expect(model.prefills).toBe(1);
    const selection = definition.prepare!.headSelection!(again.artefact, p({ echoFraction: 0.2 }));
    expect(selection.protected).toEqual([{ layer: 1, kvHead: 0 }, { layer: 2, kvHead: 1 }]);
    // another calibration input or another model file is another artefact
    const seeded = prepare(definition, p({ calibration: { seed: 5 } }), model, { cacheDir: dir })!;
    expect(seeded.fromCache).toBe(false);
    expect(seeded.plan.path).not.toBe(first.plan.path);
    expect(prepare(definition, p(), fake("digest-2"), { cacheDir: dir })!.plan.path).not.toBe(first.plan.path);
    expect(planPreparation(definition, p(), model, dir)!.path).toBe(first.plan.path);
  });

  it("exports its selection as core's HeadSelection: echo and induction per query head, the group max, the protected KV heads", () => {
    const profile = calibrate(fake(), "m", { bosId: 1 });
    const fractions = { inductionFraction: 0.34, echoFraction: 0.17 };
    const selection = parseHeadSelection(JSON.parse(JSON.stringify(definition.prepare!.headSelection!(profile, p(fractions)))), "selection");
    expect(selection.policy).toBe("razor");
    expect(selection.scores.map((s) => s.kind)).toEqual(["echo", "induction"]);
    expect(selection.protected).toEqual(selectRetrievalHeads(profile, fractions));
    expect(selection.rule).toBe("top 34% of KV heads by induction + top 17% by echo");
    expect(selection.params).toMatchObject({ ...fractions, blockLength: 100, bosId: 1 });
    for (let l = 0; l < 3; l++) {
      for (let kv = 0; kv < 2; kv++) {
        expect(kvHeadScore(selection, selection.scores[1], l, kv)).toBe(Math.max(...profile.induction[l].slice(2 * kv, 2 * kv + 2)));
      }
    }
  });

  it("rejects a broken profile file, naming the file and the field", async () => {
    const { writeFileSync } = await import("node:fs");
    const path = join(dir, "broken.json");
    writeFileSync(path, JSON.stringify({ model: "m", numLayers: 2, numHeads: 4, numKvHeads: 2, echo: [[0, 0, 0, 0]], induction: [], retrieval: [], params: {} }));
    expect(() => readProfile(path)).toThrow(RazorkvError);
    expect(() => readProfile(path)).toThrow(`${path}: echo: expected an array of 2 layers`);
  });
});
