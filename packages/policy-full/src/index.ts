/**
 * Full cache: nothing is dropped. The reference every other policy is measured against (kvBudget 1 whatever the
 * sweep asks, which the runner records as the row's nominal budget).
 */
import { definePolicy, type CompressionPolicy, type KvCache } from "@razorkv/core";

/** Full takes no parameters. */
export const params = {};

/** The selection: every slot of every head (a copy, since the cell's decode appends to it). */
export function keepEverything(fullCache: KvCache): KvCache {
  return fullCache.clone();
}

export function createFullPolicy(): CompressionPolicy {
  return {
    name: "full",
    statsRequest: {},
    compress: (fullCache) => keepEverything(fullCache),
    nominalBudget: () => 1,
  };
}

export default definePolicy({
  name: "full",
  description: "Full cache: nothing dropped (the uncompressed reference)",
  params,
  create: () => createFullPolicy(),
});
