/**
 * No silent wrongness (DESIGN §5): a config.json key or GGUF metadata key that changes the computation and is not
 * implemented stops the load with one line naming the file and the key; so does a tensor the forward pass would not
 * read. The configs of the models researchers use (Llama 3.1/3.2, Qwen2.5, Qwen3, SmolLM2, Phi-3/3.5) are accepted.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ModelFileError } from "./formats/errors.js";
import { buildGguf, buildLlamaGguf, encodeF32, type GgufTensorSpec, type GgufValue } from "./formats/fixtures.js";
import { GgmlType } from "./formats/dequant.js";
import { openGguf } from "./formats/gguf.js";
import { llamaConfigFromHf } from "./formats/safetensors.js";
import { LlamaModel } from "./model/llama.js";
import { randomWeights, tinyConfig } from "./model/random-model.js";
import type { LlamaConfig } from "./model/types.js";

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

/** Phi-3-mini-4k-instruct's (transformers 4.40, remote-code era): no RoPE scaling, a window of 2047 of 4096. */
const phi3mini4k = {
  _name_or_path: "Phi-3-mini-4k-instruct", architectures: ["Phi3ForCausalLM"], attention_dropout: 0.0,
  auto_map: { AutoConfig: "configuration_phi3.Phi3Config", AutoModelForCausalLM: "modeling_phi3.Phi3ForCausalLM" },
  bos_token_id: 1, embd_pdrop: 0.0, eos_token_id: 32000, hidden_act: "silu", hidden_size: 3072, initializer_range: 0.02,
  intermediate_size: 8192, max_position_embeddings: 4096, model_type: "phi3", num_attention_heads: 32,
  num_hidden_layers: 32, num_key_value_heads: 32, original_max_position_embeddings: 4096, pad_token_id: 32000,
  resid_pdrop: 0.0, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, sliding_window: 2047,
  tie_word_embeddings: false, torch_dtype: "bfloat16", transformers_version: "4.40.2", use_cache: true,
  attention_bias: false, vocab_size: 32064,
};
/** Phi-3.5-mini-instruct's: LongRoPE lists of 48 (head_dim 96), original 4096 of 131072, a window longer than that. */
const phi35mini = {
  ...phi3mini4k, _name_or_path: "Phi-3.5-mini-instruct", max_position_embeddings: 131072, sliding_window: 262144,
  transformers_version: "4.43.3",
  rope_scaling: {
    long_factor: [
      1.08, 1.11, 1.14, 1.34, 1.59, 1.6, 1.62, 2.62, 3.23, 3.23, 4.79, 7.4, 7.7, 9.09, 12.2, 17.67, 24.46, 28.57, 30.42,
      30.84, 32.59, 32.93, 42.32, 44.96, 50.34, 50.45, 57.55, 57.93, 58.21, 60.14, 62.61, 62.62, 62.71, 63.14, 63.14,
      63.77, 63.93, 63.96, 63.97, 64.03, 64.07, 64.08, 64.12, 64.41, 64.48, 64.51, 64.53, 64.84,
    ],
    short_factor: [
      1.0, 1.02, 1.03, 1.03, 1.05, 1.05, 1.05, 1.05, 1.05, 1.07, 1.1, 1.11, 1.16, 1.16, 1.17, 1.29, 1.34, 1.68, 1.79, 1.82,
      1.85, 1.88, 1.91, 1.94, 1.99, 2.02, 2.02, 2.02, 2.02, 2.02, 2.02, 2.03, 2.03, 2.03, 2.03, 2.03, 2.03, 2.03, 2.03,
      2.03, 2.08, 2.09, 2.19, 2.22, 2.59, 2.73, 2.75, 2.84,
    ],
    type: "longrope",
  },
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

  it("Phi-3-mini-4k: its window on every layer, no scaling, as many KV heads as heads", () => {
    const c = parse(phi3mini4k);
    expect(c).toMatchObject({ architecture: "phi3", numKvHeads: 32, headDim: 96, maxContext: 4096, tiedEmbeddings: false, qkvBias: false });
    expect(c.ropeScaling).toBeUndefined();
    expect(c.layerWindows).toEqual(Array.from({ length: 32 }, () => 2047));
    // Phi3Config's default: num_key_value_heads = num_attention_heads
    const { num_key_value_heads: _, ...noKv } = phi3mini4k;
    expect(parse(noKv).numKvHeads).toBe(32);
  });

  it("Phi-3.5-mini: LongRoPE with attention factor √(1 + ln 32 / ln 4096) = √(17/12); its window of 262144 ≥ 131072 masks nothing", () => {
    const c = parse(phi35mini);
    expect(c.ropeScaling).toEqual({
      type: "longrope", shortFactor: phi35mini.rope_scaling.short_factor, longFactor: phi35mini.rope_scaling.long_factor,
      originalContext: 4096, attentionFactor: Math.sqrt(17 / 12),
    });
    expect(c.maxContext).toBe(131072);
    expect(c.layerWindows).toBeUndefined();
    // Phi-3-mini-128k's first config said "su"; 5.x keeps it beside the rope_type it derives; "yarn" also means
    // LongRoPE to Phi3Config: all the same model
    const su = { ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, type: "su" } };
    expect(parse(su)).toEqual(c);
    expect(parse({ ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, type: "su", rope_type: "longrope" } })).toEqual(c);
    expect(parse({ ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, type: "yarn" } })).toEqual(c);
    // 5.x: rope_parameters, the original context inside too
    const { rope_scaling, rope_theta, ...rest } = phi35mini;
    const { type: _, ...lists } = rope_scaling;
    expect(parse({ ...rest, rope_parameters: { ...lists, rope_type: "longrope", rope_theta, original_max_position_embeddings: 4096, partial_rotary_factor: 1.0 } })).toEqual(c);
  });

  it("LongRoPE's attention factor: explicit, or from an explicit factor (√(1 + ln 2 / ln 4096) = √(13/12)); the factor lists as given", () => {
    const longrope = (extra: Record<string, unknown>) =>
      parse({ ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, ...extra } }).ropeScaling as Extract<LlamaConfig["ropeScaling"], { type: "longrope" }>;
    expect(longrope({ attention_factor: 1.5 }).attentionFactor).toBe(1.5);
    expect(longrope({ factor: 2 }).attentionFactor).toBe(Math.sqrt(13 / 12));
    // max_position_embeddings at most the original: no scaling of the magnitude
    expect(parse({ ...phi35mini, max_position_embeddings: 4096 }).ropeScaling).toMatchObject({ attentionFactor: 1 });
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
    ["a foreign model type", { ...llama31, model_type: "phimoe" }, `${file}: model_type phimoe is not one this harness runs (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3)`],
    ["Phi-3 with a rope type Phi3Config refuses", { ...phi3mini4k, rope_scaling: { type: "linear", factor: 2 } }, `${file}: rope_scaling.rope_type "linear" is not implemented for phi3 (implemented: default, longrope)`],
    ["Phi-4-mini's partial rotary", { ...phi35mini, hidden_size: 3072, num_attention_heads: 24, partial_rotary_factor: 0.75 }, `${file}: partial_rotary_factor: 0.75 is not implemented (RoPE on part of each head)`],
    ["a LongRoPE original context that transformers overrides", { ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, original_max_position_embeddings: 8192 } }, `${file}: rope_scaling.original_max_position_embeddings 8192 differs from original_max_position_embeddings 4096, which transformers uses instead`],
    ["a LongRoPE original context only in the dict", (({ original_max_position_embeddings: _, ...rest }) => ({ ...rest, rope_scaling: { ...phi35mini.rope_scaling, original_max_position_embeddings: 8192 } }))(phi35mini), `${file}: rope_scaling.original_max_position_embeddings 8192 differs from Phi3Config's default original_max_position_embeddings 4096 (the key is absent), which transformers uses instead`],
    ["a LongRoPE list of the wrong length", { ...phi35mini, rope_scaling: { ...phi35mini.rope_scaling, short_factor: [1, 2, 3] } }, `${file}: field rope_scaling.short_factor: 3 factors, expected 48 (one per frequency of a head of 96)`],
    ["LongRoPE without its long list", { ...phi35mini, rope_scaling: { type: "longrope", short_factor: phi35mini.rope_scaling.short_factor } }, `${file}: field rope_scaling.long_factor: expected a list of numbers, found none`],
    ["Phi-3 pointing at other modeling code", { ...phi3mini4k, auto_map: { AutoModelForCausalLM: "modeling_phi3_v.Phi3VForCausalLM" } }, `${file}: auto_map: {"AutoModelForCausalLM":"modeling_phi3_v.Phi3VForCausalLM"} is not implemented (custom modeling code other than Phi-3's own, which transformers' built-in Phi3ForCausalLM replaces)`],
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

  /**
   * A phi3 GGUF laid out as convert_hf_to_gguf.py writes Phi-3.5 (conversion/phi.py): fused attn_qkv = [q; k; v] and
   * ffn_up = [gate; up], the LongRoPE lists as rope_factors_{long,short}.weight, original context 64 of 256; built
   * from the split tensors of `phi3Weights`, which the loader must give back.
   */
  const phi3Config = tinyConfig({ architecture: "phi3", hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, vocabSize: 40, maxContext: 256, tiedEmbeddings: false });
  const phi3Weights = randomWeights(phi3Config, 5);
  const shortList = [1, 1.1, 1.5, 2];
  const longList = [1.2, 3, 9, 30];
  const phi3Gguf = (change: { metadata?: Record<string, GgufValue>; omit?: string[]; extra?: GgufTensorSpec[]; fuseQkv?: boolean } = {}) => {
    const c = phi3Config;
    const tensor = (name: string, data: ArrayLike<number>, shape: number[]): GgufTensorSpec => ({ name, type: GgmlType.F32, shape, data: encodeF32(data) });
    const w = (name: string) => phi3Weights.tensor(name);
    const concat = (names: string[]) => Float32Array.from(names.flatMap((n) => Array.from(w(n).data)));
    const tensors: GgufTensorSpec[] = [
      tensor("token_embd.weight", w("token_embd.weight").data, [c.vocabSize, c.hiddenSize]),
      tensor("output_norm.weight", w("output_norm.weight").data, [c.hiddenSize]),
      tensor("output.weight", w("output.weight").data, [c.vocabSize, c.hiddenSize]),
      tensor("rope_factors_long.weight", longList, [4]),
      tensor("rope_factors_short.weight", shortList, [4]),
    ];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `blk.${l}.`;
      tensors.push(tensor(p + "attn_norm.weight", w(p + "attn_norm.weight").data, [c.hiddenSize]));
      if (change.fuseQkv === false) for (const x of ["q", "k", "v"]) tensors.push(tensor(`${p}attn_${x}.weight`, w(`${p}attn_${x}.weight`).data, [...w(`${p}attn_${x}.weight`).shape]));
      else tensors.push(tensor(p + "attn_qkv.weight", concat([p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"]), [32 + 2 * 16, c.hiddenSize]));
      tensors.push(
        tensor(p + "attn_output.weight", w(p + "attn_output.weight").data, [c.hiddenSize, 32]),
        tensor(p + "ffn_norm.weight", w(p + "ffn_norm.weight").data, [c.hiddenSize]),
        tensor(p + "ffn_up.weight", concat([p + "ffn_gate.weight", p + "ffn_up.weight"]), [2 * c.intermediateSize, c.hiddenSize]),
        tensor(p + "ffn_down.weight", w(p + "ffn_down.weight").data, [c.hiddenSize, c.intermediateSize]),
      );
    }
    const metadata: Record<string, GgufValue> = {
      "general.architecture": "phi3", "phi3.context_length": 256, "phi3.rope.scaling.original_context_length": 64,
      "phi3.embedding_length": 32, "phi3.feed_forward_length": 64, "phi3.block_count": 2, "phi3.attention.head_count": 4,
      "phi3.attention.head_count_kv": 2, "phi3.attention.layer_norm_rms_epsilon": f32([1e-5]), "phi3.rope.dimension_count": 8,
      "phi3.rope.freq_base": f32([10000]), "phi3.attention.sliding_window": 262144,
      "phi3.rope.scaling.attn_factor": f32([Math.sqrt(1 + Math.log(4) / Math.log(64))]),
      ...change.metadata,
    };
    return write(buildGguf(metadata, [...tensors.filter((t) => !(change.omit ?? []).includes(t.name)), ...(change.extra ?? [])]));
  };

  it("reads Phi-3 as the converter writes it: fused tensors split in transformers' order, LongRoPE from its tensors, no window past the context", async () => {
    for (const fuseQkv of [true, false]) {
      const model = await openGguf(phi3Gguf({ fuseQkv }));
      expect(model.config.ropeScaling).toEqual({
        // the lists as float32 tensors hold them
        type: "longrope", shortFactor: Array.from(Float32Array.from(shortList)), longFactor: Array.from(Float32Array.from(longList)), originalContext: 64,
        // √(1 + ln 4 / ln 64) = √(1 + 1/3), as stored (float32)
        attentionFactor: Math.fround(Math.sqrt(4 / 3)),
      });
      expect(model.config.layerWindows).toBeUndefined();
      for (const name of ["attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up"].map((t) => `blk.1.${t}.weight`)) {
        expect(model.tensor(name).data, name).toEqual(phi3Weights.tensor(name).data);
        expect(model.rawTensor(name).bytes, name).toEqual(encodeF32(phi3Weights.tensor(name).data));
      }
      new LlamaModel(model); // the factor tensors are used, so the model builds
    }
    // Phi-3-mini-4k: a window shorter than the context is on every layer (transformers masks with it; llama.cpp does not)
    expect((await openGguf(phi3Gguf({ metadata: { "phi3.attention.sliding_window": 128 } }))).config.layerWindows).toEqual([128, 128]);
  });

  const phi3Cases: [string, Parameters<typeof phi3Gguf>[0], (path: string) => string][] = [
    ["one LongRoPE list without the other", { omit: ["rope_factors_short.weight"] }, (p) => `${p}: missing tensor rope_factors_short.weight (LongRoPE needs both lists)`],
    ["an attention factor without LongRoPE", { omit: ["rope_factors_short.weight", "rope_factors_long.weight"] }, (p) => `${p}: metadata phi3.rope.scaling.attn_factor ${Math.fround(Math.sqrt(4 / 3))} without rope_factors_long.weight is not implemented`],
    ["LongRoPE lists of the wrong length", { omit: ["rope_factors_long.weight"], extra: [{ name: "rope_factors_long.weight", type: GgmlType.F32, shape: [2], data: encodeF32([1, 2]) }] }, (p) => `${p}: tensor rope_factors_long.weight has shape [2], expected [4] (one factor per frequency)`],
    ["LongRoPE with another scaling type", { metadata: { "phi3.rope.scaling.type": "yarn", "phi3.rope.scaling.factor": f32([4]) } }, (p) => `${p}: tensor rope_factors_long.weight together with phi3.rope.scaling.type yarn is not implemented`],
    ["a fused QKV of the wrong shape", { omit: ["blk.0.attn_qkv.weight"], extra: [{ name: "blk.0.attn_qkv.weight", type: GgmlType.F32, shape: [32, 32], data: new Uint8Array(32 * 32 * 4) }] }, (p) => `${p}: tensor blk.0.attn_qkv.weight has shape [32, 32], expected [64, 32] (attn_q + attn_k + attn_v, fused)`],
    ["an unfused gate beside the fused one", { extra: [{ name: "blk.0.ffn_gate.weight", type: GgmlType.F32, shape: [64, 32], data: new Uint8Array(64 * 32 * 4) }] }, (p) => `${p}: tensor blk.0.ffn_gate.weight is stored both on its own and inside blk.0.ffn_up.weight`],
    ["no QKV at all", { omit: ["blk.1.attn_qkv.weight"] }, (p) => `${p}: missing tensor blk.1.attn_qkv.weight (expected shape [64, 32])`],
  ];
  for (const [name, change, message] of phi3Cases) {
    it(`Phi-3: ${name}`, async () => {
      const path = phi3Gguf(change);
      const err = await openGguf(path).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFileError);
      expect((err as Error).message).toBe(message(path));
    });
  }

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
