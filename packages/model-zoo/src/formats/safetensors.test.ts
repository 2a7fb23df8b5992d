import { randomWeights } from "../model/random-model.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { LlamaConfig, ModelWeights } from "../model/types.js";
import { GgmlType, dequantize } from "./dequant.js";
import { ModelFileError } from "./errors.js";
import {
  buildSafetensors,
  encodeBF16,
  encodeF16,
  encodeF32,
  firstDifference,
  type SafetensorsTensorSpec,
} from "./fixtures.js";
import { hfToGgufName, llamaConfigFromHf, openSafetensors, readSafetensorsHeader } from "./safetensors.js";

const root = mkdtempSync(join(tmpdir(), "razorkv-st-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

const config: LlamaConfig = {
  architecture: "llama",
  numLayers: 2,
  hiddenSize: 16,
  intermediateSize: 24,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  vocabSize: 12,
  rmsNormEps: 1e-5,
  ropeTheta: 100000,
  maxContext: 512,
  tiedEmbeddings: true,
  qkvBias: false,
};

function hfConfigJson(c: LlamaConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: c.architecture,
    num_hidden_layers: c.numLayers,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxContext,
    tie_word_embeddings: c.tiedEmbeddings,
    vocab_size: c.vocabSize,
    torch_dtype: "bfloat16",
    ...extra,
  };
}

/** Every HF tensor name of a config, in checkpoint order. */
function hfNames(c: LlamaConfig): string[] {
  const names = ["model.embed_tokens.weight"];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    names.push(
      ...["q_proj", "k_proj", "v_proj", "o_proj"].map((m) => `${p}self_attn.${m}.weight`),
      ...(c.qkvBias ? ["q_proj", "k_proj", "v_proj"].map((m) => `${p}self_attn.${m}.bias`) : []),
      ...["gate_proj", "up_proj", "down_proj"].map((m) => `${p}mlp.${m}.weight`),
      `${p}input_layernorm.weight`,
      `${p}post_attention_layernorm.weight`,
    );
  }
  names.push("model.norm.weight");
  if (!c.tiedEmbeddings) names.push("lm_head.weight");
  return names;
}

const encoders = { F32: encodeF32, F16: encodeF16, BF16: encodeBF16 } as const;

function specs(weights: ModelWeights, dtype: (name: string) => keyof typeof encoders): SafetensorsTensorSpec[] {
  return hfNames(weights.config).map((name) => {
    const t = weights.tensor(hfToGgufName(name)!);
    return { name, dtype: dtype(name), shape: t.shape, data: encoders[dtype(name)](t.data) };
  });
}

function writeCheckpoint(files: Record<string, Uint8Array | object>): string {
  const dir = join(root, `ckpt-${dirCount++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), content instanceof Uint8Array ? content : JSON.stringify(content));
  }
  return dir;
}

async function expectFileError(promise: Promise<unknown> | (() => unknown), message: string): Promise<void> {
  const err = await (typeof promise === "function" ? Promise.resolve().then(promise) : promise).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFileError);
  expect((err as Error).message).toBe(message);
}

describe("HF → GGUF tensor names", () => {
  it("maps every tensor the forward pass uses and nothing else", () => {
    expect(hfToGgufName("model.embed_tokens.weight")).toBe("token_embd.weight");
    expect(hfToGgufName("model.norm.weight")).toBe("output_norm.weight");
    expect(hfToGgufName("lm_head.weight")).toBe("output.weight");
    expect(hfToGgufName("model.layers.11.self_attn.q_proj.weight")).toBe("blk.11.attn_q.weight");
    expect(hfToGgufName("model.layers.0.self_attn.k_proj.bias")).toBe("blk.0.attn_k.bias");
    expect(hfToGgufName("model.layers.3.self_attn.o_proj.weight")).toBe("blk.3.attn_output.weight");
    expect(hfToGgufName("model.layers.3.mlp.gate_proj.weight")).toBe("blk.3.ffn_gate.weight");
    expect(hfToGgufName("model.layers.3.mlp.down_proj.weight")).toBe("blk.3.ffn_down.weight");
    expect(hfToGgufName("model.layers.3.input_layernorm.weight")).toBe("blk.3.attn_norm.weight");
    expect(hfToGgufName("model.layers.3.post_attention_layernorm.weight")).toBe("blk.3.ffn_norm.weight");
    expect(hfToGgufName("model.layers.3.self_attn.rotary_emb.inv_freq")).toBeUndefined();
    expect(hfToGgufName("model.layers.3.mlp.experts.0.w1.weight")).toBeUndefined();
  });
});

describe("config.json", () => {
  it("maps HF fields, with transformers' defaults", () => {
    const c = llamaConfigFromHf(
      { model_type: "mistral", num_hidden_layers: 4, hidden_size: 64, intermediate_size: 128, num_attention_heads: 8, sliding_window: null },
      "config.json",
      { vocabSize: 100, hasLmHead: true },
    );
    expect(c).toEqual({
      architecture: "mistral",
      numLayers: 4,
      hiddenSize: 64,
      intermediateSize: 128,
      numHeads: 8,
      numKvHeads: 8,
      headDim: 8,
      vocabSize: 100,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxContext: 131072, // MistralConfig's default
      tiedEmbeddings: false,
      qkvBias: false,
    });
    const qwen = llamaConfigFromHf(
      { ...hfConfigJson(config), model_type: "qwen2", head_dim: 8, tie_word_embeddings: undefined },
      "config.json",
      { hasLmHead: true },
    );
    expect(qwen.qkvBias).toBe(true);
    expect(qwen.headDim).toBe(8);
    expect(qwen.tiedEmbeddings).toBe(false);
    expect(() => llamaConfigFromHf({ hidden_size: 64 }, "/m/config.json", { hasLmHead: false })).toThrow(
      "/m/config.json: missing field num_attention_heads",
    );
  });
});

describe("safetensors checkpoints", () => {
  it("a single F32 file: config and every tensor under its GGUF name", async () => {
    const weights = randomWeights(config, 4);
    const dir = writeCheckpoint({
      "config.json": hfConfigJson(config),
      "model.safetensors": buildSafetensors(specs(weights, () => "F32")),
    });
    const model = await openSafetensors(dir);
    expect(model.config).toEqual(config);
    expect(model.has("output.weight")).toBe(false);
    for (const name of model.entries.keys()) {
      expect(model.tensor(name).shape).toEqual(weights.tensor(name).shape);
      expect(firstDifference(model.tensor(name).data, weights.tensor(name).data)).toBeUndefined();
    }
    expect(model.tensor("blk.1.attn_q.weight")).toBe(model.tensor("blk.1.attn_q.weight")); // cached
  });

  it("shards listed by model.safetensors.index.json, F16 and BF16, qwen2 biases, untied output", async () => {
    const qwen: LlamaConfig = { ...config, architecture: "qwen2", qkvBias: true, tiedEmbeddings: false, ropeTheta: 1e6 };
    const weights = randomWeights(qwen, 9);
    const dtype = (name: string): "BF16" | "F16" => (name.includes("layers.0.") ? "BF16" : "F16");
    const all = specs(weights, dtype);
    const first = all.filter((t) => !t.name.includes("layers.1.") && t.name !== "lm_head.weight");
    const second = all.filter((t) => !first.includes(t));
    const files = { "model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second };
    const weightMap = Object.fromEntries(
      Object.entries(files).flatMap(([file, tensors]) => tensors.map((t) => [t.name, file])),
    );
    const dir = writeCheckpoint({
      "config.json": hfConfigJson(qwen),
      "model.safetensors.index.json": { metadata: {}, weight_map: weightMap },
      "model-00001-of-00002.safetensors": buildSafetensors(first),
      "model-00002-of-00002.safetensors": buildSafetensors(second),
    });
    const model = await openSafetensors(dir);
    expect(model.config).toEqual(qwen);
    expect(model.files).toHaveLength(2);
    for (const spec of all) {
      const name = hfToGgufName(spec.name)!;
      const type = spec.dtype === "BF16" ? GgmlType.BF16 : GgmlType.F16;
      const n = weights.tensor(name).data.length;
      expect(firstDifference(model.tensor(name).data, dequantize(type, spec.data, n, name))).toBeUndefined();
    }
  });

  it("a tied checkpoint that also stores lm_head does not expose output.weight", async () => {
    const weights = randomWeights(config, 4);
    const tensors = specs(weights, () => "F32");
    const embedding = tensors[0];
    const dir = writeCheckpoint({
      "config.json": hfConfigJson(config),
      "model.safetensors": buildSafetensors([...tensors, { ...embedding, name: "lm_head.weight" }]),
    });
    const model = await openSafetensors(dir);
    expect(model.config.tiedEmbeddings).toBe(true);
    expect(model.has("output.weight")).toBe(false);
  });
});

describe("broken checkpoints", () => {
  const weights = randomWeights(config, 4);
  const good = buildSafetensors(specs(weights, () => "F32"));

  it("truncated file: names the first tensor past the end", async () => {
    const header = readSafetensorsHeader(writeCheckpoint({ "model.safetensors": good }) + "/model.safetensors");
    const embedding = header.tensors.get("model.embed_tokens.weight")!;
    const cut = embedding.fileOffset + 10;
    const dir = writeCheckpoint({ "config.json": hfConfigJson(config), "model.safetensors": good.subarray(0, cut) });
    const others = header.tensors.size - 1;
    await expectFileError(
      openSafetensors(dir),
      `${dir}/model.safetensors: truncated: tensor model.embed_tokens.weight needs bytes up to ` +
        `${embedding.fileOffset + embedding.byteLength} but the file has ${cut} (and ${others} more tensors past the end)`,
    );
  });

  it("unparsable header, header past the end, wrong byte counts", async () => {
    const garbage = new Uint8Array(32);
    new DataView(garbage.buffer).setBigUint64(0, 8n, true);
    garbage.set(new TextEncoder().encode("{nope!!!"), 8);
    const bad = writeCheckpoint({ "model.safetensors": garbage });
    await expectFileError(
      () => readSafetensorsHeader(`${bad}/model.safetensors`),
      `${bad}/model.safetensors: unparsable safetensors header: ${jsonError("{nope!!!")}`,
    );

    const short = writeCheckpoint({ "model.safetensors": good.subarray(0, 40) });
    const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
    await expectFileError(
      () => readSafetensorsHeader(`${short}/model.safetensors`),
      `${short}/model.safetensors: truncated: the header needs bytes up to ${8 + headerLength} but the file has 40`,
    );

    const lying = buildSafetensors([{ name: "x", dtype: "F32", shape: [3], data: new Uint8Array(8) }]);
    const lyingDir = writeCheckpoint({ "model.safetensors": lying });
    await expectFileError(
      () => readSafetensorsHeader(`${lyingDir}/model.safetensors`),
      `${lyingDir}/model.safetensors: tensor x: F32 [3] needs 12 bytes but its offsets span 8`,
    );
  });

  it("missing tensors, unsupported dtypes, missing shards", async () => {
    const tensors = specs(weights, () => "F32");
    const withoutUp = tensors.filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight");
    const missing = writeCheckpoint({ "config.json": hfConfigJson(config), "model.safetensors": buildSafetensors(withoutUp) });
    await expectFileError(openSafetensors(missing), `${missing}: missing tensor blk.1.ffn_up.weight (expected shape [24, 16])`);

    const int8 = tensors.map((t) =>
      t.name === "model.norm.weight" ? { ...t, dtype: "I8" as "F32", data: new Uint8Array(16) } : t,
    );
    const bytes = buildSafetensors(int8);
    const int8Dir = writeCheckpoint({ "config.json": hfConfigJson(config), "model.safetensors": bytes });
    await expectFileError(
      openSafetensors(int8Dir),
      `${int8Dir}/model.safetensors: tensor model.norm.weight has dtype I8; supported: F32, F16, BF16`,
    );

    const noShard = writeCheckpoint({
      "config.json": hfConfigJson(config),
      "model.safetensors.index.json": { weight_map: { "model.norm.weight": "model-00001-of-00001.safetensors" } },
    });
    await expectFileError(
      openSafetensors(noShard),
      `${noShard}/model-00001-of-00001.safetensors: listed in model.safetensors.index.json but missing`,
    );

    const noWeights = writeCheckpoint({ "config.json": hfConfigJson(config) });
    await expectFileError(openSafetensors(noWeights), `${noWeights}: no model.safetensors or model.safetensors.index.json`);
  });
});

describe("Phi-3 checkpoints: qkv_proj and gate_up_proj", () => {
  const phi3: LlamaConfig = { ...config, architecture: "phi3", tiedEmbeddings: false };
  const weights = randomWeights(phi3, 11);
  /** Phi3ForCausalLM's tensors in BF16: qkv_proj = [q; k; v], gate_up_proj = [gate; up], as transformers concatenates them. */
  function phi3Specs(change: { skip?: string; extra?: SafetensorsTensorSpec[] } = {}): SafetensorsTensorSpec[] {
    const t = (name: string) => weights.tensor(name);
    const spec = (name: string, gguf: string[]): SafetensorsTensorSpec => {
      const data = Float32Array.from(gguf.flatMap((g) => Array.from(t(g).data)));
      return { name, dtype: "BF16", shape: [gguf.reduce((n, g) => n + t(g).shape[0], 0), ...t(gguf[0]).shape.slice(1)], data: encodeBF16(data) };
    };
    const out = [spec("model.embed_tokens.weight", ["token_embd.weight"])];
    for (let l = 0; l < phi3.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const b = `blk.${l}.`;
      out.push(
        spec(`${p}self_attn.qkv_proj.weight`, [b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"]),
        spec(`${p}self_attn.o_proj.weight`, [b + "attn_output.weight"]),
        spec(`${p}mlp.gate_up_proj.weight`, [b + "ffn_gate.weight", b + "ffn_up.weight"]),
        spec(`${p}mlp.down_proj.weight`, [b + "ffn_down.weight"]),
        spec(`${p}input_layernorm.weight`, [b + "attn_norm.weight"]),
        spec(`${p}post_attention_layernorm.weight`, [b + "ffn_norm.weight"]),
      );
    }
    out.push(spec("model.norm.weight", ["output_norm.weight"]), spec("lm_head.weight", ["output.weight"]));
    return [...out.filter((x) => x.name !== change.skip), ...(change.extra ?? [])];
  }
  const json = hfConfigJson(phi3, { architectures: ["Phi3ForCausalLM"], rope_scaling: null, sliding_window: 100, embd_pdrop: 0, resid_pdrop: 0 });
  const checkpoint = (tensors: SafetensorsTensorSpec[]) => writeCheckpoint({ "config.json": json, "model.safetensors": buildSafetensors(tensors) });

  it("split into attn_q/k/v and ffn_gate/up, the rows transformers slices, read from BF16 rows in place", async () => {
    const model = await openSafetensors(checkpoint(phi3Specs()));
    expect(model.config.layerWindows).toEqual([100, 100]);
    for (const l of [0, 1]) {
      for (const name of ["attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up"].map((x) => `blk.${l}.${x}.weight`)) {
        const expected = dequantize(GgmlType.BF16, encodeBF16(weights.tensor(name).data), weights.tensor(name).data.length, name);
        expect(firstDifference(model.tensor(name).data, expected), name).toBeUndefined();
        expect(model.tensor(name).shape).toEqual(weights.tensor(name).shape);
      }
    }
    expect(model.tensorNames!()).not.toContain("blk.0.attn_qkv.weight");
  });

  it("a fused tensor of the wrong shape, a missing one, or an unfused projection is refused, naming the tensor", async () => {
    const wrong = checkpoint(phi3Specs({ skip: "model.layers.1.mlp.gate_up_proj.weight", extra: [{ name: "model.layers.1.mlp.gate_up_proj.weight", dtype: "BF16", shape: [24, 16], data: new Uint8Array(24 * 16 * 2) }] }));
    await expectFileError(openSafetensors(wrong), `${wrong}: tensor blk.1.ffn_up.weight has shape [24, 16], expected [48, 16] (ffn_gate + ffn_up, fused)`);
    const missing = checkpoint(phi3Specs({ skip: "model.layers.0.self_attn.qkv_proj.weight" }));
    await expectFileError(openSafetensors(missing), `${missing}: missing tensor blk.0.attn_qkv.weight (expected shape [32, 16])`);
    const unfused = checkpoint(phi3Specs({ extra: [{ name: "model.layers.0.self_attn.q_proj.weight", dtype: "BF16", shape: [16, 16], data: new Uint8Array(16 * 16 * 2) }] }));
    await expectFileError(openSafetensors(unfused), `${unfused}/model.safetensors: tensor model.layers.0.self_attn.q_proj.weight is not part of the phi3 forward pass implemented here; refusing to ignore it`);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  return "";
}
