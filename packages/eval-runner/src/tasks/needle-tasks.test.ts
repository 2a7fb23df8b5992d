import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { registerMissing, SHARED_DIR, sharedDataMissing } from "@razorkv/core/testing";
import { generateNiahMultiKey, generateNiahSingle, generatePasskey, NIAH_CITIES, type NiahParams } from "./needle-tasks.js";
import { countTokens, segmentPieces } from "./prompt.js";
import { segmentChars } from "./testing/segments.js";
import { WordTokenizer } from "./testing/word-tokenizer.js";
import type { GenerationTarget, Sample, Segment, TaskTokenizer } from "./types.js";

const PG_ESSAYS = join(SHARED_DIR, "data", "paul-graham-essays");
const LENGTHS = [1024, 2048, 4096];
const DEPTHS = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];

const text = segmentChars;

function occurrences(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/**
 * Checks every structural promise of a needle sample: length within tolerance, answer exactly once, needle at
 * its depth within 2% of the context length (measured in tokens over the haystack with the other needles removed).
 */
function checkNeedleSample(tok: TaskTokenizer, s: Sample, needlePrefix: string): void {
  const context = text(s.context);
  const query = text(s.query);
  expect(Math.abs(countTokens(tok, context) - s.contextLength), `${s.id}: context tokens`).toBeLessThanOrEqual(3);
  if (s.target.kind !== "generate") throw new Error("needle tasks generate");
  const answer = s.target.answers[0];
  expect(occurrences(context + query, answer), `${s.id}: answer occurrences`).toBe(1);
  // Remove the distractors (multi-key), keep the asked-for needle.
  const asked = new RegExp(`${needlePrefix}[^.]*${answer}\\.(?: Remember it\\.)?`).exec(context)![0];
  let clean = context;
  for (const m of context.matchAll(new RegExp(` ?${needlePrefix}[^.]*\\.`, "g"))) if (!m[0].includes(answer)) clean = clean.replace(m[0], "");
  const instructionEnd = clean.indexOf("\n\n", clean.indexOf("user\n")) + 2;
  const hayStart = countTokens(tok, clean.slice(0, instructionEnd));
  const at = clean.indexOf(asked);
  const position = countTokens(tok, clean.slice(0, at));
  const hayTokens = countTokens(tok, clean) - hayStart - countTokens(tok, asked);
  const expected = hayStart + s.depth! * hayTokens;
  expect(Math.abs(position - expected) / s.contextLength, `${s.id}: depth error`).toBeLessThanOrEqual(0.02);
}

describe("passkey", () => {
  const tok = new WordTokenizer();
  const samples = generatePasskey({ lengths: LENGTHS, depths: DEPTHS, samplesPerCell: 2 }, tok, 7);

  it("covers the grid with stable, unique ids", () => {
    expect(samples).toHaveLength(LENGTHS.length * DEPTHS.length * 2);
    expect(new Set(samples.map((s) => s.id)).size).toBe(samples.length);
    expect(samples[0].id).toBe("passkey/seed7/L1024/d0/0");
    expect(samples.every((s) => s.task === "passkey" && s.target.kind === "generate" && s.target.metric === "contains")).toBe(true);
  });

  it("hits the lengths, places the key at the depth, and holds it exactly once", () => {
    for (const s of samples) checkNeedleSample(tok, s, "The pass key is ");
  });

  it("uses the classic filler, a 5-digit key and the chat template", () => {
    const s = samples.find((x) => x.contextLength === 1024 && x.depth === 0.5)!;
    expect(text(s.context)).toMatch(/^<\|im_start\|>system\n.*<\|im_start\|>user\nSomewhere in the long/s);
    expect(text(s.context)).toContain("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.");
    expect(text(s.context)).toMatch(/The pass key is \d{5}\. Remember it\./);
    expect(text(s.query)).toBe("\n\nWhat is the pass key?<|im_end|>\n<|im_start|>assistant\nThe pass key is");
  });

  it("is deterministic from the seed, and a sample does not depend on the rest of the grid", () => {
    const again = generatePasskey({ lengths: LENGTHS, depths: DEPTHS, samplesPerCell: 2 }, new WordTokenizer(), 7);
    expect(again).toEqual(samples);
    const single = generatePasskey({ lengths: [2048], depths: [0.5] }, new WordTokenizer(), 7);
    expect(single[0]).toEqual(samples.find((s) => s.id === "passkey/seed7/L2048/d0.5/0"));
    const other = generatePasskey({ lengths: [2048], depths: [0.5] }, new WordTokenizer(), 8);
    expect(other[0].target).not.toEqual(single[0].target);
  });

  it("plain prompts without chat template or answer prefix", () => {
    const [s] = generatePasskey({ lengths: [512], depths: [0.5], chat: false, answerPrefix: false }, new WordTokenizer(), 1);
    expect(text(s.context)).toMatch(/^Somewhere in the long/);
    expect(text(s.query)).toBe("\n\nWhat is the pass key?");
  });

  it("rejects bad parameters by name", () => {
    expect(() => generatePasskey({ lengths: [1024], depths: [1.5] }, tok, 1)).toThrow(/passkey: parameter "depths"/);
    expect(() => generatePasskey({ lengths: [] }, tok, 1)).toThrow(/passkey: parameter "lengths"/);
    expect(() => generatePasskey({ lengths: [20] }, tok, 1)).toThrow(/leaves no room for the haystack/);
  });
});

describe("needle in a haystack (shipped haystack)", () => {
  const tok = new WordTokenizer();

  it("single needle: lengths, depth, exactly-once answer, RULER-style key and 7-digit value", () => {
    const samples = generateNiahSingle({ lengths: LENGTHS, depths: DEPTHS }, tok, 11);
    expect(samples).toHaveLength(LENGTHS.length * DEPTHS.length);
    for (const s of samples) checkNeedleSample(tok, s, "The special magic number for ");
    const s = samples[3];
    const m = /The special magic number for ([A-Za-z ]+) is (\d{7})\./.exec(text(s.context))!;
    expect(NIAH_CITIES).toContain(m[1]);
    expect(s.target).toEqual({ kind: "generate", answers: [m[2]], maxNewTokens: 24, metric: "contains" });
    expect(text(s.query)).toContain(`What is the special magic number for ${m[1]} mentioned in the text above?`);
  });

  it("multi-key: several needles with different keys and values; the asked one at the depth", () => {
    const samples = generateNiahMultiKey({ lengths: LENGTHS, depths: [0, 0.5, 1], needles: 4 }, tok, 11);
    for (const s of samples) {
      checkNeedleSample(tok, s, "The special magic number for ");
      const needles = [...text(s.context).matchAll(/The special magic number for ([A-Za-z ]+) is (\d{7})\./g)];
      expect(needles).toHaveLength(4);
      expect(new Set(needles.map((m) => m[1])).size).toBe(4);
      expect(new Set(needles.map((m) => m[2])).size).toBe(4);
      const asked = /for ([A-Za-z ]+) mentioned/.exec(text(s.query))![1];
      expect(needles.find((m) => m[1] === asked)![2]).toBe((s.target as GenerationTarget).answers[0]);
    }
    expect(generateNiahMultiKey({ lengths: [1024], depths: [0.5] }, new WordTokenizer(), 11)).toEqual(
      samples.filter((s) => s.contextLength === 1024 && s.depth === 0.5),
    );
  });
});

describe("needle in a haystack (Paul Graham essays, read in place)", () => {
  const missing = sharedDataMissing(PG_ESSAYS);
  if (missing) return registerMissing("the Paul Graham essays", missing);
  it("builds contexts from a haystack directory", () => {
    const tok = new WordTokenizer();
    const samples = generateNiahSingle({ lengths: [1024, 4096], depths: [0, 0.33, 0.5, 1], haystackDir: PG_ESSAYS }, tok, 5);
    for (const s of samples) checkNeedleSample(tok, s, "The special magic number for ");
    // files are concatenated in name order: the haystack opens with the first essay's first words
    const first = readdirSync(PG_ESSAYS).filter((n) => n.endsWith(".txt")).sort()[0];
    const opening = readFileSync(join(PG_ESSAYS, first), "utf8").trim().slice(0, 40);
    const depth0 = samples.find((s) => s.depth === 0)!;
    expect(text(depth0.context)).toContain(`The special magic number for`);
    expect(text(samples.find((s) => s.depth === 1)!.context)).toContain(`\n\n${opening}`);
  });
});

describe("haystack errors", () => {
  const tok = new WordTokenizer();
  const dir = mkdtempSync(join(tmpdir(), "razorkv-haystack-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names the path and the parameter of a missing directory or file", () => {
    const missing = join(dir, "no-such-dir");
    const run = (p: NiahParams) => () => generateNiahSingle(p, tok, 1);
    expect(run({ lengths: [1024], haystackDir: missing })).toThrow(RazorkvError);
    expect(run({ lengths: [1024], haystackDir: missing })).toThrow(
      `niah-single: parameter "haystackDir": cannot read directory ${missing} (ENOENT)`,
    );
    const file = join(dir, "missing.txt");
    expect(run({ lengths: [1024], haystackFile: file })).toThrow(`niah-single: parameter "haystackFile": cannot read ${file} (ENOENT)`);
    expect(() => generateNiahMultiKey({ lengths: [1024], haystackFile: file }, tok, 1)).toThrow(/^niah-multikey: parameter "haystackFile"/);
  });

  it("rejects a directory without .txt files, a file given as directory, and both parameters at once", () => {
    writeFileSync(join(dir, "notes.md"), "not a haystack");
    expect(() => generateNiahSingle({ lengths: [1024], haystackDir: dir }, tok, 1)).toThrow(`parameter "haystackDir": ${dir} holds no .txt files`);
    expect(() => generateNiahSingle({ lengths: [1024], haystackDir: join(dir, "notes.md") }, tok, 1)).toThrow(/is not a directory/);
    expect(() => generateNiahSingle({ lengths: [1024], haystackDir: dir, haystackFile: "x" }, tok, 1)).toThrow(/not both/);
  });

  it("says when the haystack is too short for the length", () => {
    writeFileSync(join(dir, "short.txt"), "A short text. It has two sentences.");
    expect(() => generateNiahSingle({ lengths: [1024], haystackDir: dir }, tok, 1)).toThrow(/has \d+ tokens; the task needs 1024/);
  });
});
