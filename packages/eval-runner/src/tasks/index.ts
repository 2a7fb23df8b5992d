export type {
  ContinuationTarget,
  GenerationMetric,
  GenerationTarget,
  IdsPiece,
  Sample,
  Segment,
  SegmentPiece,
  TaskTokenizer,
  TemplatePiece,
  TextPiece,
} from "./types.js";
export { DEFAULT_HAYSTACK_FILE, loadHaystackText, tokenizeHaystack } from "./haystack.js";
export type { HaystackSource, HaystackText, TokenizedHaystack } from "./haystack.js";
export { countTokens, decodeIds, encodeSegment, segmentPieces, segmentText, splitPrompt } from "./prompt.js";
export type { PromptParts, SplitPrompt } from "./prompt.js";
export { buildNeedleContext } from "./needle.js";
export type { Needle, NeedleContext, NeedleContextArgs } from "./needle.js";
export {
  generateNiahMultiKey,
  generateNiahSingle,
  generatePasskey,
  NIAH_CITIES,
  PASSKEY_FILLER,
} from "./needle-tasks.js";
export type { NeedleGridParams, NiahParams, PasskeyParams } from "./needle-tasks.js";
export { generateLmLoss, generateRepeatedTokens } from "./continuation-tasks.js";
export type { LmLossParams, RepeatedTokensParams } from "./continuation-tasks.js";
export { LONGBENCH_DATASETS, longBenchMetric, readLongBench, readRuler, truncateMiddle } from "./jsonl-tasks.js";
export type { LongBenchParams, LongBenchSpec, RulerParams } from "./jsonl-tasks.js";
export { generateProse, PROSE_CHARS, PROSE_SEED } from "./prose.js";
export { sampleRng } from "./random.js";
export { WordTokenizer } from "./testing/word-tokenizer.js";

import { generateLmLoss, generateRepeatedTokens } from "./continuation-tasks.js";
import { readLongBench, readRuler } from "./jsonl-tasks.js";
import { generateNiahMultiKey, generateNiahSingle, generatePasskey } from "./needle-tasks.js";
import type { Sample, TaskTokenizer } from "./types.js";

/** A task: parameters (from the manifest), the model's tokenizer and the experiment seed → samples. */
export type TaskGenerator<P> = (params: P, tokenizer: TaskTokenizer, seed: number) => Sample[];

/** The tasks by the name a manifest uses. */
export const TASKS = {
  passkey: generatePasskey,
  "niah-single": generateNiahSingle,
  "niah-multikey": generateNiahMultiKey,
  "repeated-tokens": generateRepeatedTokens,
  "lm-loss": generateLmLoss,
  longbench: readLongBench,
  ruler: readRuler,
} as const;

export type TaskName = keyof typeof TASKS;
