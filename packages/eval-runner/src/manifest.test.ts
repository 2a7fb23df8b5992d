import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RazorkvError } from "@razorkv/core";
import { loadManifest, parseManifest } from "./manifest.js";
import { checkPolicies } from "./experiment.js";

const dir = mkdtempSync(join(tmpdir(), "razorkv-manifest-"));
const good = `name: t
seed: 1
models: [smollm2-135m-instruct]
budgets: [0.5, {compressionRatio: 0.7}, {tokens: 256}]
policies:
  - name: full
    budgets: [1.0]
  - name: snapkv
    params: { window: 16 }
tasks:
  - type: passkey
    params: { lengths: [1024] }
`;

function errorOf(text: string): string {
  const path = join(dir, "m.yaml");
  writeFileSync(path, text);
  try {
    loadManifest(path, dir);
  } catch (error) {
    expect(error).toBeInstanceOf(RazorkvError);
    return (error as Error).message;
  }
  throw new Error("expected the manifest to be rejected");
}

describe("manifest validation", () => {
  it("accepts a good manifest and converts budgets", () => {
    const m = parseManifest(good, "good.yaml", dir);
    expect(m.policies.map((p) => p.label)).toEqual(["full", "snapkv"]);
    expect(m.policies[1].budgets).toEqual([
      { kind: "kvBudget", value: 0.5 }, { kind: "compressionRatio", value: 0.7 }, { kind: "tokens", value: 256 },
    ]);
    expect(m.modes).toEqual(["query-agnostic"]);
    expect(m.output).toBe(join(dir, "reports", "t"));
  });

  it("a task may name its own modes; the others take the manifest's", () => {
    const text = good.replace("modes", "").replace("seed: 1\n", "seed: 1\nmodes: [query-agnostic, query-aware]\n") +
      "  - type: repeated-tokens\n    params: { lengths: [256] }\n    modes: [query-agnostic]\n";
    const m = parseManifest(text, "modes.yaml", dir);
    expect(m.tasks.map((t) => t.modes)).toEqual([["query-agnostic", "query-aware"], ["query-agnostic"]]);
    expect(errorOf(text.replace("modes: [query-agnostic]\n", "modes: [query-blind]\n"))).toMatch(/m\.yaml:16: tasks\[1\]\.modes\[0\]: expected one of "query-agnostic", "query-aware"/);
  });

  it("one prefill arithmetic for the sweep: f32 by default, int8 when asked, nothing else", () => {
    expect(parseManifest(good, "m.yaml", dir).prefillProducts).toBe("f32");
    expect(parseManifest(good.replace("seed: 1", "seed: 1\nprefillProducts: int8"), "m.yaml", dir).prefillProducts).toBe("int8");
    expect(errorOf(good.replace("seed: 1", "seed: 1\nprefillProducts: fp8"))).toMatch(/m\.yaml:3: prefillProducts: expected one of "f32", "int8", got "fp8"$/);
  });

  it("one answer protocol for every cell: append by default, hold-budget when asked, nothing else", () => {
    expect(parseManifest(good, "m.yaml", dir).answerProtocol).toBe("append");
    expect(parseManifest(good.replace("seed: 1", "seed: 1\nanswerProtocol: hold-budget"), "m.yaml", dir).answerProtocol).toBe("hold-budget");
    expect(errorOf(good.replace("seed: 1", "seed: 1\nanswerProtocol: evict-some"))).toMatch(
      /m\.yaml:3: answerProtocol: expected one of "append", "hold-budget", got "evict-some"$/,
    );
  });

  it("a negative budget names the file, the line and the field", () => {
    const msg = errorOf(good.replace("budgets: [0.5,", "budgets: [-0.5,"));
    expect(msg).toMatch(/m\.yaml:4: budgets\[0\]: a kvBudget must be > 0/);
  });

  it("an unknown field and a wrong type are named with their line", () => {
    expect(errorOf(good + "sed: 3\n")).toMatch(/m\.yaml:1: \(top level\): unknown field "sed"/);
    expect(errorOf(good.replace("seed: 1", "seed: one"))).toMatch(/m\.yaml:2: seed: expected number/);
    expect(errorOf(good.replace("type: passkey", "type: passkeys"))).toMatch(/m\.yaml:11: tasks\[0\]\.type: expected one of "passkey"/);
  });

  it("a missing haystack file names the field and the path", () => {
    const msg = errorOf(good.replace("params: { lengths: [1024] }", "params: { lengths: [1024], haystackDir: ./no-such-essays }"));
    expect(msg).toMatch(/m\.yaml:12: tasks\[0\]\.params\.haystackDir: \.\/no-such-essays does not exist/);
  });

  it("a misspelled policy package fails with the manifest entry named, before any model loads", async () => {
    const m = parseManifest(good.replace("name: snapkv", "name: snapvk"), "m.yaml", process.cwd());
    await expect(checkPolicies(m)).rejects.toThrow(/m\.yaml:8: policies\[1\]: no policy package named "snapvk"/);
  });

  it("bad policy params are refused with the package and the field", async () => {
    const m = parseManifest(good.replace("window: 16", "window: -2"), "m.yaml", process.cwd());
    await expect(checkPolicies(m)).rejects.toThrow(/m\.yaml:8: policies\[1\]: .*window/);
  });
});

describe("bench/default-slice.yaml", () => {
  it("is a slice of the default manifest: the same seed, models, modes, cells and task parameters but the sample counts", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const slice = loadManifest(join(root, "bench", "default-slice.yaml"), root);
    const full = loadManifest(join(root, "experiments", "default.yaml"), root);
    const cells = (m: typeof full) => m.policies.map(({ where: _where, ...policy }) => policy);
    expect({ seed: slice.seed, models: slice.models, modes: slice.modes, policies: cells(slice) }).toEqual({
      seed: full.seed, models: full.models, modes: full.modes, policies: cells(full),
    });
    const withoutCounts = (m: typeof full) =>
      m.tasks.map((t) => {
        const { depths: _d, samplesPerCell: _c, samplesPerLength: _l, ...rest } = t.params;
        return { type: t.type, label: t.label, modes: t.modes, params: rest };
      });
    expect(withoutCounts(slice)).toEqual(withoutCounts(full));
  });
});
