import { RazorkvError } from "@razorkv/core";
import { countTokens, decodeIds, encodeSegment, type SplitPrompt } from "./prompt.js";
import type { TokenizedHaystack } from "./haystack.js";
import type { TaskTokenizer } from "./types.js";

/**
 * Building a haystack context of a target token length with needles at given depths (gkamradt's
 * needle-in-a-haystack and RULER's NIAH construction, done by tokens):
 *
 * 1. The haystack is tokenized once; its first `budget` tokens are decoded back to text, where `budget` is the
 *    target length minus the prompt around the haystack and the needles.
 * 2. Each needle goes to the sentence boundary nearest to the character offset of token depth·budget (a sentence
 *    end: `.`, `!` or `?`, optionally closed by a quote or bracket, then whitespace; or the very start or end).
 *    When the nearest sentence end is further than 1% of the haystack (long sentences, or text such as the PG
 *    essays whose line-wrapped sentences sometimes lack the space after the period), the nearest word boundary is
 *    used instead so the depth stays within about 1%.
 * 3. The framed context is tokenized and the budget corrected by the difference (re-tokenizing a decoded slice,
 *    and the text around inserted needles, can merge differently); if that cycles, the neighbouring budgets are
 *    tried. Usually the target is hit exactly; where the cut lands in a run of whitespace (which is stripped, so
 *    the context ends on a non-space character: prompt.ts) the nearest reachable length can be 1–2 tokens off.
 *
 * Depth is the fraction of the haystack (not of the whole context) that precedes the needle: 0 is right after the
 * instruction, 1 right before the question, as in gkamradt's and RULER's depth percent.
 */

export interface Needle {
  /** The sentence inserted, e.g. "The pass key is 68431. Remember it." */
  readonly text: string;
  /** Fraction of the haystack before the needle, in [0, 1]. */
  readonly depth: number;
}

export interface NeedleContext extends SplitPrompt {
  /** Realized token count of `context`. */
  readonly contextTokens: number;
  /** Tokens of haystack text used (before needles were inserted). */
  readonly haystackTokens: number;
}

export interface NeedleContextArgs {
  readonly task: string;
  readonly tokenizer: TaskTokenizer;
  readonly haystack: TokenizedHaystack;
  /** Target token count of the context segment. */
  readonly length: number;
  readonly needles: readonly Needle[];
  /** Wraps the haystack body (needles inserted) into the split prompt. */
  readonly frame: (body: string) => SplitPrompt;
}

/** Most rounds of budget correction; one or two are the norm. */
const MAX_ROUNDS = 6;

export function buildNeedleContext(args: NeedleContextArgs): NeedleContext {
  const { task, tokenizer, haystack, length, needles, frame } = args;
  const overhead = encodeSegment(tokenizer, frame("").context).length;
  const needleTokens = needles.reduce((s, n) => s + countTokens(tokenizer, " " + n.text), 0);
  const attempt = (budget: number): NeedleContext => {
    if (budget < 1) {
      throw new RazorkvError(
        `${task}: a context of ${length} tokens leaves no room for the haystack: the prompt takes ${overhead} tokens and the needles ${needleTokens}`,
      );
    }
    if (budget > haystack.ids.length) {
      throw new RazorkvError(`${task}: the haystack ${haystack.origin} has ${haystack.ids.length} tokens; a context of ${length} needs ${budget}`);
    }
    const hay = haystackPrefix(tokenizer, haystack.ids, budget);
    const framed = frame(insertNeedles(tokenizer, hay, haystack.ids, budget, needles));
    return { ...framed, contextTokens: encodeSegment(tokenizer, framed.context).length, haystackTokens: budget };
  };
  const tried = new Set<number>();
  let best: NeedleContext | undefined;
  /** Builds with `budget` haystack tokens, keeps the best fit so far, returns the realized length. */
  const consider = (budget: number): number => {
    tried.add(budget);
    const candidate = attempt(budget);
    if (best === undefined || closer(candidate.contextTokens, best.contextTokens, length)) best = candidate;
    return candidate.contextTokens;
  };
  let budget = length - overhead - needleTokens;
  for (let round = 0; round < MAX_ROUNDS && !tried.has(budget); round++) {
    const realized = consider(budget);
    if (realized === length) return best!;
    budget += length - realized;
  }
  // The correction cycled (e.g. one more token adds a whitespace token that the trim removes again): probe the
  // neighbours of the best budget; a run of stripped whitespace can still leave a gap of a token or two.
  const centre = best!.haystackTokens;
  for (const delta of [-1, 1, -2, 2, -3, 3]) {
    if (!tried.has(centre + delta) && centre + delta >= 1 && consider(centre + delta) === length) break;
  }
  return best!;
}

/** Whether realized length `a` is a better fit to `target` than `b`: nearer, and at or below it on ties. */
function closer(a: number, b: number, target: number): boolean {
  const da = Math.abs(a - target);
  const db = Math.abs(b - target);
  return da < db || (da === db && a <= target && b > target);
}

/** Text of the haystack's first `tokens` tokens, without surrounding whitespace or a split UTF-8 character. */
function haystackPrefix(tokenizer: TaskTokenizer, ids: readonly number[], tokens: number): string {
  return decodeIds(tokenizer, ids.slice(0, tokens))
    .replace(/^\s+/, "")
    .replace(/[\s\uFFFD]+$/u, "");
}

const SENTENCE_END = /[.!?]["'\u201d\u2019)\]]*(?=\s)/g;
const WORD_END = /\S(?=\s)/g;

function boundaries(text: string, pattern: RegExp): number[] {
  const out = [0];
  for (const m of text.matchAll(pattern)) out.push(m.index + m[0].length);
  out.push(text.length);
  return out;
}

/** The element of sorted `xs` nearest to `x`. */
function nearest(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  const above = xs[lo];
  const below = lo > 0 ? xs[lo - 1] : above;
  return x - below <= above - x ? below : above;
}

function insertNeedles(
  tokenizer: TaskTokenizer,
  hay: string,
  ids: readonly number[],
  tokens: number,
  needles: readonly Needle[],
): string {
  if (needles.length === 0) return hay;
  const sentenceEnds = boundaries(hay, SENTENCE_END);
  let wordEnds: number[] | undefined;
  // haystackPrefix dropped the decoded text's leading whitespace; offsets below are shifted by it.
  const leading = /^\s*/.exec(decodeIds(tokenizer, ids.slice(0, Math.min(tokens, 64))))![0].length;
  const maxShiftChars = (Math.max(3, 0.01 * tokens) * hay.length) / tokens;
  const placed = needles.map((needle, order) => {
    const tokenAt = Math.round(needle.depth * tokens);
    const charAt =
      tokenAt >= tokens ? hay.length : Math.min(hay.length, Math.max(0, decodeIds(tokenizer, ids.slice(0, tokenAt)).length - leading));
    let at = nearest(sentenceEnds, charAt);
    if (Math.abs(at - charAt) > maxShiftChars) {
      wordEnds ??= boundaries(hay, WORD_END);
      at = nearest(wordEnds, charAt);
    }
    return { at, order, text: needle.text };
  });
  // Splice from the end so earlier offsets stay valid; needles at one offset keep their given order.
  placed.sort((a, b) => b.at - a.at || b.order - a.order);
  let out = hay;
  for (const p of placed) {
    out = p.at === 0 ? `${p.text} ${out}` : `${out.slice(0, p.at)} ${p.text}${out.slice(p.at)}`;
  }
  return out;
}
