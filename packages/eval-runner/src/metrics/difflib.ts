import { codePoints, roundHalfEven } from "./python-text.js";

/**
 * The string similarity LongBench's `code_sim_score` uses: fuzzywuzzy's `fuzz.ratio` (fuzzywuzzy 0.18, fuzz.py),
 * which without python-Levenshtein installed (LongBench's requirements do not install it) is Python's
 * `difflib.SequenceMatcher(None, a, b).ratio()`, scaled to 0–100 and rounded half to even.
 *
 * SequenceMatcher (Ratcliff/Obershelp "gestalt pattern matching", CPython Lib/difflib.py) is not an edit distance:
 * it takes the longest matching block, recurses on the pieces left and right of it, and counts the matched
 * characters M; ratio = 2M / (|a| + |b|). Its "autojunk" heuristic matters: when b has 200 or more characters, a
 * character occurring more than ⌊|b|/100⌋ + 1 times in b is "popular" and cannot start a match (it can only extend
 * one), which lowers the score of long, repetitive lines.
 */

/** Number of characters in SequenceMatcher's matching blocks (sum of `get_matching_blocks()` sizes). */
export function sequenceMatcherMatches(a: readonly string[], b: readonly string[]): number {
  // b2j: positions of each element of b, ascending, without popular elements (__chain_b).
  const b2j = new Map<string, number[]>();
  b.forEach((x, j) => {
    const at = b2j.get(x);
    if (at === undefined) b2j.set(x, [j]);
    else at.push(j);
  });
  if (b.length >= 200) {
    const limit = Math.floor(b.length / 100) + 1;
    for (const [x, at] of b2j) if (at.length > limit) b2j.delete(x);
  }

  // find_longest_match without junk (isjunk is None): the earliest longest block in a, then in b, of elements
  // not popular, extended on both sides by equal elements (popular ones included).
  const longest = (alo: number, ahi: number, blo: number, bhi: number): [number, number, number] => {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of b2j.get(a[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = next;
    }
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) bestsize++;
    return [besti, bestj, bestsize];
  };

  // get_matching_blocks: only the total matters here, so the order the pieces are visited in does not.
  let matches = 0;
  const queue: [number, number, number, number][] = [[0, a.length, 0, b.length]];
  for (let piece = queue.pop(); piece !== undefined; piece = queue.pop()) {
    const [alo, ahi, blo, bhi] = piece;
    const [i, j, k] = longest(alo, ahi, blo, bhi);
    if (k === 0) continue;
    matches += k;
    if (alo < i && blo < j) queue.push([alo, i, blo, j]);
    if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
  }
  return matches;
}

/** `difflib.SequenceMatcher(None, a, b).ratio()` over code points; 1 for two empty strings. */
export function sequenceMatcherRatio(a: string, b: string): number {
  const ca = codePoints(a);
  const cb = codePoints(b);
  const length = ca.length + cb.length;
  return length === 0 ? 1 : (2.0 * sequenceMatcherMatches(ca, cb)) / length;
}

/**
 * fuzzywuzzy's `fuzz.ratio(a, b)`, an integer 0–100: 100 for equal strings (checked first, so two empty strings
 * score 100), 0 when either is empty, else `int(round(100 * ratio))`.
 */
export function fuzzRatio(a: string, b: string): number {
  if (a === b) return 100;
  if (a.length === 0 || b.length === 0) return 0;
  return roundHalfEven(100 * sequenceMatcherRatio(a, b));
}
