import { normalizeAnswer, normalizedWords } from "./normalize.js";

/**
 * Reference-based scores of a generated answer, each in [0, 1] and each the maximum over the references (a
 * question with several acceptable answers is answered if any is matched), as in SQuAD and LongBench.
 */

export function maxOverReferences(references: readonly string[], score: (reference: string) => number): number {
  let best = 0;
  for (const reference of references) best = Math.max(best, score(reference));
  return best;
}

/** 1 when the normalised prediction equals a normalised reference, else 0. */
export function exactMatch(prediction: string, references: readonly string[]): number {
  const p = normalizeAnswer(prediction);
  return maxOverReferences(references, (r) => (normalizeAnswer(r) === p ? 1 : 0));
}

/**
 * 1 when a normalised reference occurs as a substring of the normalised prediction: the passkey / needle check of
 * the synthetic tasks. Substring, not word match, as RULER does: "68431" is found in "684312". An empty reference
 * never matches (it would match everything). RULER's files are scored by `ruler-match-part` / `ruler-match-all`
 * (ruler.ts), which do not normalise.
 */
export function containsMatch(prediction: string, references: readonly string[]): number {
  const p = normalizeAnswer(prediction);
  return maxOverReferences(references, (r) => {
    const n = normalizeAnswer(r);
    return n.length > 0 && p.includes(n) ? 1 : 0;
  });
}

/**
 * The fraction of normalised references found in the normalised prediction, for multi-value needles where every
 * value must be recalled. Not a max over references: each reference counts once.
 */
export function containsAllFraction(prediction: string, references: readonly string[]): number {
  if (references.length === 0) return 0;
  const p = normalizeAnswer(prediction);
  let found = 0;
  for (const r of references) {
    const n = normalizeAnswer(r);
    if (n.length > 0 && p.includes(n)) found++;
  }
  return found / references.length;
}

/**
 * Bag-of-words F1 between normalised word multisets (SQuAD v1.1's `f1_score`, LongBench's `qa_f1_score`):
 * precision = common / |prediction|, recall = common / |reference|. An empty prediction scores 0, also when the
 * reference normalises to nothing ("The"): SQuAD v1.1 and LongBench return 0 whenever no word is shared. (SQuAD
 * v2.0 scores both-empty as 1 for its unanswerable questions; no task here has those.)
 */
export function tokenF1(prediction: string, references: readonly string[]): number {
  const p = normalizedWords(prediction);
  return maxOverReferences(references, (r) => f1OfWords(p, normalizedWords(r)));
}

/** F1 of two word multisets; 0 when they share no word (LongBench's metrics.py `f1_score`). */
export function f1OfWords(prediction: readonly string[], reference: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const w of reference) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of prediction) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / prediction.length;
  const recall = common / reference.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Length of the longest common subsequence of two word sequences (dynamic programming, two rows). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let curr = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      curr[j] = ai === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], curr[j - 1]);
    }
    [prev, curr] = [curr, prev];
  }
  return prev[b.length];
}

/**
 * ROUGE-L F-measure (Lin 2004, §3.1: sentence-level LCS) over normalised words with β = 1, i.e. F = 2PR/(P+R),
 * P = LCS/|prediction|, R = LCS/|reference|: what Google's `rouge-score` reports as `rougeL.fmeasure`. Normalised
 * first so that case and punctuation do not count as content. LongBench's own ROUGE-L (the `rouge` PyPI package:
 * summary-level union LCS over raw, case-sensitive words) is `longbench-rouge` in longbench.ts.
 */
export function rougeL(prediction: string, references: readonly string[]): number {
  const p = normalizedWords(prediction);
  return maxOverReferences(references, (r) => {
    const ref = normalizedWords(r);
    const lcs = lcsLength(p, ref);
    if (lcs === 0) return 0;
    const precision = lcs / p.length;
    const recall = lcs / ref.length;
    return (2 * precision * recall) / (precision + recall);
  });
}
