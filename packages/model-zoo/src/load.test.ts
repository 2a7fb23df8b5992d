import { randomWeights } from "./model/random-model.js";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaConfig } from "./model/types.js";
import { GgmlType, dequantize } from "./formats/dequant.js";
import {
  buildLlamaGguf,
  buildSafetensors,
  encodeF32,
  firstDifference,
  llamaCppPermute,
  locateRealModel,
} from "./formats/fixtures.js";
import { hfToGgufName, llamaConfigFromHf } from "./formats/safetensors.js";
import { openModel, type LoadedModel } from "./load.js";
import { realModelMissing } from "./formats/real-model-guard.testing.js";

const root = mkdtempSync(join(tmpdir(), "razorkv-load-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tiny: LlamaConfig = {
  architecture: "llama",
  numLayers: 1,
  hiddenSize: 32,
  intermediateSize: 64,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  vocabSize: 8,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxContext: 128,
  tiedEmbeddings: true,
  qkvBias: false,
};

describe("openModel on local files", () => {
  it("a .gguf path: weights, GGUF metadata for the tokenizer, raw tensors", async () => {
    const weights = randomWeights(tiny);
    const path = join(root, "tiny.gguf");
    const extraMetadata = { "tokenizer.ggml.model": "gpt2", "tokenizer.chat_template": "t" };
    writeFileSync(path, buildLlamaGguf(weights, { extraMetadata }));
    const model = await openModel(path);
    expect(model).toMatchObject({ ref: path, path, format: "gguf" });
    expect(model.weights.config).toEqual(tiny);
    expect(model.ggufMetadata?.["tokenizer.chat_template"]).toBe("t");
    expect(model.gguf).toBe(model.weights);
    expect(model.gguf?.rawTensor("blk.0.attn_q.weight").type).toBe(GgmlType.F32);
    expect(model.tokenizerJsonPath).toBeUndefined();
  });

  it("a checkpoint directory: weights under GGUF names and tokenizer.json", async () => {
    const weights = randomWeights(tiny);
    const dir = join(root, "ckpt");
    mkdirSync(dir);
    const names = ["model.embed_tokens.weight", "model.norm.weight"];
    const attention = ["q_proj", "k_proj", "v_proj", "o_proj"].map((m) => `self_attn.${m}`);
    const mlp = ["gate_proj", "up_proj", "down_proj"].map((m) => `mlp.${m}`);
    for (const part of [...attention, ...mlp, "input_layernorm", "post_attention_layernorm"]) {
      names.push(`model.layers.0.${part}.weight`);
    }
    const tensors = names.map((name) => {
      const t = weights.tensor(hfToGgufName(name)!);
      return { name, dtype: "F32" as const, shape: t.shape, data: encodeF32(t.data) };
    });
    writeFileSync(join(dir, "model.safetensors"), buildSafetensors(tensors));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        model_type: "llama",
        num_hidden_layers: 1,
        hidden_size: 32,
        intermediate_size: 64,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        rms_norm_eps: 1e-6,
        rope_theta: 10000,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
        vocab_size: 8,
      }),
    );
    writeFileSync(join(dir, "tokenizer.json"), "{}");
    const model = await openModel(dir);
    expect(model).toMatchObject({ format: "safetensors", path: dir, tokenizerJsonPath: join(dir, "tokenizer.json") });
    expect(model.weights.config).toEqual(tiny);
    const name = "blk.0.ffn_down.weight";
    expect(firstDifference(model.weights.tensor(name).data, weights.tensor(name).data)).toBeUndefined();
    expect(model.ggufMetadata).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The real model: SmolLM2-135M-Instruct, Q4_1 GGUF (token_embd in Q8_0, norms in F32), from the hub cache.

const real = await locateRealModel();
const sharedConfig = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../shared/models/smollm2-135m-instruct/config.json");

describe("SmolLM2-135M-Instruct through openModel('smollm2-135m-instruct')", () => {
  if (realModelMissing(real)) return;

  let model: LoadedModel;
  beforeAll(async () => {
    model = await openModel("smollm2-135m-instruct", { offline: true });
  });

  it("resolves through the hub cache to the pinned file", () => {
    expect(model.format).toBe("gguf");
    expect(model.path).toBe(real.path);
    expect(model.path).toMatch(
      /models--QuantFactory--SmolLM2-135M-Instruct-GGUF\/snapshots\/ab810cf68114990406fdf996510dd3d3c6adbdf5\/SmolLM2-135M-Instruct\.Q4_1\.gguf$/,
    );
  });

  it("has the published config", () => {
    expect(model.weights.config).toEqual({
      architecture: "llama",
      numLayers: 30,
      hiddenSize: 576,
      intermediateSize: 1536,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      vocabSize: 49152,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      maxContext: 8192,
      tiedEmbeddings: true,
      qkvBias: false,
    });
  });

  it.skipIf(!existsSync(sharedConfig) && !process.env["CI"])("matches the original config.json", () => {
    const json = JSON.parse(readFileSync(sharedConfig, "utf8")) as Record<string, unknown>;
    expect(llamaConfigFromHf(json, sharedConfig, { hasLmHead: false })).toEqual(model.weights.config);
  });

  it("exposes the tokenizer metadata", () => {
    const meta = model.ggufMetadata!;
    expect(meta["tokenizer.ggml.model"]).toBe("gpt2");
    expect((meta["tokenizer.ggml.tokens"] as string[]).length).toBe(49152);
    expect((meta["tokenizer.ggml.tokens"] as string[])[1]).toBe("<|im_start|>");
    expect(meta["tokenizer.chat_template"]).toContain("<|im_start|>");
    expect(meta["tokenizer.ggml.bos_token_id"]).toBe(1);
  });

  it("stores what we expect, and every needed tensor has the right shape", () => {
    const infos = model.gguf!.tensorInfos;
    expect(infos.get("token_embd.weight")).toMatchObject({ typeName: "Q8_0", shape: [49152, 576] });
    expect(infos.get("blk.0.attn_q.weight")).toMatchObject({ typeName: "Q4_1", shape: [576, 576] });
    expect(infos.get("blk.0.attn_k.weight")).toMatchObject({ typeName: "Q4_1", shape: [192, 576] });
    expect(infos.get("blk.0.ffn_down.weight")).toMatchObject({ typeName: "Q4_1", shape: [576, 1536] });
    expect(infos.get("output_norm.weight")).toMatchObject({ typeName: "F32", shape: [576] });
    expect(model.weights.has("output.weight")).toBe(false);
  });

  // Reference values computed once with ggml's own Python package (gguf 0.19.0: GGUFReader + gguf.quants.dequantize),
  // summed in float64. Positions are row-major in PyTorch order.
  const references: [string, number, number, number[]][] = [
    ["token_embd.weight", -15353.04449415207, 2802153.619805813, [-0.10654449462890625, 0.032978057861328125, 0.048198699951171875, -0.022830963134765625]],
    ["blk.0.ffn_down.weight", 150.63577270507812, 128458.06286621094, [-0.330810546875, 0.3460693359375, 0.0753173828125, -0.4661865234375]],
    ["blk.29.ffn_up.weight", 305.73268127441406, 150058.30757141113, [-0.128662109375, 0.06195068359375, -0.06512451171875, -0.3828125]],
    ["output_norm.weight", 1038.33203125, 1045.09765625, [1.7578125, 1.8203125, 1.78125, 1.6015625]],
    ["blk.5.attn_k.weight", -57.14201354980469, 19361.86036682129, [-0.03125, -0.109375, 0.203125, 0.046875]],
  ];
  it.each(references)("dequantizes %s like ggml", (name, sum, sumAbs, first) => {
    const t = model.weights.tensor(name);
    let s = 0;
    let a = 0;
    for (let i = 0; i < t.data.length; i++) {
      s += t.data[i];
      a += Math.abs(t.data[i]);
    }
    expect(Math.abs(s - sum)).toBeLessThan(1e-6 * sumAbs);
    expect(Math.abs(a - sumAbs)).toBeLessThan(1e-9 * sumAbs);
    expect([...t.data.subarray(0, 4)]).toEqual(first);
    expect(Number.isFinite(s) && Number.isFinite(a)).toBe(true);
  });

  it("puts Q/K rows in HF order: GGUF rows 1, 2, 65 of blk.5.attn_k are HF rows 32, 1, 96", () => {
    const k = model.weights.tensor("blk.5.attn_k.weight").data;
    const row = (r: number) => [...k.subarray(r * 576, r * 576 + 4)];
    expect(row(32)).toEqual([0.0224609375, 0.0224609375, 0.0596923828125, -0.0147705078125]);
    expect(row(1)).toEqual([0.0388031005859375, 0.0076904296875, 0.13214111328125, 0.0076904296875]);
    expect(row(96)).toEqual([-0.0396728515625, -0.25225830078125, -0.25225830078125, -0.3231201171875]);
    const q = model.weights.tensor("blk.0.attn_q.weight").data;
    expect([...q.subarray(33 * 576, 33 * 576 + 3)]).toEqual([-0.06280517578125, 0.1446533203125, 0.00634765625]);
  });

  it("the rows RoPE rotates together (i, i + 32) carry matching weight norms, as in any trained model", () => {
    // RoPE pairs dimension i with i + headDim/2 (HF). Training shapes both rows of a pair alike, so their squared
    // norms correlate strongly. Left in llama.cpp's stored order, rows i and i + 32 would be unrelated dimensions.
    const pairCorrelation = (w: Float32Array, nHead: number) => {
      const norm = (r: number) => w.subarray(r * 576, (r + 1) * 576).reduce((acc, x) => acc + x * x, 0);
      const xs: number[] = [];
      const ys: number[] = [];
      for (let h = 0; h < nHead; h++) {
        for (let i = 0; i < 32; i++) {
          xs.push(norm(h * 64 + i));
          ys.push(norm(h * 64 + i + 32));
        }
      }
      return pearson(xs, ys);
    };
    for (const layer of [5, 15]) {
      const q = model.weights.tensor(`blk.${layer}.attn_q.weight`).data;
      const asStored = llamaCppPermute(q, 9, 576);
      expect(pairCorrelation(q, 9)).toBeGreaterThan(0.6);
      expect(pairCorrelation(asStored, 9)).toBeLessThan(0.2);
    }
  });

  it("raw quantized bytes dequantize to the same tensor", () => {
    const raw = model.gguf!.rawTensor("blk.3.attn_q.weight");
    expect(raw.typeName).toBe("Q4_1");
    expect(raw.bytes.length).toBe((576 * 576 * 20) / 32);
    const data = dequantize(raw.type, raw.bytes, 576 * 576, raw.name);
    expect(firstDifference(data, model.weights.tensor("blk.3.attn_q.weight").data)).toBeUndefined();
  });
});

function pearson(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}
