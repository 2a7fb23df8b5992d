/**
 * The tensors a Llama-family model must have (GGUF names, PyTorch shapes), and the check that a file has them:
 * run when a model is opened, so that a missing or misshapen tensor is reported before any compute.
 */
import type { LlamaConfig } from "../model/types.js";
import { ModelFileError } from "./errors.js";

/** Every tensor name a Llama-family model of `config` has, in converter order, with its PyTorch shape. */
export function llamaTensorShapes(c: LlamaConfig): Map<string, number[]> {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const shapes = new Map<string, number[]>([
    ["token_embd.weight", [c.vocabSize, c.hiddenSize]],
    ["output_norm.weight", [c.hiddenSize]],
  ]);
  if (!c.tiedEmbeddings) shapes.set("output.weight", [c.vocabSize, c.hiddenSize]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    shapes.set(p + "attn_norm.weight", [c.hiddenSize]);
    shapes.set(p + "attn_q.weight", [qDim, c.hiddenSize]);
    shapes.set(p + "attn_k.weight", [kvDim, c.hiddenSize]);
    shapes.set(p + "attn_v.weight", [kvDim, c.hiddenSize]);
    if (c.qkvBias) {
      shapes.set(p + "attn_q.bias", [qDim]);
      shapes.set(p + "attn_k.bias", [kvDim]);
      shapes.set(p + "attn_v.bias", [kvDim]);
    }
    if (c.qkNorm) {
      shapes.set(p + "attn_q_norm.weight", [c.headDim]);
      shapes.set(p + "attn_k_norm.weight", [c.headDim]);
    }
    shapes.set(p + "attn_output.weight", [c.hiddenSize, qDim]);
    if (c.sandwichNorms) shapes.set(p + "post_attention_norm.weight", [c.hiddenSize]);
    shapes.set(p + "ffn_norm.weight", [c.hiddenSize]);
    if (c.sandwichNorms) shapes.set(p + "post_ffw_norm.weight", [c.hiddenSize]);
    shapes.set(p + "ffn_gate.weight", [c.intermediateSize, c.hiddenSize]);
    shapes.set(p + "ffn_up.weight", [c.intermediateSize, c.hiddenSize]);
    shapes.set(p + "ffn_down.weight", [c.hiddenSize, c.intermediateSize]);
  }
  return shapes;
}

/**
 * Throws a ModelFileError for the first expected tensor that is absent or has another shape. `shapeOf` gives a
 * tensor's PyTorch shape without reading its data. Extra tensors are allowed.
 */
export function checkLlamaTensors(
  path: string,
  config: LlamaConfig,
  shapeOf: (name: string) => readonly number[] | undefined,
): void {
  for (const [name, expected] of llamaTensorShapes(config)) {
    const found = shapeOf(name);
    if (found === undefined) {
      throw new ModelFileError(path, `missing tensor ${name} (expected shape [${expected.join(", ")}])`);
    }
    if (found.length !== expected.length || found.some((d, i) => d !== expected[i])) {
      throw new ModelFileError(path, `tensor ${name} has shape [${found.join(", ")}], expected [${expected.join(", ")}]`);
    }
  }
}

/**
 * Throws a ModelFileError naming the first tensor of the file that the forward pass of `config` would not read:
 * a tensor we do not use is a computation we do not implement (an output bias, a q/k norm in a file whose config
 * does not say so, Phi-3's long-rope factors…), and ignoring it would run a different model. `rope_freqs.weight`
 * is read into the config (Llama 3.1's frequency factors) and so is used.
 */
export function checkNoUnusedTensors(path: string, config: LlamaConfig, names: Iterable<string>): void {
  const used = llamaTensorShapes(config);
  for (const name of names) {
    if (used.has(name)) continue;
    if (name === "rope_freqs.weight" && config.ropeScaling?.type === "frequency-factors") continue;
    throw new ModelFileError(
      path,
      `tensor ${name} is not part of the ${config.architecture} forward pass implemented here; refusing to ignore it`,
    );
  }
}
