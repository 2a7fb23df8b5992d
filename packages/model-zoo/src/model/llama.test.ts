import { describe, expect, it } from "vitest";
import { LlamaModel, PREFILL_UBATCH_ROWS } from "./llama.js";
import { randomWeights, tinyConfig } from "./random-model.js";
import { argmax } from "./ops.js";

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("LlamaModel forward pass", () => {
  const configs = {
    "GQA, tied": tinyConfig(),
    "Qwen2-style QKV bias, untied": tinyConfig({ qkvBias: true, tiedEmbeddings: false, numKvHeads: 3, numHeads: 6 }),
    "MHA": tinyConfig({ numKvHeads: 6 }),
    "Qwen3-style q/k norm, head_dim ≠ hidden/heads": tinyConfig({ qkNorm: true, headDim: 16 }),
    "llama3 RoPE scaling": tinyConfig({ ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 } }),
    "YaRN": tinyConfig({ ropeScaling: { type: "yarn", factor: 4, originalContext: 8, betaFast: 32, betaSlow: 1, attentionFactor: 1.2, truncate: true } }),
    "Mistral-style window 5 on every layer (binds within the prefill)": tinyConfig({ layerWindows: [5, 5] }),
    "Gemma 2-style: local/global, soft caps, GeGLU, sandwich norms, embedding scale": tinyConfig({
      layerWindows: [4, null], sandwichNorms: true, mlpActivation: "gelu-tanh", embeddingScale: Math.fround(Math.sqrt(48)),
      attentionScale: Math.fround(1 / 4), attentionSoftcap: 3, finalSoftcap: 5,
    }),
    "Gemma 3-style: local RoPE base apart, q/k norm, global scaling": tinyConfig({
      layerWindows: [6, null], localRope: { theta: 100 }, qkNorm: true, ropeScaling: { type: "linear", factor: 4 }, sandwichNorms: true,
      mlpActivation: "gelu-tanh",
    }),
  };
  for (const [name, config] of Object.entries(configs)) {
    it(`${name}: prefill then decode equals one prefill over the whole sequence`, () => {
      const model = new LlamaModel(randomWeights(config, 7));
      const tokens = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43];
      const whole = model.prefill(tokens, { logits: "all" });
      const part = model.prefill(tokens.slice(0, 9));
      const V = config.vocabSize;
      expect(maxAbsDiff(part.logits, whole.logits.subarray(8 * V, 9 * V))).toBeLessThan(1e-4);
      for (let i = 9; i < tokens.length; i++) {
        const logits = model.decode(part.cache, tokens[i]);
        expect(maxAbsDiff(logits, whole.logits.subarray(i * V, (i + 1) * V))).toBeLessThan(1e-4);
      }
      expect(part.cache.nextPosition).toBe(tokens.length);
      const window = config.layerWindows?.[1] ?? null;
      expect(part.cache.head(1, 0).length).toBe(window === null ? tokens.length : Math.min(window, tokens.length));
      if (config.layerWindows?.[0]) expect(part.cache.head(0, 1).length).toBe(config.layerWindows[0]);
    });

    it(`${name}: a prefill in chunks (of 4–5 rows) gives the bits of one run, and so do the decode steps after it`, () => {
      const weights = randomWeights(config, 7);
      const whole = new LlamaModel(weights, undefined, { prefillChunkRows: Infinity });
      const chunked = new LlamaModel(weights, undefined, { prefillChunkRows: 4 });
      const tokens = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43];
      for (const logits of ["all", "last", "none"] as const) {
        const a = whole.prefill(tokens, { logits });
        const b = chunked.prefill(tokens, { logits });
        expect(b.logits).toEqual(a.logits);
        expect(b.cache.nextPosition).toBe(tokens.length);
        a.cache.heads.forEach((head, i) => {
          const other = b.cache.heads[i];
          expect(other.length).toBe(head.length);
          expect(other.positions.subarray(0, other.length)).toEqual(head.positions.subarray(0, head.length));
          expect(other.keys.subarray(0, other.length * other.headDim)).toEqual(head.keys.subarray(0, head.length * head.headDim));
          expect(other.values.subarray(0, other.length * other.headDim)).toEqual(head.values.subarray(0, head.length * head.headDim));
        });
        if (logits === "last") for (const t of [7, 8, 9]) expect(chunked.decode(b.cache, t)).toEqual(whole.decode(a.cache, t));
      }
    });
  }

  it("a long forward over a compressed cache (ragged heads, compensation slots) gives the bits of one run: in chunks, or whole where a window trim would drop a compensation slot", () => {
    for (const config of [tinyConfig(), tinyConfig({ layerWindows: [5, null] })]) {
      const weights = randomWeights(config, 11);
      const whole = new LlamaModel(weights, undefined, { prefillChunkRows: Infinity });
      const chunked = new LlamaModel(weights, undefined, { prefillChunkRows: 4 });
      const { cache } = whole.prefill([4, 8, 15, 16, 23, 42, 7, 9]);
      cache.heads.forEach((head, i) => {
        const kept = i % 2 === 0 ? [0, 2, head.length - 1] : [1, head.length - 1];
        cache.heads[i] = head.select(kept, head.foldDropped(kept));
      });
      const a = cache.clone();
      const b = cache.clone();
      const question = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
      expect(chunked.forward(b, question, { logits: "all" }).logits).toEqual(whole.forward(a, question, { logits: "all" }).logits);
      a.heads.forEach((head, i) => {
        expect(b.heads[i].positions.subarray(0, b.heads[i].length)).toEqual(head.positions.subarray(0, head.length));
        expect(b.heads[i].keys.subarray(0, b.heads[i].length * head.headDim)).toEqual(head.keys.subarray(0, head.length * head.headDim));
        expect(b.heads[i].compensation).toEqual(head.compensation);
      });
    }
  });

  it("RoPE scalings that depend on the sequence length (dynamic NTK, LongRoPE) see the whole forward's length in every chunk", () => {
    const configs = [
      tinyConfig({ ropeScaling: { type: "dynamic", factor: 4, originalContext: 8 } }),
      tinyConfig({
        architecture: "phi3",
        ropeScaling: { type: "longrope", shortFactor: [1, 1, 1, 1], longFactor: [1, 2, 4, 8], originalContext: 8, attentionFactor: 1.1 },
      }),
    ];
    for (const config of configs) {
      const weights = randomWeights(config, 7);
      const whole = new LlamaModel(weights, undefined, { prefillChunkRows: Infinity });
      const chunked = new LlamaModel(weights, undefined, { prefillChunkRows: 3 });
      // 20 tokens cross the original context of 8: chunks ending at 7 would rotate with the short factors
      const tokens = Array.from({ length: 20 }, (_, i) => (i * 37 + 5) % config.vocabSize);
      const a = whole.prefill(tokens, { logits: "all" });
      const b = chunked.prefill(tokens, { logits: "all" });
      expect(b.logits).toEqual(a.logits);
      a.cache.heads.forEach((head, i) => expect(b.cache.heads[i].keys.subarray(0, head.length * head.headDim)).toEqual(head.keys.subarray(0, head.length * head.headDim)));
    }
  });

  it("no chunk is a single row, whatever prefillChunkRows (a one-row chunk would take the decode path)", () => {
    const model = new LlamaModel(randomWeights(tinyConfig(), 3), undefined, { prefillChunkRows: 2 });
    const sizes: number[] = [];
    const pass = model as unknown as { run: (segments: { tokens: ArrayLike<number> }[], ...rest: unknown[]) => unknown };
    const original = pass.run.bind(model);
    pass.run = (segments, ...rest) => (sizes.push(segments[0].tokens.length), original(segments, ...rest));
    for (const n of [3, 5, 7]) model.prefill(Array.from({ length: n }, (_, i) => i + 1), { logits: "none" });
    expect(sizes).toEqual([3, 3, 2, 2, 3, 2]); // 3 whole; 5 in two; 7 in three
  });

  it("a chunked forward that is refused (context, token id) leaves the cache untouched, as one run does", () => {
    const model = new LlamaModel(randomWeights(tinyConfig({ maxContext: 10 }), 3), undefined, { prefillChunkRows: 3 });
    const tooLong = model.newCache();
    expect(() => model.forward(tooLong, Array.from({ length: 12 }, (_, i) => i + 1))).toThrow("forward: 12 tokens exceed the model's context of 10");
    const badId = model.newCache();
    expect(() => model.forward(badId, [1, 2, 3, 4, 5, 6, 7, 500])).toThrow("forward: token id 500 outside the vocabulary of 97");
    for (const cache of [tooLong, badId]) {
      expect(cache.nextPosition).toBe(0);
      expect(cache.heads.every((h) => h.length === 0)).toBe(true);
    }
  });

  it("a forward that collects attention statistics runs in one piece, whatever the chunk size", () => {
    const config = tinyConfig();
    const model = new LlamaModel(randomWeights(config, 3), undefined, { prefillChunkRows: 2 });
    const { stats } = model.prefill([1, 2, 3, 4, 5, 6, 7], { stats: { accumulated: true } });
    expect(stats![0].accumulated![0].length).toBe(7);
  });

  it("a long prompt's prefill reserves room for the decode steps after it, so the first ones do not regrow the cache", () => {
    const config = tinyConfig();
    const model = new LlamaModel(randomWeights(config, 3), undefined, { prefillChunkRows: 4 });
    const { cache } = model.prefill([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const keys = cache.head(1, 0).keys;
    for (let t = 0; t < 20; t++) model.decode(cache, 11 + t);
    expect(cache.head(1, 0).keys).toBe(keys);
  });

  it("by default a forward runs whole until its row buffers would exceed a third of the weights' bytes, then in 512-row chunks", () => {
    // f32 weights; a vocabulary large enough that the threshold (580 rows) lies above one ubatch
    const config = tinyConfig({ vocabSize: 16_000 });
    const weights = randomWeights(config, 3);
    const model = new LlamaModel(weights);
    const whole = new LlamaModel(weights, undefined, { prefillChunkRows: Infinity });
    const c = config;
    const rowBytes = 4 * (3 * c.hiddenSize + 2 * c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim + 2 * c.intermediateSize);
    const layerBytes = 4 * c.hiddenSize * (2 * c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim + 3 * c.intermediateSize);
    const weightBytes = 4 * c.vocabSize * c.hiddenSize + c.numLayers * layerBytes;
    const threshold = Math.floor(weightBytes / 3 / rowBytes);
    expect(threshold).toBeGreaterThan(PREFILL_UBATCH_ROWS);
    // how many passes a prefill of n tokens takes (a spy on the private pass)
    const runsOf = (n: number, m: LlamaModel): number => {
      let runs = 0;
      const pass = m as unknown as { run: (...a: unknown[]) => unknown };
      const original = pass.run.bind(m);
      pass.run = (...a: unknown[]) => (runs++, original(...a));
      m.prefill(Array.from({ length: n }, (_, i) => i % 16_000), { logits: "none" });
      pass.run = original;
      return runs;
    };
    expect(runsOf(threshold, model)).toBe(1);
    expect(runsOf(threshold + 1, model)).toBe(Math.ceil((threshold + 1) / PREFILL_UBATCH_ROWS));
    expect(runsOf(threshold + 1, whole)).toBe(1);
  });

  it("refuses a chunk size under two rows (a one-row chunk would take the decode path)", () => {
    expect(() => new LlamaModel(randomWeights(tinyConfig(), 3), undefined, { prefillChunkRows: 1 })).toThrow(/prefillChunkRows must be at least 2/);
  });

  it("sliding windows: a batch of caches trims each by its own length; the statistics follow the kept slots", () => {
    const config = tinyConfig({ layerWindows: [4, null] });
    const model = new LlamaModel(randomWeights(config, 5));
    const a = model.prefill([1, 2, 3, 4, 5, 6, 7], { stats: { accumulated: true } });
    expect(a.cache.head(0, 0).length).toBe(4);
    expect(a.stats![0].accumulated![0].length).toBe(4);
    expect(a.stats![1].accumulated![0].length).toBe(7);
    const b = model.prefill([8, 9]);
    const batch = model.extendBatch([a.cache, b.cache], [[10, 11], [12, 13, 14]], { stats: { accumulated: true } });
    expect(a.cache.head(0, 1).positions.subarray(0, 4)).toEqual(Int32Array.of(5, 6, 7, 8));
    expect(b.cache.head(0, 1).positions.subarray(0, 4)).toEqual(Int32Array.of(1, 2, 3, 4));
    expect(batch.stats![0][0].accumulated![0].length).toBe(4);
    expect(batch.stats![1][1].accumulated![0].length).toBe(5);
    expect(a.cache.fullEntryCount()).toBe(2 * 4 + 2 * 9);
  });

  it("changing the window changes the logits once it binds, not before", () => {
    const tokens = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38];
    const V = 97;
    const full = new LlamaModel(randomWeights(tinyConfig(), 9)).prefill(tokens, { logits: "all" }).logits;
    const windowed = new LlamaModel(randomWeights(tinyConfig({ layerWindows: [4, 4] }), 9)).prefill(tokens, { logits: "all" }).logits;
    expect(maxAbsDiff(full.subarray(0, 4 * V), windowed.subarray(0, 4 * V))).toBe(0);
    expect(maxAbsDiff(full.subarray(4 * V), windowed.subarray(4 * V))).toBeGreaterThan(1e-3);
  });

  it("position matters: the same token at another position gives other logits (RoPE is applied)", () => {
    const model = new LlamaModel(randomWeights(tinyConfig(), 3));
    const a = model.prefill([5, 6, 7, 8]).logits;
    const b = model.prefill([5, 6, 7, 7, 8]).logits;
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it("collects accumulated and windowed attention statistics per layer and head", () => {
    const config = tinyConfig();
    const model = new LlamaModel(randomWeights(config, 4));
    const tokens = Array.from({ length: 20 }, (_, i) => (i * 7) % config.vocabSize);
    const { stats } = model.prefill(tokens, { stats: { accumulated: true, windowQueries: 5 } });
    expect(stats).toHaveLength(config.numLayers);
    for (const layer of stats!) {
      expect(layer.accumulated).toHaveLength(config.numHeads);
      for (let h = 0; h < config.numHeads; h++) {
        // each query's weights sum to one: the column sums add up to the number of queries
        const acc = layer.accumulated![h].reduce((s, x) => s + x, 0);
        const win = layer.windowed![h].reduce((s, x) => s + x, 0);
        expect(acc).toBeCloseTo(20, 4);
        expect(win).toBeCloseTo(5, 4);
        // the first key is seen by every query, the last by one only
        expect(layer.accumulated![h][19]).toBeLessThanOrEqual(1);
      }
    }
  });

  it("refuses tokens outside the vocabulary and sequences beyond the context", () => {
    const config = tinyConfig({ maxContext: 8 });
    const model = new LlamaModel(randomWeights(config, 5));
    expect(() => model.prefill([1, 2, 500])).toThrow(/token id 500 outside the vocabulary of 97/);
    expect(() => model.prefill(Array.from({ length: 9 }, () => 1))).toThrow(/9 tokens exceed the model's context of 8/);
  });

  it("decoding greedily is deterministic", () => {
    const model = new LlamaModel(randomWeights(tinyConfig(), 9));
    const run = () => {
      const { cache, logits } = model.prefill([1, 2, 3]);
      const out: number[] = [];
      let next = argmax(logits);
      for (let i = 0; i < 6; i++) {
        out.push(next);
        next = argmax(model.decode(cache, next));
      }
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe("dynamic NTK", () => {
  // as llamaConfigFromHf sets it: max_position_embeddings 8, context original × factor
  const config = tinyConfig({ maxContext: 32, ropeScaling: { type: "dynamic", factor: 4, originalContext: 8 } });
  const model = new LlamaModel(randomWeights(config, 13));
  const V = config.vocabSize;

  it("each call rotates by the length it reaches: continuing a prefill ≠ one prefill, past the original context", () => {
    const tokens = Array.from({ length: 20 }, (_, i) => (i * 5 + 3) % V);
    expect(() => model.prefill([...tokens, ...tokens])).toThrow(/40 tokens exceed the model's context of 32/);
    const whole = model.prefill(tokens, { logits: "all" }).logits;
    const short = model.prefill(tokens.slice(0, 6), { logits: "all" }).logits;
    // up to the original context the tables are plain RoPE's, whatever comes later
    expect(maxAbsDiff(short, new LlamaModel(randomWeights({ ...config, ropeScaling: undefined }, 13)).prefill(tokens.slice(0, 6), { logits: "all" }).logits)).toBe(0);
    const { cache } = model.prefill(tokens.slice(0, 12));
    const continued = model.forward(cache, tokens.slice(12), { logits: "last" }).logits;
    expect(maxAbsDiff(continued, whole.subarray(19 * V, 20 * V))).toBeGreaterThan(1e-4);
  });

  it("in a batch, each sequence is scaled by its own length, as when it runs alone", () => {
    const prompts = [[1, 2, 3], Array.from({ length: 14 }, (_, i) => i + 1)];
    const alone = prompts.map((p) => model.extendBatch([model.newCache()], [p]).logits);
    const { logits } = model.extendBatch([model.newCache(), model.newCache()], prompts);
    prompts.forEach((_, i) => expect(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), alone[i])).toBeLessThan(1e-5));
  });
});

describe("LlamaModel.decodeBatch", () => {
  it("gives each sequence the logits it gets when decoded alone", () => {
    const config = tinyConfig();
    const model = new LlamaModel(randomWeights(config, 11));
    const prompts = [[1, 2, 3, 4, 5], [9, 8, 7], [20, 30, 40, 50, 60, 70, 80]];
    const alone = prompts.map((p) => {
      const { cache } = model.prefill(p);
      return model.decode(cache, 42);
    });
    const caches = prompts.map((p) => model.prefill(p).cache);
    const { logits } = model.decodeBatch(caches, [42, 42, 42]);
    const V = config.vocabSize;
    prompts.forEach((_, i) => expect(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), alone[i])).toBeLessThan(1e-5));
    expect(caches.map((c) => c.nextPosition)).toEqual([6, 4, 8]);
    expect(() => model.decodeBatch([caches[0], caches[0]], [1, 2])).toThrow(/same cache appears twice/);
    // statistics come back per sequence, equal to what a lone forward collects
    const lone = model.prefill(prompts[2]).cache;
    const loneStats = model.forward(lone, [7], { stats: { accumulated: true } }).stats!;
    const batch = prompts.map((p) => model.prefill(p).cache);
    const batchStats = model.decodeBatch(batch, [1, 2, 7], { stats: { accumulated: true } }).stats!;
    expect(batchStats).toHaveLength(3);
    expect(maxAbsDiff(batchStats[2][1].accumulated![4], loneStats[1].accumulated![4])).toBeLessThan(1e-6);
    expect(batchStats[0][0].accumulated![0]).toHaveLength(6);
  });
});
