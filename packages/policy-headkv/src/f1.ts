/**
 * Token-level F1 between a generated answer and the reference, as HeadKV's head detection filters its samples
 * (Important_Head/metrics.py `qa_f1_score`, LongBench's): both strings are normalized — lower case, ASCII punctuation
 * removed, the articles a/an/the removed, whitespace collapsed — split on whitespace, and compared as bags of tokens.
 */

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** The normalized tokens of `text` (SQuAD/LongBench `normalize_answer`, then split). */
export function answerTokens(text: string): string[] {
  return text
    .toLowerCase()
    .replace(PUNCTUATION, "")
    .replace(/\b(a|an|the)\b/g, " ")
    .split(/\s+/)
    .filter((t) => t !== "");
}

/** F1 in [0, 1] of the bag of `prediction`'s tokens against `reference`'s; 0 when they share none. */
export function qaF1(prediction: string, reference: string): number {
  const predicted = answerTokens(prediction);
  const expected = answerTokens(reference);
  const counts = new Map<string, number>();
  for (const t of expected) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of predicted) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / predicted.length;
  const recall = same / expected.length;
  return (2 * precision * recall) / (precision + recall);
}
