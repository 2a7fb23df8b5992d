import { mulberry32 } from "@razorkv/core";

/**
 * Per-sample random streams. Each sample draws from its own mulberry32 stream seeded by a hash of (seed, task,
 * the sample's coordinates), so a sample depends only on its own coordinates: adding a context length or a depth
 * to a sweep leaves every other sample, and its id, unchanged.
 */
export function sampleRng(seed: number, ...coordinates: (string | number)[]): () => number {
  // FNV-1a (32 bit) over the seed and the coordinates' text; the seed is hashed too so that seeds 1 and 2 give
  // unrelated streams for the same sample.
  let h = 0x811c9dc5;
  const text = [String(seed >>> 0), ...coordinates.map(String)].join("\u0001");
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return mulberry32(h);
}

/** Integer uniform in [lo, hi). */
export function randomInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo));
}

export function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

/** `count` distinct items, in random order (partial Fisher–Yates). */
export function sampleDistinct<T>(rand: () => number, items: readonly T[], count: number): T[] {
  if (count > items.length) throw new Error(`sampleDistinct: asked for ${count} of ${items.length} items`);
  const pool = items.slice();
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}
