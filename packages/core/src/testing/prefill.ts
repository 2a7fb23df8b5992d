/**
 * Random prefills and decode steps for policy tests: a full cache of random post-RoPE keys and values, and the
 * statistics the reference attention collects for random queries over it — the same code path the model's forward
 * pass takes, without a model. Policy packages test against these instead of depending on model-zoo.
 */
import { attendReference, trimToWindows, type AttentionStatsRequest, type LayerAttentionStats } from "../attention.js";
import { HeadCache, KvCache, type LayerWindows } from "../cache.js";
import type { PrefillStats } from "../policy.js";
import { mulberry32, randomArray } from "./random.js";

export interface RandomShape {
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Per layer, a sliding window or null (full attention), as a Mistral- or Gemma-shaped model has. Absent: none. */
  readonly layerWindows?: LayerWindows;
}

export interface RandomPrefillOptions extends RandomShape {
  readonly length: number;
  readonly seed?: number;
  readonly stats?: AttentionStatsRequest;
  /** Scale of the random queries: larger makes attention peakier (default 2). */
  readonly queryScale?: number;
}

export interface RandomPrefill {
  readonly cache: KvCache;
  readonly stats: PrefillStats;
  /** Per layer, the queries [length × numHeads × headDim] the statistics came from (for brute-force references). */
  readonly queries: Float32Array[];
}

export function randomPrefill(options: RandomPrefillOptions): RandomPrefill {
  const { numLayers, numHeads, numKvHeads, headDim: d, length } = options;
  const rand = mulberry32(options.seed ?? 1);
  const heads: HeadCache[] = [];
  for (let i = 0; i < numLayers * numKvHeads; i++) {
    const h = new HeadCache(d, length);
    for (let p = 0; p < length; p++) h.append(p, randomArray(rand, d), randomArray(rand, d));
    heads.push(h);
  }
  const cache = new KvCache({ numLayers, numKvHeads, headDim: d, layerWindows: options.layerWindows }, heads, length);
  const positions = Int32Array.from({ length }, (_, i) => i);
  const request = options.stats ?? {};
  const layers: LayerAttentionStats[] = [];
  const queries: Float32Array[] = [];
  for (let l = 0; l < numLayers; l++) {
    const q = randomArray(rand, length * numHeads * d, options.queryScale ?? 2);
    queries.push(q);
    layers.push(attendReference({ cache, layer: l, numHeads, queries: q, queryPositions: positions, out: new Float32Array(q.length), stats: request }));
  }
  // as the model does after every forward: windowed layers keep only what later queries can attend
  return { cache, stats: { request, layers: trimToWindows(cache, layers) ?? layers }, queries };
}

/**
 * One decode step on `cache` as the model's forward would take it: appends a random key and value at the next
 * position to every head, attends a random query per query head over what each head holds, advances
 * `nextPosition`, trims sliding-window layers to their window, and returns the step's statistics. `queries` receives the step's queries when given.
 */
export function randomDecodeStep(
  cache: KvCache,
  rand: () => number,
  numHeads: number,
  request: AttentionStatsRequest = {},
  queries?: Float32Array[],
): LayerAttentionStats[] {
  const d = cache.headDim;
  const position = cache.nextPosition;
  for (const h of cache.heads) h.append(position, randomArray(rand, d), randomArray(rand, d));
  const stats: LayerAttentionStats[] = [];
  for (let l = 0; l < cache.numLayers; l++) {
    const q = randomArray(rand, numHeads * d, 2);
    queries?.push(q);
    stats.push(attendReference({ cache, layer: l, numHeads, queries: q, queryPositions: [position], out: new Float32Array(q.length), stats: request }));
  }
  cache.nextPosition = position + 1;
  return trimToWindows(cache, stats) ?? stats;
}
