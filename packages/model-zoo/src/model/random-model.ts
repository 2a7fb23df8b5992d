/**
 * Random-weight models of any Llama-family config: fast unit tests of the pass and of policies, and benchmarks at
 * real shapes without a checkpoint. Weights are drawn with a fixed seed at the scale of a trained model's
 * initialisation (≈ 1/√fan_in), so activations stay in a realistic range.
 */
import { mulberry32, randomArray } from "@razorkv/core";
import type { LlamaConfig, ModelWeights, Tensor } from "./types.js";

export function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    architecture: "llama",
    numLayers: 2,
    hiddenSize: 48,
    intermediateSize: 96,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 8,
    vocabSize: 97,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxContext: 4096,
    tiedEmbeddings: true,
    qkvBias: false,
    ...overrides,
  };
}

export function randomWeights(config: LlamaConfig, seed = 1): ModelWeights {
  const rand = mulberry32(seed);
  const tensors = new Map<string, Tensor>();
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const data = randomArray(rand, shape.reduce((a, b) => a * b, 1), scale);
    if (offset !== 0) for (let i = 0; i < data.length; i++) data[i] += offset;
    tensors.set(name, { name, shape, data });
  };
  const c = config;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const lin = (fanIn: number) => 1 / Math.sqrt(fanIn);
  add("token_embd.weight", [c.vocabSize, c.hiddenSize], 1);
  add("output_norm.weight", [c.hiddenSize], 0.1, 1);
  if (!c.tiedEmbeddings) add("output.weight", [c.vocabSize, c.hiddenSize], lin(c.hiddenSize));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    add(p + "attn_norm.weight", [c.hiddenSize], 0.1, 1);
    add(p + "attn_q.weight", [qDim, c.hiddenSize], lin(c.hiddenSize));
    add(p + "attn_k.weight", [kvDim, c.hiddenSize], lin(c.hiddenSize));
    add(p + "attn_v.weight", [kvDim, c.hiddenSize], lin(c.hiddenSize));
    if (c.qkNorm) {
      add(p + "attn_q_norm.weight", [c.headDim], 0.1, 1);
      add(p + "attn_k_norm.weight", [c.headDim], 0.1, 1);
    }
    add(p + "attn_output.weight", [c.hiddenSize, qDim], lin(qDim));
    if (c.sandwichNorms) {
      add(p + "post_attention_norm.weight", [c.hiddenSize], 0.1, 1);
      add(p + "post_ffw_norm.weight", [c.hiddenSize], 0.1, 1);
    }
    if (c.qkvBias) {
      add(p + "attn_q.bias", [qDim], 0.1);
      add(p + "attn_k.bias", [kvDim], 0.1);
      add(p + "attn_v.bias", [kvDim], 0.1);
    }
    add(p + "ffn_norm.weight", [c.hiddenSize], 0.1, 1);
    add(p + "ffn_gate.weight", [c.intermediateSize, c.hiddenSize], lin(c.hiddenSize));
    add(p + "ffn_up.weight", [c.intermediateSize, c.hiddenSize], lin(c.hiddenSize));
    add(p + "ffn_down.weight", [c.hiddenSize, c.intermediateSize], lin(c.intermediateSize));
  }
  return weightsFromMap(config, tensors, `random model (seed ${seed})`);
}

/** ModelWeights over an in-memory map; `source` names it in errors. */
export function weightsFromMap(config: LlamaConfig, tensors: Map<string, Tensor>, source: string): ModelWeights {
  return {
    config,
    has: (name) => tensors.has(name),
    tensor: (name) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`${source}: no tensor named ${name}`);
      return t;
    },
  };
}
