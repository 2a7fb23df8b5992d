import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_HAYSTACK_FILE } from "./haystack.js";
import { NIAH_CITIES } from "./needle-tasks.js";
import { generateProse, PROSE_CHARS, PROSE_SEED } from "./prose.js";

describe("generated prose (the shipped haystack)", () => {
  const text = generateProse(PROSE_SEED, PROSE_CHARS);

  it("is what datasets/haystack/generated-essays.txt holds (regenerate with datasets/haystack/generate.mjs)", () => {
    expect(readFileSync(DEFAULT_HAYSTACK_FILE, "utf8") === text).toBe(true);
  });

  it("is deterministic and seed-dependent", () => {
    expect(generateProse(PROSE_SEED, 20_000)).toBe(generateProse(PROSE_SEED, 20_000));
    expect(generateProse(PROSE_SEED + 1, 20_000)).not.toBe(generateProse(PROSE_SEED, 20_000));
    expect(text.length).toBeGreaterThanOrEqual(PROSE_CHARS);
  });

  it("has no digits and no NIAH key city, so needles occur exactly once", () => {
    expect(/\d/.test(text)).toBe(false);
    for (const city of NIAH_CITIES) expect(text.includes(city), city).toBe(false);
  });

  it("is varied: sentences rarely repeat, no 'a' before a vowel sound", () => {
    const sentences = text.split(/(?<=[.?])\s+/);
    expect(sentences.length).toBeGreaterThan(4000);
    expect(new Set(sentences).size / sentences.length).toBeGreaterThan(0.9);
    expect(text).not.toMatch(/\b[Aa] [aeio]/);
    expect(text).not.toMatch(/\b[Aa]n [bcdfgjklmnpqrstvwxyz]/);
  });
});
