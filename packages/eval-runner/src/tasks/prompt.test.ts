import { describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { segmentText, splitPrompt } from "./prompt.js";
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
