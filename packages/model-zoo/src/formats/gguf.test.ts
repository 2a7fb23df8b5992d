import { randomWeights } from "../model/random-model.js";
import { mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { LlamaConfig } from "../model/types.js";
import { GgmlType, dequantize } from "./dequant.js";
import { ModelFileError } from "./errors.js";
import {
  buildGguf,
  buildLlamaGguf,
  encodeF32,
  firstDifference,
  encodeGgml,
  llamaCppPermute,
  locateRealModel,
} from "./fixtures.js";
import { ggufRowsToHf, llamaConfigFromGguf, openGguf, readGgufHeader, type GgufHeader } from "./gguf.js";
import { realModelMissing } from "./real-model-guard.testing.js";

const dir = mkdtempSync(join(tmpdir(), "razorkv-gguf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeTemp(bytes: Uint8Array, name = `model-${fileCount++}.gguf`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const llamaConfig: LlamaConfig = {
  architecture: "llama",
  numLayers: 2,
  hiddenSize: 64,
  intermediateSize: 96,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 40,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxContext: 256,
  tiedEmbeddings: true,
  qkvBias: false,
};

const tokenizerMetadata = {
  "tokenizer.ggml.model": "gpt2",
  "tokenizer.ggml.tokens": Array.from({ length: 40 }, (_, i) => `tok${i}`),
  "tokenizer.ggml.bos_token_id": 1,
  "tokenizer.chat_template": "{{ messages }}",
};

function expectSame(actual: Float32Array, expected: Float32Array): void {
  expect(firstDifference(actual, expected)).toBeUndefined();
}

async function expectFileError(promise: Promise<unknown>, message: string | RegExp): Promise<ModelFileError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFileError);
  const fileError = err as ModelFileError;
  expect(fileError.message).not.toContain("\n");
  if (typeof message === "string") expect(fileError.message).toBe(message);
  else expect(fileError.message).toMatch(message);
  return fileError;
}

describe("llama.cpp Q/K permutation", () => {
  it("the literal permute matches reshape(n_head, 2, hd/2).swapaxes(1, 2) worked by hand", () => {
    // one head, headDim 6, rows 0..5: [[0,1,2],[3,4,5]] → swapaxes → [[0,3],[1,4],[2,5]]
    expect([...llamaCppPermute(Float32Array.from([0, 1, 2, 3, 4, 5]), 1, 1)]).toEqual([0, 3, 1, 4, 2, 5]);
    // two heads of 4 rows, rows of 2 columns: head h rows [a, b | c, d] → [a, c, b, d]
    const w = Float32Array.from({ length: 16 }, (_, i) => i);
    expect([...llamaCppPermute(w, 2, 2)]).toEqual([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  });

  it("ggufRowsToHf inverts it, for f32 rows, biases and raw byte rows", () => {
    const w = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i * 0.5 - 7);
    expect([...ggufRowsToHf(llamaCppPermute(w, 3, 5), 3, 5)]).toEqual([...w]);
    const bias = Float32Array.from({ length: 12 }, (_, i) => i);
    expect([...ggufRowsToHf(llamaCppPermute(bias, 2, 1), 2, 1)]).toEqual([...bias]);
    expect([...ggufRowsToHf(Float32Array.from([0, 3, 1, 4, 2, 5]), 1, 1)]).toEqual([0, 1, 2, 3, 4, 5]);
    // raw rows: 4 rows of 3 bytes, one head: GGUF rows [r0, r2, r1, r3] → HF [r0, r1, r2, r3]
    const raw = Uint8Array.from([0, 0, 0, 2, 2, 2, 1, 1, 1, 3, 3, 3]);
    expect([...ggufRowsToHf(raw, 1, 3)]).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  });
});

describe("tiny GGUF files", () => {
  it("round-trips a llama model in F32: config, metadata, every tensor in HF layout", async () => {
    const weights = randomWeights(llamaConfig, 7);
    const path = writeTemp(buildLlamaGguf(weights, { extraMetadata: tokenizerMetadata }));
    const model = await openGguf(path);
    expect(model.config).toEqual(llamaConfig);
    expect(model.unpermutesQK).toBe(true);
    expect(model.version).toBe(3);
    expect(model.alignment).toBe(32);
    expect(model.metadata["tokenizer.ggml.tokens"]).toEqual(tokenizerMetadata["tokenizer.ggml.tokens"]);
    expect(model.metadata["tokenizer.chat_template"]).toBe("{{ messages }}");
    expect(model.has("output.weight")).toBe(false);
    for (const name of model.tensorInfos.keys()) {
      const t = model.tensor(name);
      expect(t.shape).toEqual(weights.tensor(name).shape);
      expectSame(t.data, weights.tensor(name).data);
    }
    // raw bytes come back in HF row order too
    expect(model.rawTensor("blk.1.attn_k.weight").bytes).toEqual(encodeF32(weights.tensor("blk.1.attn_k.weight").data));
  });

  it("qwen2 keeps Q/K rows as stored, and reads biases and an untied output", async () => {
    const config: LlamaConfig = {
      ...llamaConfig,
      architecture: "qwen2",
      qkvBias: true,
      tiedEmbeddings: false,
      ropeTheta: 1e6,
    };
    const weights = randomWeights(config, 3);
    const model = await openGguf(writeTemp(buildLlamaGguf(weights)));
    expect(model.config).toEqual(config);
    expect(model.unpermutesQK).toBe(false);
    for (const name of ["blk.0.attn_q.weight", "blk.1.attn_k.bias", "blk.0.attn_v.bias", "output.weight"]) {
      expectSame(model.tensor(name).data, weights.tensor(name).data);
    }
  });

  it("llama biases are un-permuted like their weights", async () => {
    const config: LlamaConfig = { ...llamaConfig, qkvBias: true };
    const weights = randomWeights(config, 5);
    const model = await openGguf(writeTemp(buildLlamaGguf(weights)));
    for (const name of ["blk.0.attn_q.bias", "blk.1.attn_k.bias"]) expectSame(model.tensor(name).data, weights.tensor(name).data);
  });

  const tolerances: [string, number, number][] = [
    ["F16", GgmlType.F16, 1e-3],
    ["BF16", GgmlType.BF16, 1e-2],
    ["Q8_0", GgmlType.Q8_0, 1e-2],
    ["Q4_0", GgmlType.Q4_0, 0.15],
    ["Q4_1", GgmlType.Q4_1, 0.07],
  ];
  it.each(tolerances)("%s matrices dequantize to what the blocks hold", async (_name, type, tolerance) => {
    const weights = randomWeights(llamaConfig, 11);
    const model = await openGguf(writeTemp(buildLlamaGguf(weights, { type })));
    for (const name of ["token_embd.weight", "blk.0.attn_q.weight", "blk.1.attn_k.weight", "blk.1.ffn_down.weight"]) {
      const original = weights.tensor(name).data;
      // blocks never straddle rows, so quantizing HF rows gives the same blocks as quantizing permuted rows
      const expected = dequantize(type, encodeGgml(type, original), original.length, name);
      const t = model.tensor(name);
      expectSame(t.data, expected);
      let maxError = 0;
      for (let i = 0; i < original.length; i++) maxError = Math.max(maxError, Math.abs(t.data[i] - original[i]));
      expect(maxError).toBeLessThan(tolerance);
      const raw = model.rawTensor(name);
      expect(raw.type).toBe(type);
      expect(raw.shape).toEqual(t.shape);
      expect(raw.bytes).toEqual(encodeGgml(type, original));
    }
    expectSame(model.tensor("blk.0.attn_norm.weight").data, weights.tensor("blk.0.attn_norm.weight").data);
  });

  it("decodes each tensor once and caches it until clearCache", async () => {
    const model = await openGguf(writeTemp(buildLlamaGguf(randomWeights(llamaConfig))));
    const first = model.tensor("blk.0.ffn_up.weight");
    expect(model.tensor("blk.0.ffn_up.weight")).toBe(first);
    model.clearCache();
    expect(model.tensor("blk.0.ffn_up.weight")).not.toBe(first);
    expectSame(model.tensor("blk.0.ffn_up.weight").data, first.data);
  });

  it("holds every block matrix in one 64-byte-aligned buffer, rows as rawTensor gives them (Q/K un-permuted), and a fresh array after clearCache", async () => {
    const weights = randomWeights(llamaConfig, 9);
    const model = await openGguf(writeTemp(buildLlamaGguf(weights, { type: GgmlType.Q8_0 })));
    const names = [...model.tensorInfos.keys()].filter((name) => model.tensorInfos.get(name)!.shape.length === 2);
    expect(names).toContain("blk.1.attn_q.weight");
    const matrices = names.map((name) => model.matrix(name));
    const buffer = matrices[0].kind === "blocks" ? matrices[0].bytes.buffer : null;
    for (const [i, m] of matrices.entries()) {
      if (m.kind !== "blocks") throw new Error(`${names[i]}: expected blocks, got ${m.kind}`);
      expect(m.bytes.buffer).toBe(buffer);
      expect(m.bytes.byteOffset % 64).toBe(0);
      expect(m.bytes).toEqual(model.rawTensor(names[i]).bytes);
    }
    // the slices do not overlap
    const spans = matrices.map((m) => (m.kind === "blocks" ? [m.bytes.byteOffset, m.bytes.byteOffset + m.bytes.length] : [0, 0])).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    model.clearCache();
    const again = model.matrix("blk.1.attn_q.weight");
    if (again.kind !== "blocks") throw new Error("expected blocks");
    expect(again.bytes.buffer).not.toBe(buffer);
    expect(again.bytes).toEqual(model.rawTensor("blk.1.attn_q.weight").bytes);
  });

  it("honours general.alignment", async () => {
    const weights = randomWeights(llamaConfig, 2);
    const path = writeTemp(buildLlamaGguf(weights, { extraMetadata: { "general.alignment": 64 } }));
    const model = await openGguf(path);
    expect(model.alignment).toBe(64);
    expect(model.dataOffset % 64).toBe(0);
    expectSame(model.tensor("blk.1.ffn_gate.weight").data, weights.tensor("blk.1.ffn_gate.weight").data);
  });

  it("takes head_dim from attention.key_length when it is not hidden / heads", async () => {
    const config: LlamaConfig = { ...llamaConfig, headDim: 32 };
    const model = await openGguf(writeTemp(buildLlamaGguf(randomWeights(config))));
    expect(model.config.headDim).toBe(32);
    expect(model.tensor("blk.0.attn_q.weight").shape).toEqual([128, 64]);
  });
});

describe("GGUF metadata → LlamaConfig", () => {
  it("defaults: KV heads = heads, head_dim = hidden / heads, rope theta 10000; vocab from the token list", () => {
    const header = {
      path: "m.gguf",
      metadata: {
        "general.architecture": "llama",
        "llama.block_count": 2n, // uint64 in some files
        "llama.embedding_length": 64,
        "llama.feed_forward_length": 128,
        "llama.attention.head_count": 8,
        "llama.attention.layer_norm_rms_epsilon": Math.fround(1e-6),
        "llama.context_length": 4096,
        "tokenizer.ggml.tokens": ["a", "b", "c"],
      },
      tensorInfos: new Map([["output.weight", {}]]),
    } as unknown as GgufHeader;
    expect(llamaConfigFromGguf(header)).toEqual({
      architecture: "llama",
      numLayers: 2,
      hiddenSize: 64,
      intermediateSize: 128,
      numHeads: 8,
      numKvHeads: 8,
      headDim: 8,
      vocabSize: 3,
      rmsNormEps: 1e-6, // the shortest decimal with the same float32, as config.json writes it
      ropeTheta: 10000,
      maxContext: 4096,
      tiedEmbeddings: false,
      qkvBias: false,
    });
    const bad = { ...header, metadata: { ...header.metadata, "llama.context_length": "long" } } as GgufHeader;
    expect(() => llamaConfigFromGguf(bad)).toThrow("m.gguf: metadata llama.context_length: expected a number, found string long");
  });
});

describe("broken GGUF files", () => {
  const good = buildLlamaGguf(randomWeights(llamaConfig), { type: GgmlType.Q8_0 });

  it("bad magic", async () => {
    const path = writeTemp(Uint8Array.from([0x50, 0x4b, 0x03, 0x04, ...new Array(60).fill(0)]), "zip.gguf");
    await expectFileError(openGguf(path), `${path}: not a GGUF file: bad magic (expected "GGUF", found 50 4b 03 04)`);
    const empty = writeTemp(new Uint8Array(0), "empty.gguf");
    await expectFileError(openGguf(empty), `${empty}: not a GGUF file: bad magic (expected "GGUF", found an empty file)`);
  });

  it("unparsable header", async () => {
    const bytes = good.slice();
    new DataView(bytes.buffer).setUint32(4, 99, true); // version 99
    const path = writeTemp(bytes);
    await expectFileError(openGguf(path), new RegExp(`^${escape(path)}: unparsable GGUF header: .*unsupported version`));
  });

  it("header cut short", async () => {
    const path = writeTemp(good.subarray(0, 200));
    await expectFileError(openGguf(path), new RegExp(`^${escape(path)}: truncated: `));
  });

  it("tensor data cut short: names the first tensor past the end, before any tensor is read", async () => {
    const header = await readGgufHeader(writeTemp(good));
    const ffnUp = header.tensorInfos.get("blk.1.ffn_up.weight")!;
    const cut = ffnUp.fileOffset + 100; // inside blk.1.ffn_up.weight
    const path = writeTemp(good.subarray(0, cut));
    const later = [...header.tensorInfos.values()].filter((t) => t.fileOffset > ffnUp.fileOffset).length;
    await expectFileError(
      openGguf(path),
      `${path}: truncated: tensor blk.1.ffn_up.weight needs bytes up to ${ffnUp.fileOffset + ffnUp.byteLength!} ` +
        `but the file has ${cut} (and ${later} more tensors past the end)`,
    );
  });

  it("missing metadata, missing tensors, misshapen tensors, foreign architectures", async () => {
    const partial = { "general.architecture": "llama", "llama.embedding_length": 64, "llama.attention.head_count": 4 };
    const noBlocks = writeTemp(buildGguf(partial, []));
    await expectFileError(openGguf(noBlocks), `${noBlocks}: missing metadata key llama.block_count`);

    const weights = randomWeights(llamaConfig);
    const missing = writeTemp(buildLlamaGguf(weights, { omit: ["blk.1.ffn_up.weight"] }));
    await expectFileError(openGguf(missing), `${missing}: missing tensor blk.1.ffn_up.weight (expected shape [96, 64])`);

    const wrong = writeTemp(
      buildLlamaGguf(weights, {
        omit: ["blk.0.attn_v.weight"],
        extraTensors: [
          { name: "blk.0.attn_v.weight", type: GgmlType.F32, shape: [64, 64], data: new Uint8Array(64 * 64 * 4) },
        ],
      }),
    );
    await expectFileError(openGguf(wrong), `${wrong}: tensor blk.0.attn_v.weight has shape [64, 64], expected [32, 64]`);

    const phi = writeTemp(buildGguf({ "general.architecture": "phi2" }, []));
    await expectFileError(openGguf(phi), `${phi}: architecture phi2 is not one this harness runs (llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3)`);
    // the header alone still reads, for tools that only want metadata
    expect((await readGgufHeader(phi)).metadata["general.architecture"]).toBe("phi2");
  });

  it("unsupported tensor types: refused at open for a needed tensor, at tensor() for another", async () => {
    const weights = randomWeights(llamaConfig);
    const supported = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS";
    const iq2 = (name: string, shape: number[]) => ({
      name,
      type: GgmlType.IQ2_XXS, // sized, not decoded here
      shape,
      data: new Uint8Array(((shape[0] * shape[1]) / 256) * 66), // block_iq2_xxs: 66 bytes per 256 weights
    });
    // rows of 96 are not whole 256-weight blocks: refused whatever the type's support
    const raggedTensor = { ...iq2("blk.0.extra.weight", [4, 256]), shape: [8, 96] };
    const ragged = writeTemp(buildLlamaGguf(weights, { extraTensors: [raggedTensor] }));
    await expectFileError(
      openGguf(ragged),
      `${ragged}: tensor blk.0.extra.weight: innermost dimension 96 is not a multiple of the IQ2_XXS block size 256`,
    );

    const config: LlamaConfig = { ...llamaConfig, intermediateSize: 256 };
    const big = randomWeights(config);
    const refused = writeTemp(
      buildLlamaGguf(big, { omit: ["blk.1.ffn_down.weight"], extraTensors: [iq2("blk.1.ffn_down.weight", [64, 256])] }),
    );
    await expectFileError(
      openGguf(refused),
      `${refused}: tensor blk.1.ffn_down.weight has type IQ2_XXS, which cannot be dequantized (supported: ${supported})`,
    );

    const extra = writeTemp(buildLlamaGguf(big, { extraTensors: [iq2("blk.0.extra.weight", [4, 256])] }));
    const model = await openGguf(extra);
    expect(() => model.tensor("blk.0.extra.weight")).toThrow(
      `${extra}: tensor blk.0.extra.weight has type IQ2_XXS, which cannot be dequantized (supported: ${supported})`,
    );
    expect(model.rawTensor("blk.0.extra.weight").bytes.length).toBe(4 * 66);
    expect(() => model.tensor("nope.weight")).toThrow(`${extra}: no tensor named nope.weight`);
  });

  it("reads tensors of every supported type: sizes from the type table, values as gguf-py decodes them", async () => {
    const fixture = JSON.parse(
      readFileSync(new URL("../../test/fixtures/gguf-quants.json", import.meta.url), "utf8"),
    ) as { types: { type: string; id: number; blockSize: number; nElements: number; bytes: string; float32: string }[] };
    const extraTensors = fixture.types.map((t) => ({
      name: `extra.${t.type}.weight`,
      type: t.id,
      shape: [t.nElements / t.blockSize, t.blockSize],
      data: new Uint8Array(Buffer.from(t.bytes, "base64")),
    }));
    const path = writeTemp(buildLlamaGguf(randomWeights(llamaConfig), { extraTensors }));
    const model = await openGguf(path);
    for (const [i, t] of fixture.types.entries()) {
      const spec = extraTensors[i];
      expect(model.tensorInfos.get(spec.name), t.type).toMatchObject({ typeName: t.type, byteLength: spec.data.length });
      const expected = new Uint32Array(new Uint8Array(Buffer.from(t.float32, "base64")).buffer);
      expect(new Uint32Array(model.tensor(spec.name).data.buffer), t.type).toEqual(expected);
    }
  });
});

const real = await locateRealModel();

describe("the real SmolLM2 GGUF, truncated", () => {
  if (realModelMissing(real)) return;

  it("is refused at open with the first tensor past the end named", async () => {
    const cut = 52_428_800;
    const head = new Uint8Array(cut);
    const fd = openSync(real.path, "r");
    readSync(fd, head, 0, cut, 0);
    closeSync(fd);
    const path = writeTemp(head, "broken.gguf");
    const err = await expectFileError(
      openGguf(path),
      /^.*broken\.gguf: truncated: tensor (\S+) needs bytes up to (\d+) but the file has 52428800 \(and (\d+) more tensors past the end\)$/,
    );
    const header = await readGgufHeader(real.path);
    const name = /tensor (\S+)/.exec(err.message)![1];
    const info = header.tensorInfos.get(name)!;
    expect(info.fileOffset).toBeLessThan(cut);
    expect(info.fileOffset + info.byteLength!).toBeGreaterThan(cut);
    expect(statSync(path).size).toBe(cut);
    expect(readFileSync(path).subarray(0, 4).toString()).toBe("GGUF");
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
