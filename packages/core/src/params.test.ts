import { describe, expect, it } from "vitest";
import { RazorkvError } from "./errors.js";
import { defaultParams, param, parseParams } from "./params.js";

const schema = {
  window: param.integer({ default: 32, min: 1, doc: "observation window" }),
  kernel: param.integer({ default: 7, min: 1, doc: "pooling kernel", check: (v) => (v % 2 === 1 ? null : "expected an odd kernel") }),
  fraction: param.number({ default: 0.5, min: 0, max: 1, doc: "split" }),
  pooling: param.choice({ choices: ["max", "avg"], default: "max", doc: "pooling" }),
  compensation: param.boolean({ default: true, doc: "slot" }),
  profile: param.custom<{ path: string } | null>({
    default: null,
    doc: "file",
    parse: (v) => {
      if (typeof v !== "string") throw new Error("expected a path");
      return { path: v };
    },
  }),
};

describe("policy parameters", () => {
  it("fills defaults and keeps given values", () => {
    expect(defaultParams(schema)).toEqual({ window: 32, kernel: 7, fraction: 0.5, pooling: "max", compensation: true, profile: null });
    const p = parseParams(schema, { window: 64, pooling: "avg", profile: "x.json" }, "pkg");
    expect(p).toEqual({ window: 64, kernel: 7, fraction: 0.5, pooling: "avg", compensation: true, profile: { path: "x.json" } });
  });

  it("names the package and the field in every error", () => {
    const bad: [unknown, RegExp][] = [
      [{ window: 0 }, /^pkg: params\.window: expected an integer ≥ 1, got 0$/],
      [{ window: 3.5 }, /params\.window: expected an integer ≥ 1, got 3\.5/],
      [{ window: "32" }, /params\.window: expected an integer ≥ 1, got "32"/],
      [{ kernel: 6 }, /params\.kernel: expected an odd kernel, got 6/],
      [{ fraction: 1.5 }, /params\.fraction: expected a number in \[0, 1\], got 1\.5/],
      [{ pooling: "mean" }, /params\.pooling: expected one of "max", "avg", got "mean"/],
      [{ compensation: "yes" }, /params\.compensation: expected true or false/],
      [{ profile: 3 }, /params\.profile: expected a path/],
      [{ windw: 3 }, /pkg: unknown parameter "windw"; known parameters: window, kernel/],
      [[1, 2], /pkg: params must be an object/],
    ];
    for (const [input, message] of bad) {
      expect(() => parseParams(schema, input, "pkg")).toThrow(RazorkvError);
      expect(() => parseParams(schema, input, "pkg")).toThrow(message);
    }
  });
});
