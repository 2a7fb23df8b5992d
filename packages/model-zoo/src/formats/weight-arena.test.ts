import { describe, expect, it } from "vitest";
import { ARENA_CHUNK_BYTES, WeightArena } from "./weight-arena.js";

describe("WeightArena", () => {
  it("hands out 64-byte-aligned, non-overlapping slices and refuses past its capacity", () => {
    const lengths = [100, 64, 1, 4096, 63];
    const arena = new WeightArena(WeightArena.sizeFor(lengths));
    expect(arena.capacity).toBe(128 + 64 + 64 + 4096 + 64);
    const slices = lengths.map((n) => arena.slice(n)!);
    slices.forEach((s, i) => {
      expect(s.length).toBe(lengths[i]);
      expect(s.byteOffset % 64).toBe(0);
      expect(s.buffer).toBe(slices[0].buffer);
      s.fill(i + 1);
    });
    slices.forEach((s, i) => expect(s.every((b) => b === i + 1)).toBe(true)); // no slice wrote into another
    expect(arena.slice(1)).toBeNull();
  });

  it("spreads more than one typed array can hold over several buffers, no slice straddling two (an 8B model's 4.6 GB)", () => {
    // pages never touched cost no memory: only the slices' first bytes are written here
    const tensor = 431_000_000; // the size of an 8B-shaped Q6_K output matrix
    const lengths = Array.from({ length: 12 }, () => tensor);
    const arena = new WeightArena(WeightArena.sizeFor(lengths));
    expect(arena.capacity).toBeGreaterThan(2 ** 32);
    const slices = lengths.map((n) => arena.slice(n)!);
    const buffers = new Set(slices.map((s) => s.buffer));
    expect(buffers.size).toBeGreaterThan(4);
    for (const s of slices) {
      expect(s.length).toBe(tensor);
      expect(s.byteOffset + s.length).toBeLessThanOrEqual(s.buffer.byteLength);
      expect(s.buffer.byteLength).toBeLessThanOrEqual(ARENA_CHUNK_BYTES);
    }
    expect(arena.slice(64)).toBeNull();
  });
});
