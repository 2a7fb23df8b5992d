/** Model references → files → weights, tokenizers, and the Llama-family forward pass. */
export type { LlamaConfig, ModelWeights, Tensor } from "./model/types.js";
export { LlamaModel, PREFILL_UBATCH_ROWS, type ForwardOptions, type ForwardResult, type LlamaModelOptions, type PrefillProducts } from "./model/llama.js";
export { Rope, ropeFrequencies, type RopeFrequencies } from "./model/rope.js";
export { typescriptBackend, type ComputeBackend } from "./model/backend.js";
export { matmulTransposedReference, logSoftmax, logProbability, argmax } from "./model/ops.js";
export { randomBlockWeights, randomWeights, tinyConfig, weightsFromMap } from "./model/random-model.js";
export { continueGreedy, generateGreedy, tokenLogProbs, type GreedyOptions } from "./generate.js";
export { loadLanguageModel, defaultBackend, type LanguageModel, type LoadOptions } from "./language-model.js";
export { openModel, type LoadedModel } from "./load.js";
export { fileDigest, modelDigest } from "./digest.js";
export { parseModelRef, resolveModelRef, hubCacheDir, type ResolveOptions } from "./resolve.js";
export { MODEL_ALIASES, knownAliases } from "./aliases.js";
export { ModelFileError, ModelNotFoundError, ModelRefError } from "./formats/errors.js";
export { SUPPORTED_TYPE_NAMES } from "./formats/dequant.js";
export * from "./tokenizer/index.js";
