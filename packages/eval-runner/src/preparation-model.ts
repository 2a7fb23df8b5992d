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
 * - `rotary` is left out: model-zoo does not export its RoPE. A step that needs it (DuoAttention's on-the-fly scores)
 *   gets core's `requireRotary` error until it does; then only this file changes.
 */
import type { AttentionObserver, ForwardObservation, KvCache, ModelShape, ObserveOptions, PreparationModel, PreparedSequence } from "@razorkv/core";
import { LlamaModel, type ComputeBackend, type LanguageModel } from "@razorkv/model-zoo";

/** `inner` with every `attend` reported to the observers `current()` returns (none: nothing is reported). */
function observingBackend(inner: ComputeBackend, current: () => readonly AttentionObserver[]): ComputeBackend {
  return {
    ...inner,
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

/** `lm` as a PreparationModel; `digest` is model-zoo's `modelDigest(lm.loaded)`, as result rows carry it. */
export function preparationModel(lm: LanguageModel, digest: string): PreparationModel {
  const model = lm.model;
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
    const runner = wanted.length === 0 ? model : (observed ??= new LlamaModel(lm.loaded.weights, observingBackend(model.backend, () => observers)));
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
    prefill(tokens, options) {
      const cache = model.newCache();
      return { ...forward(cache, tokens, options), sequence: sequenceOf(cache) };
    },
  };
}
