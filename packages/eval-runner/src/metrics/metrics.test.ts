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
