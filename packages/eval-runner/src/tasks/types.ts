/**
 * What a task hands the scheduler: samples whose prompt is split into the part that is prefilled and compressed
 * (`context`) and the part that arrives afterwards (`query`), plus how the answer is scored.
 *
 * Query-agnostic mode (default) prefills `context` alone, compresses, then feeds `query` and decodes; query-aware
 * mode prefills context + query together, then compresses and decodes (DESIGN §2).
 */

/** Text (tokenized by the model's tokenizer, no special tokens added) or token ids used as they are. */
export type Segment = { readonly text: string } | { readonly ids: readonly number[] };

export type GenerationMetric = "exact" | "contains" | "token-f1" | "rouge-l";

/** Generate greedily, then compare the decoded text with the references. */
export interface GenerationTarget {
  readonly kind: "generate";
  readonly answers: readonly string[];
  readonly maxNewTokens: number;
  readonly metric: GenerationMetric;
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
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  applyChatTemplate(messages: { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean }): string;
}
