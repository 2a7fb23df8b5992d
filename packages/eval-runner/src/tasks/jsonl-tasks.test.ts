import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { registerMissing, SHARED_DIR, sharedDataMissing } from "@razorkv/core/testing";
import { longBenchMetric, readLongBench, readRuler, truncateMiddle } from "./jsonl-tasks.js";
import { encodeSegment, segmentPieces, segmentText } from "./prompt.js";
import { segmentChars } from "./testing/segments.js";
import { WordTokenizer } from "./testing/word-tokenizer.js";
import type { GenerationMetric, GenerationTarget, Segment } from "./types.js";
import { scoreGeneration } from "../metrics/score.js";

const MULTI_NEWS = join(SHARED_DIR, "data", "longbench", "multi_news.jsonl");
const text = segmentChars;

const dir = mkdtempSync(join(tmpdir(), "razorkv-jsonl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("truncateMiddle", () => {
  it("keeps the first ⌊max/2⌋ and last ⌈max/2⌉ tokens", () => {
    const tok = new WordTokenizer();
    const cut = truncateMiddle(tok, "one two three four five six seven", 5);
    expect(cut.truncated).toBe(true);
    expect(cut.ids).toEqual(tok.encode("one two five six seven"));
    expect(truncateMiddle(tok, "one two three", 5)).toEqual({ ids: tok.encode("one two three"), truncated: false });
  });
});

describe("LongBench reader on multi_news.jsonl", () => {
  const missing = sharedDataMissing(MULTI_NEWS);
  if (missing) return registerMissing("LongBench's multi_news.jsonl", missing);
  const records = readFileSync(MULTI_NEWS, "utf8").split("\n").slice(0, 3).map((l) => JSON.parse(l));

  it("reads the first records: answers, LongBench's ROUGE-L and 512-token summaries, stable ids", () => {
    const samples = readLongBench({ file: MULTI_NEWS, maxContextTokens: 100_000, limit: 3 }, new WordTokenizer());
    expect(samples).toHaveLength(3);
    samples.forEach((s, i) => {
      expect(s.id).toBe(`longbench/multi_news/L100000/${records[i]._id}`);
      expect(s.task).toBe("longbench/multi_news");
      expect(s.target).toEqual({ kind: "generate", answers: records[i].answers, maxNewTokens: 512, metric: "longbench-rouge" });
      // under the budget: the whole document, then the question in the query
      expect(text(s.context)).toContain(records[i].context.trim());
      expect(text(s.context).endsWith(records[i].context.trim())).toBe(true);
      expect(text(s.query)).toMatch(/^\n\nNow write a one-page summary of all the news above\.\n\nSummary:<\|im_end\|>\n<\|im_start\|>assistant\n$/);
    });
    expect(longBenchMetric("multi_news")).toBe("longbench-rouge");
    expect(longBenchMetric("hotpotqa")).toBe("longbench-qa-f1");
    expect(longBenchMetric("lcc")).toBe("longbench-code-sim");
    expect(longBenchMetric("dureader")).toBeUndefined(); // jieba-segmented rouge_zh_score: no port
  });

  it("truncates long documents in the middle to the context budget, keeping head and tail", () => {
    const tok = new WordTokenizer();
    const [s] = readLongBench({ file: MULTI_NEWS, maxContextTokens: 1000, limit: 1 }, tok);
    // pieces are tokenized separately, so the fit is exact
    expect(encodeSegment(tok, s.context)).toHaveLength(1000);
    expect(s.contextLength).toBe(1000);
    const doc: string = records[0].context.trim();
    const context = segmentText(tok, s.context);
    expect(context).toContain(doc.slice(0, 200));
    expect(context.endsWith(doc.slice(-200))).toBe(true);
    expect(context).not.toContain(doc.slice(doc.length / 2 - 100, doc.length / 2 + 100));
  });

  it("takes a metric override and plain prompts", () => {
    const [s] = readLongBench({ file: MULTI_NEWS, maxContextTokens: 4000, limit: 1, metric: "token-f1", chat: false, maxNewTokens: 64 }, new WordTokenizer());
    expect(s.target).toMatchObject({ metric: "token-f1", maxNewTokens: 64 });
    expect(text(s.context)).toMatch(/^Read the following news articles\./);
    expect(text(s.query)).toBe("\n\nNow write a one-page summary of all the news above.\n\nSummary:");
  });
});

describe("LongBench reader errors", () => {
  const tok = new WordTokenizer();
  it("needs a metric for datasets without one, and names file, line and field", () => {
    const file = join(dir, "vcsum.jsonl");
    const record = { input: "", context: "会议 记录", answers: ["总结"], length: 4, dataset: "vcsum", _id: "x1", all_classes: null };
    writeFileSync(file, JSON.stringify(record) + "\n\n" + JSON.stringify({ ...record, answers: "oops" }) + "\n{not json\n");
    expect(() => readLongBench({ file, maxContextTokens: 100, limit: 1 }, tok)).toThrow(`${file}:1: LongBench dataset "vcsum" has no built-in metric here; set parameter "metric"`);
    const [s] = readLongBench({ file, maxContextTokens: 100, limit: 1, metric: "rouge-l" }, tok);
    expect(s.id).toBe("longbench/vcsum/L100/x1");
    expect(() => readLongBench({ file, maxContextTokens: 100, limit: 2, metric: "rouge-l" }, tok)).toThrow(`${file}:3: field "answers" must be a non-empty list of strings`);
    expect(() => readLongBench({ file, maxContextTokens: 100, metric: "rouge-l" }, tok)).toThrow(new RegExp(`${file}:4: not valid JSON`));
  });
  it("names a missing file and a missing budget", () => {
    const file = join(dir, "absent.jsonl");
    expect(() => readLongBench({ file, maxContextTokens: 100 }, tok)).toThrow(RazorkvError);
    expect(() => readLongBench({ file, maxContextTokens: 100 }, tok)).toThrow(`longbench: parameter "file": cannot read ${file} (ENOENT)`);
    expect(() => readLongBench({ file } as never, tok)).toThrow(/parameter "maxContextTokens" must be a positive integer/);
  });
});

describe("LongBench datasets scored as LongBench scores them", () => {
  const tok = new WordTokenizer();
  const write = (name: string, records: object[]): string => {
    const file = join(dir, `${name}.jsonl`);
    writeFileSync(file, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    return file;
  };
  const base = { input: "Question: What is x?\nType:", context: "Question: Who is y?\nType: Individual", length: 10, language: "en", _id: "t1" };
  const TREC = ["Individual", "Other location", "City", "Description of something", "Description"];

  it("maps every dataset of LongBench's dataset2metric that has no jieba scorer", () => {
    const expected: Record<string, GenerationMetric> = {
      narrativeqa: "longbench-qa-f1", qasper: "longbench-qa-f1", multifieldqa_en: "longbench-qa-f1", hotpotqa: "longbench-qa-f1",
      "2wikimqa": "longbench-qa-f1", musique: "longbench-qa-f1", triviaqa: "longbench-qa-f1",
      gov_report: "longbench-rouge", qmsum: "longbench-rouge", multi_news: "longbench-rouge", samsum: "longbench-rouge",
      trec: "longbench-classification", lsht: "longbench-classification",
      passage_retrieval_en: "longbench-retrieval", passage_retrieval_zh: "longbench-retrieval-zh", passage_count: "longbench-count",
      lcc: "longbench-code-sim", "repobench-p": "longbench-code-sim",
    };
    for (const [dataset, metric] of Object.entries(expected)) expect([dataset, longBenchMetric(dataset)]).toEqual([dataset, metric]);
    for (const dataset of ["multifieldqa_zh", "dureader", "vcsum"]) expect(longBenchMetric(dataset)).toBeUndefined();
  });

  it("carries all_classes and the few-shot first-line cut on trec's target, and scores with them", () => {
    const file = write("trec", [{ ...base, dataset: "trec", answers: ["Other location"], all_classes: TREC }]);
    const [s] = readLongBench({ file, maxContextTokens: 1000 }, tok);
    const target = s.target as GenerationTarget;
    expect(target).toEqual({
      kind: "generate", answers: ["Other location"], maxNewTokens: 64, metric: "longbench-classification", allClasses: TREC, firstLineOnly: true,
    });
    expect(scoreGeneration(target, "Other location\nQuestion: Where?\nType: City")).toBe(1); // only the first line counts
    expect(scoreGeneration(target, "\n\nCity or Other location")).toBe(0.5); // two classes found
    expect(scoreGeneration({ ...target, firstLineOnly: undefined }, "Other location\nType: City")).toBe(0.5);
  });

  it("cuts triviaqa and samsum predictions to their first line, not the others", () => {
    const qa = { ...base, answers: ["Paris"], all_classes: null };
    const trivia = readLongBench({ file: write("triviaqa", [{ ...qa, dataset: "triviaqa" }]), maxContextTokens: 1000 }, tok)[0].target as GenerationTarget;
    const hotpot = readLongBench({ file: write("hotpotqa", [{ ...qa, dataset: "hotpotqa" }]), maxContextTokens: 1000 }, tok)[0].target as GenerationTarget;
    const samsum = readLongBench({ file: write("samsum", [{ ...qa, dataset: "samsum" }]), maxContextTokens: 1000 }, tok)[0].target as GenerationTarget;
    expect([trivia.firstLineOnly, samsum.firstLineOnly, hotpot.firstLineOnly]).toEqual([true, true, undefined]);
    expect(scoreGeneration(trivia, "Paris\nQuestion: capital of Italy?\nAnswer: Rome")).toBe(1);
    expect(scoreGeneration(hotpot, "Paris\nQuestion: capital of Italy?\nAnswer: Rome")).toBeLessThan(1);
  });

  it("names the record and field when all_classes or a paragraph number is missing", () => {
    const trec = write("trec-bad", [{ ...base, dataset: "trec", answers: ["City"], all_classes: null }]);
    expect(() => readLongBench({ file: trec, maxContextTokens: 1000 }, tok)).toThrow(
      `${trec}:1: field "all_classes" must be a non-empty list of strings (the labels metric "longbench-classification" looks for)`,
    );
    expect(readLongBench({ file: trec, maxContextTokens: 1000, metric: "exact" }, tok)[0].target).not.toHaveProperty("allClasses");
    const retrieval = write("pr", [{ ...base, dataset: "passage_retrieval_en", answers: ["Paragraph 3"], all_classes: null }, { ...base, dataset: "passage_retrieval_en", answers: ["3"], all_classes: null }]);
    expect(readLongBench({ file: retrieval, maxContextTokens: 1000, limit: 1 }, tok)[0].target).toMatchObject({ metric: "longbench-retrieval" });
    expect(() => readLongBench({ file: retrieval, maxContextTokens: 1000 }, tok)).toThrow(`${retrieval}:2: field "answers": "3" has no "Paragraph N" for metric "longbench-retrieval"`);
  });
});

describe("RULER reader", () => {
  const taskDir = join(dir, "niah_single_2");
  mkdirSync(taskDir, { recursive: true });
  const file = join(taskDir, "validation.jsonl");
  const instruction = "A magic number is hidden in the text below. Remember it.";
  const rows = [
    {
      index: 0,
      input: `${instruction}\nThe grass is green. The magic number for tall-tree is: 4821937. The sky is blue.\nWhat is the magic number for tall-tree in the text?`,
      outputs: ["4821937"],
      length: 48,
      length_w_model_temp: 60,
      answer_prefix: " The magic number for tall-tree in the text is",
    },
    {
      index: 1,
      input: `${instruction}\nThe sun is yellow. The magic number for red-door is: 1112223.\n\nQuestion: which number belongs to red-door?`,
      outputs: ["1112223", "1112223."],
      length: 40,
      query: "Question: which number belongs to red-door?",
    },
  ];
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");

  it("splits input at the last line, takes the task name from the directory, appends answer_prefix", () => {
    const tok = new WordTokenizer();
    const samples = readRuler({ file }, tok);
    expect(samples.map((s) => s.id)).toEqual(["ruler/niah_single_2/0", "ruler/niah_single_2/1"]);
    const [a, b] = samples;
    expect(a.contextLength).toBe(48);
    expect(text(a.context)).toMatch(/<\|im_start\|>user\nA magic number is hidden .* The sky is blue\.$/s);
    expect(text(a.query)).toBe("\nWhat is the magic number for tall-tree in the text?<|im_end|>\n<|im_start|>assistant\nThe magic number for tall-tree in the text is");
    expect(a.target).toEqual({ kind: "generate", answers: ["4821937"], maxNewTokens: 128, metric: "ruler-match-all" });
    // a record's own query field decides the split; whitespace before it moves to the query
    expect(text(b.context).endsWith("red-door is: 1112223.")).toBe(true);
    expect(text(b.query)).toBe("\n\nQuestion: which number belongs to red-door?<|im_end|>\n<|im_start|>assistant\n");
    expect((b.target as GenerationTarget).answers).toEqual(["1112223", "1112223."]);
  });

  it("plain prompts follow RULER: input, then answer_prefix", () => {
    const [a] = readRuler({ file, chat: false, task: "niah", limit: 1, maxNewTokens: 16, metric: "exact" }, new WordTokenizer());
    expect(a.id).toBe("ruler/niah/0");
    expect(text(a.context) + text(a.query)).toBe(rows[0].input + rows[0].answer_prefix);
    expect(a.target).toMatchObject({ maxNewTokens: 16, metric: "exact" });
    // a file RULER prepared with the model's template holds that template's control tokens: they are parsed
    const pieces = [a.context, a.query].flatMap((s) => segmentPieces(s));
    expect(pieces.every((p) => p.template !== undefined || p.ids !== undefined)).toBe(true);
  });

  it("reports a record it cannot split, and bad fields", () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, JSON.stringify({ index: 0, input: "no newline here", outputs: ["x"], length: 3 }) + "\n");
    expect(() => readRuler({ file: bad }, new WordTokenizer())).toThrow(`${bad}:1: "input" has no "\\n" after its start (parameter "querySplit")`);
    writeFileSync(bad, JSON.stringify({ index: 0, input: "a\nb", outputs: [], length: 3 }) + "\n");
    expect(() => readRuler({ file: bad }, new WordTokenizer())).toThrow(`${bad}:1: field "outputs" must be a non-empty list of strings`);
    writeFileSync(bad, JSON.stringify({ index: 0, input: "a\nb", outputs: ["b"] }) + "\n");
    expect(() => readRuler({ file: bad }, new WordTokenizer())).toThrow(`${bad}:1: field "length" must be a positive integer`);
  });

  it("scores each task as RULER does: string_match_part for qa, string_match_all for the rest; metric overrides", () => {
    const tok = new WordTokenizer();
    const metricOf = (task: string, metric?: GenerationMetric) => (readRuler({ file, task, limit: 1, metric }, tok)[0].target as GenerationTarget).metric;
    expect(metricOf("qa_1")).toBe("ruler-match-part");
    expect(metricOf("qa_squad")).toBe("ruler-match-part");
    for (const task of ["niah_multivalue", "niah_multikey_3", "vt", "cwe", "fwe", "quality"]) expect(metricOf(task)).toBe("ruler-match-all");
    expect(metricOf("qa_1", "ruler-match-all")).toBe("ruler-match-all");
    expect(() => metricOf("qa_1", "f1" as GenerationMetric)).toThrow(/ruler\/qa_1: parameter "metric" must be one of exact, contains, .*ruler-match-part; found "f1"/);
  });

  it("reports the truncated context's token count as contextLength, the record's length otherwise", () => {
    const tok = new WordTokenizer();
    const [whole] = readRuler({ file, limit: 1, maxContextTokens: 1000 }, tok);
    expect(whole.contextLength).toBe(48); // the record's length: RULER's count of the whole input
    const [cut] = readRuler({ file, limit: 1, maxContextTokens: 20 }, tok); // 13 of them the chat header
    expect(encodeSegment(tok, cut.context)).toHaveLength(20);
    expect(cut.contextLength).toBe(20);
  });
});
