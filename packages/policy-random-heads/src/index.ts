/**
 * Random heads: RazorAttention's cache layout (Tang et al. 2024, "RazorAttention: Efficient KV Cache Compression
 * Through Retrieval Heads", arXiv 2407.15891, §3.3 and Algorithm 1) with the protected KV heads drawn uniformly at
 * random instead of chosen by calibration — the control the paper lacks. Protected heads keep their whole cache;
 * every other KV head keeps N0 attention sinks + a recent window and folds the dropped span into one compensation
 * token (core's protected-heads.ts, the same code RazorAttention runs). At one kvBudget and one protected share, a
 * gap between RazorAttention (or retrieval heads, DuoAttention…) and this policy is what the selection buys.
 *
 * The draw: a Fisher–Yates shuffle of the layers × KV heads, driven by core's mulberry32 with `seed`; the first
 * round(protectedFraction · N) heads of the shuffle are protected — every subset of that size equally likely. For one
 * seed the sets are nested: the 5% set is inside the 15% set, inside the 25%… so a sweep of the protected share
 * adds heads instead of redrawing them.
 *
 * Per-model preparation: none that runs the model. The step records the model's shape (layers, query and KV heads),
 * so the draw can be exported as a HeadSelection the report draws (score kind "random draw": 1 − rank/N, the first
 * head drawn scores 1); compress draws from the cache's own shape and checks it against that record.
 */
import {
  definePolicy, HEAD_SELECTION_FORMAT, mulberry32, param, protectedHeadsPolicy, RazorkvError, type CacheLayout, type CompressionPolicy,
  type HeadRef, type HeadSelection, type ParamsOf, type PolicyContext, type PreparationStep,
} from "@razorkv/core";

export const params = {
  protectedFraction: param.number({
    default: 0.15,
    min: 0,
    max: 1,
    doc:
      "Share of all KV heads (layers × KV heads) kept whole: round(protectedFraction · N) heads, as RazorAttention counts its " +
      "fractions. Default 0.15 = RazorAttention's 14% by induction + 1% by echo (arXiv 2407.15891 §4.1); on SmolLM2-135M both protect 14 of 90.",
  }),
  seed: param.integer({
    default: 0,
    min: 0,
    doc: "Seed of the draw (mulberry32 driving a Fisher–Yates shuffle). Sweep it to see the spread of the control; each seed is one uniform draw.",
  }),
  sinks: param.integer({
    default: 4,
    min: 0,
    doc: "N0, initial tokens every compressed head keeps: attention sinks (Xiao et al. 2023). RazorAttention: 4.",
  }),
  compensation: param.boolean({
    default: true,
    doc: "Fold the dropped tokens into one compensation slot per compressed head, as RazorAttention does (§3.3). Off: plain dropping.",
  }),
};
export type RandomHeadsParams = ParamsOf<typeof params>;

/** The artefact of the preparation step: the shape of the model the heads are drawn for. */
export interface ModelHeads {
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
}

/**
 * The draw: all `numHeads` KV heads (indexes layer · numKvHeads + kvHead) in a uniformly random order — a
 * Fisher–Yates shuffle of 0 … numHeads − 1 with mulberry32(seed), the last position swapped first. The protected set
 * of a fraction f is the first round(f · numHeads).
 */
export function drawOrder(numHeads: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const order = Array.from({ length: numHeads }, (_, i) => i);
  for (let i = numHeads - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The protected KV heads of a model with `numLayers` × `numKvHeads` KV heads, in (layer, kvHead) order. */
export function randomHeads(numLayers: number, numKvHeads: number, p: Pick<RandomHeadsParams, "protectedFraction" | "seed">): HeadRef[] {
  const total = numLayers * numKvHeads;
  const count = Math.round(p.protectedFraction * total);
  return drawOrder(total, p.seed)
    .slice(0, count)
    .sort((a, b) => a - b)
    .map((i) => ({ layer: Math.floor(i / numKvHeads), kvHead: i % numKvHeads }));
}

/** Validates the artefact read back from the preparation cache; `source` names the file. */
export function parseModelHeads(value: unknown, source: string): ModelHeads {
  const v = (value ?? {}) as Record<string, unknown>;
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new RazorkvError(`${source}: expected the model-shape object {model, numLayers, numHeads, numKvHeads}`);
  if (typeof v.model !== "string") throw new RazorkvError(`${source}: model: expected a string, found ${JSON.stringify(v.model)}`);
  for (const k of ["numLayers", "numHeads", "numKvHeads"]) {
    if (!Number.isInteger(v[k]) || (v[k] as number) <= 0) throw new RazorkvError(`${source}: ${k}: expected a positive integer, found ${JSON.stringify(v[k])}`);
  }
  if ((v.numHeads as number) % (v.numKvHeads as number) !== 0) {
    throw new RazorkvError(`${source}: numHeads: expected a multiple of numKvHeads (${v.numKvHeads}), found ${v.numHeads}`);
  }
  return value as ModelHeads;
}

/** The selection as the report draws it: the draw order as a score, the protected heads outlined. */
export function headSelectionOf(shape: ModelHeads, p: Pick<RandomHeadsParams, "protectedFraction" | "seed">): HeadSelection {
  const total = shape.numLayers * shape.numKvHeads;
  const rank = new Array<number>(total);
  drawOrder(total, p.seed).forEach((head, r) => (rank[head] = r));
  const values = Array.from({ length: shape.numLayers }, (_, l) => Array.from({ length: shape.numKvHeads }, (_, kv) => 1 - rank[l * shape.numKvHeads + kv] / total));
  const protectedHeads = randomHeads(shape.numLayers, shape.numKvHeads, p);
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: "random-heads",
    title: "Random heads (control)",
    description:
      `KV heads drawn uniformly at random (Fisher–Yates shuffle, mulberry32 seed ${p.seed}); no measurement. Protected KV heads keep their ` +
      "whole cache; every other KV head keeps its attention sinks, a recent window and, with compensation on, one compensation token — " +
      "RazorAttention's layout, so only the choice of heads differs.",
    rule: `the first ${protectedHeads.length} of ${total} KV heads drawn (round(${Number((p.protectedFraction * 100).toFixed(2))}% of ${total})), seed ${p.seed}`,
    model: shape.model,
    numLayers: shape.numLayers,
    numHeads: shape.numHeads,
    numKvHeads: shape.numKvHeads,
    scores: [{ kind: "random draw", description: "1 − (rank in the seeded shuffle) / heads: the first head drawn scores 1", per: "kv-head", values }],
    protected: protectedHeads,
    params: { protectedFraction: p.protectedFraction, seed: p.seed },
  };
}

/**
 * The preparation step: the model's shape, nothing run. Its inputs are empty (the shape is a function of the model
 * file), so one artefact per model serves every seed and fraction.
 */
export const shapeStep: PreparationStep<typeof params, ModelHeads> = {
  description: "random heads: the model's layers and KV heads (no model run); the draw itself is made from the seed",
  version: 1,
  inputs: () => ({}),
  run: (model) => ({ model: model.ref, numLayers: model.shape.numLayers, numHeads: model.shape.numHeads, numKvHeads: model.shape.numKvHeads }),
  parse: parseModelHeads,
  headSelection: (shape, p) => headSelectionOf(shape, p),
};

export function createRandomHeads(p: RandomHeadsParams, context: PolicyContext = {}): CompressionPolicy {
  const prepared = (context.prepared as ModelHeads | undefined) ?? null;
  const shapeOf = (layout?: CacheLayout): Pick<ModelHeads, "numLayers" | "numKvHeads"> => {
    if (layout && prepared && (layout.numLayers !== prepared.numLayers || layout.numKvHeads !== prepared.numKvHeads)) {
      throw new RazorkvError(
        `random-heads: prepared for "${prepared.model}" with ${prepared.numLayers} layers × ${prepared.numKvHeads} KV heads, but the model's cache has ` +
          `${layout.numLayers} × ${layout.numKvHeads}; prepare this model`,
      );
    }
    const shape = layout ?? prepared;
    if (!shape) {
      throw new RazorkvError(
        `random-heads: no model shape to draw the heads from for ${context.modelRef ? `model "${context.modelRef}"` : "this model"}; ` +
          "`razorkv run` and `razorkv prepare --model <ref> --policy random-heads` record it",
      );
    }
    return shape;
  };
  return protectedHeadsPolicy({
    policy: "random-heads",
    protectedParams: "protectedFraction",
    sinks: p.sinks,
    compensation: p.compensation,
    protectedHeads(layout) {
      const { numLayers, numKvHeads } = shapeOf(layout);
      const heads = new Set(randomHeads(numLayers, numKvHeads, p).map((r) => r.layer * numKvHeads + r.kvHead));
      return { heads, totalHeads: numLayers * numKvHeads };
    },
  });
}

export default definePolicy({
  name: "random-heads",
  description: "Random heads: RazorAttention's layout (arXiv 2407.15891) with the protected KV heads drawn uniformly at random (seeded) — the control",
  params,
  create: createRandomHeads,
  prepare: shapeStep,
});
