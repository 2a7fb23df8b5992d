export { fullEntriesOf, HeadCache, KvCache } from "./cache.js";
export type { CacheLayout, CompensationSlot, KvCacheShape, LayerWindows } from "./cache.js";
export { attendReference, trimToWindows } from "./attention.js";
export type { AttentionArgs, AttentionStatsRequest, LayerAttentionStats } from "./attention.js";
export { mulberry32, randomArray } from "./testing/random.js";
export { RazorkvError } from "./errors.js";
export {
  assertRealizedBudget, budgetMissPerHead, compressionRatio, describeBudget, entriesPerHead, kvBudget, parseBudget,
  toKvBudget, tokenBudget,
} from "./budget.js";
export type { Budget } from "./budget.js";
export { aggregateGroup, gqaAggregationParam, groupSize, queryHeadsOf } from "./gqa.js";
export type { GqaAggregation } from "./gqa.js";
export { defaultParams, param, parseParams } from "./params.js";
export type { BooleanParam, ChoiceParam, CustomParam, NumberParam, ParamSpec, ParamsOf, ParamsSchema } from "./params.js";
export { checkFeasible, definePolicy, layerStat, mergeStatsRequests, noStats, nominalKvBudget, nominalKvBudgetOf, requireWindow } from "./policy.js";
export type { CompressionPolicy, DecodeHook, DecodeSession, PolicyContext, PolicyDefinition, PrefillStats } from "./policy.js";
export { attentionWeights, requireRotary } from "./preparation.js";
export type {
  AttentionObserver, AttentionView, ForwardObservation, ModelShape, ObserveOptions, PreparationChatMessage, PreparationModel,
  PreparationModelInfo, PreparationStep, PreparationTokenizer, PreparedSequence, RotaryEmbedding,
} from "./preparation.js";
export { checkHeadCounts, HEAD_SELECTION_FORMAT, kvHeadScore, parseHeadSelection } from "./head-selection.js";
export { pool1d } from "./pooling.js";
export type { HeadRef, HeadScore, HeadSelection } from "./head-selection.js";
export {
  canonicalJson, fileStem, planPreparation, prepare, preparationCacheDir, preparationKey, readArtefact, readPrepared, runPreparation,
  serializeArtefact, writeFileAtomic,
} from "./prepared-cache.js";
export type { Prepared, PrepareOptions, PreparationPlan } from "./prepared-cache.js";
export { createPolicy, findWorkspaceRoot, instantiatePolicy, loadPolicy, policyPackageCandidates, workspacePackageDirs } from "./registry.js";
export type { LoadedPolicy, LoadPolicyOptions } from "./registry.js";
export {
  decodeTarget, decodeTargets, entriesToKeep, entriesToKeepOf, evictSlot, keepRecentAndTop, requireFullCache, selectPerHead, topKSlots, windowSplit,
} from "./selection.js";
export type { SelectOptions, WindowSplit } from "./selection.js";
export {
  compressedHeadEntries, compressProtectedHeads, headSplit, protectedHeadsKvBudget, protectedHeadsPolicy, protectedHeadsWindow, sinksAndWindow,
} from "./protected-heads.js";
export type { CompressedHeadOptions, HeadSplit, ProtectedHeadSet, ProtectedHeadsNames, ProtectedHeadsPolicySpec } from "./protected-heads.js";
export { randomDecodeStep, randomPrefill } from "./testing/prefill.js";
export type { RandomPrefill, RandomPrefillOptions, RandomShape } from "./testing/prefill.js";
export { checkPolicyConformance } from "./testing/conformance.js";
export type { ConformanceOptions, ConformanceRow } from "./testing/conformance.js";
