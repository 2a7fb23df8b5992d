#!/usr/bin/env node
// razorkv's model-level side of the side-by-side benchmark: model-zoo's LlamaModel (weights kept in the file's
// blocks, quantMatmul and attendStep from kernels-cpu, core's KvCache) on a GGUF file, with the command line of
// kernel-forward.js so that bench/vs-llama-cpp.js runs both the same way.
//
//   node bench/lib/model-forward.js --model FILE --prefill T            time model.prefill of T tokens
//   node bench/lib/model-forward.js --model FILE --decode N --context C  an untimed prefill of max(C, 1) tokens and
//                                   one untimed decode step, then N timed greedy decode steps
//   node bench/lib/model-forward.js --model FILE --generate N --prompt P a timed prefill of P tokens, then N greedy
//                                   decode steps (for the resident-memory comparison)
//   … --prefill-chunk-rows R|whole     LlamaModel's prefillChunkRows (default: the model's own rule)
//   … --prefill-products f32|int8      LlamaModel's prefillProducts (default f32)
// Prints one JSON line like kernel-forward.js. Token ids are (7919·i + 13) mod vocab, as there. The weights come
// from model-zoo's openModel (no tokenizer is built: the random-weight files carry a placeholder vocabulary).
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { forwardArgs } from "./forward-args.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const path = resolve(ROOT, "packages/model-zoo/dist/index.js");
if (!existsSync(path)) {
  console.error(`model-forward: ${path} is missing: build first (pnpm run build)`);
  process.exit(2);
}
const { openModel, LlamaModel, defaultBackend, argmax } = await import(pathToFileURL(path).href);

const opts = forwardArgs("model-forward");

const t0Load = performance.now();
const backend = await defaultBackend();
const loaded = await openModel(resolve(opts.model));
const chunkRows = opts["prefill-chunk-rows"];
if (chunkRows !== undefined && chunkRows !== "whole" && !(Number(chunkRows) >= 2)) {
  console.error(`model-forward: --prefill-chunk-rows takes a number of rows (at least 2) or "whole", got "${chunkRows}"`);
  process.exit(2);
}
const products = opts["prefill-products"];
if (products !== undefined && products !== "f32" && products !== "int8") {
  console.error(`model-forward: --prefill-products takes f32 or int8, got "${products}"`);
  process.exit(2);
}
const modelOptions = {
  ...(chunkRows === undefined ? {} : { prefillChunkRows: chunkRows === "whole" ? Infinity : Number(chunkRows) }),
  ...(products === undefined ? {} : { prefillProducts: products }),
};
const model = new LlamaModel(loaded.weights, backend, modelOptions);
const loadSeconds = (performance.now() - t0Load) / 1000;
const vocab = model.config.vocabSize;
const ids = (n) => Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
const seconds = (t0) => (performance.now() - t0) / 1000;
const result = { model: opts.model, backend: backend.name, prefillProducts: products ?? "f32", loadSeconds: Number(loadSeconds.toFixed(3)) };

if (opts.prefill) {
  const T = Number(opts.prefill);
  model.prefill(ids(8), { logits: "last" }); // warm-up: thread pool, JIT
  const t0 = performance.now();
  model.prefill(ids(T), { logits: "last" });
  Object.assign(result, { kind: "prefill", tokens: T, seconds: seconds(t0) });
} else if (opts.decode) {
  const N = Number(opts.decode), C = Math.max(1, Number(opts.context));
  const { cache, logits } = model.prefill(ids(C), { logits: "last" });
  let token = argmax(model.decode(cache, argmax(logits))); // warm-up step, not timed
  const t0 = performance.now();
  for (let i = 0; i < N; i++) token = argmax(model.decode(cache, token));
  Object.assign(result, { kind: "decode", context: C, tokens: N, seconds: seconds(t0) });
} else if (opts.generate) {
  const N = Number(opts.generate), P = Number(opts.prompt);
  const t0 = performance.now();
  const { cache, logits } = model.prefill(ids(P), { logits: "last" });
  const prefillSeconds = seconds(t0);
  let token = argmax(logits);
  const generated = [token];
  const t1 = performance.now();
  for (let i = 0; i < N; i++) generated.push((token = argmax(model.decode(cache, token))));
  Object.assign(result, { kind: "generate", prompt: P, tokens: N, prefillSeconds, seconds: seconds(t1), greedyTokens: generated.slice(0, N) });
} else {
  console.error("model-forward: give --prefill T, --decode N or --generate N");
  process.exit(2);
}
result.tokensPerSecond = result.tokens / result.seconds;
result.maxRssBytes = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify(result));
