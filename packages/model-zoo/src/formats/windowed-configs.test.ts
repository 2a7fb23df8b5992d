/**
 * config.json of the sliding-window families as the hub and transformers 4.x/5.x write them: Mistral's window on
 * every layer, Gemma 2's alternating layers and soft caps, Gemma 3's layer pattern and per-layer-type RoPE.
 */
import { describe, expect, it } from "vitest";
import { llamaConfigFromHf, roundToDtype } from "./safetensors.js";

const file = "/m/config.json";
const parse = (json: Record<string, unknown>, hasLmHead = false) => llamaConfigFromHf(json, file, { hasLmHead });

/** mistralai/Mistral-7B-v0.1's config.json (transformers 4.34). */
const mistral01 = {
  architectures: ["MistralForCausalLM"], bos_token_id: 1, eos_token_id: 2, hidden_act: "silu", hidden_size: 4096,
  initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 32768, model_type: "mistral",
  num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0,
  sliding_window: 4096, tie_word_embeddings: false, torch_dtype: "bfloat16", transformers_version: "4.34.0.dev0",
  use_cache: true, vocab_size: 32000,
};

/** google/gemma-2-2b's config.json (transformers 4.42). */
const gemma2 = {
  architectures: ["Gemma2ForCausalLM"], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: 50.0,
  bos_token_id: 2, cache_implementation: "hybrid", eos_token_id: 1, final_logit_softcapping: 30.0, head_dim: 256,
  hidden_act: "gelu_pytorch_tanh", hidden_activation: "gelu_pytorch_tanh", hidden_size: 2304, initializer_range: 0.02,
  intermediate_size: 9216, max_position_embeddings: 8192, model_type: "gemma2", num_attention_heads: 8,
  num_hidden_layers: 26, num_key_value_heads: 4, pad_token_id: 0, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6,
  rope_theta: 10000.0, sliding_window: 4096, torch_dtype: "float32", transformers_version: "4.42.4", use_cache: true,
  vocab_size: 256000,
};

/** google/gemma-3-1b-pt's config.json (transformers 4.50): 4.x RoPE keys, the layer pattern. */
const gemma3 = {
  architectures: ["Gemma3ForCausalLM"], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: null,
  bos_token_id: 2, cache_implementation: "hybrid", eos_token_id: 1, final_logit_softcapping: null, head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh", hidden_size: 1152, initializer_range: 0.02, intermediate_size: 6912,
  max_position_embeddings: 32768, model_type: "gemma3_text", num_attention_heads: 4, num_hidden_layers: 26,
  num_key_value_heads: 1, pad_token_id: 0, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, rope_local_base_freq: 10000,
  rope_scaling: null, rope_theta: 1000000, sliding_window: 512, sliding_window_pattern: 6, torch_dtype: "bfloat16",
  transformers_version: "4.50.0.dev0", use_cache: true, vocab_size: 262144,
};

describe("Mistral: a sliding window on every layer", () => {
  it("reads sliding_window, defaults an absent one to MistralConfig's 4096, and null means full attention", () => {
    expect(parse(mistral01, true).layerWindows).toEqual(Array.from({ length: 32 }, () => 4096));
    const { sliding_window: _, ...absent } = mistral01;
    expect(parse(absent, true).layerWindows).toEqual(Array.from({ length: 32 }, () => 4096));
    // Mistral 7B v0.3 and most later ones
    expect(parse({ ...mistral01, sliding_window: null }, true).layerWindows).toBeUndefined();
    expect(() => parse({ ...mistral01, sliding_window: 0 }, true)).toThrow(`${file}: sliding_window: expected a positive integer or null, found 0`);
  });
});

describe("Gemma 2", () => {
  it("alternates local (even) and global (odd) layers, with its caps, scalar, embedding scale and norms", () => {
    const c = parse(gemma2);
    expect(c.layerWindows).toEqual(Array.from({ length: 26 }, (_, i) => (i % 2 === 0 ? 4096 : null)));
    expect(c).toMatchObject({
      architecture: "gemma2", headDim: 256, numKvHeads: 4, tiedEmbeddings: true, sandwichNorms: true, mlpActivation: "gelu-tanh",
      attentionSoftcap: 50, finalSoftcap: 30, attentionScale: Math.fround(1 / 16), embeddingScale: 48, ropeTheta: 10000,
    });
    expect(c.localRope).toBeUndefined();
    expect(c.qkNorm).toBeUndefined();
  });

  it("applies Gemma2Config's defaults to absent keys (final cap 30, attention cap 50, window 4096)", () => {
    const { final_logit_softcapping: _f, attn_logit_softcapping: _a, sliding_window: _w, ...bare } = gemma2;
    expect(parse(bare)).toMatchObject({ finalSoftcap: 30, attentionSoftcap: 50 });
    expect(parse(bare).layerWindows?.[0]).toBe(4096);
    // explicit nulls switch the caps off
    const c = parse({ ...gemma2, final_logit_softcapping: null, attn_logit_softcapping: null });
    expect(c.finalSoftcap).toBeUndefined();
    expect(c.attentionSoftcap).toBeUndefined();
  });

  it("layer_types (5.x) wins over the default pattern; a sliding_window_size that disagrees is refused", () => {
    const types = Array.from({ length: 26 }, (_, i) => (i < 2 ? "full_attention" : "sliding_attention"));
    expect(parse({ ...gemma2, layer_types: types }).layerWindows?.slice(0, 3)).toEqual([null, null, 4096]);
    expect(() => parse({ ...gemma2, sliding_window_size: 2048 })).toThrow(`${file}: sliding_window_size: 2048 differs from sliding_window 4096`);
  });
});

describe("Gemma 3 text", () => {
  it("4.x: five local layers of six, local RoPE base apart, q/k norms", () => {
    const c = parse(gemma3);
    expect(c.layerWindows).toEqual(Array.from({ length: 26 }, (_, i) => ((i + 1) % 6 === 0 ? null : 512)));
    expect(c).toMatchObject({
      architecture: "gemma3_text", qkNorm: true, ropeTheta: 1000000, localRope: { theta: 10000 }, numKvHeads: 1,
      attentionScale: Math.fround(1 / 16), embeddingScale: Math.fround(Math.sqrt(1152)),
    });
    expect(c.attentionSoftcap).toBeUndefined();
    expect(c.finalSoftcap).toBeUndefined();
    expect(c.ropeScaling).toBeUndefined();
  });

  it("4.x rope_scaling applies to the global layers only (Gemma 3 4B+: linear ×8)", () => {
    const c = parse({ ...gemma3, rope_scaling: { rope_type: "linear", factor: 8.0 } });
    expect(c.ropeScaling).toEqual({ type: "linear", factor: 8 });
    expect(c.localRope).toEqual({ theta: 10000 });
  });

  it("5.x rope_parameters per layer type give the same model", () => {
    const { rope_scaling: _s, rope_theta: _t, rope_local_base_freq: _l, sliding_window_pattern: _p, ...rest } = gemma3;
    const fiveX = {
      ...rest,
      layer_types: Array.from({ length: 26 }, (_, i) => ((i + 1) % 6 === 0 ? "full_attention" : "sliding_attention")),
      rope_parameters: {
        full_attention: { rope_type: "linear", factor: 8.0, rope_theta: 1000000 },
        sliding_attention: { rope_type: "default", rope_theta: 10000 },
      },
    };
    expect(parse(fiveX)).toEqual(parse({ ...gemma3, rope_scaling: { rope_type: "linear", factor: 8.0 } }));
    expect(() => parse({ ...fiveX, rope_parameters: { ...fiveX.rope_parameters, chunked_attention: {} } })).toThrow(
      `${file}: rope_parameters.chunked_attention is not implemented (layer types other than sliding_attention and full_attention)`,
    );
  });

  it("refuses bidirectional attention (EmbeddingGemma) by name", () => {
    expect(() => parse({ ...gemma3, use_bidirectional_attention: true })).toThrow(`${file}: use_bidirectional_attention: true is not implemented (bidirectional attention)`);
  });
});

describe("embedding scale in the embedding's dtype (transformers: torch.tensor(√hidden).to(weight.dtype))", () => {
  it("rounds √hidden as float32, bfloat16 and float16 round it", () => {
    expect(roundToDtype(Math.fround(Math.sqrt(3584)), "F32")).toBe(Math.fround(Math.sqrt(3584)));
    expect(roundToDtype(Math.fround(Math.sqrt(3584)), "BF16")).toBe(59.75); // Gemma 2 9B: 59.866… → 59.75
    expect(roundToDtype(Math.fround(Math.sqrt(2560)), "BF16")).toBe(50.5); // Gemma 3 4B: 50.596… → 50.5
    expect(roundToDtype(Math.fround(Math.sqrt(1152)), "F16")).toBe(33.9375); // 33.941… → 33.9375 (1/32 steps)
    expect(roundToDtype(48, "BF16")).toBe(48);
  });
});
