/**
 * What a task hands the scheduler: samples whose prompt is split into the part that is prefilled and compressed
 * (`context`) and the part that arrives afterwards (`query`), plus how the answer is scored.
 *
 * Query-agnostic mode (default) prefills `context` alone, compresses, then feeds `query` and decodes; query-aware
 * mode prefills context + query together, then compresses and decodes (DESIGN §2).
 */

/**
 * Text the harness wrote as the model's chat template: control-token strings in it (`<|im_start|>`) are parsed to
 * their ids. Only the rendered template belongs here, never a document, a question or any other prose.
 */
export interface TemplatePiece {
  readonly template: string;
  readonly text?: never;
  readonly ids?: never;
}

/**
 * Document or harness prose (instruction, haystack, question, answer prefix): control-token strings in it are
 * ordinary characters, so a document that quotes `<|im_end|>` reaches the model as that text, never as the token.
 */
export interface TextPiece {
  readonly text: string;
  readonly template?: never;
  readonly ids?: never;
}

/** Token ids used as they are (a middle-truncated document, a window of a tokenized text). */
export interface IdsPiece {
  readonly ids: readonly number[];
  readonly template?: never;
  readonly text?: never;
}

export type SegmentPiece = TemplatePiece | TextPiece | IdsPiece;

/**
 * One piece, or pieces whose ids are concatenated, tokenized by tasks/prompt.ts `encodeSegment` (the one function the
 * runner and the tasks both use), no special tokens added: a template piece is encoded in one pass with the text
 * beside it, as the joined string would be; two texts in a row are encoded apart, the second as a continuation, and
 * ids are taken as they are. The query and the continuation follow the context, so they are encoded as continuations
 * (no SentencePiece prefix space).
 */
export type Segment = SegmentPiece | readonly SegmentPiece[];

/**
 * How a generation is scored (metrics/score.ts). Generic, on SQuAD-normalised text: "exact", "contains", "token-f1",
 * "rouge-l". As the benchmarks score (metrics/longbench.ts, metrics/ruler.ts): LongBench's qa_f1_score,
 * rouge_score, classification_score, retrieval_score, retrieval_zh_score, count_score and code_sim_score, and
 * RULER's string_match_all and string_match_part.
 */
export type GenerationMetric =
  | "exact"
  | "contains"
  | "token-f1"
  | "rouge-l"
  | "longbench-qa-f1"
  | "longbench-rouge"
  | "longbench-classification"
  | "longbench-retrieval"
  | "longbench-retrieval-zh"
  | "longbench-count"
  | "longbench-code-sim"
  | "ruler-match-all"
  | "ruler-match-part";

/** Generate greedily, then compare the decoded text with the references. */
export interface GenerationTarget {
  readonly kind: "generate";
  readonly answers: readonly string[];
  readonly maxNewTokens: number;
  readonly metric: GenerationMetric;
  /** The label set "longbench-classification" looks for in the prediction: the record's `all_classes` (trec, lsht). */
  readonly allClasses?: readonly string[];
  /**
   * Score the first line of the prediction only, after leading newlines: LongBench's eval.py does so for its
   * few-shot datasets (trec, triviaqa, samsum, lsht), whose models go on to write the next example.
   */
  readonly firstLineOnly?: boolean;
}

/**
 * Teacher-forced scoring of a known continuation after the query: mean NLL (reported as the score with lower =
 * better, and perplexity), or the fraction of continuation tokens the model predicts greedily.
 */
export interface ContinuationTarget {
  readonly kind: "continuation";
  readonly continuation: Segment;
  readonly metric: "nll" | "token-accuracy";
}

export interface Sample {
  /** Stable across runs with the same seed: the results store keys completed rows by it. */
  readonly id: string;
  readonly task: string;
  /** Intended context length in tokens (the realized one is measured after tokenization). */
  readonly contextLength: number;
  /** Needle depth in [0, 1] for needle-style tasks. */
  readonly depth?: number;
  readonly context: Segment;
  readonly query: Segment;
  readonly target: GenerationTarget | ContinuationTarget;
}

/** The part of a tokenizer tasks need to hit a token length and to format prompts. */
export interface TaskTokenizer {
  /** model-zoo's `Tokenizer.encode`; `continuation`: the text follows text already in the sequence (no prefix space). */
  encode(text: string, opts?: { addSpecialTokens?: boolean; parseSpecialTokens?: boolean; continuation?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  applyChatTemplate(messages: { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean }): string;
}
