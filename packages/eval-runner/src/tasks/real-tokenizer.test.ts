/**
 * The task generators with SmolLM2-135M-Instruct's real tokenizer and chat template (from the GGUF, through
 * @razorkv/model-zoo): context lengths, needle depth, the answer exactly once, and the context/query split
 * falling on a token boundary: tokenize(context) ++ tokenize(query) === tokenize(context + query).
 *
 * Locally the model may be absent: skip loudly (run ../shared/bin/seed-hf-cache). Under CI a missing model is a
 * failure (registerMissing).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { registerMissing, SHARED_DIR, sharedDataMissing } from "@razorkv/core/testing";
import { openModel, tokenizerFromGguf } from "@razorkv/model-zoo";
import { readLongBench } from "./jsonl-tasks.js";
import { generateNiahMultiKey, generateNiahSingle, generatePasskey } from "./needle-tasks.js";
import type { GenerationTarget, Sample, TaskTokenizer } from "./types.js";

const MULTI_NEWS = join(SHARED_DIR, "data", "longbench", "multi_news.jsonl");

let tokenizer: TaskTokenizer | null = null;
let missing: string | null = null;
try {
  const loaded = await openModel("smollm2-135m-instruct");
  if (!loaded.ggufMetadata) throw new Error(`${loaded.path}: expected a GGUF file`);
  tokenizer = tokenizerFromGguf(loaded.ggufMetadata, { source: loaded.path });
} catch (error) {
  missing = (error as Error).message;
}

const encode = (text: string) => tokenizer!.encode(text, { addSpecialTokens: false });

function checkSample(s: Sample, tolerance: number): void {
  if (!("text" in s.context) || !("text" in s.query)) throw new Error("text segments expected");
  const context = encode(s.context.text);
  expect([...context, ...encode(s.query.text)], `${s.id}: split on a token boundary`).toEqual(encode(s.context.text + s.query.text));
  expect(Math.abs(context.length - s.contextLength), `${s.id}: context length`).toBeLessThanOrEqual(tolerance);
}

/** Needle token position vs depth·haystack, as a fraction of the context length. */
function depthError(s: Sample, needlePrefix: string): number {
  const context = (s.context as { text: string }).text;
  const answer = (s.target as GenerationTarget).answers[0];
  const needle = new RegExp(`${needlePrefix}[^.]*${answer}\\.(?: Remember it\\.)?`).exec(context)![0];
  expect(context.split(answer)).toHaveLength(2);
  const hayStart = encode(context.slice(0, context.indexOf("\n\n", context.indexOf("user\n")) + 2)).length;
  const position = encode(context.slice(0, context.indexOf(needle))).length;
  const hayTokens = encode(context).length - hayStart - encode(needle).length;
  return Math.abs(position - (hayStart + s.depth! * hayTokens)) / s.contextLength;
}

describe("tasks with SmolLM2's real tokenizer", () => {
  if (missing) return registerMissing("SmolLM2-135M-Instruct in the hub cache", missing);
  it("loads the tokenizer from the GGUF", () => {
    expect(tokenizer!.vocabSize).toBe(49152);
  });

  it("passkey and NIAH: 1K/2K/4K within 3 tokens, needle within 2% of its depth, split on a token boundary", () => {
    const grid = { lengths: [1024, 2048, 4096], depths: [0, 0.5, 1] };
    for (const s of generatePasskey(grid, tokenizer!, 1)) {
      checkSample(s, 3);
      expect(depthError(s, "The pass key is "), s.id).toBeLessThanOrEqual(0.02);
    }
    for (const s of generateNiahSingle(grid, tokenizer!, 1)) {
      checkSample(s, 3);
      expect(depthError(s, "The special magic number for "), s.id).toBeLessThanOrEqual(0.02);
    }
    for (const s of generateNiahMultiKey({ lengths: [2048], depths: [0.5] }, tokenizer!, 1)) checkSample(s, 3);
  }, 60_000);

  it("LongBench multi_news: contexts within the budget, split on a token boundary", () => {
    const missingData = sharedDataMissing(MULTI_NEWS);
    if (missingData) throw new Error(missingData);
    const samples = readLongBench({ file: MULTI_NEWS, maxContextTokens: 2048, limit: 3 }, tokenizer!);
    for (const s of samples) {
      checkSample(s, 0);
      expect(s.contextLength).toBeLessThanOrEqual(2048);
    }
  }, 60_000);
});
