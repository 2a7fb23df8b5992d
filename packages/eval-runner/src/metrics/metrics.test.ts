import { describe, expect, it } from "vitest";
import {
  containsAllFraction,
  containsMatch,
  exactMatch,
  higherIsBetter,
  lcsLength,
  meanNll,
  normalizeAnswer,
  perplexity,
  pooledMeanNll,
  rougeL,
  scoreContinuation,
  scoreGeneration,
  tokenAccuracy,
  tokenF1,
  classificationScore,
  codeSimScore,
  countScore,
  fuzzRatio,
  longBenchFirstLine,
  qaF1Score,
  retrievalScore,
  rougeScore,
  rulerMatchAll,
  rulerMatchPart,
  rulerMetricOfTask,
  squadNormalize,
} from "./index.js";

describe("normalizeAnswer", () => {
  it("lower-cases, deletes ASCII punctuation and articles, collapses whitespace (SQuAD)", () => {
    expect(normalizeAnswer("  The  Cat's hat!\n")).toBe("cats hat");
    expect(normalizeAnswer("An apple, a pear and THE plum.")).toBe("apple pear and plum");
    expect(normalizeAnswer("theory of anything")).toBe("theory of anything"); // articles only as whole words
  });
  it("turns non-ASCII punctuation into a word break", () => {
    expect(normalizeAnswer("morning—though “quoted”… it’s")).toBe("morning though quoted its");
  });
  it("finds articles at Unicode word boundaries, as Python's re does: \"ça\" keeps its \"a\"", () => {
    expect(normalizeAnswer("ça")).toBe("ça");
    expect(squadNormalize("Ça, c'est la vie")).toBe("ça cest la vie");
    expect(squadNormalize("über a straße the")).toBe("über straße");
    expect(squadNormalize("the\u0301 cat")).toBe("\u0301 cat"); // a combining mark is not a word character
    expect(squadNormalize("“quoted” — text")).toBe("“quoted” — text"); // SQuAD deletes ASCII punctuation only
  });
});

describe("match metrics", () => {
  it("exact match after normalisation, max over references", () => {
    expect(exactMatch("The Eiffel Tower.", ["eiffel tower"])).toBe(1);
    expect(exactMatch("Eiffel Tower", ["Louvre", "the eiffel  tower"])).toBe(1);
    expect(exactMatch("Eiffel Tower in Paris", ["Eiffel Tower"])).toBe(0);
  });
  it("contains match is a substring test on normalised text", () => {
    expect(containsMatch(" The pass key is 68431.", ["68431"])).toBe(1);
    expect(containsMatch("The pass key is 68431.", ["99999", "pass key"])).toBe(1);
    expect(containsMatch("The pass key is 68431.", ["99999"])).toBe(0);
    expect(containsMatch("anything", [""])).toBe(0);
  });
  it("contains-all counts the fraction of references found", () => {
    expect(containsAllFraction("numbers: 123, 456 and 789", ["123", "456", "000", "789"])).toBe(0.75);
  });
});

describe("token F1", () => {
  it("matches a hand-computed bag-of-words F1", () => {
    // normalised: [cat sat on mat] vs [cat sat on hat]: 3 common, P = R = 3/4.
    expect(tokenF1("The cat sat on the mat.", ["A cat sat on a hat"])).toBeCloseTo(0.75, 12);
    // [cat cat dog] vs [cat dog dog mouse]: common = 1 cat + 1 dog = 2, P = 2/3, R = 1/2, F = 4/7.
    expect(tokenF1("cat cat dog", ["cat dog dog mouse"])).toBeCloseTo(4 / 7, 12);
  });
  it("takes the max over references and is 0 without overlap", () => {
    expect(tokenF1("cat cat dog", ["cat dog dog mouse", "dog cat cat"])).toBe(1);
    expect(tokenF1("zebra", ["cat"])).toBe(0);
    expect(tokenF1("", ["cat"])).toBe(0);
  });
  it("scores an empty prediction 0, also against a reference that normalises to nothing (SQuAD v1.1, LongBench)", () => {
    expect(tokenF1("", ["A"])).toBe(0);
    expect(tokenF1("The", ["A"])).toBe(0);
    expect(tokenF1("", [""])).toBe(0);
    expect(qaF1Score("", "A")).toBe(0);
    expect(qaF1Score("The", "A")).toBe(0);
    expect(qaF1Score("ça", "ça")).toBe(1);
    expect(qaF1Score("ça", "ç")).toBe(0);
  });
});

describe("LongBench scorers", () => {
  it("ROUGE-L of the rouge package: sentences split at '.', distinct words, case-sensitive, 0 on empty", () => {
    // one sentence each: m = 5 distinct words, n = 4, LCS(w1 w2 w3 w4 w5, w1 w2 w6 w5) = {w1 w2 w5}: R = 3/5, P = 3/4.
    expect(rougeScore("w1 w2 w6 w5", "w1 w2 w3 w4 w5")).toBeCloseTo(2 * ((0.75 * 0.6) / (0.75 + 0.6 + 1e-8)), 15);
    expect(rougeScore("Cat", "cat")).toBe(0);
    expect(rougeScore("", "x")).toBe(0);
    expect(rougeScore("...", "...")).toBe(0); // no sentences: the package raises, LongBench scores 0
  });
  it("classification: matched classes contained in the reference drop out, a right class among n scores 1/n", () => {
    const classes = ["Description", "Description of something", "City", "Other location"];
    expect(classificationScore("Description of something", "Description of something", classes)).toBe(1);
    expect(classificationScore("City or Other location", "City", classes)).toBe(0.5);
    expect(classificationScore("Country", "City", classes)).toBe(0);
    expect(classificationScore("A B C", "A B C", ["A B C", "A", "B"])).toBe(0.5); // Python's remove-while-iterating skips "B"
  });
  it("retrieval and count: the share of numbers in the prediction that are right", () => {
    expect(retrievalScore("Paragraph 12 or Paragraph 3", "Paragraph 12")).toBe(0.5);
    expect(retrievalScore("Paragraph 012", "Paragraph 12")).toBe(0);
    expect(retrievalScore("no idea", "Paragraph 12")).toBe(0);
    expect(() => retrievalScore("1", "twelve")).toThrow('longbench retrieval: answer "twelve" has no paragraph number; expected "Paragraph N"');
    expect(countScore("7 7 8", "7")).toBeCloseTo(2 / 3, 15);
  });
  it("code similarity: fuzzywuzzy's ratio on the first line that is not blank, a comment or a fence", () => {
    expect(codeSimScore("```python\n# next\n\n    x = 1\ny = 2", "    x = 1")).toBe(1);
    expect(codeSimScore("// only comments", "x = 1")).toBe(0);
    // difflib matches "abc" (M = 3 of 16 characters): 100 * 6/16 = 37.5, which Python rounds to 38; 12.5 rounds to 12.
    expect(fuzzRatio("abcxxxxx", "abcyyyyy")).toBe(38);
    expect(fuzzRatio("abcdefgh", "aijklmno")).toBe(12);
    expect(fuzzRatio("", "")).toBe(100);
  });
  it("few-shot cut: the first line after leading newlines", () => {
    expect(longBenchFirstLine("\n\nParis\nQuestion: next")).toBe("Paris");
    expect(longBenchFirstLine(" \nParis")).toBe(" ");
  });
});

describe("RULER scorers", () => {
  it("lower-cased substring tests on the prediction, not normalised", () => {
    expect(rulerMatchAll(" 1111111, 2222222 and 4444444.", ["1111111", "2222222", "3333333", "4444444"])).toBe(0.75);
    expect(rulerMatchPart("It was in Paris.", ["London", "paris"])).toBe(1);
    expect(rulerMatchPart("nothing", ["London", "Paris"])).toBe(0);
    expect(rulerMatchAll("ÇA", ["ça"])).toBe(1);
    expect(rulerMatchAll("the cat", ["a cat"])).toBe(0); // no article removal
    expect(rulerMatchAll("don't", ["don't"])).toBe(1); // nor punctuation removal
  });
  it("picks RULER's metric by task name", () => {
    expect(rulerMetricOfTask("qa_2")).toBe("ruler-match-part");
    expect(rulerMetricOfTask("niah_multivalue")).toBe("ruler-match-all");
    expect(rulerMetricOfTask("quality")).toBe("ruler-match-all");
  });
});

describe("ROUGE-L", () => {
  it("computes the LCS of word sequences", () => {
    expect(lcsLength("ABCBDAB".split(""), "BDCABA".split(""))).toBe(4); // CLRS's example: BCBA
    expect(lcsLength([], ["a"])).toBe(0);
  });
  it("is the LCS F-measure over normalised words", () => {
    // LCS(one two three four, one three five four six) = one three four: P = 3/4, R = 3/5, F = 2/3.
    expect(rougeL("One two three four.", ["one three five four six"])).toBeCloseTo(2 / 3, 12);
    // [police killed gunman] vs [gunman was killed by police]: LCS 1, P = 1/3, R = 1/5, F = 1/4.
    expect(rougeL("Police killed the gunman", ["The gunman was killed by police"])).toBeCloseTo(0.25, 12);
    // max over references: [b c] vs [x y] scores 0, vs [c] LCS 1, P = 1/2, R = 1, F = 2/3.
    expect(rougeL("b c", ["x y", "c"])).toBeCloseTo(2 / 3, 12);
    expect(rougeL("", ["c"])).toBe(0);
  });
});

describe("likelihood helpers", () => {
  it("mean NLL, perplexity and token-weighted pooling", () => {
    expect(meanNll([-1, -2, -3])).toBe(2);
    expect(perplexity(Math.log(5))).toBeCloseTo(5, 12);
    expect(pooledMeanNll([{ meanNll: 1, tokens: 1 }, { meanNll: 4, tokens: 3 }])).toBe(3.25);
    expect(() => meanNll([])).toThrow(/no log-probabilities/);
  });
  it("token accuracy", () => {
    expect(tokenAccuracy([1, 2, 3, 4], [1, 0, 3, 0])).toBe(0.5);
    expect(() => tokenAccuracy([1], [1, 2])).toThrow(/1 predictions for 2 target tokens/);
  });
});

describe("scoring targets", () => {
  it("scores a generation with the target's metric", () => {
    const target = { kind: "generate", answers: ["68431"], maxNewTokens: 8, metric: "contains" } as const;
    expect(scoreGeneration(target, " 68431.\n")).toBe(1);
    expect(scoreGeneration({ ...target, metric: "exact" }, " 68431.\n")).toBe(1);
    expect(scoreGeneration({ ...target, metric: "token-f1", answers: ["cat sat"] }, "the cat")).toBeCloseTo(2 / 3, 12);
  });
  it("scores LongBench metrics on the text as generated, after the few-shot cut", () => {
    const target = { kind: "generate", answers: ["        return x"], maxNewTokens: 64, metric: "longbench-code-sim" } as const;
    expect(scoreGeneration(target, "\n        return x\n")).toBe(1); // indentation kept
    const trec = { kind: "generate", answers: ["City"], maxNewTokens: 64, metric: "longbench-classification", allClasses: ["City", "Country"] } as const;
    expect(scoreGeneration({ ...trec, firstLineOnly: true }, "City\nQuestion: x\nType: Country")).toBe(1);
    expect(scoreGeneration(trec, "City\nQuestion: x\nType: Country")).toBe(0.5);
    expect(() => scoreGeneration({ ...trec, allClasses: undefined }, "City")).toThrow(/"longbench-classification" needs the target's allClasses/);
    expect(scoreGeneration({ kind: "generate", answers: ["A"], maxNewTokens: 8, metric: "longbench-qa-f1" }, "  ")).toBe(0);
  });
  it("scores a continuation by NLL or token accuracy", () => {
    const observed = { targetLogProbs: [-0.5, -1.5], greedyIds: [7, 9], targetIds: [7, 8] };
    expect(scoreContinuation({ kind: "continuation", continuation: { ids: [7, 8] }, metric: "nll" }, observed)).toBe(1);
    expect(
      scoreContinuation({ kind: "continuation", continuation: { ids: [7, 8] }, metric: "token-accuracy" }, observed),
    ).toBe(0.5);
    expect(higherIsBetter("nll")).toBe(false);
    expect(higherIsBetter("rouge-l")).toBe(true);
  });
});
