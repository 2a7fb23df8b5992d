/**
 * The engine's model as core's narrow `PreparationModel` (core/src/preparation.ts): what a policy's per-model
 * preparation step may use of model-zoo's LlamaModel, and nothing else. The runner is the only package that knows
 * both, so the adapter lives here (DESIGN §1).
 *
 * - `prefill` / `sequence.extend` are the model's own forward over a fresh, uncompressed cache: the statistics and
 *   logits are the bits the runner's prefill gives (RazorAttention's calibration reproduces to the bit).
 * - Observers see each layer's attention inputs through a second LlamaModel over the same weights (the format
 *   readers cache decoded tensors, so nothing is copied) whose compute backend wraps the real one: after every
 *   layer's `attend`, each observer gets the call's queries, cache, positions, scale and soft-cap.
 * - `rotary` is model-zoo's own RoPE (the `Rope` the forward applies), per layer as the forward chooses it: the
 *   sliding-window layers' when the config has one (Gemma 3), the global one elsewhere.
 */
import type {
  AttentionObserver, ForwardObservation, KvCache, ModelShape, ObserveOptions, PreparationModel, PreparedSequence, RotaryEmbedding,
} from "@razorkv/core";
import { LlamaModel, Rope, type ComputeBackend, type LanguageModel } from "@razorkv/model-zoo";

/** `inner` with every `attend` reported to the observers `current()` returns (none: nothing is reported). */
function observingBackend(inner: ComputeBackend, current: () => readonly AttentionObserver[]): ComputeBackend {
  // without attendStep: a decode step's attention then goes through `attend` below, so the observers see it
  const { attendStep: _batchedAttention, ...rest } = inner;
  return {
    ...rest,
    name: `${inner.name} (observed)`,
    matmulTransposed: inner.matmulTransposed.bind(inner),
    rmsNorm: inner.rmsNorm.bind(inner),
    swiglu: inner.swiglu.bind(inner),
    ...(inner.gegluTanh ? { gegluTanh: inner.gegluTanh.bind(inner) } : {}),
    attend(args) {
      const stats = inner.attend(args);
      const view = {
        layer: args.layer, numHeads: args.numHeads, cache: args.cache, queries: args.queries, queryPositions: args.queryPositions,
        scale: args.scale ?? 1 / Math.sqrt(args.cache.headDim), ...(args.softcap !== undefined ? { softcap: args.softcap } : {}),
      };
      for (const observer of current()) observer.observe(view);
      return stats;
    },
  };
}

/**
 * The RoPE `model`'s forward applies at layer `layer` (model-zoo's `Rope`: HF "rotate half", every scaling), as core's
 * RotaryEmbedding. A call's length — what dynamic NTK and LongRoPE depend on — is its largest position + 1, as for a
 * prefill of those positions. `inverse`: the rotation scales by the attention factor m (YaRN, LongRoPE; else 1), so
 * (a, b) → (a·c − b·s, b·c + a·s) with c = m·cos, s = m·sin, undone exactly by (a·c + b·s, b·c − a·s) / (c² + s²); c
 * and s are read off the forward rotation of a unit vector, so the inverse uses the same angles to the bit.
 */
export function rotaryOf(model: LlamaModel): RotaryEmbedding {
  const c = model.config;
  const global = new Rope(c.headDim, c.ropeTheta, c.ropeScaling);
  const local = c.localRope ? new Rope(c.headDim, c.localRope.theta, c.localRope.scaling) : global;
  const windows = model.cacheLayout.layerWindows;
  const d = c.headDim;
  const half = d / 2;
  return {
    rotate(layer, vectors, numHeads, positions, inverse = false) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= c.numLayers) throw new Error(`rotary: layer ${layer} outside [0, ${c.numLayers})`);
      const n = positions.length;
      if (vectors.length !== n * numHeads * d) {
        throw new Error(`rotary: expected ${n} positions × ${numHeads} heads × ${d} = ${n * numHeads * d} values, got ${vectors.length}`);
      }
      const rope = (windows?.[layer] ?? null) !== null ? local : global;
      if (!inverse) {
        rope.apply(vectors, numHeads, positions);
        return;
      }
      const unit = new Float32Array(n * d);
      for (let r = 0; r < n; r++) unit.fill(1, r * d, r * d + half);
      rope.apply(unit, 1, positions);
      for (let r = 0; r < n; r++) {
        for (let h = 0; h < numHeads; h++) {
          const base = (r * numHeads + h) * d;
          for (let i = 0; i < half; i++) {
            const cs = unit[r * d + i];
            const sn = unit[r * d + half + i];
            const norm = cs * cs + sn * sn;
            const a = vectors[base + i];
            const b = vectors[base + half + i];
            vectors[base + i] = (a * cs + b * sn) / norm;
            vectors[base + half + i] = (b * cs - a * sn) / norm;
          }
        }
      }
    },
  };
}

/**
 * `lm` as a PreparationModel; `digest` is model-zoo's `modelDigest(lm.loaded)`, as result rows carry it. Preparation
 * always runs the f32 prefill: an artefact is cached per model file and shared by every sweep of it, whatever the
 * sweep's prefillProducts, so an int8 model prepares through an f32 twin on the same weights and backend.
 */
export function preparationModel(lm: LanguageModel, digest: string): PreparationModel {
  const model = lm.model.prefillProducts === "f32" ? lm.model : new LlamaModel(lm.loaded.weights, lm.model.backend);
  const c = model.config;
  const shape: ModelShape = {
    numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, vocabSize: c.vocabSize,
    maxContext: c.maxContext, layerWindows: model.cacheLayout.layerWindows ?? Array.from({ length: c.numLayers }, () => null),
    attentionScale: c.attentionScale ?? 1 / Math.sqrt(c.headDim),
  };
  let observed: LlamaModel | null = null;
  let observers: readonly AttentionObserver[] = [];
  const forward = (cache: KvCache, tokens: ArrayLike<number>, options: ObserveOptions = {}): ForwardObservation => {
    const wanted = options.observers ?? [];
    // one run per forward, never ubatches: an observer is called once per layer of a forward (core's AttentionObserver)
    const runner =
      wanted.length === 0
        ? model
        : (observed ??= new LlamaModel(lm.loaded.weights, observingBackend(model.backend, () => observers), { prefillChunkRows: Infinity }));
    observers = wanted;
    try {
      const r = runner.forward(cache, tokens, { ...(options.stats ? { stats: options.stats } : {}), logits: options.logits ?? "last" });
      return { stats: r.stats ?? [], logits: r.logits };
    } finally {
      observers = [];
    }
  };
  const sequenceOf = (cache: KvCache): PreparedSequence => ({
    get length() {
      return cache.nextPosition;
    },
    extend: (tokens, options) => forward(cache, tokens, options),
    positions(layer, kvHead) {
      const head = cache.head(layer, kvHead);
      return head.positions.slice(0, head.length);
    },
  });
  return {
    ref: lm.ref,
    digest,
    shape,
    tokenizer: lm.tokenizer,
    rotary: rotaryOf(model),
    prefill(tokens, options) {
      const cache = model.newCache();
      return { ...forward(cache, tokens, options), sequence: sequenceOf(cache) };
    },
  };
}
