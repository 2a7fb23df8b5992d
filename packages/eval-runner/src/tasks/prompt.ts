import { RazorkvError } from "@razorkv/core";
import type { TextPart, Tokenizer } from "@razorkv/model-zoo";
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
 * Token boundary. The runner tokenizes `context` and `query` separately (`encodeSegment`, the query with
 * `continues`). The cut is placed so that `context` ends with a non-space character and `query` starts with
 * whitespace (trailing whitespace of `head` moves into the query). For GPT-2-style byte-level BPE (SmolLM2, Qwen2)
 * a newline or space never merges with the character before it, so tokenize(context) + tokenize(query) equals
 * tokenize(context + query) exactly (real-tokenizer.test.ts checks it with SmolLM2's tokenizer on passkey, NIAH and
 * LongBench prompts), and so it does for SentencePiece vocabularies (Llama 2, Mistral, Gemma) when the query is
 * encoded as a continuation. Llama 3's pre-tokenizer keeps newlines with the punctuation before them (".\n\n" is
 * one token), so a head ending in punctuation costs that one merge at the cut: the context is what the model
 * would see of the whole prompt up to there, and the query starts with its own newline token, as in kvpress,
 * which tokenizes context and question apart too.
 *
 * BOS. The context starts with the tokenizer's BOS exactly when HF's `tokenizer(prompt)` would put it there (the
 * post-processor of tokenizer.json, GGUF `tokenizer.ggml.add_bos_token`: Llama 2/3, Mistral, Gemma yes; SmolLM2,
 * Qwen no), with the chat template or without, and never twice: a template that writes BOS itself
 * (`<|begin_of_text|>`, `<bos>`) keeps its own.
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
    return { context: withBos(tokenizer, head), query: nonEmpty([{ text: tail + sep + prefix }]) };
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
    context: withBos(tokenizer, nonEmpty([{ template: rendered.slice(0, at) }, ...head])),
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

/** A task tokenizer, with model-zoo's `encodeParts` when it has one (every tokenizer model-zoo builds does). */
export type PromptTokenizer = TaskTokenizer & { encodeParts?: Tokenizer["encodeParts"] };

const bosPrefixes = new WeakMap<object, readonly number[]>();

/**
 * `[bosId]` when the tokenizer's post-processor puts BOS before a text (HF's `tokenizer(text)` does, with
 * add_special_tokens), else `[]`. Asked of the tokenizer itself, once per tokenizer.
 */
export function bosPrefix(tokenizer: TaskTokenizer): readonly number[] {
  let prefix = bosPrefixes.get(tokenizer);
  if (prefix === undefined) {
    const bos = tokenizer.bosId;
    const plain = tokenizer.encode("a", { addSpecialTokens: false, parseSpecialTokens: false });
    const full = tokenizer.encode("a", { addSpecialTokens: true, parseSpecialTokens: false });
    prefix = bos !== null && full.length > plain.length && full[0] === bos && plain[0] !== bos ? [bos] : [];
    bosPrefixes.set(tokenizer, prefix);
  }
  return prefix;
}

/** `context` with the tokenizer's BOS put first, unless it adds none or the context already starts with it. */
function withBos(tokenizer: TaskTokenizer, context: SegmentPiece[]): SegmentPiece[] {
  const bos = bosPrefix(tokenizer);
  const first = context[0];
  if (bos.length === 0) return context;
  if (first !== undefined && first.text === undefined) {
    const start = first.ids ?? tokenizer.encode(first.template!, { addSpecialTokens: false, parseSpecialTokens: true });
    if (start[0] === bos[0]) return context;
  }
  return [{ ids: bos }, ...context];
}

/**
 * A prompt given verbatim (`razorkv generate` without `--chat`), as HF's `tokenizer(prompt)` and llama.cpp's
 * completion tools read it: control-token strings in it are parsed (whoever writes a raw prompt writes its
 * template too), and BOS is put first when the tokenizer adds it and the text does not start with it.
 */
export function rawPromptSegment(tokenizer: TaskTokenizer, prompt: string): SegmentPiece[] {
  return withBos(tokenizer, [{ template: prompt }]);
}

export interface EncodeSegmentOptions {
  /**
   * The segment goes on from earlier tokens of the same sequence (a query after its context, a continuation
   * target after its query): no SentencePiece prefix space at its start. Default false: the segment starts the
   * sequence, as a context does.
   */
  readonly continues?: boolean;
}

/**
 * Token ids of a segment, as the runner prefills them. A template piece is encoded in one pass with the text
 * pieces beside it (model-zoo `encodeParts`), so tokens merge across that boundary exactly as in the joined string
 * ("[INST] " + "Read" is "▁Read" for Mistral, not "▁" + "▁Read"), with control-token strings parsed in template
 * pieces only (documents are data). Two text pieces in a row are encoded apart, the second as a continuation (no
 * SentencePiece prefix space), so that a segment's count is the sum over its texts; ids pieces are used as they
 * are, and text after them goes on from them. No special tokens are added (a context's BOS is an ids piece:
 * splitPrompt). Tasks count a segment's tokens with this same function. A tokenizer without `encodeParts` (test
 * doubles) encodes each piece on its own.
 */
export function encodeSegment(tokenizer: PromptTokenizer, segment: Segment, opts: EncodeSegmentOptions = {}): number[] {
  const out: number[] = [];
  let run: TextPart[] = [];
  let continues = opts.continues ?? false;
  const flush = () => {
    if (run.length === 0) return;
    out.push(...encodeRun(tokenizer, run, continues));
    run = [];
    continues = true;
  };
  segmentPieces(segment).forEach((p, i) => {
    if (p.template !== undefined) {
      run.push({ text: p.template, parseSpecialTokens: true });
      return;
    }
    if (p.text !== undefined) {
      // two texts in a row are encoded apart, the second as a continuation: a segment's count is additive over
      // its texts (tasks fit a document to a budget by that), and no SentencePiece space is added between them
      if (run.length > 0 && !run[run.length - 1].parseSpecialTokens) flush();
      run.push({ text: p.text, parseSpecialTokens: false });
      return;
    }
    flush();
    out.push(...p.ids);
    // the context's leading BOS is the post-processor's: the text after it still starts the sequence
    // (a tokenizer without a BOS token has no prefix to compare: bosPrefix would encode a probe for nothing)
    const leadingBos = i === 0 && !continues && p.ids.length > 0 && tokenizer.bosId != null && sameIds(p.ids, bosPrefix(tokenizer));
    if (!leadingBos) continues = true;
  });
  flush();
  return out;
}

function encodeRun(tokenizer: PromptTokenizer, run: readonly TextPart[], continuation: boolean): number[] {
  if (tokenizer.encodeParts !== undefined) return tokenizer.encodeParts(run, { continuation });
  return run.flatMap((p) => tokenizer.encode(p.text, { addSpecialTokens: false, parseSpecialTokens: p.parseSpecialTokens }));
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
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
