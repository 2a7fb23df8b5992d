import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateLmLoss, generateRepeatedTokens } from "./continuation-tasks.js";
import { DEFAULT_HAYSTACK_FILE } from "./haystack.js";
import { segmentPieces } from "./prompt.js";
import { WordTokenizer } from "./testing/word-tokenizer.js";
import type { Segment } from "./types.js";

const ids = (s: Segment): readonly number[] => {
  const pieces = segmentPieces(s);
  if (pieces.length !== 1 || pieces[0].ids === undefined) throw new Error("expected one ids piece");
  return pieces[0].ids;
};

describe("repeated random tokens", () => {
  const tok = new WordTokenizer(); // vocabSize 50000, BOS 1
  const samples = generateRepeatedTokens({ lengths: [1025, 2048], samplesPerLength: 3 }, tok, 3);

  it("builds BOS + copies of a block of distinct ordinary ids, exactly the context length", () => {
    expect(samples).toHaveLength(6);
    for (const s of samples) {
      const context = ids(s.context);
      expect(context).toHaveLength(s.contextLength);
      expect(context[0]).toBe(1);
      const K = Math.floor((s.contextLength - 1) / 4);
      const block = context.slice(1, 1 + K);
      expect(new Set(block).size).toBe(K);
      expect(block.every((id) => id >= 1000 && id < 49000)).toBe(true);
      for (let p = 1; p < context.length; p++) expect(context[p]).toBe(block[(p - 1) % K]);
    }
  });

  it("query = the block's next ids (its first when the context holds whole copies), continuation = the ones after", () => {
    const whole = samples[0]; // 1025 = BOS + 4 × 256
    const block = ids(whole.context).slice(1, 257);
    expect(ids(whole.query)).toEqual(block.slice(0, 8));
    expect(whole.target).toEqual({ kind: "continuation", continuation: { ids: block.slice(8, 40) }, metric: "token-accuracy" });
    const partial = samples[3]; // 2048 = BOS + 4 × 511 + 3
    const K = 511;
    const pblock = ids(partial.context).slice(1, 1 + K);
    expect(ids(partial.query)).toEqual([...pblock.slice(3, 11)]);
    expect(partial.id).toBe("repeated-tokens/seed3/L2048/K511/0");
  });

  it("is deterministic, seed-dependent, and honours blockLength, idRange and prependBos", () => {
    expect(generateRepeatedTokens({ lengths: [1025, 2048], samplesPerLength: 3 }, tok, 3)).toEqual(samples);
    expect(ids(generateRepeatedTokens({ lengths: [1025] }, tok, 4)[0].context)).not.toEqual(ids(samples[0].context));
    const [s] = generateRepeatedTokens(
      { lengths: [100], blockLength: 10, idRange: [200, 220], prependBos: false, queryTokens: 2, continuationTokens: 15 },
      tok,
      1,
    );
    const context = ids(s.context);
    expect(context).toHaveLength(100);
    expect(context.every((id) => id >= 200 && id < 220)).toBe(true);
    expect(context.slice(10, 20)).toEqual(context.slice(0, 10));
    expect(ids((s.target as { continuation: Segment }).continuation)).toEqual([...context.slice(2, 10), ...context.slice(0, 7)]);
  });

  it("rejects impossible parameters", () => {
    expect(() => generateRepeatedTokens({ lengths: [100], idRange: [0, 10], blockLength: 50 }, tok, 1)).toThrow(/fewer ids than a block of 50/);
    expect(() => generateRepeatedTokens({ lengths: [100], idRange: [5, 60000] }, tok, 1)).toThrow(/parameter "idRange"/);
    expect(() => generateRepeatedTokens({ lengths: [100], blockLength: 200 }, tok, 1)).toThrow(/does not hold one copy/);
  });
});

describe("language-model loss", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-lm-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes L consecutive tokens, then the query and the scored continuation that follow them", () => {
    const tok = new WordTokenizer();
    const samples = generateLmLoss({ lengths: [1024, 2048], samplesPerLength: 3, continuationTokens: 64 }, tok, 9);
    expect(samples).toHaveLength(6);
    const haystack = readFileSync(DEFAULT_HAYSTACK_FILE, "utf8");
    for (const s of samples) {
      expect(ids(s.context)).toHaveLength(s.contextLength);
      expect(ids(s.query)).toHaveLength(1);
      const continuation = ids((s.target as { continuation: Segment }).continuation);
      expect(continuation).toHaveLength(64);
      expect(s.target.metric).toBe("nll");
      // the three pieces are one contiguous stretch of the shipped haystack (WordTokenizer decodes losslessly)
      const joined = tok.decode([...ids(s.context), ...ids(s.query), ...continuation]);
      expect(haystack.includes(joined)).toBe(true);
    }
    const starts = samples.filter((s) => s.contextLength === 1024).map((s) => tok.decode(ids(s.context).slice(0, 20)));
    expect(new Set(starts).size).toBe(3);
    expect(generateLmLoss({ lengths: [1024, 2048], samplesPerLength: 3, continuationTokens: 64 }, tok, 9)).toEqual(samples);
  });

  it("reads a haystack file and reports one that is too short", () => {
    const file = join(dir, "text.txt");
    const words = Array.from({ length: 600 }, (_, i) => `word${i % 97}`).join(" ");
    writeFileSync(file, words);
    const tok = new WordTokenizer();
    const [s] = generateLmLoss({ lengths: [100], samplesPerLength: 1, continuationTokens: 10, haystackFile: file }, tok, 1);
    const joined = tok.decode([...ids(s.context), ...ids(s.query), ...ids((s.target as { continuation: Segment }).continuation)]);
    expect(words).toContain(joined.trim());
    expect(() => generateLmLoss({ lengths: [1000], haystackFile: file }, tok, 1)).toThrow(/lm-loss: the haystack .* has 600 tokens; the task needs 1257/);
  });
});
