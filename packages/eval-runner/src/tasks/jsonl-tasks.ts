import { basename, dirname } from "node:path";
import { RazorkvError } from "@razorkv/core";
import { readJsonl, stringField, stringListField } from "./jsonl.js";
import { positiveInteger } from "./params.js";
import { encodeSegment, splitPrompt, type SplitPrompt } from "./prompt.js";
import type { GenerationMetric, IdsPiece, Sample, TaskTokenizer, TextPiece } from "./types.js";

/**
 * Readers of the two common long-context benchmark file formats. Both are generation tasks; the seed is unused
 * (the files fix the samples), kept for the common generator signature.
 */

const METRICS: readonly GenerationMetric[] = ["exact", "contains", "token-f1", "rouge-l"];

function checkMetric(task: string, metric: GenerationMetric | undefined): GenerationMetric | undefined {
  if (metric !== undefined && !METRICS.includes(metric)) {
    throw new RazorkvError(`${task}: parameter "metric" must be one of ${METRICS.join(", ")}; found ${JSON.stringify(metric)}`);
  }
  return metric;
}

/**
 * Middle truncation (LongBench's pred.py), on token ids: when the text is longer than `maxTokens`, keep the first
 * ⌊max/2⌋ and last ⌈max/2⌉ ids of its encoding, since a document's opening and its end (where LongBench puts the
 * question) carry the most. The text is a document, so control-token strings in it are not parsed; cutting ids
 * (never decoding and re-encoding) keeps every kept token exactly as in the untruncated document.
 */
export function truncateMiddle(tokenizer: TaskTokenizer, text: string, maxTokens: number): { ids: number[]; truncated: boolean } {
  return cutMiddle(tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false }), maxTokens);
}

function cutMiddle(ids: number[], maxTokens: number): { ids: number[]; truncated: boolean } {
  if (ids.length <= maxTokens) return { ids, truncated: false };
  const head = Math.floor(maxTokens / 2);
  return { ids: [...ids.slice(0, head), ...ids.slice(ids.length - (maxTokens - head))], truncated: true };
}

/**
 * Frames the document `body` (its own piece of the prompt) and, when the context is over `maxContextTokens`,
 * middle-truncates the document's ids to fit. Pieces are tokenized separately, so the context's token count is
 * the frame's count with an empty document plus the document's own count: the fit is exact, in one step.
 */
function fitBody(
  tokenizer: TaskTokenizer,
  body: string,
  maxContextTokens: number | undefined,
  frame: (document: TextPiece | IdsPiece) => SplitPrompt,
  origin: string,
): SplitPrompt & { contextTokens: number } {
  // Trailing whitespace of a last piece would move to the query (prompt.ts) and break the sum below.
  const text = body.trimEnd();
  const ids = tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false });
  const overhead = encodeSegment(tokenizer, frame({ ids: [] }).context).length;
  if (maxContextTokens === undefined || overhead + ids.length <= maxContextTokens) {
    return { ...frame({ text }), contextTokens: overhead + ids.length };
  }
  const budget = maxContextTokens - overhead;
  if (budget < 1) {
    throw new RazorkvError(`${origin}: a context of ${maxContextTokens} tokens leaves no room for the document: the prompt takes ${overhead}`);
  }
  return { ...frame({ ids: cutMiddle(ids, budget).ids }), contextTokens: maxContextTokens };
}

// ---------------------------------------------------------------------------------------------------------------
// LongBench (Bai et al. 2023): {input, context, answers, length, dataset, language, all_classes, _id} per line.

export interface LongBenchParams {
  /** JSONL file in LongBench's format, e.g. /work/shared/data/longbench/multi_news.jsonl. */
  readonly file: string;
  /** Token budget of the context segment (chat header + instruction + document); longer documents are cut in the middle. */
  readonly maxContextTokens: number;
  /** Read only the first N records. */
  readonly limit?: number;
  /** Dataset name when the records lack one; default the records' `dataset` field, else the file's base name. */
  readonly dataset?: string;
  /** Override the dataset's metric (required for datasets without a built-in one). */
  readonly metric?: GenerationMetric;
  /** Override the dataset's generation length (LongBench's dataset2maxlen). */
  readonly maxNewTokens?: number;
  /** Default: true, except for the few-shot datasets that LongBench prompts without the chat template. */
  readonly chat?: boolean;
}

export interface LongBenchSpec {
  /** Opens the user turn, before the document; must not reveal the question (query-agnostic mode). */
  readonly instruction: string;
  /** After the document; `{input}` is replaced by the record's `input`. */
  readonly question: string;
  readonly metric: GenerationMetric;
  readonly maxNewTokens: number;
  /** LongBench prompts these few-shot datasets without the chat template. */
  readonly chat: boolean;
}

const ANSWER_ONLY = "Answer with the answer alone, in as few words as possible, without explanation.";

function qa(kind: string, maxNewTokens: number): LongBenchSpec {
  return {
    instruction: `Read the following ${kind}. A question about it comes afterwards.`,
    question: `Answer the question using the ${kind} above. ${ANSWER_ONLY}\n\nQuestion: {input}\nAnswer:`,
    metric: "token-f1",
    maxNewTokens,
    chat: true,
  };
}

function summary(instruction: string, question: string, maxNewTokens: number, chat = true): LongBenchSpec {
  return { instruction, question, metric: "rouge-l", maxNewTokens, chat };
}

/**
 * English LongBench datasets: our own prompt wording in LongBench's structure (instruction, document, question);
 * the metric family of LongBench's dataset2metric (qa_f1 → token F1, rouge → ROUGE-L; classification, count and
 * retrieval scores → contains-match, the closest of our metrics) and its dataset2maxlen generation lengths.
 * Code completion (lcc, repobench-p: edit similarity) and the Chinese datasets (character-level metrics) have no
 * equivalent here: pass `metric` explicitly to run them anyway.
 */
export const LONGBENCH_DATASETS: Readonly<Record<string, LongBenchSpec>> = {
  narrativeqa: qa("story", 128),
  qasper: qa("scientific article", 128),
  multifieldqa_en: qa("article", 64),
  hotpotqa: qa("passages", 32),
  "2wikimqa": qa("passages", 32),
  musique: qa("passages", 32),
  triviaqa: {
    instruction: "Answer questions about a passage. Some worked examples come first.",
    question: "{input}",
    metric: "token-f1",
    maxNewTokens: 32,
    chat: false,
  },
  gov_report: summary(
    "Read the following government report. You will be asked to summarise it.",
    "Now write a one-page summary of the report above.\n\nSummary:",
    512,
  ),
  qmsum: summary(
    "Read the following meeting transcript. A question about it comes afterwards.",
    "Answer the question about the meeting above in a few sentences.\n\nQuestion: {input}\nAnswer:",
    512,
  ),
  multi_news: summary(
    "Read the following news articles. You will be asked to summarise them.",
    "Now write a one-page summary of all the news above.\n\nSummary:",
    512,
  ),
  samsum: summary("Summarise dialogues. Some worked examples come first.", "{input}", 128, false),
  trec: { instruction: "Classify the type of each question. Some worked examples come first.", question: "{input}", metric: "contains", maxNewTokens: 64, chat: false },
  passage_count: {
    instruction: "Read the following paragraphs; some of them may be duplicates of others.",
    question: "How many distinct paragraphs are there above? Answer with a single number.\n\nAnswer:",
    metric: "contains",
    maxNewTokens: 32,
    chat: true,
  },
  passage_retrieval_en: {
    instruction: "Read the following numbered paragraphs. An abstract of one of them comes afterwards.",
    question: "Which paragraph is this abstract from? Answer in the form \"Paragraph N\".\n\nAbstract: {input}\n\nAnswer:",
    metric: "contains",
    maxNewTokens: 32,
    chat: true,
  },
};

/** The metric LongBench scores a dataset with, mapped to ours; undefined for datasets we have none for. */
export function longBenchMetric(dataset: string): GenerationMetric | undefined {
  return LONGBENCH_DATASETS[dataset]?.metric;
}

const FALLBACK_SPEC: Omit<LongBenchSpec, "metric"> = {
  instruction: "Read the following text. A task about it comes afterwards.",
  question: "{input}",
  maxNewTokens: 64,
  chat: true,
};

export function readLongBench(params: LongBenchParams, tokenizer: TaskTokenizer, _seed = 0): Sample[] {
  const origin = `longbench ${params.file}`;
  const maxContextTokens = positiveInteger("longbench", "maxContextTokens", params.maxContextTokens, Number.NaN);
  const limit = params.limit === undefined ? undefined : positiveInteger("longbench", "limit", params.limit, 1);
  const metricOverride = checkMetric("longbench", params.metric);
  const records = readJsonl("longbench", "file", params.file, limit);
  return records.map((record) => {
    const dataset = stringField(params.file, record, "dataset", true) ?? params.dataset ?? basename(params.file).replace(/\.jsonl$/, "");
    const known = LONGBENCH_DATASETS[dataset];
    const metric = metricOverride ?? known?.metric;
    if (metric === undefined) {
      throw new RazorkvError(
        `${params.file}:${record.line}: LongBench dataset "${dataset}" has no built-in metric here; set parameter "metric" (one of ${METRICS.join(", ")})`,
      );
    }
    const spec = { ...FALLBACK_SPEC, ...known, metric };
    const input = stringField(params.file, record, "input");
    const context = stringField(params.file, record, "context");
    const answers = stringListField(params.file, record, "answers");
    const id = stringField(params.file, record, "_id", true) ?? `line${record.line}`;
    const chat = params.chat ?? spec.chat;
    const frame = (document: TextPiece | IdsPiece) =>
      splitPrompt(tokenizer, chat, { head: [{ text: `${spec.instruction}\n\n` }, document], tail: `\n\n${spec.question.replace("{input}", input)}`, answerPrefix: "" }, origin);
    const built = fitBody(tokenizer, context.trim(), maxContextTokens, frame, `${params.file}:${record.line}`);
    const task = `longbench/${dataset}`;
    return {
      id: `${task}/L${maxContextTokens}/${id}`,
      task,
      contextLength: built.contextTokens,
      context: built.context,
      query: built.query,
      target: { kind: "generate", answers, maxNewTokens: params.maxNewTokens ?? spec.maxNewTokens, metric },
    } satisfies Sample;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// RULER (Hsieh et al. 2024): {index, input, outputs, length[, answer_prefix]} per line, as RULER's prepare.py
// writes <save_dir>/<task>/validation.jsonl. `input` is the whole prompt, instruction + context + question.

export interface RulerParams {
  /** JSONL file in RULER's format. */
  readonly file: string;
  /** Task name in sample ids; default the file's base name, or its directory's name for validation.jsonl / test.jsonl. */
  readonly task?: string;
  readonly limit?: number;
  /**
   * Where the question starts in `input`: the last occurrence of this string (default "\n": RULER's templates put
   * the question on the last line). A record's own `query` field, when present, takes precedence: the split is
   * at its last occurrence in `input`.
   */
  readonly querySplit?: string;
  /**
   * Default "contains": RULER's string_match_part, the max over `outputs`. (RULER scores multi-value needles with
   * string_match_all, the fraction of outputs recalled; metrics/containsAllFraction computes it, but
   * GenerationMetric has no name for it yet.)
   */
  readonly metric?: GenerationMetric;
  /** Default 128, RULER's generation length for its NIAH tasks. */
  readonly maxNewTokens?: number;
  /**
   * Render `input` as the user turn of the model's chat template. Default true; set false for files that RULER
   * prepared with a model template already applied (its `--model_template_type` other than "base").
   */
  readonly chat?: boolean;
  /** Optional middle truncation of the context segment. */
  readonly maxContextTokens?: number;
}

export function readRuler(params: RulerParams, tokenizer: TaskTokenizer, _seed = 0): Sample[] {
  const base = basename(params.file).replace(/\.jsonl$/, "");
  const name = params.task ?? (base === "validation" || base === "test" ? basename(dirname(params.file)) : base);
  const task = `ruler/${name}`;
  const limit = params.limit === undefined ? undefined : positiveInteger(task, "limit", params.limit, 1);
  const metric = checkMetric(task, params.metric) ?? "contains";
  const maxNewTokens = positiveInteger(task, "maxNewTokens", params.maxNewTokens, 128);
  const maxContextTokens =
    params.maxContextTokens === undefined ? undefined : positiveInteger(task, "maxContextTokens", params.maxContextTokens, 1);
  const marker = params.querySplit ?? "\n";
  if (marker.length === 0) throw new RazorkvError(`${task}: parameter "querySplit" must not be empty`);
  const records = readJsonl(task, "file", params.file, limit);
  return records.map((record) => {
    const where = `${params.file}:${record.line}`;
    const input = stringField(params.file, record, "input");
    const outputs = stringListField(params.file, record, "outputs");
    const index = record.value.index;
    if (typeof index !== "number" && typeof index !== "string") {
      throw new RazorkvError(`${where}: field "index" must be a number or a string`);
    }
    const length = record.value.length;
    if (typeof length !== "number" || !Number.isInteger(length) || length <= 0) {
      throw new RazorkvError(`${where}: field "length" must be a positive integer (the sample's token count)`);
    }
    const query = stringField(params.file, record, "query", true);
    const split = query !== undefined ? input.lastIndexOf(query) : input.lastIndexOf(marker);
    if (split <= 0) {
      throw new RazorkvError(
        query !== undefined
          ? `${where}: field "query" does not occur in "input" after its start, so the question cannot be split off`
          : `${where}: "input" has no ${JSON.stringify(marker)} after its start (parameter "querySplit"), so the question cannot be split off`,
      );
    }
    // Move the whitespace before the question into the query (see prompt.ts on the token boundary).
    const cut = input.slice(0, split).trimEnd().length;
    const answerPrefix = stringField(params.file, record, "answer_prefix", true) ?? "";
    const frame = (document: TextPiece | IdsPiece) =>
      splitPrompt(tokenizer, params.chat ?? true, { head: [document], tail: input.slice(cut), answerPrefix }, task);
    const built = fitBody(tokenizer, input.slice(0, cut), maxContextTokens, frame, where);
    return {
      id: `${task}/${index}`,
      task,
      contextLength: length,
      context: built.context,
      query: built.query,
      target: { kind: "generate", answers: outputs, maxNewTokens, metric },
    } satisfies Sample;
  });
}
