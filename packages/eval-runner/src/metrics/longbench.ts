import { fuzzRatio } from "./difflib.js";
import { squadNormalize } from "./normalize.js";
import { pyFindNumbers, pySplit, pyStrip } from "./python-text.js";
import { f1OfWords } from "./text-metrics.js";

/**
 * LongBench's scorers (Bai et al. 2023; THUDM/LongBench, LongBench/metrics.py), one per (prediction, reference)
 * pair, ported from the Python including its corner cases, so that scores equal the benchmark's own on the same
 * text: test/fixtures/metrics-reference.json holds the scores lm-evaluation-harness's copy of metrics.py gives
 * (tools/metrics-reference/generate.py) and reference-fixture.test.ts compares every case.
 *
 * A sample's score is the max over its answers, after LongBench's eval.py cuts few-shot predictions to their first
 * line (`longBenchFirstLine`); score.ts applies both. The Chinese `qa_f1_zh_score` and `rouge_zh_score` segment
 * words with jieba, which has no port here: multifieldqa_zh, dureader and vcsum have no built-in metric.
 */

/** eval.py's cut for trec, triviaqa, samsum and lsht: `prediction.lstrip('\n').split('\n')[0]`. */
export function longBenchFirstLine(prediction: string): string {
  return prediction.replace(/^\n+/, "").split("\n")[0];
}

/** `qa_f1_score`: bag-of-words F1 of SQuAD-normalised words; 0 when no word is shared (empty answers included). */
export function qaF1Score(prediction: string, reference: string): number {
  return f1OfWords(pySplit(squadNormalize(prediction)), pySplit(squadNormalize(reference)));
}

/**
 * `rouge_score`: the `rouge` package's (1.0.1) `Rouge().get_scores([prediction], [reference], avg=True)["rouge-l"]["f"]`,
 * with LongBench's 0 when it raises. That ROUGE-L is summary-level (Lin 2004, §3.2) over raw, case-sensitive
 * words, with the package's quirks kept:
 * - sentences are the pieces between "." (so "3.5" is two), each whitespace-collapsed; a piece of whitespace alone
 *   stays as an empty sentence whose one word is "";
 * - an empty or all-"." text has no sentences and raises (score 0);
 * - word counts m, n and the LCS hits are sets of distinct words, not multisets: the hits are the words of the
 *   union over all (reference sentence, prediction sentence) pairs of the one LCS its backtracking picks;
 * - F = 2PR / (P + R + 1e-8).
 * The package reconstructs the LCS recursively, so a sentence pair longer than Python's recursion limit (about
 * 1000 words together) raises RecursionError and LongBench scores 0; here it is scored.
 */
export function rougeScore(prediction: string, reference: string): number {
  const hyp = rougeSentences(prediction);
  const ref = rougeSentences(reference);
  if (hyp.length === 0 || ref.length === 0) return 0;
  const m = new Set(ref.flat()).size;
  const n = new Set(hyp.flat()).size;
  const hits = new Set<string>();
  for (const r of ref) for (const h of hyp) for (const w of lcsWords(r, h)) hits.add(w);
  const recall = hits.size / m;
  const precision = hits.size / n;
  return 2.0 * ((precision * recall) / (precision + recall + 1e-8));
}

function rougeSentences(text: string): string[][] {
  return text
    .split(".")
    .filter((s) => s.length > 0)
    .map((s) => pySplit(s).join(" ").split(" "));
}

/** The words of the LCS of x and y that rouge_score.py's `_recon_lcs(x, y)` backtracks to (ties go to y). */
function lcsWords(x: readonly string[], y: readonly string[]): string[] {
  const cols = y.length + 1;
  const table = new Int32Array((x.length + 1) * cols);
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      table[i * cols + j] =
        x[i - 1] === y[j - 1] ? table[(i - 1) * cols + j - 1] + 1 : Math.max(table[(i - 1) * cols + j], table[i * cols + j - 1]);
    }
  }
  const words: string[] = [];
  for (let i = x.length, j = y.length; i > 0 && j > 0; ) {
    if (x[i - 1] === y[j - 1]) {
      words.push(x[i - 1]);
      i--;
      j--;
    } else if (table[(i - 1) * cols + j] > table[i * cols + j - 1]) i--;
    else j--;
  }
  return words;
}

/**
 * `classification_score` (trec, lsht): the classes of `allClasses` that occur as substrings of the prediction;
 * classes that are substrings of the reference (but not it) are dropped; the reference scores 1 / (matches left)
 * if it is among them, else 0.
 *
 * The dropping loop removes items from the Python list it is iterating over, which skips the item after each
 * removal: with matches ["A B C", "A", "B"] and reference "A B C", "A" is dropped and "B" is not looked at, so the
 * score is 1/2. Kept, since it is what LongBench reports.
 */
export function classificationScore(prediction: string, reference: string, allClasses: readonly string[]): number {
  const matches = allClasses.filter((c) => prediction.includes(c));
  for (let i = 0; i < matches.length; i++) {
    const term = matches[i];
    if (reference.includes(term) && term !== reference) {
      matches.splice(matches.indexOf(term), 1); // list.remove: the first equal item
      // Python's iterator keeps its index, so the item that moved into slot i is skipped: no i-- here.
    }
  }
  return matches.includes(reference) ? 1.0 / matches.length : 0;
}

/** Fraction of the numbers in the prediction that equal `id` as strings ("07" ≠ "7"); 0 without numbers. */
function fractionEqual(prediction: string, id: string): number {
  const numbers = pyFindNumbers(prediction);
  if (numbers.length === 0) return 0;
  return numbers.filter((x) => x === id).length / numbers.length;
}

function paragraphId(reference: string, pattern: RegExp, form: string): string {
  const id = pattern.exec(reference)?.[1];
  // LongBench's retrieval scores fail with IndexError here.
  if (id === undefined) throw new Error(`longbench retrieval: answer ${JSON.stringify(reference)} has no paragraph number; expected "${form}"`);
  return id;
}

/** `retrieval_score` (passage_retrieval_en): the paragraph number of "Paragraph N" in the reference, found among the prediction's numbers. */
export function retrievalScore(prediction: string, reference: string): number {
  return fractionEqual(prediction, paragraphId(reference, /Paragraph (\p{Nd}+)/u, "Paragraph N"));
}

/** `retrieval_zh_score` (passage_retrieval_zh): as `retrievalScore` with "段落N". */
export function retrievalZhScore(prediction: string, reference: string): number {
  return fractionEqual(prediction, paragraphId(reference, /段落(\p{Nd}+)/u, "段落N"));
}

/** `count_score` (passage_count): the fraction of the prediction's numbers that equal the reference. */
export function countScore(prediction: string, reference: string): number {
  return fractionEqual(prediction, reference);
}

/**
 * `code_sim_score` (lcc, repobench-p): fuzzywuzzy's ratio / 100 between the reference and the first line of the
 * prediction that is not blank and contains none of "`", "#", "//" (fences and comments, and so also any code line
 * with a "#" in a string); "" when there is none. The line keeps its indentation: LongBench does not strip it.
 */
export function codeSimScore(prediction: string, reference: string): number {
  const line = prediction.split("\n").find((l) => pyStrip(l) !== "" && !l.includes("`") && !l.includes("#") && !l.includes("//"));
  return fuzzRatio(line ?? "", reference) / 100;
}
