/**
 * The needle prompts the retrieval score is measured on, built by this package from the model's own tokenizer (a
 * policy never reads the repository's data): a haystack, one needle sentence at a chosen depth, a question, and the
 * answer the model is fed (teacher forcing) or is expected to produce (greedy).
 *
 * Wu et al. 2024 (arXiv 2404.15574, §2) run Needle-in-a-Haystack over real text (Paul Graham's essays and similar)
 * with natural-sentence needles. Here, by default, the haystack is generated: sentences of 8–15 word tokens drawn
 * uniformly (seeded) from the tokenizer's own vocabulary — ids in `wordRange` that decode to a space and 3 or more
 * lowercase letters — each ending in a period. It is word salad, not prose; what it keeps is the property the score
 * needs: the needle's tokens occur nowhere else (digits never occur in it, and a word needle's words are left out of
 * that prompt's haystack), so attention on a needle token is attention on the needle. `haystackFile` swaps in real text.
 *
 * Prompts are built as token ids, piece by piece, so that the needle's span is known exactly and the length is hit to
 * the token: [chat header + instruction] [haystack with the needle at a sentence end] [question + chat footer].
 * The needle's value tokens are encoded once and used both in the needle and in the answer, so "the token being
 * generated equals the token at the attended needle position" compares ids that are the same by construction.
 */
import { mulberry32, RazorkvError, type PreparationTokenizer } from "@razorkv/core";

/** What kind of value the needle hides. */
export type NeedleKind = "number" | "words";

export interface NeedlePromptSettings {
  /** Total prompt length in tokens (header, haystack, needle, question, footer). */
  readonly length: number;
  /** Fraction of the haystack before the needle, in [0, 1] (gkamradt's and RULER's depth). */
  readonly depth: number;
  readonly needle: NeedleKind;
  /** Digits of a number needle, words of a word needle. */
  readonly needleLength: number;
  /** Render through the model's chat template (instruct models). */
  readonly chat: boolean;
  /** Seed of this prompt's haystack and needle. */
  readonly seed: number;
}

export interface NeedlePrompt {
  /** The prompt's token ids. */
  readonly ids: readonly number[];
  /** [start, end): the positions in `ids` of the needle's value tokens (the copy targets). */
  readonly span: readonly [number, number];
  /** The answer, teacher-forced after the prompt: the answer prefix, then the value tokens. */
  readonly answer: readonly number[];
  /** Index in `answer` of the first value token: answer[valueStart + k] = ids[span[0] + k]. */
  readonly valueStart: number;
  /** The hidden value as text ("4829173"), for greedy mode's success test. */
  readonly value: string;
  readonly depth: number;
}

/** The haystack source: token ids and the indexes after which a sentence ends (where a needle may go). */
export interface Haystack {
  /** Ids to draw a prompt's haystack from (a generated haystack draws them per prompt; a file gives one long run). */
  readonly ids: readonly number[];
  /** Sorted indexes i such that a sentence ends right before ids[i] (0 and ids.length included). */
  readonly boundaries: readonly number[];
}

const TEXTS = {
  number: {
    instruction: "The text below hides a special magic number. Read it carefully and remember it: after the text you will be asked for it.",
    question: "What is the special magic number mentioned in the text above?",
    answerPrefix: "The special magic number is",
  },
  words: {
    instruction: "The text below hides a secret passphrase. Read it carefully and remember it: after the text you will be asked for it.",
    question: "What is the secret passphrase mentioned in the text above?",
    answerPrefix: "The secret passphrase is",
  },
} as const;

const PLACEHOLDER = "\u0000HAYSTACK\u0000";

/**
 * The word tokens of the vocabulary: ids in [first, end) that decode to a space and 3+ lowercase ASCII letters (low BPE
 * ids are the frequent merges, so the default range [1000, 20000) gives common whole words). A RazorkvError when fewer
 * than 100 are found (a tokenizer whose pieces do not decode with their space: give `haystackFile`).
 */
export function wordTokens(tokenizer: PreparationTokenizer, range: readonly [number, number]): number[] {
  const words: number[] = [];
  for (let id = Math.max(0, range[0]); id < Math.min(range[1], tokenizer.vocabSize); id++) {
    if (/^ [a-z]{3,}$/.test(tokenizer.decode([id]))) words.push(id);
  }
  if (words.length < 100) {
    throw new RazorkvError(
      `retrieval-heads: the tokenizer has ${words.length} word tokens (a space and 3+ lowercase letters) among ids [${range[0]}, ${range[1]}); ` +
        "the generated haystack needs at least 100: widen params.wordRange or give params.haystackFile",
    );
  }
  return words;
}

/** Ids of `text` as the tokenizer encodes text it did not write (no special tokens added or parsed). */
function plain(tokenizer: PreparationTokenizer, text: string): number[] {
  return tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false });
}

/** Whether the tokenizer puts BOS before an encoded text (Llama 3 does, SmolLM2 does not). */
function addsBos(tokenizer: PreparationTokenizer): boolean {
  if (tokenizer.bosId === null) return false;
  const withSpecial = tokenizer.encode("a");
  return withSpecial.length > plain(tokenizer, "a").length && withSpecial[0] === tokenizer.bosId;
}

/**
 * The prompt's frame as ids: before the haystack (chat header, instruction, blank line) and after it (blank line,
 * question, chat footer). BOS first exactly when the tokenizer adds one, never twice.
 */
export function promptFrame(tokenizer: PreparationTokenizer, needle: NeedleKind, chat: boolean): { head: number[]; tail: number[] } {
  const { instruction, question } = TEXTS[needle];
  let head: number[];
  let tail: number[];
  if (chat) {
    let rendered: string;
    try {
      rendered = tokenizer.applyChatTemplate([{ role: "user", content: `${instruction}\n\n${PLACEHOLDER}\n\n${question}` }], { addGenerationPrompt: true });
    } catch (error) {
      throw new RazorkvError(`retrieval-heads: params.chat is true but the model has no usable chat template (${(error as Error).message}); set chat: false`);
    }
    const at = rendered.indexOf(PLACEHOLDER);
    // the template's own control tokens are parsed; the instruction and question contain none
    head = tokenizer.encode(rendered.slice(0, at), { addSpecialTokens: false, parseSpecialTokens: true });
    tail = tokenizer.encode(rendered.slice(at + PLACEHOLDER.length), { addSpecialTokens: false, parseSpecialTokens: true });
  } else {
    head = plain(tokenizer, `${instruction}\n\n`);
    tail = plain(tokenizer, `\n\n${question}\n`);
  }
  if (addsBos(tokenizer) && head[0] !== tokenizer.bosId) head = [tokenizer.bosId!, ...head];
  return { head, tail };
}

/** A uniformly drawn integer in [lo, hi). */
function randomInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo));
}

/**
 * A generated haystack of exactly `tokens` ids: sentences of 8–15 words drawn from `words` (leaving out `exclude`),
 * each closed by `period`; the last sentence is cut to fit and still closed by a period when it has room.
 */
export function generatedHaystack(rand: () => number, words: readonly number[], period: readonly number[], tokens: number, exclude: ReadonlySet<number> = new Set()): Haystack {
  const pool = exclude.size === 0 ? words : words.filter((w) => !exclude.has(w));
  const ids: number[] = [];
  const boundaries = [0];
  while (ids.length < tokens) {
    const left = tokens - ids.length;
    const count = Math.min(randomInt(rand, 8, 16), Math.max(1, left - period.length));
    for (let k = 0; k < count; k++) ids.push(pool[randomInt(rand, 0, pool.length)]);
    if (ids.length + period.length <= tokens) ids.push(...period);
    boundaries.push(ids.length);
  }
  ids.length = tokens;
  if (boundaries[boundaries.length - 1] !== tokens) boundaries[boundaries.length - 1] = tokens;
  return { ids, boundaries };
}

/** The sentence boundaries of a tokenized text: after every id whose text ends a sentence (., ! or ?, optionally closed). */
export function sentenceBoundaries(tokenizer: PreparationTokenizer, ids: readonly number[]): number[] {
  const out = [0];
  const ends = new Map<number, boolean>();
  ids.forEach((id, i) => {
    if (!ends.has(id)) ends.set(id, /[.!?]["'\u201d\u2019)\]]*\s*$/.test(tokenizer.decode([id])));
    if (ends.get(id)) out.push(i + 1);
  });
  if (out[out.length - 1] !== ids.length) out.push(ids.length);
  return out;
}

/** The element of sorted `xs` nearest to `x` (the lower one on a tie). */
function nearest(xs: readonly number[], x: number): number {
  let best = xs[0];
  for (const v of xs) if (Math.abs(v - x) < Math.abs(best - x)) best = v;
  return best;
}

/**
 * One needle prompt of exactly `s.length` tokens. `haystackOf(tokens, rand, exclude)` supplies the haystack (generated,
 * or a window of a file); the needle goes to the sentence boundary nearest depth · haystack tokens.
 */
export function needlePrompt(
  tokenizer: PreparationTokenizer,
  s: NeedlePromptSettings,
  words: readonly number[],
  haystackOf: (tokens: number, rand: () => number, exclude: ReadonlySet<number>) => Haystack,
): NeedlePrompt {
  const rand = mulberry32(s.seed);
  const { answerPrefix } = TEXTS[s.needle];
  let value: string;
  if (s.needle === "number") {
    value = String(randomInt(rand, 1, 10)) + Array.from({ length: s.needleLength - 1 }, () => String(randomInt(rand, 0, 10))).join("");
  } else {
    const chosen = new Set<number>();
    while (chosen.size < s.needleLength) chosen.add(words[randomInt(rand, 0, words.length)]);
    value = [...chosen].map((id) => tokenizer.decode([id]).trim()).join(" ");
  }
  // the value with its leading space, encoded once: the needle holds these ids and the answer repeats them
  const valueIds = plain(tokenizer, ` ${value}`);
  // a leading token that is only whitespace (SmolLM2 splits " 4829173" into " ", "4", …) is not part of what is copied
  const skip = valueIds.length > 1 && tokenizer.decode([valueIds[0]]).trim() === "" ? 1 : 0;
  const needleIds = [...plain(tokenizer, ` ${answerPrefix}`), ...valueIds, ...plain(tokenizer, ".")];
  const valueOffset = needleIds.length - valueIds.length - plain(tokenizer, ".").length + skip;
  const { head, tail } = promptFrame(tokenizer, s.needle, s.chat);
  const hayTokens = s.length - head.length - tail.length - needleIds.length;
  if (hayTokens < 1) {
    throw new RazorkvError(
      `retrieval-heads: a needle prompt of ${s.length} tokens leaves no room for the haystack (frame ${head.length + tail.length} tokens, needle ${needleIds.length}); raise params.lengths`,
    );
  }
  const hay = haystackOf(hayTokens, rand, new Set(valueIds));
  const at = nearest(hay.boundaries, Math.round(s.depth * hayTokens));
  const ids = [...head, ...hay.ids.slice(0, at), ...needleIds, ...hay.ids.slice(at, hayTokens), ...tail];
  const start = head.length + at + valueOffset;
  const answer = [...plain(tokenizer, answerPrefix), ...valueIds];
  return { ids, span: [start, start + valueIds.length - skip], answer, valueStart: answer.length - valueIds.length + skip, value, depth: s.depth };
}

/**
 * A window of `tokens` ids from a tokenized text file, starting at a seeded sentence boundary (wrapping around when the
 * file is shorter than the window asks).
 */
export function fileHaystack(text: Haystack, tokens: number, rand: () => number, source: string): Haystack {
  if (text.ids.length < tokens) {
    throw new RazorkvError(`retrieval-heads: params.haystackFile ${source} has ${text.ids.length} tokens; a needle prompt needs ${tokens}`);
  }
  const starts = text.boundaries.filter((b) => b <= text.ids.length - tokens);
  const from = starts[randomInt(rand, 0, starts.length)];
  const ids = text.ids.slice(from, from + tokens);
  const boundaries = text.boundaries.filter((b) => b >= from && b <= from + tokens).map((b) => b - from);
  if (boundaries[0] !== 0) boundaries.unshift(0);
  if (boundaries[boundaries.length - 1] !== tokens) boundaries.push(tokens);
  return { ids, boundaries };
}
