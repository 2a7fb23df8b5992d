import { RazorkvError } from "@razorkv/core";
import type { IdsPiece, Segment, SegmentPiece, TaskTokenizer, TextPiece } from "./types.js";

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
 *
 * Documents are data. The rendered template's own text becomes template pieces (control tokens parsed); the
 * instruction, document, question and answer prefix become text pieces (control-token strings stay characters),
 * so a document quoting `<|im_end|>` cannot end the user turn early.
 */
export interface PromptParts {
  /**
   * The user turn's part prefilled with the context: one text, or pieces of text and ids (a middle-truncated
   * document is ids). Trailing whitespace of a last text piece moves to the query.
   */
  readonly head: string | readonly (TextPiece | IdsPiece)[];
  /** The user turn's part that arrives late (the question); should start with whitespace (see above). */
  readonly tail: string;
  /** Words the assistant's reply starts with (RULER's `answer_prefix`), without leading space; "" for none. */
  readonly answerPrefix: string;
}

/** The prompt as pieces: the rendered chat template's own text is template pieces, everything else text or ids. */
export interface SplitPrompt {
  readonly context: readonly SegmentPiece[];
  readonly query: readonly SegmentPiece[];
}

/** Stands for an ids piece while the chat template is rendered; a private-use character no text contains. */
const IDS_PLACEHOLDER = "\uE000";

/** Renders and splits a prompt; `origin` names the task or file for error messages. */
export function splitPrompt(tokenizer: TaskTokenizer, chat: boolean, parts: PromptParts, origin: string): SplitPrompt {
  const headPieces: (TextPiece | IdsPiece)[] = typeof parts.head === "string" ? [{ text: parts.head }] : [...parts.head];
  const last = headPieces[headPieces.length - 1];
  const trailing = last !== undefined && last.text !== undefined ? (/\s+$/.exec(last.text)?.[0] ?? "") : "";
  if (trailing.length > 0) headPieces[headPieces.length - 1] = { text: last!.text!.slice(0, last!.text!.length - trailing.length) };
  const head = headPieces.filter((p) => (p.text !== undefined ? p.text.length > 0 : p.ids.length > 0));
  const tail = trailing + parts.tail;
  const prefix = parts.answerPrefix.trim();
  if (!chat) {
    const sep = prefix.length === 0 || /\s$/.test(tail) ? "" : " ";
    return { context: head, query: nonEmpty([{ text: tail + sep + prefix }]) };
  }
  const headText = head.map((p) => (p.text !== undefined ? p.text : IDS_PLACEHOLDER)).join("");
  const content = headText + tail;
  const rendered = tokenizer.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true });
  const at = rendered.indexOf(content);
  if (at < 0) {
    throw new RazorkvError(
      `${origin}: the model's chat template does not copy the user message verbatim (it trims or rewrites it), so ` +
        `the prompt cannot be split into context and query; set the task parameter "chat" to false`,
    );
  }
  // Piece boundaries sit where the template meets the user text (after "user\n", before "<|im_end|>" for
  // SmolLM2): a newline before a letter and a control token are both places where the tokenizer splits anyway, so
  // the ids equal those of the joined string whenever the text holds no control-token strings.
  return {
    context: nonEmpty([{ template: rendered.slice(0, at) }, ...head]),
    query: nonEmpty([{ text: tail }, { template: rendered.slice(at + content.length) }, { text: prefix }]),
  };
}

function nonEmpty(pieces: SegmentPiece[]): SegmentPiece[] {
  return pieces.filter((p) => (p.ids !== undefined ? p.ids.length > 0 : (p.template ?? p.text).length > 0));
}

/** The pieces of a segment, as an array. */
export function segmentPieces(segment: Segment): readonly SegmentPiece[] {
  return Array.isArray(segment) ? segment : [segment as SegmentPiece];
}

/**
 * Token ids of a segment, as the runner prefills them: each piece tokenized on its own with no special tokens
 * added; control-token strings parsed in template pieces only (documents are data). Tasks count a segment's
 * tokens with this same function.
 */
export function encodeSegment(tokenizer: TaskTokenizer, segment: Segment): number[] {
  const out: number[] = [];
  for (const p of segmentPieces(segment)) {
    if (p.ids !== undefined) out.push(...p.ids);
    else if (p.template !== undefined) out.push(...tokenizer.encode(p.template, { addSpecialTokens: false, parseSpecialTokens: true }));
    else out.push(...tokenizer.encode(p.text, { addSpecialTokens: false, parseSpecialTokens: false }));
  }
  return out;
}

/** The characters of a segment's text and template pieces, ids pieces decoded (special tokens skipped). */
export function segmentText(tokenizer: TaskTokenizer, segment: Segment): string {
  return segmentPieces(segment)
    .map((p) => (p.ids !== undefined ? decodeIds(tokenizer, p.ids) : (p.template ?? p.text)))
    .join("");
}

/** Token count of document or prose text, as a text piece is tokenized: no special tokens added, none parsed. */
export function countTokens(tokenizer: TaskTokenizer, text: string): number {
  return tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false }).length;
}

/**
 * Decoded text of token ids, special tokens skipped; "" for no ids (some tokenizers, e.g. transformers.js's,
 * throw on an empty list).
 */
export function decodeIds(tokenizer: TaskTokenizer, ids: readonly number[]): string {
  return ids.length === 0 ? "" : tokenizer.decode(ids.slice(), { skipSpecialTokens: true });
}
