import { describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { splitPrompt } from "./prompt.js";
import { WordTokenizer } from "./testing/word-tokenizer.js";
import type { TaskTokenizer } from "./types.js";

const parts = { head: "Read this.\n\nThe grass is green.\n", tail: "\n\nWhat is the pass key?", answerPrefix: "The pass key is" };

describe("splitPrompt", () => {
  it("chat: context ends right after the head, query holds question + end of turn + assistant header + prefix", () => {
    const tok = new WordTokenizer();
    const { context, query } = splitPrompt(tok, true, parts, "test");
    expect(context).toBe("<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\nRead this.\n\nThe grass is green.");
    // the head's trailing newline moved to the query, so the query starts with whitespace
    expect(query).toBe("\n\n\nWhat is the pass key?<|im_end|>\n<|im_start|>assistant\nThe pass key is");
    const rendered = tok.applyChatTemplate([{ role: "user", content: parts.head + parts.tail }], { addGenerationPrompt: true });
    expect(context + query).toBe(rendered + "The pass key is");
    expect([...tok.encode(context), ...tok.encode(query)]).toEqual(tok.encode(context + query));
  });

  it("plain: the answer prefix follows the question after a space", () => {
    const { context, query } = splitPrompt(new WordTokenizer(), false, parts, "test");
    expect(context).toBe("Read this.\n\nThe grass is green.");
    expect(query).toBe("\n\n\nWhat is the pass key? The pass key is");
    expect(splitPrompt(new WordTokenizer(), false, { ...parts, answerPrefix: "" }, "test").query).toBe("\n\n\nWhat is the pass key?");
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
