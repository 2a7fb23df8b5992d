import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { RazorkvError } from "./errors.js";
import { param } from "./params.js";
import { definePolicy, type PolicyDefinition } from "./policy.js";
import type { PreparationModel } from "./preparation.js";
import {
  canonicalJson, fileStem, planPreparation, prepare, preparationCacheDir, preparationKey, readPrepared, serializeArtefact, writeFileAtomic,
} from "./prepared-cache.js";

const dir = mkdtempSync(join(tmpdir(), "razorkv-prepared-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A model stub: the preparation below only reads its shape and counts its prefills. */
function stubModel(digest: string, ref = "hf:org/Some Model@abc"): PreparationModel & { prefills: number } {
  const shape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 100, maxContext: 64, layerWindows: [null, null], attentionScale: 1 / Math.sqrt(8) };
  const model = {
    ref, digest, shape, prefills: 0,
    tokenizer: {} as PreparationModel["tokenizer"],
    prefill() {
      model.prefills++;
      return { stats: [], logits: new Float32Array(0), sequence: {} as never };
    },
  };
  return model;
}

/** A policy whose artefact is a list of `count` numbers computed with one prefill; `count: 0` needs no preparation. */
const counting = definePolicy({
  name: "counting",
  description: "test policy",
  params: { count: param.integer({ default: 3, min: 0, doc: "numbers prepared" }), scale: param.number({ default: 1, doc: "used by create only" }) },
  create: () => ({ name: "counting", statsRequest: {}, compress: (full) => full.clone() }),
  prepare: {
    description: "counts",
    version: 1,
    inputs: (p, model) => (p.count === 0 ? null : { count: p.count, layers: model.shape.numLayers }),
    run: (model, inputs) => {
      model.prefill([1, 2, 3]);
      return { values: Array.from({ length: inputs.count as number }, (_, i) => i / 3) };
    },
    parse: (value, source) => {
      const v = value as { values?: unknown };
      if (!Array.isArray(v?.values)) throw new RazorkvError(`${source}: values: expected an array`);
      return v as { values: number[] };
    },
  },
}) as unknown as PolicyDefinition;

describe("the preparation cache", () => {
  it("keys by policy, step version, model digest and inputs, whatever the inputs' key order", () => {
    const key = preparationKey("p", 1, "d1", { a: 1, b: [1, 2] });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(preparationKey("p", 1, "d1", { b: [1, 2], a: 1 })).toBe(key);
    for (const other of [preparationKey("q", 1, "d1", { a: 1, b: [1, 2] }), preparationKey("p", 2, "d1", { a: 1, b: [1, 2] }),
      preparationKey("p", 1, "d2", { a: 1, b: [1, 2] }), preparationKey("p", 1, "d1", { a: 1, b: [2, 1] })]) expect(other).not.toBe(key);
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}');
  });

  it("lives under $RAZORKV_CACHE_DIR, $XDG_CACHE_HOME/razorkv or ~/.cache/razorkv, in prepared/<policy>/<model stem>-<key16>.json", () => {
    expect(preparationCacheDir({ RAZORKV_CACHE_DIR: "/c" })).toBe("/c/prepared");
    expect(preparationCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/razorkv/prepared");
    expect(preparationCacheDir({})).toMatch(/\.cache\/razorkv\/prepared$/);
    const plan = planPreparation(counting, { count: 3, scale: 1 }, stubModel("d1"), dir)!;
    expect(plan.inputs).toEqual({ count: 3, layers: 2 });
    expect(plan.key).toBe(preparationKey("counting", 1, "d1", { count: 3, layers: 2 }));
    expect(plan.path).toBe(join(dir, "counting", `hf_org_Some_Model_abc-${plan.key.slice(0, 16)}.json`));
    expect(fileStem("./model.gguf")).toBe("model.gguf");
    expect(planPreparation(counting, { count: 0, scale: 1 }, stubModel("d1"), dir)).toBeNull();
  });

  it("runs the step once per model file and inputs; params that only change create share the artefact; force reruns", () => {
    const model = stubModel("d1");
    const first = prepare(counting, { count: 3, scale: 1 }, model, { cacheDir: dir })!;
    expect(first.fromCache).toBe(false);
    expect(model.prefills).toBe(1);
    expect(first.artefact).toEqual({ values: [0, 1 / 3, 2 / 3] });
    expect(readFileSync(first.plan.path, "utf8")).toBe(serializeArtefact(first.artefact));
    const again = prepare(counting, { count: 3, scale: 2 }, model, { cacheDir: dir })!;
    expect(again.fromCache).toBe(true);
    expect(again.artefact).toEqual(first.artefact);
    expect(model.prefills).toBe(1);
    // another model file is another artefact, even under the same reference
    const moved = prepare(counting, { count: 3, scale: 1 }, stubModel("d2"), { cacheDir: dir })!;
    expect(moved.fromCache).toBe(false);
    expect(moved.plan.path).not.toBe(first.plan.path);
    expect(prepare(counting, { count: 3, scale: 1 }, model, { cacheDir: dir, force: true })!.fromCache).toBe(false);
    expect(model.prefills).toBe(2);
    expect(readdirSync(join(dir, "counting")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("a damaged cache file is an error naming it", () => {
    const model = stubModel("d3");
    const plan = planPreparation(counting, { count: 3, scale: 1 }, model, dir)!;
    writeFileAtomic(plan.path, '{"values": 3}\n');
    expect(() => readPrepared(plan, counting)).toThrow(new RegExp(`^${plan.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: values: expected an array`));
    writeFileAtomic(plan.path, '{"values": [');
    expect(() => prepare(counting, { count: 3, scale: 1 }, model, { cacheDir: dir })).toThrow(/not valid JSON/);
  });

  it("two processes writing the same artefact at once never leave a reader half a file", async () => {
    const built = fileURLToPath(new URL("../dist/prepared-cache.js", import.meta.url));
    expect(existsSync(built), `${built}: build @razorkv/core first`).toBe(true);
    const path = join(dir, "race", "artefact.json");
    // each writer rewrites a 1 MB artefact of its own 40 times
    const writer = (id: number) =>
      new Promise<void>((resolve, reject) => {
        const script = `import { writeFileAtomic, serializeArtefact } from ${JSON.stringify(built)};
const text = serializeArtefact({ writer: ${id}, values: Array.from({ length: 60000 }, (_, i) => i + ${id} / 10) });
for (let i = 0; i < 40; i++) writeFileAtomic(${JSON.stringify(path)}, text);`;
        execFile(process.execPath, ["--input-type=module", "-e", script], (error) => (error ? reject(error) : resolve()));
      });
    const writers = Promise.all([writer(1), writer(2)]);
    let reads = 0;
    let done = false;
    void writers.then(() => (done = true), () => (done = true));
    while (!done) {
      if (existsSync(path)) {
        const value = JSON.parse(readFileSync(path, "utf8")) as { writer: number; values: number[] };
        expect(value.values).toHaveLength(60000);
        expect(value.values[1]).toBe(1 + value.writer / 10);
        reads++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await writers;
    expect(reads).toBeGreaterThan(0);
    expect(readdirSync(join(dir, "race"))).toEqual(["artefact.json"]);
  }, 60_000);
});
