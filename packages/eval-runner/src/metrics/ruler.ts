import { pyStrip } from "./python-text.js";

/**
 * RULER's scores (Hsieh et al. 2024; NVIDIA/RULER, scripts/eval/synthetic/constants.py and evaluate.py), per
 * sample: lower-cased substring tests on the prediction as generated, no SQuAD normalisation ("68431" is found in
 * "684312", "ÇA" in "ça"). RULER scores niah_*, vt (variable_tracking), cwe (common_words_extraction) and fwe
 * (freq_words_extraction) with string_match_all, and qa_* with string_match_part.
 */

/** evaluate.py's `postprocess_pred`: strip, turn control characters U+0000–U+001F into newlines, strip again. */
export function rulerPostprocess(prediction: string): string {
  return pyStrip(pyStrip(prediction).replace(/[\x00-\x1f]/g, "\n"));
}

/** `string_match_all` for one sample: the fraction of references that occur in the prediction, case-insensitive. */
export function rulerMatchAll(prediction: string, references: readonly string[]): number {
  if (references.length === 0) return 0;
  const p = rulerPostprocess(prediction).toLowerCase();
  let found = 0;
  for (const r of references) if (p.includes(r.toLowerCase())) found++;
  return found / references.length;
}

/** `string_match_part` for one sample: 1 when any reference occurs in the prediction, case-insensitive. */
export function rulerMatchPart(prediction: string, references: readonly string[]): number {
  const p = rulerPostprocess(prediction).toLowerCase();
  return references.some((r) => p.includes(r.toLowerCase())) ? 1 : 0;
}

/** The metric RULER scores a task with, from the task's name (RULER's and lm-evaluation-harness's names). */
export function rulerMetricOfTask(task: string): "ruler-match-all" | "ruler-match-part" {
  return /^qa(_|$)/.test(task) ? "ruler-match-part" : "ruler-match-all";
}
