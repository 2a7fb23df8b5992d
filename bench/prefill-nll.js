#!/usr/bin/env node
// What 8-bit prefill products cost in log-likelihood on real text (LlamaModelOptions.prefillProducts "int8" against
// the default "f32"): `node bench/prefill-nll.js --model REF_OR_FILE [--model …] [--tokens 1024] [--essays 8]`.
//
// For each model and each of the first --essays Paul Graham essays of at least --tokens tokens
// (../shared/data/paul-graham-essays, sorted by name; the first --tokens tokens of each, encoded as data after the
// special tokens its tokenizer adds itself: none for SmolLM2), one prefill per arithmetic with logits at every
// position; per essay the mean NLL (nats per token) of each, and over all positions the largest |Δ log-prob| of
// the next token and how often the two argmaxes agree. Prints one JSON document; BENCHMARKS.md ("Prefill with
// 8-bit products") quotes bench/results-prefill-nll.json, this script's output.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const fail = (message) => {
  console.error(`prefill-nll: ${message}`);
  process.exit(2);
};
const { values: opts } = parseArgs({
  options: {
    model: { type: "string", multiple: true },
    tokens: { type: "string", default: "1024" },
    essays: { type: "string", default: "8" },
    data: { type: "string", default: join(ROOT, "../shared/data/paul-graham-essays") },
  },
  strict: true,
});
if (!opts.model?.length) fail("--model REF_OR_FILE is required (repeat it for several)");
const T = Number(opts.tokens), E = Number(opts.essays);
if (!Number.isInteger(T) || T < 2) fail(`--tokens must be an integer ≥ 2, got ${opts.tokens}`);
if (!Number.isInteger(E) || E < 1) fail(`--essays must be a positive integer, got ${opts.essays}`);
if (!existsSync(opts.data)) fail(`${opts.data}: no such folder (the Paul Graham essays)`);
const zooPath = resolve(ROOT, "packages/model-zoo/dist/index.js");
if (!existsSync(zooPath)) fail(`${zooPath} is missing: build first (pnpm run build)`);
const { loadLanguageModel, LlamaModel, argmax, logProbability } = await import(pathToFileURL(zooPath).href);

const essays = readdirSync(opts.data).filter((f) => f.endsWith(".txt")).sort();
const results = [];
for (const ref of opts.model) {
  const lm = await loadLanguageModel(existsSync(ref) ? resolve(ref) : ref);
  const models = { f32: lm.model, int8: new LlamaModel(lm.loaded.weights, lm.model.backend, { prefillProducts: "int8" }) };
  const V = lm.model.config.vocabSize;
  const perEssay = [];
  let maxDelta = 0, agree = 0, positions = 0;
  for (const file of essays) {
    if (perEssay.length === E) break;
    const ids = lm.tokenizer.encode(readFileSync(join(opts.data, file), "utf8"), { parseSpecialTokens: false }).slice(0, T);
    if (ids.length < T) continue; // a shorter essay: the next one
    const row = { essay: file };
    const logits = {};
    for (const [name, model] of Object.entries(models)) {
      const t0 = performance.now();
      logits[name] = model.prefill(ids, { logits: "all" }).logits;
      row[`${name}Seconds`] = Number(((performance.now() - t0) / 1000).toFixed(2));
    }
    const nll = { f32: 0, int8: 0 };
    for (let t = 0; t + 1 < T; t++) {
      const lp = {};
      for (const name of ["f32", "int8"]) {
        lp[name] = logProbability(logits[name].subarray(t * V, (t + 1) * V), ids[t + 1]);
        nll[name] -= lp[name];
      }
      maxDelta = Math.max(maxDelta, Math.abs(lp.int8 - lp.f32));
      if (argmax(logits.f32.subarray(t * V, (t + 1) * V)) === argmax(logits.int8.subarray(t * V, (t + 1) * V))) agree++;
      positions++;
    }
    row.nllF32 = nll.f32 / (T - 1);
    row.nllInt8 = nll.int8 / (T - 1);
    perEssay.push(row);
    process.stderr.write(`${ref} ${file}: mean NLL f32 ${row.nllF32.toFixed(4)}, int8 ${row.nllInt8.toFixed(4)} (${row.f32Seconds} s / ${row.int8Seconds} s)\n`);
  }
  if (perEssay.length < E) fail(`${opts.data}: only ${perEssay.length} essays have ${T} tokens under ${ref}'s tokenizer, --essays asks for ${E}`);
  const mean = (k) => perEssay.reduce((s, r) => s + r[k], 0) / perEssay.length;
  const deltas = perEssay.map((r) => r.nllInt8 - r.nllF32);
  results.push({
    model: ref, path: lm.loaded.path, tokens: T, essays: perEssay.length,
    meanNllF32: mean("nllF32"), meanNllInt8: mean("nllInt8"),
    deltaNll: { mean: deltas.reduce((a, b) => a + b, 0) / deltas.length, min: Math.min(...deltas), max: Math.max(...deltas) },
    maxAbsDeltaLogProb: maxDelta, argmaxAgreement: agree / positions, perEssay,
  });
}
console.log(JSON.stringify({ command: `node bench/prefill-nll.js ${process.argv.slice(2).join(" ")}`, date: new Date().toISOString(), results }, null, 2));
