import { basename, dirname } from "node:path";
import { RazorkvError } from "@razorkv/core";
import { readJsonl, stringField, stringListField, type JsonlRecord } from "./jsonl.js";
import { positiveInteger } from "./params.js";
import { encodeSegment, segmentPieces, splitPrompt, type SplitPrompt } from "./prompt.js";
import type { GenerationMetric, IdsPiece, Sample, SegmentPiece, TaskTokenizer, TextPiece } from "./types.js";
import { GENERATION_METRIC_NAMES } from "../metrics/score.js";
import { rulerMetricOfTask } from "../metrics/ruler.js";

/**
 * Readers of the two common long-context benchmark file formats. Both are generation tasks; the seed is unused
 * (the files fix the samples), kept for the common generator signature.
 */

const METRICS: readonly GenerationMetric[] = GENERATION_METRIC_NAMES;

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
 * middle-truncates the document's ids to fit. The document follows the instruction, so it is encoded as a
 * continuation (no SentencePiece prefix space). An ids piece is taken as it is, so a truncated context is the frame's
 * count with an empty document plus the kept ids: exact. A whole document is encoded with the text beside it
 * (encodeSegment), which can merge across the boundary, so its count is measured, not summed.
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
  const ids = tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false, continuation: true });
  const overhead = encodeSegment(tokenizer, frame({ ids: [] }).context).length;
  const whole = frame({ text });
  const wholeTokens = encodeSegment(tokenizer, whole.context).length;
  if (maxContextTokens === undefined || wholeTokens <= maxContextTokens) return { ...whole, contextTokens: wholeTokens };
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
  /** LongBench's eval.py scores the first line of the prediction only (few-shot: trec, triviaqa, samsum, lsht). */
  readonly firstLineOnly?: boolean;
}

const ANSWER_ONLY = "Answer with the answer alone, in as few words as possible, without explanation.";

function qa(kind: string, maxNewTokens: number): LongBenchSpec {
  return {
    instruction: `Read the following ${kind}. A question about it comes afterwards.`,
    question: `Answer the question using the ${kind} above. ${ANSWER_ONLY}\n\nQuestion: {input}\nAnswer:`,
    metric: "longbench-qa-f1",
    maxNewTokens,
    chat: true,
  };
}

function summary(instruction: string, question: string, maxNewTokens: number): LongBenchSpec {
  return { instruction, question, metric: "longbench-rouge", maxNewTokens, chat: true };
}

/** Code completion (lcc, repobench-p): LongBench prompts without the chat template and asks for the next line. */
function code(question: string): LongBenchSpec {
  return { instruction: "Complete the code below.", question, metric: "longbench-code-sim", maxNewTokens: 64, chat: false };
}

/**
 * LongBench datasets: our own prompt wording in LongBench's structure (instruction, document, question), the
 * metric of LongBench's eval.py `dataset2metric` (its scorers ported in metrics/longbench.ts: qa_f1_score →
 * longbench-qa-f1, rouge_score → longbench-rouge, classification_score → longbench-classification, retrieval_score
 * → longbench-retrieval, retrieval_zh_score → longbench-retrieval-zh, count_score → longbench-count,
 * code_sim_score → longbench-code-sim), its dataset2maxlen generation lengths, pred.py's plain prompts for the
 * few-shot and code datasets and eval.py's first-line cut for the few-shot ones. multifieldqa_zh, dureader and
 * vcsum are scored with jieba word segmentation (qa_f1_zh_score, rouge_zh_score), which has no port here: pass
 * `metric` explicitly to run them anyway.
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
    metric: "longbench-qa-f1",
    maxNewTokens: 32,
    chat: false,
    firstLineOnly: true,
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
  samsum: {
    ...summary("Summarise dialogues. Some worked examples come first.", "{input}", 128),
    chat: false,
    firstLineOnly: true,
  },
  trec: {
    instruction: "Classify the type of each question. Some worked examples come first.",
    question: "{input}",
    metric: "longbench-classification",
    maxNewTokens: 64,
    chat: false,
    firstLineOnly: true,
  },
  lsht: {
    instruction: "请判断给定新闻的类别，下面是一些例子。",
    question: "{input}",
    metric: "longbench-classification",
    maxNewTokens: 64,
    chat: false,
    firstLineOnly: true,
  },
  passage_count: {
    instruction: "Read the following paragraphs; some of them may be duplicates of others.",
    question: "How many distinct paragraphs are there above? Answer with a single number.\n\nAnswer:",
    metric: "longbench-count",
    maxNewTokens: 32,
    chat: true,
  },
  passage_retrieval_en: {
    instruction: "Read the following numbered paragraphs. An abstract of one of them comes afterwards.",
    question: "Which paragraph is this abstract from? Answer in the form \"Paragraph N\".\n\nAbstract: {input}\n\nAnswer:",
    metric: "longbench-retrieval",
    maxNewTokens: 32,
    chat: true,
  },
  passage_retrieval_zh: {
    instruction: "以下是若干段落，之后是其中一段的摘要。",
    question: "这个摘要出自哪一段？请按\"段落N\"的格式回答。\n\n摘要：{input}\n\n答案：",
    metric: "longbench-retrieval-zh",
    maxNewTokens: 32,
    chat: true,
  },
  lcc: code("Next line of code:\n"),
  "repobench-p": code("{input}Next line of code:\n"),
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

/** The record's `all_classes`, which longbench-classification needs (trec, lsht; null in other datasets). */
function allClassesField(path: string, record: JsonlRecord): string[] {
  const v = record.value.all_classes;
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) {
    throw new RazorkvError(
      `${path}:${record.line}: field "all_classes" must be a non-empty list of strings (the labels metric "longbench-classification" looks for)`,
    );
  }
  return v as string[];
}

/** The retrieval metrics score the paragraph number in each answer; an answer without one fails LongBench's scorer. */
function checkLongBenchAnswers(path: string, record: JsonlRecord, metric: GenerationMetric, answers: string[]): string[] {
  const form = metric === "longbench-retrieval" ? /Paragraph \p{Nd}+/u : metric === "longbench-retrieval-zh" ? /段落\p{Nd}+/u : undefined;
  const bad = form === undefined ? undefined : answers.find((a) => !form.test(a));
  if (bad !== undefined) {
    const expected = metric === "longbench-retrieval" ? "Paragraph N" : "段落N";
    throw new RazorkvError(`${path}:${record.line}: field "answers": ${JSON.stringify(bad)} has no "${expected}" for metric "${metric}"`);
  }
  return answers;
}

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
      target: {
        kind: "generate",
        answers: checkLongBenchAnswers(params.file, record, metric, answers),
        maxNewTokens: params.maxNewTokens ?? spec.maxNewTokens,
        metric,
        ...(metric === "longbench-classification" && { allClasses: allClassesField(params.file, record) }),
        ...(spec.firstLineOnly === true && { firstLineOnly: true }),
      },
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
   * Default: RULER's own, by task name (scripts/eval/synthetic/constants.py): "ruler-match-part" (string_match_part,
   * any output found) for qa_* tasks, "ruler-match-all" (string_match_all, the fraction of outputs found) for the
   * others (niah_*, vt, cwe, fwe).
   */
  readonly metric?: GenerationMetric;
  /** Default 128, RULER's generation length for its NIAH tasks. */
  readonly maxNewTokens?: number;
  /**
   * Render `input` as the user turn of the model's chat template. Default true; set false for files that RULER
   * prepared with a model template already applied (its `--model_template_type` other than "base"): their
   * control-token strings are then parsed as that template's, the only case where a record's text is.
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
  const metric = checkMetric(task, params.metric) ?? rulerMetricOfTask(name);
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
    // The record's length describes the whole input; once the document is cut to ids, it no longer does.
    const truncated = segmentPieces(built.context).some((p) => p.ids !== undefined);
    // Without our chat template, `input` is a prompt RULER rendered with the model's template already applied
    // (--model_template_type): its control-token strings are that template's, so they are parsed as template text.
    const prepared = (pieces: readonly SegmentPiece[]): SegmentPiece[] => pieces.map((p) => (p.text !== undefined ? { template: p.text } : p));
    const chat = params.chat ?? true;
    return {
      id: `${task}/${index}`,
      task,
      contextLength: truncated ? built.contextTokens : length,
      context: chat ? built.context : prepared(built.context),
      query: chat ? built.query : prepared(built.query),
      target: { kind: "generate", answers: outputs, maxNewTokens, metric },
    } satisfies Sample;
  });
}
