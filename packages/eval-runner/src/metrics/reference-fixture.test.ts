import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { longBenchMetric, readLongBench, readRuler } from "../tasks/jsonl-tasks.js";
import { WordTokenizer } from "../tasks/testing/word-tokenizer.js";
import type { GenerationMetric, GenerationTarget } from "../tasks/types.js";
import { sequenceMatcherRatio } from "./difflib.js";
import {
  classificationScore,
  codeSimScore,
  countScore,
  qaF1Score,
  retrievalScore,
  retrievalZhScore,
  rougeScore,
} from "./longbench.js";
import { squadNormalize } from "./normalize.js";
import { rulerMatchAll, rulerMatchPart } from "./ruler.js";
import { scoreGeneration } from "./score.js";

/**
 * Every case of test/fixtures/metrics-reference.json, scored by the benchmarks' own Python (lm-evaluation-harness's
 * copies of LongBench's metrics.py and eval.py and of RULER's scoring; tools/metrics-reference/generate.py), must
 * score the same here within 1e-9. LongBench and RULER samples go through the readers, so the dataset → metric
 * mapping, all_classes and the few-shot first-line cut are checked too.
 */

interface Pair {
  fn: string;
  prediction: string;
  reference: string;
  allClasses?: string[];
  expected: number;
}
interface Fixture {
  versions: Record<string, string>;
  longbenchMetricOfDataset: Record<string, string>;
  rulerMetricOfTask: Record<string, "all" | "part">;
  normalizeAnswer: { text: string; expected: string }[];
  pairs: Pair[];
  longbench: { dataset: string; prediction: string; answers: string[]; allClasses: string[] | null; expected: number }[];
  ruler: { task: string; prediction: string; outputs: string[]; metric: "all" | "part"; expected: number; matchAll: number; matchPart: number }[];
}

const fixture = JSON.parse(
  readFileSync(new URL("../../test/fixtures/metrics-reference.json", import.meta.url), "utf8"),
) as Fixture;
const TOLERANCE = 1e-9;

const PAIR_FUNCTIONS: Record<string, (p: Pair) => number> = {
  qa_f1_score: (p) => qaF1Score(p.prediction, p.reference),
  rouge_score: (p) => rougeScore(p.prediction, p.reference),
  classification_score: (p) => classificationScore(p.prediction, p.reference, p.allClasses ?? []),
  retrieval_score: (p) => retrievalScore(p.prediction, p.reference),
  retrieval_zh_score: (p) => retrievalZhScore(p.prediction, p.reference),
  count_score: (p) => countScore(p.prediction, p.reference),
  code_sim_score: (p) => codeSimScore(p.prediction, p.reference),
  sequence_matcher_ratio: (p) => sequenceMatcherRatio(p.prediction, p.reference),
};

/** metrics.py function → our metric name; the jieba-based ones have none. */
const OURS: Record<string, GenerationMetric | undefined> = {
  qa_f1_score: "longbench-qa-f1",
  rouge_score: "longbench-rouge",
  classification_score: "longbench-classification",
  retrieval_score: "longbench-retrieval",
  retrieval_zh_score: "longbench-retrieval-zh",
  count_score: "longbench-count",
  code_sim_score: "longbench-code-sim",
  qa_f1_zh_score: undefined,
  rouge_zh_score: undefined,
};

const dir = mkdtempSync(join(tmpdir(), "razorkv-metrics-ref-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`metrics against the benchmarks' Python (lm_eval ${fixture.versions.lm_eval})`, () => {
  it("normalises answers as LongBench's normalize_answer", () => {
    for (const c of fixture.normalizeAnswer) expect([c.text, squadNormalize(c.text)]).toEqual([c.text, c.expected]);
  });

  it("scores every (prediction, reference) pair as metrics.py", () => {
    expect(fixture.pairs.length).toBeGreaterThan(100);
    for (const p of fixture.pairs) {
      const fn = PAIR_FUNCTIONS[p.fn];
      expect(fn, p.fn).toBeDefined();
      const got = fn(p);
      expect(Math.abs(got - p.expected), `${p.fn}(${JSON.stringify(p.prediction)}, ${JSON.stringify(p.reference)}) = ${got}, expected ${p.expected}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it("maps LongBench's datasets to the metrics of its dataset2metric", () => {
    for (const [dataset, fn] of Object.entries(fixture.longbenchMetricOfDataset)) {
      expect([dataset, longBenchMetric(dataset)]).toEqual([dataset, OURS[fn]]);
    }
  });

  it("scores LongBench samples read from JSONL as LongBench's eval.py", () => {
    const tok = new WordTokenizer();
    fixture.longbench.forEach((c, i) => {
      const file = join(dir, `longbench-${i}.jsonl`);
      const record = { input: "Question?", context: "Some document.", answers: c.answers, length: 3, dataset: c.dataset, all_classes: c.allClasses, _id: `c${i}` };
      writeFileSync(file, JSON.stringify(record) + "\n");
      const [sample] = readLongBench({ file, maxContextTokens: 1000 }, tok);
      const got = scoreGeneration(sample.target as GenerationTarget, c.prediction);
      expect(Math.abs(got - c.expected), `${c.dataset} ${JSON.stringify(c.prediction)}: ${got}, expected ${c.expected}`).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it("scores RULER samples read from JSONL with each task's metric, as RULER", () => {
    const tok = new WordTokenizer();
    fixture.ruler.forEach((c, i) => {
      const taskDir = join(dir, `ruler-${i}`, c.task);
      mkdirSync(taskDir, { recursive: true });
      const file = join(taskDir, "validation.jsonl");
      writeFileSync(file, JSON.stringify({ index: i, input: "Some haystack.\nWhat is hidden?", outputs: c.outputs, length: 5 }) + "\n");
      const [sample] = readRuler({ file }, tok);
      const target = sample.target as GenerationTarget;
      expect([c.task, target.metric]).toEqual([c.task, c.metric === "all" ? "ruler-match-all" : "ruler-match-part"]);
      const where = `${c.task} ${JSON.stringify(c.prediction)}`;
      expect(scoreGeneration(target, c.prediction), where).toBe(c.expected);
      expect(rulerMatchAll(c.prediction, c.outputs), where).toBe(c.matchAll);
      expect(rulerMatchPart(c.prediction, c.outputs), where).toBe(c.matchPart);
    });
    expect(Object.keys(fixture.rulerMetricOfTask).length).toBeGreaterThanOrEqual(13);
  });
});
