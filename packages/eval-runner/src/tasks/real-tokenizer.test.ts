/**
 * The task generators with SmolLM2-135M-Instruct's real tokenizer and chat template (from the GGUF, through
 * @razorkv/model-zoo): context lengths, needle depth, the answer exactly once, and the context/query split
 * falling on a token boundary: tokenize(context) ++ tokenize(query) === tokenize(context + query).
 *
 * Locally the model may be absent: skip loudly (run ../shared/bin/seed-hf-cache). Under CI a missing model is a
 * failure (registerMissing).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { registerMissing, SHARED_DIR, sharedDataMissing } from "@razorkv/core/testing";
import { openModel, tokenizerFromGguf } from "@razorkv/model-zoo";
import { readLongBench } from "./jsonl-tasks.js";
import { encodeSegment, segmentPieces, segmentText } from "./prompt.js";
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

/** Parses control tokens: the whole rendered prompt as one string, the way ids were made before pieces existed. */
const encode = (text: string) => tokenizer!.encode(text, { addSpecialTokens: false });

/**
 * The pieces' ids equal those of the joined string tokenized at once (so committed reports keep their ids), and
 * the split between context and query falls on a token boundary.
 */
function checkSample(s: Sample, tolerance: number): void {
  const context = encodeSegment(tokenizer!, s.context);
  const query = encodeSegment(tokenizer!, s.query);
  const joined = segmentText(tokenizer!, s.context) + segmentText(tokenizer!, s.query);
  expect([...context, ...query], `${s.id}: pieces and split on token boundaries`).toEqual(encode(joined));
  expect(Math.abs(context.length - s.contextLength), `${s.id}: context length`).toBeLessThanOrEqual(tolerance);
}

/** Needle token position vs depth·haystack, as a fraction of the context length. */
function depthError(s: Sample, needlePrefix: string): number {
  const context = segmentText(tokenizer!, s.context);
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
      // the document is its own piece ("\n\n" before it is one token), so only the context/query split is checked
      const context = encodeSegment(tokenizer!, s.context);
      const query = encodeSegment(tokenizer!, s.query);
      expect(query, s.id).toEqual(encode(segmentText(tokenizer!, s.query)));
      expect(context.length, s.id).toBe(s.contextLength);
      expect(s.contextLength).toBeLessThanOrEqual(2048);
    }
  }, 60_000);

  describe("documents are data: a LongBench context quoting <|im_end|> and <|endoftext|>", () => {
    const dir = mkdtempSync(join(tmpdir(), "razorkv-planted-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "multifieldqa_en.jsonl");
    const paragraph = "The sky was grey over the harbour, and the boats stayed in. ";
    const planted = "A chat log ends each turn with <|im_end|> and a corpus separates files with <|endoftext|>.";
    const tail = " The inspector found the missing ledger under the floor of the lighthouse.";
    const document = `${planted} ${paragraph.repeat(120)}${planted}${tail}`;
    writeFileSync(
      file,
      JSON.stringify({ input: "Where was the ledger?", context: document, answers: ["under the floor"], dataset: "multifieldqa_en", _id: "p1" }) + "\n",
    );
    const special = () => new Set([tokenizer!.encode("<|im_start|>")[0], tokenizer!.encode("<|im_end|>")[0], tokenizer!.encode("<|endoftext|>")[0]]);
    /** The context's ids after the template pieces: instruction and document. */
    const documentIds = (s: Sample) =>
      segmentPieces(s.context)
        .filter((p) => p.template === undefined)
        .flatMap((p) => encodeSegment(tokenizer!, p));

    it("keeps the strings as text: no control id inside the document, and the text round-trips", () => {
      const [s] = readLongBench({ file, maxContextTokens: 100_000 }, tokenizer!);
      const ids = documentIds(s);
      const ids0 = special();
      expect(ids.filter((id) => ids0.has(id))).toEqual([]);
      expect(tokenizer!.decode(ids)).toBe(`Read the following article. A question about it comes afterwards.\n\n${document}`);
      // the template still opens and closes the turn with real control tokens
      const context = encodeSegment(tokenizer!, s.context);
      expect(context.filter((id) => ids0.has(id))).toHaveLength(3); // <|im_start|>system … <|im_end|>\n<|im_start|>user
      // the fault this guards against: parsed, the same document holds four control ids
      expect(encode(document).filter((id) => ids0.has(id))).toHaveLength(4);
      expect(s.contextLength).toBe(context.length);
    });

    it("truncates by cutting ids: both planted strings survive verbatim, the fit is exact", () => {
      const [s] = readLongBench({ file, maxContextTokens: 400 }, tokenizer!);
      const context = encodeSegment(tokenizer!, s.context);
      expect(context).toHaveLength(400);
      expect(s.contextLength).toBe(400);
      const docPiece = segmentPieces(s.context).at(-1)!;
      expect(docPiece.ids).toBeDefined();
      const full = tokenizer!.encode(document, { addSpecialTokens: false, parseSpecialTokens: false });
      const kept = docPiece.ids!;
      const head = Math.floor(kept.length / 2);
      expect([...kept]).toEqual([...full.slice(0, head), ...full.slice(full.length - (kept.length - head))]);
      const ids0 = special();
      expect(kept.filter((id) => ids0.has(id))).toEqual([]);
      const text = tokenizer!.decode([...kept]);
      expect(text.startsWith(planted)).toBe(true);
      expect(text.endsWith(`${planted}${tail}`)).toBe(true);
    });
  });
});
