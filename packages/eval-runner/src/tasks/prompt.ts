import { RazorkvError } from "@razorkv/core";
import type { TaskTokenizer } from "./types.js";

/**
 * Splitting a prompt into the prefilled `context` and the late `query` (DESIGN §2).
 *
 * The user turn is `head + tail`: `head` is everything the model may see before it knows the question (an
 * instruction that does not reveal the question, then the document or haystack); `tail` is the question. With
 * `chat`, the whole user turn is rendered through the model's chat template with the generation prompt, and the
 * rendered string is cut right after `head`: `context` = template prefix (system turn, user header) + head,
 * `query` = tail + end of turn + assistant header (+ an optional answer prefix the assistant "has already said").
 *
 * Token boundary. The runner tokenizes `context` and `query` separately. The cut is placed so that `context` ends
 * with a non-space character and `query` starts with whitespace (trailing whitespace of `head` moves into the
 * query). For byte-level BPE tokenizers with the GPT-2/Llama-3 pre-tokenizer (SmolLM2, Llama 3, Qwen2) a newline
 * never merges with the character before it, so the cut is a pre-token boundary and tokenize(context) +
 * tokenize(query) equals tokenize(context + query) exactly (real-tokenizer.test.ts checks it with SmolLM2's
 * tokenizer on passkey, NIAH and LongBench prompts). SentencePiece tokenizers with a dummy prefix (Llama 2, Mistral v1)
 * would add "▁" at the start of the separately tokenized query: one extra token, which only shifts the query.
 */
export interface PromptParts {
  /** The user turn's part prefilled with the context; its trailing whitespace moves to the query. */
  readonly head: string;
  /** The user turn's part that arrives late (the question); should start with whitespace (see above). */
  readonly tail: string;
  /** Words the assistant's reply starts with (RULER's `answer_prefix`), without leading space; "" for none. */
  readonly answerPrefix: string;
}

export interface SplitPrompt {
  readonly context: string;
  readonly query: string;
}

/** Renders and splits a prompt; `origin` names the task or file for error messages. */
export function splitPrompt(tokenizer: TaskTokenizer, chat: boolean, parts: PromptParts, origin: string): SplitPrompt {
  const trailing = /\s+$/.exec(parts.head)?.[0] ?? "";
  const head = parts.head.slice(0, parts.head.length - trailing.length);
  const tail = trailing + parts.tail;
  const prefix = parts.answerPrefix.trim();
  if (!chat) {
    const sep = prefix.length === 0 || /\s$/.test(tail) ? "" : " ";
    return { context: head, query: tail + sep + prefix };
  }
  const content = head + tail;
  const rendered = tokenizer.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true });
  const at = rendered.indexOf(content);
  if (at < 0) {
    throw new RazorkvError(
      `${origin}: the model's chat template does not copy the user message verbatim (it trims or rewrites it), so ` +
        `the prompt cannot be split into context and query; set the task parameter "chat" to false`,
    );
  }
  const cut = at + head.length;
  return { context: rendered.slice(0, cut), query: rendered.slice(cut) + prefix };
}

/** Token count of a text as a segment is tokenized: no special tokens added. */
export function countTokens(tokenizer: TaskTokenizer, text: string): number {
  return tokenizer.encode(text, { addSpecialTokens: false }).length;
}

/**
 * Decoded text of token ids, special tokens skipped; "" for no ids (some tokenizers, e.g. transformers.js's,
 * throw on an empty list).
 */
export function decodeIds(tokenizer: TaskTokenizer, ids: readonly number[]): string {
  return ids.length === 0 ? "" : tokenizer.decode(ids.slice(), { skipSpecialTokens: true });
}
