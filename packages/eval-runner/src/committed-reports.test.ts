/**
 * The committed reports (reports/razor-vs-baselines, razor-ablations and head-selection) against their own results.csv: summary.json, the numbers inside report.html and the README's tables must all equal a recomputation
 * from the csv, and the manifest copy must be the manifest in experiments/. Every row answered at the memory its
 * answer protocol promises, and every stored prediction scores, under today's metric code, what its row says.
 * Rerunning a manifest to reproduce the csv itself takes an hour, so it is a documented command (README), not a test.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import {
  chartMeta, isScored, needleSpecs, pairedTableMarkdown, parseResultRow, RESULT_COLUMNS, retentionTableMarkdown, scoreSpecs, scoreTableMarkdown, summarizeRows,
  type ResultRow, type Summary, type VegaLiteSpec,
} from "@razorkv/report";
import { planPreparation } from "@razorkv/core";
import { registerMissing, SHARED_DIR, sharedDataMissing } from "@razorkv/core/testing";
import { loadLanguageModel, modelDigest, openModel, resolveModelRef, tokenizerFromGguf } from "@razorkv/model-zoo";
import { loadSpecs, taskSamples } from "./experiment.js";
import { parseManifest } from "./manifest.js";
import { scoreGeneration } from "./metrics/index.js";
import { preparationModel } from "./preparation-model.js";
import { prepareSpecs, writePreparedArtefacts } from "./prepared-artefacts.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const NUMERIC = new Set([
  "targetLength", "promptTokens", "prefillTokens", "depth", "budgetNominal", "budgetRealized", "budgetAnswer", "budgetEnd",
  "kvBytes", "kvBytesAnswer", "kvBytesEnd", "kvBytesFull", "score", "decodeTokens",
]);
/** Columns only a scored row has, and the one only an infeasible row has: empty in the csv for the other kind. */
const SCORED_ONLY = new Set([...NUMERIC].filter((k) => !["targetLength", "promptTokens", "depth", "budgetNominal"].includes(k)).concat("prediction"));

/** results.csv → rows; the timing columns it leaves out are zero. */
function readCsv(file: string): ResultRow[] {
  const records = parse(readFileSync(file, "utf8"), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  expect(Object.keys(records[0])).toEqual(RESULT_COLUMNS);
  return records.map((rec, i) => {
    const scored = rec.status === "ok";
    const row: Record<string, unknown> = scored ? { prefillMs: 0, decodeMs: 0 } : {};
    for (const [key, text] of Object.entries(rec)) {
      if (scored ? key === "reason" : SCORED_ONLY.has(key)) continue;
      row[key] = !NUMERIC.has(key) ? text : key === "depth" && text === "" ? null : Number(text);
    }
    return parseResultRow(row, `${file}:${i + 2}`);
  });
}

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir: string, prefix = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort();
}

const realModel = await resolveModelRef("smollm2-135m-instruct", { offline: true }).catch((error: Error) => error);

/** JSON as the report stores it (±Infinity become null). */
const asJson = (x: unknown) => JSON.parse(JSON.stringify(x));

function embeddedPayload(html: string): { charts: VegaLiteSpec[]; tables: { cells: { columns: { key: string }[]; rows: unknown[][] }; raw: { columns: { key: string }[]; rows: unknown[][] } } } {
  const m = /<script type="application\/json" id="razorkv-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error("report.html has no razorkv-data payload");
  return JSON.parse(m[1]);
}

/** A chart with its data rows sorted, so that the order rows were appended in does not matter. */
function canonical(spec: VegaLiteSpec): unknown {
  return asJson(JSON.parse(JSON.stringify(spec), (_key, value) => {
    if (value && typeof value === "object" && Array.isArray(value.values)) {
      return { ...value, values: [...value.values].sort((a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)) };
    }
    return value;
  }));
}

for (const name of ["razor-vs-baselines", "razor-ablations", "head-selection"]) {
  describe(`reports/${name}`, () => {
    const dir = join(root, "reports", name);
    const file = (f: string) => join(dir, f);

    it("holds the report, the results, the summary, the manifest copy, the prepared artefacts and the head selections", () => {
      for (const f of ["report.html", "results.csv", "summary.json", "manifest.yaml"]) expect(existsSync(file(f)), f).toBe(true);
      expect(filesUnder(file("prepared")).length).toBeGreaterThan(0);
      expect(filesUnder(file("heads")).length).toBeGreaterThan(0);
      expect(readFileSync(file("manifest.yaml"), "utf8")).toBe(readFileSync(join(root, "experiments", `${name}.yaml`), "utf8"));
    });

    describe("prepared/ and heads/", () => {
      if (realModel instanceof Error) return registerMissing("SmolLM2-135M-Instruct in the hub cache", realModel.message);
      it("hold exactly what a run of the manifest writes from the committed artefacts, named by today's cache keys", async () => {
        const manifest = parseManifest(readFileSync(file("manifest.yaml"), "utf8"), file("manifest.yaml"), root);
        const specs = await loadSpecs(manifest);
        const cache = mkdtempSync(join(tmpdir(), "razorkv-committed-cache-"));
        const rewritten = mkdtempSync(join(tmpdir(), "razorkv-committed-prepared-"));
        try {
          for (const modelRef of manifest.models) {
            const lm = await loadLanguageModel(modelRef, { offline: true });
            const digest = modelDigest(lm.loaded);
            expect(readCsv(file("results.csv")).filter((r) => r.model === modelRef).every((r) => r.modelDigest === digest)).toBe(true);
            const model = preparationModel(lm, digest);
            // the run's cache, holding the committed artefacts where the run looks for them (inputs + model digest)
            for (const s of specs) {
              const plan = planPreparation(s.definition, s.params, model, cache);
              if (!plan) continue;
              const committed = file(join("prepared", plan.policy, plan.file));
              expect(existsSync(committed), `${s.spec.label}: ${committed}`).toBe(true);
              mkdirSync(dirname(plan.path), { recursive: true });
              copyFileSync(committed, plan.path);
            }
            const preparations = prepareSpecs(specs, model, { cacheDir: cache, cacheOnly: true });
            writePreparedArtefacts(rewritten, modelRef, preparations);
          }
          for (const sub of ["prepared", "heads"]) {
            const names = filesUnder(file(sub));
            expect(filesUnder(join(rewritten, sub))).toEqual(names);
            for (const n of names) expect(readFileSync(join(rewritten, sub, n), "utf8"), n).toBe(readFileSync(file(join(sub, n)), "utf8"));
          }
        } finally {
          rmSync(cache, { recursive: true, force: true });
          rmSync(rewritten, { recursive: true, force: true });
        }
      }, 120_000);
    });

    it("summary.json and every number in report.html equal a recomputation from results.csv", () => {
      const rows = readCsv(file("results.csv"));
      const summary: Summary = summarizeRows(rows, name);
      expect(JSON.parse(readFileSync(file("summary.json"), "utf8"))).toEqual(asJson(summary));

      const payload = embeddedPayload(readFileSync(file("report.html"), "utf8"));
      // the per-cell table
      const keys = payload.tables.cells.columns.map((c) => c.key);
      const cellRows = summary.cells.map((c) => keys.map((k) => (c as unknown as Record<string, unknown>)[k]));
      expect(payload.tables.cells.rows).toEqual(asJson(cellRows));
      // the raw table: one row per csv row, same score
      const raw = payload.tables.raw;
      const at = (k: string) => raw.columns.findIndex((c) => c.key === k);
      const key = (task: unknown, mode: unknown, sample: unknown, policy: unknown, budget: unknown) => JSON.stringify([task, mode, sample, policy, budget]);
      const rawScores = new Map(raw.rows.map((r) => [key(r[at("task")], r[at("mode")], r[at("sampleId")], r[at("policyLabel")], r[at("budgetNominal")]), r[at("score")]]));
      expect(rawScores.size).toBe(rows.length);
      for (const r of rows) expect(rawScores.get(key(r.task, r.mode, r.sampleId, r.policyLabel, r.budgetNominal))).toBe(isScored(r) ? r.score : null);
      // score-vs-budget charts and needle heatmaps, rebuilt from the csv
      const embedded = (section: string) => payload.charts.filter((s) => chartMeta(s).section === section).map(canonical);
      expect(embedded("scores").length).toBeGreaterThan(0);
      expect(embedded("scores")).toEqual(scoreSpecs(rows, summary).map(canonical));
      expect(embedded("needle")).toEqual(needleSpecs(rows, summary).map(canonical));
    });

    it("every row answered at the memory the append protocol promises: kvBudget · prefill + what was fed since, within one entry per head", () => {
      const rows = readCsv(file("results.csv"));
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        expect(r.protocol).toBe("append");
        if (!isScored(r)) continue;
        // budgetAnswer = entries / (KV heads × tokens seen); at the first answer token the cache has seen the prompt
        const heldPerHead = r.budgetAnswer * r.promptTokens;
        const promised = r.budgetNominal * r.prefillTokens + (r.promptTokens - r.prefillTokens);
        expect(Math.abs(heldPerHead - promised), `${r.task} ${r.sampleId} ${r.mode} ${r.cell}`).toBeLessThanOrEqual(1 + 1e-6);
      }
    });

    describe("stored predictions", () => {
      const data = sharedDataMissing(join(SHARED_DIR, "data"));
      if (data) return registerMissing("the evaluation data in ../shared", data);
      it("score what their rows say under today's metric code (nothing scored by an older metric survives)", async () => {
        const manifest = parseManifest(readFileSync(file("manifest.yaml"), "utf8"), file("manifest.yaml"), root);
        const model = await resolveModelRef(manifest.models[0], { offline: true }).catch((error: Error) => error);
        if (model instanceof Error) return expect.fail(`the model of the committed report is not in the hub cache: ${model.message}`);
        const opened = await openModel(manifest.models[0], { offline: true });
        const tokenizer = tokenizerFromGguf(opened.ggufMetadata!, { source: opened.path });
        const targets = new Map(
          manifest.tasks.flatMap((t) => taskSamples(t, tokenizer, manifest.seed).map((s) => [`${t.label}\u0000${s.id}`, s.target] as const)),
        );
        let checked = 0;
        for (const r of readCsv(file("results.csv"))) {
          const target = targets.get(`${r.task}\u0000${r.sampleId}`);
          expect(target, `${r.task} ${r.sampleId}`).toBeDefined();
          if (!isScored(r) || target!.kind !== "generate") continue;
          expect(scoreGeneration(target!, r.prediction), `${r.task} ${r.sampleId} ${r.mode} ${r.cell}: ${JSON.stringify(r.prediction)}`).toBe(r.score);
          checked++;
        }
        expect(checked).toBeGreaterThan(0);
      }, 120_000);
    });

    if (name === "razor-ablations") {
      // hand-laid table (one row per variant, a column per task and budget): every "mean [low, high]" in it must be
      // the summary's cell, rounded; a cell marked "@b" was taken at budget b instead of the column's
      it("the README's ablation table is this summary's", () => {
        const readme = readFileSync(join(root, "README.md"), "utf8");
        const summary = summarizeRows(readCsv(file("results.csv")), name);
        const start = readme.indexOf("### Ablations");
        const section = readme.slice(start, readme.indexOf("\n### ", start + 1));
        const lines = section.split("\n").filter((l) => /^\| `/.test(l));
        const columns: [string, number][] = [["niah-single", 0.5], ["niah-single", 0.3], ["repeated-tokens", 0.3], ["lm-loss", 0.3]];
        const labels = new Set(summary.cells.map((c) => c.policyLabel));
        expect(lines.map((l) => /^\| `([^`]+)`/.exec(l)![1]).sort()).toEqual([...labels].sort());
        let checked = 0;
        for (const line of lines) {
          const label = /^\| `([^`]+)`/.exec(line)![1];
          const cellTexts = line.split("|").slice(2, -1).map((t) => t.trim());
          cellTexts.forEach((text, i) => {
            const m = /^\**(\d+\.\d+)(?: \[(\d+\.\d+), (\d+\.\d+)\])?\**(?: @(\d+(?:\.\d+)?))?$/.exec(text);
            if (!m) return expect(["", "infeasible"], `${label}, column ${i}`).toContain(text);
            const budget = label === "full" ? 1 : m[4] !== undefined ? Number(m[4]) : columns[i][1];
            const cell = summary.cells.find((c) => c.policyLabel === label && c.task === columns[i][0] && c.budgetNominal === budget);
            expect(cell, `${label} ${columns[i][0]} @${budget}`).toBeDefined();
            const near = (shown: string, value: number) => expect(Math.abs(Number(shown) - value), `${label} ${columns[i][0]} @${budget}: ${text}`).toBeLessThanOrEqual(0.005 + 1e-9);
            near(m[1], cell!.mean);
            if (m[2] !== undefined) {
              near(m[2], cell!.ciLow);
              near(m[3], cell!.ciHigh);
            }
            checked++;
          });
        }
        expect(checked).toBe(34);
      });
    }

    if (name === "head-selection") {
      it("the README's needle table is this summary's (query-agnostic, every label on a line)", () => {
        const readme = readFileSync(join(root, "README.md"), "utf8");
        const summary = summarizeRows(readCsv(file("results.csv")), name);
        const start = readme.indexOf("### Which heads");
        const section = readme.slice(start, readme.indexOf("\n## ", start));
        const lines = section.split("\n").filter((l) => /^\| `/.test(l));
        expect(lines.length).toBeGreaterThan(0);
        let checked = 0;
        for (const line of lines) {
          const labels = [...line.split("|")[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
          const shown = line.split("|").slice(2, -1).map((t) => Number(t.replaceAll("*", "").trim()));
          [0.5, 0.4, 0.3].forEach((budget, i) => {
            for (const label of labels) {
              const cell = summary.cells.find((c) => c.policyLabel === label && c.task === "niah-single" && c.mode === "query-agnostic" && c.budgetNominal === budget);
              expect(cell, `${label} @${budget}`).toBeDefined();
              expect(Math.abs(shown[i] - cell!.mean), `${label} @${budget}`).toBeLessThanOrEqual(0.005 + 1e-9);
              checked++;
            }
          });
        }
        expect(checked).toBe(18);
      });
    }
    if (name === "razor-vs-baselines") {
      it("the README's results tables are this summary's", () => {
        const readme = readFileSync(join(root, "README.md"), "utf8");
        const summary = summarizeRows(readCsv(file("results.csv")), name);
        expect(readme).toContain(retentionTableMarkdown(summary, "niah-single"));
        for (const mode of ["query-agnostic", "query-aware"]) expect(readme).toContain(scoreTableMarkdown(summary, "niah-single", mode));
        // the headline comparisons are paired: the README holds the whole paired table its prose quotes from
        expect(readme).toContain(pairedTableMarkdown(readCsv(file("results.csv")), { task: "niah-single", policy: "razor" }));
      });
    }
  });
}
