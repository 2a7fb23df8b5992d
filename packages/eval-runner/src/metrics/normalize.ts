import { PY_WORD_CHAR, pySplit } from "./python-text.js";

/**
 * Answer normalisation: the SQuAD v1.1 evaluation script's `normalize_answer`, which LongBench's metrics.py copies:
 * lower-case, remove punctuation, remove the articles a/an/the, collapse whitespace.
 *
 * The article pattern is Python's `\b(a|an|the)\b` on a `str`, whose word boundaries are Unicode-aware: the "a" of
 * "ça" follows a letter, so it is not an article. JavaScript's `\b` knows only ASCII word characters, hence the
 * lookarounds.
 */

const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
const CURLY_APOSTROPHE = /[\u2018\u2019]/g;
const OTHER_PUNCTUATION = /[\p{P}\p{S}]/gu;
const ARTICLES = new RegExp(`(?<![${PY_WORD_CHAR}])(?:a|an|the)(?![${PY_WORD_CHAR}])`, "gu");

/**
 * SQuAD's / LongBench's `normalize_answer` exactly: deletes Python's `string.punctuation` (ASCII only, so
 * "don't" → "dont" and "“quoted”" keeps its curly quotes), then articles, then `" ".join(text.split())`.
 * The normalisation of `longbench-qa-f1`.
 */
export function squadNormalize(text: string): string {
  const noPunct = text.toLowerCase().replace(ASCII_PUNCTUATION, "");
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

/**
 * The normalisation of the generic metrics (exact, contains, token-f1, rouge-l): `squadNormalize`, except that
 * Unicode punctuation and symbols other than ASCII (em dashes, curly quotes, ellipses: common in LongBench's news
 * references, "morning—though") become a space rather than gluing two words together or staying attached to a word;
 * the curly apostrophe is deleted like the ASCII one ("it’s" → "its").
 */
export function normalizeAnswer(text: string): string {
  const lowered = text.toLowerCase();
  const noPunct = lowered.replace(ASCII_PUNCTUATION, "").replace(CURLY_APOSTROPHE, "").replace(OTHER_PUNCTUATION, " ");
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

/** The normalised answer split into words: the unit of token F1 and ROUGE-L. */
export function normalizedWords(text: string): string[] {
  const normalized = normalizeAnswer(text);
  return normalized.length === 0 ? [] : normalized.split(" ");
}
