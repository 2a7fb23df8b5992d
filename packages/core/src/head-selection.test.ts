import { describe, expect, it } from "vitest";
import { HEAD_SELECTION_FORMAT, kvHeadScore, parseHeadSelection, type HeadSelection } from "./head-selection.js";

const selection: HeadSelection = {
  format: HEAD_SELECTION_FORMAT,
  policy: "some-policy",
  title: "Some heads",
  description: "scores measured on something",
  rule: "top 1 by a",
  model: "tiny",
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  scores: [
    { kind: "a", description: "per query head", per: "query-head", groupReduce: "max", values: [[0.1, 0.4, 0.2, 0.3], [0, 0, 0.9, 0.5]] },
    { kind: "b", description: "per KV head", per: "kv-head", values: [[1, 2], [3, 4]] },
  ],
  protected: [{ layer: 1, kvHead: 1 }],
  params: { fraction: 0.25 },
};

describe("head selections", () => {
  it("a KV head's score: its own, or its group's max or mean", () => {
    expect(kvHeadScore(selection, selection.scores[0], 0, 0)).toBe(0.4);
    expect(kvHeadScore(selection, selection.scores[0], 1, 1)).toBe(0.9);
    expect(kvHeadScore(selection, { ...selection.scores[0], groupReduce: undefined }, 0, 1)).toBeCloseTo(0.25, 15);
    expect(kvHeadScore(selection, selection.scores[1], 1, 0)).toBe(3);
  });

  it("parses a valid file and names the field of an invalid one", () => {
    expect(parseHeadSelection(JSON.parse(JSON.stringify(selection)), "h.json")).toEqual(selection);
    const bad = (patch: Record<string, unknown>) => () => parseHeadSelection({ ...selection, ...patch }, "heads/x.json");
    expect(bad({ format: "v0" })).toThrow(/^heads\/x\.json: format: expected "razorkv\.head-selection\/1", found "v0"/);
    expect(bad({ numHeads: 3 })).toThrow(/numHeads: expected a multiple of numKvHeads \(2\), found 3/);
    expect(bad({ scores: [{ ...selection.scores[0], values: [[0, 0, 0, 0]] }] })).toThrow(/scores\[0\]\.values: expected an array of 2 layers/);
    expect(bad({ scores: [{ ...selection.scores[1], values: [[1, 2], [3]] }] })).toThrow(/scores\[0\]\.values\[1\]: expected 2 finite numbers \(one per kv-head\), found \[3\]/);
    expect(bad({ scores: [selection.scores[1], selection.scores[1]] })).toThrow(/scores: expected distinct kinds/);
    expect(bad({ protected: [{ layer: 2, kvHead: 0 }] })).toThrow(/protected\[0\]: expected \{layer in \[0, 2\), kvHead in \[0, 2\)\}/);
    expect(bad({ usedBy: [1] })).toThrow(/usedBy: expected an array of policy labels/);
  });
});
