/**
 * What a run prepares and keeps, for any policy with a preparation step: one run per distinct artefact, the cache
 * only in a dry run, byte copies of the artefacts in prepared/, and one heads/ file per distinct head selection with
 * the labels that used it. The policies here are generated per test and named by no source file.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  defaultParams, definePolicy, HEAD_SELECTION_FORMAT, param, parseHeadSelection, parseParams, RazorkvError, serializeArtefact,
  type PolicyDefinition, type PreparationModel, type PreparationStep,
} from "@razorkv/core";
import { clearPreparedArtefacts, prepareSpecs, writePreparedArtefacts, type LoadedSpec } from "./prepared-artefacts.js";

const dir = mkdtempSync(join(tmpdir(), "razorkv-prepared-artefacts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const name = `heads${process.pid.toString(36)}`;
const schema = {
  seed: param.integer({ default: 1, min: 0, doc: "what the artefact depends on" }),
  top: param.integer({ default: 1, min: 0, doc: "KV heads protected: changes the selection, not the artefact" }),
  window: param.integer({ default: 4, min: 1, doc: "changes neither" }),
};
/** A head-level policy: its artefact is one score per (layer, KV head), measured with one prefill; it protects the top ones. */
interface Artefact {
  readonly model: string;
  readonly scores: number[][];
}
const step: PreparationStep<typeof schema, Artefact> = {
    description: "scores heads",
    version: 1,
    inputs: (p) => ({ seed: p.seed }),
    run: (model, inputs) => {
      model.prefill([1, 2]);
      const s = inputs.seed as number;
      return { model: model.ref, scores: Array.from({ length: model.shape.numLayers }, (_, l) => Array.from({ length: model.shape.numKvHeads }, (_, k) => ((l * 7 + k * 3 + s) % 5) / 5)) };
    },
    parse: (value, source) => {
      if (!Array.isArray((value as { scores?: unknown }).scores)) throw new RazorkvError(`${source}: scores: expected an array`);
      return value as Artefact;
    },
    headSelection: (a, p) => {
      const flat = a.scores.flatMap((row, layer) => row.map((x, kvHead) => ({ layer, kvHead, x })));
      const protectedHeads = [...flat].sort((u, v) => v.x - u.x || u.layer - v.layer || u.kvHead - v.kvHead).slice(0, p.top)
        .sort((u, v) => u.layer - v.layer || u.kvHead - v.kvHead).map(({ layer, kvHead }) => ({ layer, kvHead }));
      return {
        format: HEAD_SELECTION_FORMAT, policy: name, title: "test heads", description: "d", rule: `top ${p.top}`, model: a.model,
        numLayers: a.scores.length, numHeads: 4, numKvHeads: 2, scores: [{ kind: "s", description: "s", per: "kv-head", values: a.scores }],
        protected: protectedHeads, params: { seed: p.seed, top: p.top },
      };
    },
};
const definition = definePolicy({
  name,
  description: "test",
  params: schema,
  create: () => ({ name, statsRequest: {}, compress: (full) => full.clone() }),
  prepare: step,
}) as unknown as PolicyDefinition;

function stubModel(): PreparationModel & { prefills: number } {
  const m = {
    ref: "org/model", digest: "0".repeat(64), prefills: 0,
    shape: { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 50, maxContext: 100, layerWindows: [null, null, null], attentionScale: 1 },
    tokenizer: {} as PreparationModel["tokenizer"],
    prefill() {
      m.prefills++;
      return { stats: [], logits: new Float32Array(0), sequence: {} as never };
    },
  };
  return m;
}

const spec = (label: string, params: Record<string, unknown> = {}): LoadedSpec => ({
  spec: { name, label, params, budgets: [], where: `m.yaml: policies.${label}` },
  definition,
  packageName: name,
  params: parseParams(schema, params, name),
});

describe("prepared artefacts", () => {
  const cacheDir = join(dir, "cache");
  const specs = [spec("a"), spec("a-window", { window: 9 }), spec("a-top3", { top: 3 }), spec("b-seed", { seed: 2 })];

  it("a dry run reads the cache only and says what the run will prepare", () => {
    const lines: string[] = [];
    const model = stubModel();
    const dry = prepareSpecs(specs, model, { cacheDir, cacheOnly: true, log: (l) => lines.push(l) });
    expect(dry.map((p) => p.prepared)).toEqual([null, null, null, null]);
    expect(dry.map((p) => p.missing?.inputs)).toEqual([{ seed: 1 }, { seed: 1 }, { seed: 1 }, { seed: 2 }]);
    expect(model.prefills).toBe(0);
    expect(lines[0]).toMatch(/^a: not prepared yet for org\/model \(.*\); the run prepares it, then checks its cells$/);
  });

  it("runs each distinct artefact once; every entry gets the one its params need", () => {
    const model = stubModel();
    const done = prepareSpecs(specs, model, { cacheDir });
    expect(model.prefills).toBe(2); // seed 1 (three entries) and seed 2
    expect(done.map((p) => p.prepared!.fromCache)).toEqual([false, false, false, false]);
    expect(done[1].prepared).toBe(done[0].prepared);
    expect(done[3].prepared!.plan.path).not.toBe(done[0].prepared!.plan.path);
    const again = prepareSpecs(specs, model, { cacheDir });
    expect(model.prefills).toBe(2);
    expect(again.map((p) => p.prepared!.fromCache)).toEqual([true, true, true, true]);
    expect(again[0].prepared!.artefact).toEqual(done[0].prepared!.artefact);
  });

  it("a results folder keeps byte copies of the artefacts and one head selection per distinct protected set, with its labels", () => {
    const out = join(dir, "out");
    const preparations = prepareSpecs(specs, stubModel(), { cacheDir });
    const written = writePreparedArtefacts(out, "org/model", preparations);
    const artefactFiles = [...new Set(preparations.map((p) => join("prepared", name, p.prepared!.plan.file)))];
    expect(written).toEqual([...artefactFiles, join("heads", "org_model@a.json"), join("heads", "org_model@a-top3.json"), join("heads", "org_model@b-seed.json")]);
    for (const p of preparations) expect(readFileSync(join(out, "prepared", name, p.prepared!.plan.file))).toEqual(readFileSync(p.prepared!.plan.path));
    const heads = (f: string) => parseHeadSelection(JSON.parse(readFileSync(join(out, "heads", f), "utf8")), f);
    // "a-window" changes how the other heads are kept, not which are protected: it shares a's file
    expect(heads("org_model@a.json").usedBy).toEqual(["a", "a-window"]);
    expect(heads("org_model@a-top3.json").protected).toHaveLength(3);
    expect(heads("org_model@a-top3.json").usedBy).toEqual(["a-top3"]);
    const { usedBy, ...selection } = heads("org_model@b-seed.json");
    expect(usedBy).toEqual(["b-seed"]);
    expect(selection).toEqual(step.headSelection!(preparations[3].prepared!.artefact as Artefact, { ...defaultParams(schema), seed: 2 }));
    expect(readFileSync(join(out, "heads", "org_model@b-seed.json"), "utf8")).toBe(serializeArtefact({ ...selection, usedBy }));
    clearPreparedArtefacts(out);
    expect(existsSync(join(out, "heads")) || existsSync(join(out, "prepared"))).toBe(false);
    expect(readdirSync(out)).toEqual([]);
  });

  it("a preparation error names the manifest entry", () => {
    const broken = { ...spec("bad"), definition: { ...definition, prepare: { ...definition.prepare!, inputs: () => { throw new RazorkvError("seed: too large"); } } } };
    expect(() => prepareSpecs([broken], stubModel(), { cacheDir })).toThrow(/^m\.yaml: policies\.bad: seed: too large$/);
  });
});
