/**
 * Answer normalisation shared by the text metrics: the SQuAD v1.1 evaluation script's `normalize_answer`, which
 * LongBench's `qa_f1_score` and `rouge` helpers inherit for English: lower-case, remove punctuation, remove the
 * articles a/an/the, collapse whitespace.
 *
 * SQuAD strips only ASCII punctuation (Python's `string.punctuation`) and deletes it, so "don't" → "dont". We do
 * the same for ASCII, so scores match the reference scripts on ASCII text; other Unicode punctuation (em dashes,
 * curly quotes, ellipses: common in LongBench's news references, "morning—though") becomes a space rather than
 * gluing two words together, except the curly apostrophe, which is deleted like the ASCII one.
 */

const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
const CURLY_APOSTROPHE = /[\u2018\u2019]/g;
const OTHER_PUNCTUATION = /[\p{P}\p{S}]/gu;
const ARTICLES = /\b(a|an|the)\b/g;

export function normalizeAnswer(text: string): string {
  const lowered = text.toLowerCase();
  const noPunct = lowered.replace(ASCII_PUNCTUATION, "").replace(CURLY_APOSTROPHE, "").replace(OTHER_PUNCTUATION, " ");
  const noArticles = noPunct.replace(ARTICLES, " ");
  return noArticles.split(/\s+/).filter((w) => w.length > 0).join(" ");
}

/** The normalised answer split into words: the unit of token F1 and ROUGE-L. */
export function normalizedWords(text: string): string[] {
  const normalized = normalizeAnswer(text);
  return normalized.length === 0 ? [] : normalized.split(" ");
}
