/**
 * Block weights in the forward pass (issue #19): matrices kept as GGUF blocks, multiplied by kernels-cpu's
 * quantMatmul on the native backend and by `matmulBlocksReference` (decode rows, f32 dots) on the TypeScript one.
 *
 * - TypeScript, blocks vs the same model decoded to f32 up front: bit-identical (the reference decodes with the same
 *   decoder and dots in the same order), which checks that the pass reads every block matrix, the embedding row
 *   lookup and the tied output included.
 * - Native vs TypeScript: a prefill takes the "dequant" path (f32 panels + SGEMM: float rounding only, ≤ 1e-4 of
 *   the logits' spread); a decode step the "dot" path, whose activations are rounded to 8 bits (kernels-cpu: each
 *   element moves by ≤ amax/254 of its block). Through this 2-layer model the largest logit moves by 1.7–8.5% of
 *   the logits' standard deviation (Q4_0 1.7%, Q8_0 2.8%, Q4_1 4.5%, Q4_K/Q6_K 6.2%, Q5_K 8.5%: measured; the
 *   K-quants' activation blocks are 256 wide, so their amax is larger); asserted: ≤ 15% of it, and ≥ 1e-7 of it
 *   for the quantized types, so a test that silently ran f32 would fail. F16/BF16 dot in f32: rounding only.
 * - prefillProducts "int8": a prefill on the decode step's 8-bit arithmetic, within 20%; chunks bit-identical.
 * - One matrix product on the dot path against the documented bound Σ_blocks amax/254 · Σ|w| (plus f32 rounding).
 */
import { describe, expect, it } from "vitest";
import { loadKernels } from "@razorkv/kernels-cpu";
import { typescriptBackend, matmulWeight, weightRow } from "./backend.js";
import { LlamaModel } from "./llama.js";
import { randomBlockWeights, tinyConfig, weightsFromMap } from "./random-model.js";
import { ggmlTypeTraits } from "../formats/dequant.js";
import type { LlamaConfig, ModelWeights, Tensor } from "./types.js";

const native = loadKernels();
const TYPES = ["Q4_1", "Q8_0", "Q4_K", "Q6_K", "Q4_0", "Q5_K", "F16", "BF16"] as const;

/** A 2-layer GQA config whose widths are multiples of 256 (the K-quants' block), untied output. */
function config(tied: boolean): LlamaConfig {
  return tinyConfig({ hiddenSize: 256, intermediateSize: 512, numHeads: 8, numKvHeads: 2, headDim: 32, vocabSize: 300, tiedEmbeddings: tied });
}

/** The same model with every matrix decoded to f32 (no `matrix`: the pass reads `tensor`). */
function decoded(weights: ModelWeights): ModelWeights {
  const names = [...namesOf(weights.config)];
  const map = new Map<string, Tensor>(names.map((n) => [n, weights.tensor(n)]));
  return weightsFromMap(weights.config, map, "decoded");
}

function namesOf(c: LlamaConfig): string[] {
  const names = ["token_embd.weight", "output_norm.weight", ...(c.tiedEmbeddings ? [] : ["output.weight"])];
  for (let l = 0; l < c.numLayers; l++) {
    for (const n of ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]) names.push(`blk.${l}.${n}.weight`);
  }
  return names;
}

function std(x: Float32Array): number {
  let s = 0, s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const m = s / x.length;
  return Math.sqrt(s2 / x.length - m * m);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const prompt = [5, 17, 256, 3, 99, 140, 7, 12, 280, 41, 63, 1];

describe.each(TYPES)("%s block weights", (type) => {
  const tied = type === "Q4_K" || type === "F16";
  const weights = randomBlockWeights(config(tied), type, 7);

  it("the pass gets blocks, not f32 (matrix kind and type as stored)", () => {
    const w = weights.matrix!("blk.1.ffn_down.weight");
    expect(w.kind).toBe("blocks");
    if (w.kind === "blocks") expect(w.typeName).toBe(type);
  });

  it("TypeScript backend: bit-identical logits to the same model decoded to f32, prefill and decode", () => {
    const blocks = new LlamaModel(weights, typescriptBackend);
    const f32 = new LlamaModel(decoded(weights), typescriptBackend);
    const a = blocks.prefill(prompt, { logits: "all" });
    const b = f32.prefill(prompt, { logits: "all" });
    expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
    expect(maxAbsDiff(blocks.decode(a.cache, 33), f32.decode(b.cache, 33))).toBe(0);
  });

  it.skipIf(!native)("native vs TypeScript: prefill within 1e-4 and a decode step within 15% of the logits' spread", () => {
    const ts = new LlamaModel(weights, typescriptBackend);
    const nat = new LlamaModel(weights, native!);
    const a = ts.prefill(prompt, { logits: "all" });
    const b = nat.prefill(prompt, { logits: "all" });
    const spread = std(a.logits);
    const prefillDiff = maxAbsDiff(a.logits, b.logits) / spread;
    const stepTs = ts.decode(a.cache, 33);
    const stepNat = nat.decode(b.cache, 33);
    const decodeDiff = maxAbsDiff(stepTs, stepNat) / std(stepTs);
    console.info(`${type}: native vs TypeScript max |Δ logit| / std: prefill ${prefillDiff.toExponential(2)}, decode ${decodeDiff.toExponential(2)}`);
    expect(prefillDiff).toBeLessThan(1e-4);
    expect(decodeDiff).toBeLessThan(type === "F16" || type === "BF16" ? 1e-4 : 0.15);
    // the decode step's 8-bit activations do move the logits (f16/bf16 dot in f32: rounding only)
    if (type !== "F16" && type !== "BF16") expect(decodeDiff).toBeGreaterThan(1e-7);
  });

  // The SGEMM may pick another kernel for another row count (OpenBLAS's small-matrix path at these sizes), so a chunk's
  // rows are the whole run's within float rounding here; at the default 512-row chunks SmolLM2's are bit-identical
  // (parity.test.ts).
  it.skipIf(!native)("native: a prefill in chunks (of 6 rows, above the rowwise path's 4) is one run's within float rounding", () => {
    const whole = new LlamaModel(weights, native!, { prefillChunkRows: Infinity });
    const chunked = new LlamaModel(weights, native!, { prefillChunkRows: 6 });
    const a = whole.prefill(prompt, { logits: "all" });
    const b = chunked.prefill(prompt, { logits: "all" });
    expect(maxAbsDiff(a.logits, b.logits) / std(a.logits)).toBeLessThan(1e-5);
    a.cache.heads.forEach((head, i) => {
      const n = head.length * head.headDim;
      expect(b.cache.heads[i].length).toBe(head.length);
      expect(maxAbsDiff(b.cache.heads[i].keys.subarray(0, n), head.keys.subarray(0, n))).toBeLessThan(1e-5);
      expect(maxAbsDiff(b.cache.heads[i].values.subarray(0, n), head.values.subarray(0, n))).toBeLessThan(1e-5);
    });
  });

  // prefillProducts "int8": a prefill's rows take the 8-bit products a decode step takes (kernels-cpu's "int8" path:
  // the 8-bit GEMM for Q8_0, Q4_0 … Q6_K, the dot kernels for F16/BF16), so it moves against the f32 TypeScript pass as a
  // decode step does; every row's bits are independent of the rows beside it, so a chunked prefill is one run's bits.
  it.skipIf(!native)("native, prefillProducts int8: a prefill moves like a decode step, in chunks gives one run's bits, and exactProducts keeps f32", () => {
    const ts = new LlamaModel(weights, typescriptBackend);
    const int8 = new LlamaModel(weights, native!, { prefillProducts: "int8", prefillChunkRows: Infinity });
    const chunked = new LlamaModel(weights, native!, { prefillProducts: "int8", prefillChunkRows: 5 });
    const a = ts.prefill(prompt, { logits: "all" });
    const b = int8.prefill(prompt, { logits: "all" });
    const diff = maxAbsDiff(a.logits, b.logits) / std(a.logits);
    console.info(`${type}: int8 prefill vs TypeScript f32 max |Δ logit| / std ${diff.toExponential(2)}`);
    // measured 2.8–11.4% of the spread (Q4_0 … Q6_K; every position of the prompt, where a decode step is one row)
    expect(diff).toBeLessThan(type === "F16" || type === "BF16" ? 1e-4 : 0.2);
    if (type !== "F16" && type !== "BF16") expect(diff).toBeGreaterThan(1e-7);
    // and not by f32 rounding: against the native f32 prefill (itself within 1e-4 of TypeScript) — F16/BF16 have no
    // 8-bit arithmetic and stay f32, bit for bit
    const f32Native = new LlamaModel(weights, native!).prefill(prompt, { logits: "all" }).logits;
    if (type === "F16" || type === "BF16") expect(maxAbsDiff(b.logits, f32Native)).toBe(0);
    else expect(maxAbsDiff(b.logits, f32Native) / std(a.logits)).toBeGreaterThan(1e-3);
    const c = chunked.prefill(prompt, { logits: "all" });
    if (type === "F16" || type === "BF16") {
      // f32 products: the SGEMM may pick another kernel for a 5-row chunk (see the chunked test below)
      expect(maxAbsDiff(c.logits, b.logits) / std(a.logits)).toBeLessThan(1e-5);
    } else {
      expect(maxAbsDiff(c.logits, b.logits)).toBe(0);
      expect(maxAbsDiff(chunked.decode(c.cache, 33), int8.decode(b.cache, 33))).toBe(0);
    }
    // teacher-forced scoring asks for f32 products, and gets them whatever the model's prefill arithmetic
    const f32 = new LlamaModel(weights, native!);
    const exact = int8.forward(int8.prefill(prompt.slice(0, 4), { logits: "none", exactProducts: true }).cache, prompt.slice(4), { logits: "all", exactProducts: true });
    const reference = f32.forward(f32.prefill(prompt.slice(0, 4), { logits: "none" }).cache, prompt.slice(4), { logits: "all" });
    expect(maxAbsDiff(exact.logits, reference.logits)).toBe(0);
  });

  it("prefillProducts int8 is refused on the TypeScript backend, which multiplies in f32 only", () => {
    expect(() => new LlamaModel(weights, typescriptBackend, { prefillProducts: "int8" })).toThrow(
      /LlamaModel: prefillProducts "int8" needs the native kernels \(kernels-cpu\); the typescript backend multiplies in f32/,
    );
  });

  it.skipIf(!native)("native: a batch of decode steps gives each sequence the logits it gets alone", () => {
    const nat = new LlamaModel(weights, native!);
    const caches = [prompt.slice(0, 5), prompt, prompt.slice(3)].map((p) => nat.prefill(p, { logits: "none" }).cache);
    const single = [prompt.slice(0, 5), prompt, prompt.slice(3)].map((p, i) => {
      const { cache } = nat.prefill(p, { logits: "none" });
      return nat.decode(cache, 40 + i);
    });
    const { logits } = nat.decodeBatch(caches, [40, 41, 42]);
    const V = nat.config.vocabSize;
    single.forEach((s, i) => expect(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), s)).toBe(0));
  });

  it.skipIf(!native)("native, exactProducts: a decode step multiplies as a prefill does — the TypeScript f32 result within 1e-4 of the spread", () => {
    const ts = new LlamaModel(weights, typescriptBackend);
    const nat = new LlamaModel(weights, native!);
    const a = ts.prefill(prompt, { logits: "none" });
    const b = nat.prefill(prompt, { logits: "none" });
    const stepTs = ts.decode(a.cache, 33);
    const { logits } = nat.decodeBatch([b.cache], [33], { exactProducts: true });
    expect(maxAbsDiff(logits, stepTs) / std(stepTs)).toBeLessThan(1e-4);
  });

  it("the embedding lookup decodes the token's row (both backends)", () => {
    const w = weights.matrix!("token_embd.weight");
    const full = weights.tensor("token_embd.weight").data;
    const H = w.cols;
    for (const backend of native ? [typescriptBackend, native] : [typescriptBackend]) {
      const row = new Float32Array(H);
      weightRow(backend, w, 123, row);
      expect(maxAbsDiff(row, full.subarray(123 * H, 124 * H))).toBe(0);
    }
  });
});

describe.skipIf(!native)("a decode step's matrix product on the dot path", () => {
  it.each(["Q4_1", "Q8_0", "Q4_K", "Q6_K"])("%s: within Σ_blocks amax/254 · Σ|w| of the f32 product", (type) => {
    const weights = randomBlockWeights(config(false), type, 3);
    const w = weights.matrix!("blk.0.ffn_down.weight");
    const f32 = weights.tensor("blk.0.ffn_down.weight").data;
    const K = w.cols;
    const N = w.rows;
    // activations of one row, SwiGLU-like: mostly small, a few large
    const x = new Float32Array(K).map((_, i) => Math.sin(i * 1.7) * (i % 37 === 0 ? 8 : 0.5));
    const out = new Float32Array(N);
    matmulWeight(native!, w, x, out, 1, "dot");
    // ggml's activation blocks: 32 elements for the 32-element types, Q8_K's 256 for the K-quants
    const block = (ggmlTypeTraits(w.kind === "blocks" ? w.type : 0)?.blockSize ?? 32) === 256 ? 256 : 32;
    let worst = 0;
    for (let n = 0; n < N; n++) {
      let exact = 0, bound = 0, magnitude = 0;
      for (let b = 0; b < K; b += block) {
        let amax = 0, sumW = 0;
        for (let k = b; k < b + block; k++) {
          amax = Math.max(amax, Math.abs(x[k]));
          sumW += Math.abs(f32[n * K + k]);
          exact += x[k] * f32[n * K + k];
          magnitude += Math.abs(x[k] * f32[n * K + k]);
        }
        bound += (amax / 254) * sumW;
      }
      worst = Math.max(worst, Math.abs(out[n] - exact) / (bound + 1e-6 * magnitude));
    }
    expect(worst).toBeLessThanOrEqual(1);
  });
});
