/**
 * No silent wrongness (DESIGN §5): a config.json key or GGUF metadata key that changes the computation and is not
 * implemented stops the load with one line naming the file and the key; so does a tensor the forward pass would not
 * read. The configs of the models researchers use (Llama 3.1/3.2, Qwen2.5, Qwen3, SmolLM2) are accepted.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ModelFileError } from "./formats/errors.js";
import { buildLlamaGguf, type GgufValue } from "./formats/fixtures.js";
import { GgmlType } from "./formats/dequant.js";
import { openGguf } from "./formats/gguf.js";
import { llamaConfigFromHf } from "./formats/safetensors.js";
import { LlamaModel } from "./model/llama.js";
import { randomWeights, tinyConfig } from "./model/random-model.js";

const root = mkdtempSync(join(tmpdir(), "razorkv-refusals-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Llama-3.1-8B's config.json as transformers 4.43 wrote it. */
const llama31 = {
  architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000,
  eos_token_id: 128001, hidden_act: "silu", hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336,
  max_position_embeddings: 131072, mlp_bias: false, model_type: "llama", num_attention_heads: 32,
  num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: "bfloat16", transformers_version: "4.43.0.dev0",
  use_cache: true, vocab_size: 128256,
};
/** Qwen2.5-7B-Instruct's, with the YaRN block its model card says to add for long inputs. */
const qwen25 = {
  architectures: ["Qwen2ForCausalLM"], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
  hidden_act: "silu", hidden_size: 3584, initializer_range: 0.02, intermediate_size: 18944,
  max_position_embeddings: 32768, max_window_layers: 28, model_type: "qwen2", num_attention_heads: 28,
  num_hidden_layers: 28, num_key_value_heads: 4, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 131072,
  tie_word_embeddings: false, torch_dtype: "bfloat16", transformers_version: "4.43.1", use_cache: true,
  use_sliding_window: false, vocab_size: 152064,
  rope_scaling: { factor: 4.0, original_max_position_embeddings: 32768, type: "yarn" },
};
/** Qwen3-8B's. */
const qwen3 = {
  architectures: ["Qwen3ForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643,
  eos_token_id: 151645, head_dim: 128, hidden_act: "silu", hidden_size: 4096, initializer_range: 0.02,
  intermediate_size: 12288, max_position_embeddings: 40960, max_window_layers: 36, model_type: "qwen3",
  num_attention_heads: 32, num_hidden_layers: 36, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, sliding_window: null, tie_word_embeddings: false, torch_dtype: "bfloat16",
  transformers_version: "4.51.0", use_cache: true, use_sliding_window: false, vocab_size: 151936,
};
/** Llama 3.2 1B as transformers 5.x writes it: rope_parameters instead of rope_theta + rope_scaling. */
const llama32v5 = {
  architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000,
  dtype: "bfloat16", eos_token_id: 128001, head_dim: 64, hidden_act: "silu", hidden_size: 2048,
  initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false,
  model_type: "llama", num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_parameters: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_theta: 500000.0, rope_type: "llama3" },
  tie_word_embeddings: true, transformers_version: "5.0.0", use_cache: true, vocab_size: 128256,
};

const file = "/m/config.json";
const parse = (json: Record<string, unknown>, hasLmHead = true) => llamaConfigFromHf(json, file, { hasLmHead });

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelFileError);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a refusal");
}

describe("config.json: the models researchers use are accepted, with their RoPE scaling", () => {
  it("Llama 3.1 (4.x rope_scaling) and Llama 3.2 (5.x rope_parameters): llama3 scaling", () => {
    expect(parse(llama31).ropeScaling).toEqual({ type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
    expect(parse(llama31).ropeTheta).toBe(500000);
    const c = parse(llama32v5, false);
    expect(c.ropeScaling).toEqual({ type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
    expect(c.ropeTheta).toBe(500000);
    expect(c.tiedEmbeddings).toBe(true);
  });

  it("Qwen2.5 with YaRN (4.x `type`), Qwen3 with q/k norm and its own head_dim", () => {
    expect(parse(qwen25)).toMatchObject({
      qkvBias: true, ropeTheta: 1e6,
      ropeScaling: { type: "yarn", factor: 4, originalContext: 32768, betaFast: 32, betaSlow: 1, attentionFactor: 0.1 * Math.log(4) + 1, truncate: true },
    });
    const q3 = parse(qwen3);
    expect(q3).toMatchObject({ architecture: "qwen3", headDim: 128, qkNorm: true, qkvBias: false });
    expect(q3.ropeScaling).toBeUndefined();
    // Qwen3Config's head_dim default is 128, not hidden/heads
    const { head_dim: _, ...noHeadDim } = qwen3;
    expect(parse(noHeadDim).headDim).toBe(128);
  });

  it("YaRN's attention factor: explicit, from mscale/mscale_all_dim, or 0.1·ln(factor) + 1; a top-level original context wins", () => {
    const yarn = (extra: Record<string, unknown>, top: Record<string, unknown> = {}) =>
      parse({ ...qwen25, ...top, rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 8192, ...extra } }).ropeScaling;
    expect(yarn({ attention_factor: 0.5 })).toMatchObject({ attentionFactor: 0.5 });
    const ms = (s: number, m: number) => 0.1 * m * Math.log(s) + 1;
    expect(yarn({ mscale: 0.707, mscale_all_dim: 1 })).toMatchObject({ attentionFactor: ms(4, 0.707) / ms(4, 1) });
    expect(yarn({ beta_fast: 16, beta_slow: 2, truncate: false })).toMatchObject({ betaFast: 16, betaSlow: 2, truncate: false });
    expect(yarn({}, { original_max_position_embeddings: 4096 })).toMatchObject({ originalContext: 4096 });
  });

  it("linear and dynamic scaling; dynamic NTK runs to original × factor", () => {
    const linear = parse({ ...llama31, rope_scaling: { type: "linear", factor: 2 } });
    expect(linear.ropeScaling).toEqual({ type: "linear", factor: 2 });
    const dynamic = parse({ ...llama31, max_position_embeddings: 4096, rope_scaling: { rope_type: "dynamic", factor: 2 } });
    expect(dynamic.ropeScaling).toEqual({ type: "dynamic", factor: 2, originalContext: 4096 });
    expect(dynamic.maxContext).toBe(8192);
  });
});

describe("config.json: what we do not implement stops the load, naming the file and the key", () => {
  const cases: [string, Record<string, unknown>, string, boolean?][] = [
    ["an unknown rope_type", { ...llama31, rope_scaling: { rope_type: "longrope", factor: 2 } }, `${file}: rope_scaling.rope_type "longrope" is not implemented (implemented: default, linear, dynamic, yarn, llama3)`],
    ["a RoPE key its type does not use", { ...llama31, rope_scaling: { ...llama31.rope_scaling, beta_fast: 4 } }, `${file}: rope_scaling.beta_fast is not implemented for rope_type llama3`],
    ["rope_parameters with an unknown type (5.x)", { ...llama32v5, rope_parameters: { rope_type: "proportional", rope_theta: 1e4 } }, `${file}: rope_parameters.rope_type "proportional" is not implemented (implemented: default, linear, dynamic, yarn, llama3)`, false],
    ["a key no rule knows", { ...llama31, logit_scale: 0.5 }, `${file}: key logit_scale is not implemented for llama models (not known to leave the computation unchanged)`],
    ["attention logit soft-capping", { ...llama31, attn_logit_softcapping: 50 }, `${file}: attn_logit_softcapping: 50 is not implemented (soft-capped attention logits)`],
    ["final logit soft-capping", { ...qwen3, final_logit_softcapping: 30 }, `${file}: final_logit_softcapping: 30 is not implemented (soft-capped output logits)`],
    ["partial rotary", { ...llama31, partial_rotary_factor: 0.5 }, `${file}: partial_rotary_factor: 0.5 is not implemented (RoPE on part of each head)`],
    ["Qwen's sliding window switched on", { ...qwen25, use_sliding_window: true, sliding_window: 4096, max_window_layers: 20 }, `${file}: sliding_window: 4096 is not implemented (Qwen's sliding-window layers below the context of 32768 are refused)`],
    ["a Gemma layer type we do not run", { ...llama31, model_type: "gemma2", rope_scaling: null, layer_types: ["chunked_attention", "full_attention"], num_hidden_layers: 2 }, `${file}: layer_types: ["chunked_attention","full_attention"] is not implemented (layer types other than sliding_attention and full_attention)`],
    ["Gemma with another activation", { ...llama31, model_type: "gemma2", rope_scaling: null, hidden_activation: "gelu" }, `${file}: hidden_activation: "gelu" is not implemented (GeGLU with gelu_pytorch_tanh)`],
    ["an MLP bias", { ...llama31, mlp_bias: true }, `${file}: mlp_bias: true is not implemented (biases on the MLP projections)`],
    ["Llama's attention_bias (which biases o_proj too)", { ...llama31, attention_bias: true }, `${file}: attention_bias: true is not implemented (biases on q/k/v/o projections)`],
    ["another activation", { ...llama31, hidden_act: "gelu" }, `${file}: hidden_act: "gelu" is not implemented (SwiGLU needs silu)`],
    ["custom modeling code", { ...llama31, auto_map: { AutoModelForCausalLM: "x.Y" } }, `${file}: key auto_map is not implemented for llama models (not known to leave the computation unchanged)`],
    ["a foreign model type", { ...llama31, model_type: "phi3" }, `${file}: model_type phi3 is not one this harness runs (llama, mistral, qwen2, qwen3, gemma2, gemma3_text)`],
    ["untied without lm_head", { ...llama31 }, `${file}: tie_word_embeddings is false but the checkpoint has no lm_head.weight`, false],
  ];
  for (const [name, json, message, hasLmHead] of cases) {
    it(name, () => expect(refusal(() => parse(json, hasLmHead ?? true))).toBe(message));
  }
  it("SmolLM2's real config.json still loads (rope_interleaved false, transformers.js_config…)", () => {
    const smol = {
      architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2,
      hidden_act: "silu", hidden_size: 576, initializer_range: 0.041666666666666664, intermediate_size: 1536,
      is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false, model_type: "llama", num_attention_heads: 9,
      num_hidden_layers: 30, num_key_value_heads: 3, pad_token_id: 2, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: "bfloat16",
      transformers_version: "4.42.3", "transformers.js_config": { kv_cache_dtype: { q4f16: "float16", fp16: "float16" } },
      use_cache: true, vocab_size: 49152,
    };
    expect(parse(smol, false).ropeScaling).toBeUndefined();
    expect(refusal(() => parse({ ...smol, rope_interleaved: true }, false))).toBe(
      `${file}: rope_interleaved: true is not implemented (adjacent-pair RoPE on HF weights)`,
    );
  });
});

describe("GGUF metadata and tensors: what we do not implement stops the load", () => {
  let count = 0;
  const write = (bytes: Uint8Array) => {
    const path = join(root, `m-${count++}.gguf`);
    writeFileSync(path, bytes);
    return path;
  };
  const config = tinyConfig({ hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, vocabSize: 40, maxContext: 256 });
  const weights = randomWeights(config, 3);
  const gguf = (extraMetadata: Record<string, GgufValue>, options: Parameters<typeof buildLlamaGguf>[1] = {}) =>
    write(buildLlamaGguf(weights, { ...options, extraMetadata: { ...extraMetadata, ...options.extraMetadata } }));
  const f32 = (values: number[]) => ({ f32: values.length === 1 ? values[0] : values }) as unknown as GgufValue;

  const cases: [string, Record<string, GgufValue>, (path: string) => string][] = [
    ["an unknown key under the architecture", { "llama.embedding_scale": f32([8]) }, (p) => `${p}: metadata key llama.embedding_scale is not implemented for llama models (not known to leave the computation unchanged)`],
    ["Gemma 2's soft cap on a llama file", { "llama.attn_logit_softcapping": f32([50]) }, (p) => `${p}: metadata llama.attn_logit_softcapping: 50 is not implemented for llama (llama.cpp reads it for gemma2 only)`],
    ["an unknown scaling type", { "llama.rope.scaling.type": "longrope" }, (p) => `${p}: metadata llama.rope.scaling.type string longrope is not implemented (implemented: none, linear, yarn, and rope_freqs.weight)`],
    ["partial rotary", { "llama.rope.dimension_count": 4 }, (p) => `${p}: metadata llama.rope.dimension_count 4 is not implemented (RoPE on part of a head of 8)`],
    ["a layer pattern on a llama file", { "llama.attention.sliding_window_pattern": 2 }, (p) => `${p}: metadata llama.attention.sliding_window_pattern: 2 is not implemented for llama`],
    ["experts", { "llama.expert_count": 8 }, (p) => `${p}: metadata llama.expert_count: 8 is not implemented (mixture of experts)`],
    ["a RoPE magnitude factor", { "llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": f32([2]), "llama.rope.scaling.attn_factor": f32([0.5]) }, (p) => `${p}: metadata llama.rope.scaling.attn_factor: 0.5 is not implemented (a RoPE magnitude scale on top of the scaling's own)`],
    ["value length ≠ key length", { "llama.attention.value_length": 16 }, (p) => `${p}: metadata llama.attention.value_length 16 differs from the key length 8: not implemented`],
    ["a key of another architecture", { "gemma2.final_logit_softcapping": f32([30]) }, (p) => `${p}: metadata key gemma2.final_logit_softcapping is not implemented for llama models (not known to leave the computation unchanged)`],
  ];
  for (const [name, metadata, message] of cases) {
    it(name, async () => {
      const path = gguf(metadata);
      const err = await openGguf(path).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFileError);
      expect((err as Error).message).toBe(message(path));
    });
  }

  it("reads a sliding window on every layer of a llama-architecture file (Mistral); llama.cpp ignores it there, the model has it", async () => {
    const windowed = await openGguf(gguf({ "llama.attention.sliding_window": 64 }));
    expect(windowed.config.layerWindows).toEqual([64, 64]);
    expect((await openGguf(gguf({}))).config.layerWindows).toBeUndefined();
  });

  it("reads linear and YaRN scaling, and rope_freqs.weight as frequency factors", async () => {
    const linear = await openGguf(gguf({ "llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": f32([4]) }));
    expect(linear.config.ropeScaling).toEqual({ type: "linear", factor: 4 });
    const yarn = await openGguf(gguf({
      "llama.rope.scaling.type": "yarn", "llama.rope.scaling.factor": f32([4]), "llama.rope.scaling.original_context_length": 64,
      "llama.rope.scaling.yarn_beta_fast": f32([16]), "llama.rope.scaling.yarn_beta_slow": f32([2]),
    }));
    expect(yarn.config.ropeScaling).toEqual({
      type: "yarn", factor: 4, originalContext: 64, betaFast: 16, betaSlow: 2, attentionFactor: 0.1 * Math.log(4) + 1, truncate: true,
    });
    const factors = [1, 1, 2.5, 8];
    const ropeFreqs = { name: "rope_freqs.weight", type: GgmlType.F32, shape: [4], data: new Uint8Array(new Float32Array(factors).buffer) };
    const llama3 = await openGguf(gguf({}, { extraTensors: [ropeFreqs] }));
    expect(llama3.config.ropeScaling).toEqual({ type: "frequency-factors", factors });
    new LlamaModel(llama3); // rope_freqs.weight is used, so the model builds

    const wrongShape = gguf({}, { extraTensors: [{ ...ropeFreqs, shape: [2], data: ropeFreqs.data.subarray(0, 8) }] });
    await expect(openGguf(wrongShape)).rejects.toThrow(`${wrongShape}: tensor rope_freqs.weight has shape [2], expected [4] (one factor per frequency)`);
    const both = gguf({ "llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": f32([2]) }, { extraTensors: [ropeFreqs] });
    await expect(openGguf(both)).rejects.toThrow(`${both}: tensor rope_freqs.weight together with llama.rope.scaling.type linear is not implemented`);
  });

  it("a tensor the forward pass would not read stops the model from being built", async () => {
    const bias = { name: "blk.0.attn_output.bias", type: GgmlType.F32, shape: [32], data: new Uint8Array(32 * 4) };
    const path = gguf({}, { extraTensors: [bias] });
    const model = await openGguf(path); // the file reads (for tools that only inspect it)…
    expect(refusal(() => new LlamaModel(model))).toBe(
      `${path}: tensor blk.0.attn_output.bias is not part of the llama forward pass implemented here; refusing to ignore it`,
    );
    const qNorm = { name: "blk.0.attn_q_norm.weight", type: GgmlType.F32, shape: [8], data: new Uint8Array(8 * 4) };
    const normed = gguf({}, { extraTensors: [qNorm] });
    await expect(openGguf(normed)).rejects.toThrow(`${normed}: tensor blk.0.attn_q_norm.weight is not part of the llama forward pass implemented here`);
  });
});
