export { HeadCache, KvCache } from "./cache.js";
export type { CompensationSlot, KvCacheShape } from "./cache.js";
export { attendReference } from "./attention.js";
export type { AttentionArgs, AttentionStatsRequest, LayerAttentionStats } from "./attention.js";
export { mulberry32, randomArray } from "./testing/random.js";
export { RazorkvError } from "./errors.js";
