import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { openModel } from "../load.js";
import { LlamaModel } from "../model/llama.js";
import { defaultBackend } from "../language-model.js";
import { tokenizerFromGguf } from "../tokenizer/index.js";
import { GgmlType } from "./dequant.js";
import { ModelFileError } from "./errors.js";
import { buildGguf, encodeF32, locateRealModel, type GgufValue } from "./fixtures.js";
import { EAGER_ARRAY_MAX_LENGTH, parseGgufHeader, type ParsedGgufHeader } from "./gguf-header.js";
import { readGgufHeader } from "./gguf.js";
import { realModelMissing } from "./real-model-guard.testing.js";

const dir = mkdtempSync(join(tmpdir(), "razorkv-gguf-header-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeTemp(bytes: Uint8Array): string {
  const path = join(dir, `header-${fileCount++}.gguf`);
  writeFileSync(path, bytes);
  return path;
}

/** The long arrays of a tokenizer are the ones read lazily: the key's property is still a getter. */
function isUnread(metadata: object, key: string): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(metadata, key);
  if (descriptor === undefined) throw new Error(`no metadata key ${key}`);
  return descriptor.get !== undefined;
}

/**
 * Checks our header against @huggingface/gguf's parse of the same file: every key in the same order, every value
 * deep-equal (bigint stays bigint), tensor infos, the end of the infos and the data offset.
 */
async function expectSameAsLibrary(path: string, ours: ParsedGgufHeader): Promise<void> {
  const reference = await gguf(path, { allowLocalFile: true });
  const expected = reference.metadata as Record<string, unknown>;
  expect(Object.keys(ours.metadata)).toEqual(Object.keys(expected));
  for (const key of Object.keys(expected)) expect(ours.metadata[key], key).toStrictEqual(expected[key]);
  expect(ours.version).toBe(reference.metadata.version);
  expect(ours.tensorInfos).toEqual(
    reference.tensorInfos.map((t) => ({ name: t.name, dims: t.shape.map(Number), type: t.dtype, offset: Number(t.offset) })),
  );
  expect(ours.tensorInfosEnd).toBe(reference.tensorInfoByteRange[1]);
  expect(ours.dataOffset).toBe(Number(reference.tensorDataOffset));
}

const LONG = EAGER_ARRAY_MAX_LENGTH + 1;

/** One value of every GGUF type, short arrays, and long (lazy) arrays of numbers and of strings. */
const everyType: Record<string, GgufValue> = {
  "general.architecture": "llama",
  "test.u8": { type: "u8", value: 250 },
  "test.i8": { type: "i8", value: -120 },
  "test.u16": { type: "u16", value: 65000 },
  "test.i16": { type: "i16", value: -32000 },
  "test.u32": { type: "u32", value: 4_000_000_000 },
  "test.i32": { type: "i32", value: -2_000_000_000 },
  "test.f32": { type: "f32", value: 0.1 },
  "test.bool.true": { type: "bool", value: true },
  "test.bool.false": { type: "bool", value: false },
  "test.string": { type: "string", value: "naïve — 日本語 🙂" },
  "test.empty": { type: "string", value: "" },
  "test.u64": { type: "u64", value: 18_000_000_000_000_000_000n },
  "test.i64": { type: "i64", value: -9_000_000_000_000_000_000n },
  "test.f64": { type: "f64", value: Math.PI },
  "test.short.strings": ["a", "", "Ġthe", "<|im_end|>"],
  "test.short.f32": { arrayOf: "f32", values: [1.5, -2.25, 1e-6] },
  "test.short.bool": { arrayOf: "bool", values: [true, false, true] },
  "test.short.u64": { arrayOf: "u64", values: [0n, 1n, 2n ** 63n] },
  "test.short.i8": { arrayOf: "i8", values: [-1, 0, 1] },
  "test.empty.array": { arrayOf: "i32", values: [] },
  "test.at.threshold": { arrayOf: "u16", values: Array.from({ length: EAGER_ARRAY_MAX_LENGTH }, (_, i) => i) },
  "test.long.i32": { arrayOf: "i32", values: Array.from({ length: LONG }, (_, i) => i * 7 - 3000) },
  "test.long.f64": { arrayOf: "f64", values: Array.from({ length: LONG }, (_, i) => i / 3) },
  "test.long.i64": { arrayOf: "i64", values: Array.from({ length: LONG }, (_, i) => BigInt(i) * -1_000_000_000_000n) },
  "test.long.strings": Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? "" : `tok${i}·${"x".repeat(i % 13)}`)),
  "tokenizer.chat_template": "{{ messages }}",
};

const tensors = [
  { name: "a.weight", type: GgmlType.F32, shape: [3, 8], data: encodeF32(new Float32Array(24)) },
  { name: "b.weight", type: GgmlType.F32, shape: [5], data: encodeF32(new Float32Array(5)) },
];

describe("parseGgufHeader on written files", () => {
  it("reads every value type, short and long arrays and tensor infos as @huggingface/gguf does", async () => {
    const path = writeTemp(buildGguf(everyType, tensors));
    const header = parseGgufHeader(path);
    const long = ["test.long.i32", "test.long.f64", "test.long.i64", "test.long.strings"];
    for (const key of Object.keys(header.metadata)) expect(isUnread(header.metadata, key), key).toBe(long.includes(key));
    expect(header.metadata["test.long.i32"]).toEqual((everyType["test.long.i32"] as { readonly values: readonly number[] }).values);
    expect(header.metadata["test.long.strings"]).toEqual(everyType["test.long.strings"]);
    await expectSameAsLibrary(path, header);
    // a lazy array is decoded once: the property becomes the array
    expect(isUnread(header.metadata, "test.long.strings")).toBe(false);
    expect(header.metadata["test.long.strings"]).toBe(header.metadata["test.long.strings"]);
    expect(header.metadata["test.f32"]).toBe(Math.fround(0.1));
    expect(header.tensorInfos.map((t) => t.dims)).toEqual([[8, 3], [5]]);
  });

  // the values written are the reference here: @huggingface/gguf 0.4.6 cuts a string short where it crosses the end
  // of its 2 MB read chunk (its slice of the buffer stops there)
  it("moves and grows its window across a header of several MB (a string and a lazy array longer than the window)", () => {
    const template = "y".repeat(3 << 20);
    const tokens = Array.from({ length: 60_000 }, (_, i) => `token-${i}-${"z".repeat(i % 40)}`);
    const types = Array.from({ length: 60_000 }, (_, i) => i % 5);
    const metadata: Record<string, GgufValue> = {
      "general.alignment": 64,
      "tokenizer.ggml.tokens": tokens,
      "tokenizer.chat_template": template,
      "tokenizer.ggml.token_type": { arrayOf: "i32", values: types },
      "general.name": "after the long values",
    };
    const path = writeTemp(buildGguf(metadata, tensors));
    const header = parseGgufHeader(path);
    expect(header.tensorInfosEnd).toBeGreaterThan(5 << 20);
    expect(header.metadata["general.name"]).toBe("after the long values");
    expect(header.metadata["tokenizer.chat_template"] === template).toBe(true); // not toBe: a 3 MB diff on failure
    expect(header.metadata["tokenizer.ggml.tokens"]).toEqual(tokens);
    expect(header.metadata["tokenizer.ggml.token_type"]).toEqual(types);
    expect(header.tensorInfos).toEqual([
      { name: "a.weight", dims: [8, 3], type: GgmlType.F32, offset: 0 },
      { name: "b.weight", dims: [5], type: GgmlType.F32, offset: 128 },
    ]);
    expect(header.alignment).toBe(64);
    expect(header.dataOffset).toBe(Math.ceil(header.tensorInfosEnd / 64) * 64);
  });

  it("refuses a lazy array's first read when the file changed since its header was read", () => {
    const path = writeTemp(buildGguf(everyType, tensors));
    const header = parseGgufHeader(path);
    writeFileSync(path, buildGguf({ ...everyType, "test.extra": 1 }, tensors));
    expect(() => header.metadata["test.long.strings"]).toThrow(`${path}: metadata key test.long.strings: the file changed since its GGUF header was read`);
  });
});

/** Byte offset of the u32 value type of `key` in a file written by buildGguf from `metadata` (keys in order). */
function valueTypeOffset(metadata: Record<string, GgufValue>, key: string): number {
  const keys = Object.keys(metadata);
  const before = Object.fromEntries(keys.slice(0, keys.indexOf(key)).map((k) => [k, metadata[k]]));
  // a file of the keys before it and no tensors ends where the key begins
  const keyAt = parseGgufHeader(writeTemp(buildGguf(before, []))).tensorInfosEnd;
  return keyAt + 8 + new TextEncoder().encode(key).length;
}

function errorOf(fn: () => unknown): ModelFileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).not.toContain("\n");
    return err as ModelFileError;
  }
  throw new Error("expected an error");
}

describe("parseGgufHeader refusals", () => {
  const small: Record<string, GgufValue> = { "general.architecture": "llama", "test.value": { u32: 7 }, "test.array": [1, 2, 3] };

  it("version 1, unknown versions and big-endian files", () => {
    for (const [version, problem] of [
      [1, "unsupported version 1 (only versions 2 and 3 are read; v1 wrote 32-bit lengths)"],
      [99, "unsupported version 99 (only versions 2 and 3 are read)"],
      [0x03000000, "big-endian files are not supported"],
    ] as const) {
      const bytes = buildGguf(small, []);
      new DataView(bytes.buffer).setUint32(4, version, true);
      const path = writeTemp(bytes);
      expect(errorOf(() => parseGgufHeader(path)).message).toBe(`${path}: unparsable GGUF header: ${problem}`);
    }
  });

  it("a value type or array element type that is not a GGUF type, and arrays of arrays, name the key and the byte", () => {
    const at = valueTypeOffset(small, "test.value");
    const bytes = buildGguf(small, []);
    new DataView(bytes.buffer).setUint32(at, 13, true);
    const path = writeTemp(bytes);
    expect(errorOf(() => parseGgufHeader(path)).message).toBe(
      `${path}: unparsable GGUF header: metadata key test.value has value type 13 at byte ${at}, which is not a GGUF value type (0–12)`,
    );

    const arrayAt = valueTypeOffset(small, "test.array");
    for (const [elementType, problem] of [
      [77, `metadata key test.array is an array of value type 77 at byte ${arrayAt + 4}, which is not a GGUF value type (0–12)`],
      [9, `metadata key test.array at byte ${arrayAt + 4} is an array of arrays, which gguf.cpp refuses`],
    ] as const) {
      const array = buildGguf(small, []);
      new DataView(array.buffer).setUint32(arrayAt + 4, elementType, true);
      const arrayPath = writeTemp(array);
      expect(errorOf(() => parseGgufHeader(arrayPath)).message).toBe(`${arrayPath}: unparsable GGUF header: ${problem}`);
    }
  });

  it("a string length over 16 MiB is refused before anything is allocated for it", () => {
    const bytes = buildGguf(small, []);
    const lengthAt = valueTypeOffset(small, "general.architecture") + 4;
    new DataView(bytes.buffer).setBigUint64(lengthAt, 2n ** 40n, true);
    const path = writeTemp(bytes);
    expect(errorOf(() => parseGgufHeader(path)).message).toBe(
      `${path}: unparsable GGUF header: a string length 1099511627776 at byte ${lengthAt} (in metadata key general.architecture) is over 16777216 bytes`,
    );
  });

  it("a duplicate key and an alignment that is not a power of two", () => {
    const bytes = buildGguf({ "test.a": 1, "test.b": 2 }, []);
    const keyB = valueTypeOffset({ "test.a": 1, "test.b": 2 }, "test.b") - 8 - "test.b".length;
    bytes.set(new TextEncoder().encode("test.a"), keyB + 8); // rename test.b to test.a
    const path = writeTemp(bytes);
    expect(errorOf(() => parseGgufHeader(path)).message).toBe(`${path}: unparsable GGUF header: metadata key test.a at byte ${keyB} is defined twice`);

    const aligned = writeTemp(buildGguf({ "general.alignment": 48 }, tensors));
    expect(errorOf(() => parseGgufHeader(aligned)).message).toBe(`${aligned}: unparsable GGUF header: general.alignment 48 is not a power of two`);
  });

  it("a header cut short says how far it needed to read, what it was reading and where that began", () => {
    const metadata: Record<string, GgufValue> = { "general.architecture": "llama", "test.long.strings": everyType["test.long.strings"] };
    const bytes = buildGguf(metadata, tensors);
    const header = parseGgufHeader(writeTemp(bytes));
    const arrayKeyAt = valueTypeOffset(metadata, "test.long.strings") - 8 - "test.long.strings".length;
    const cases: [number, RegExp][] = [
      [20, /the header needs bytes up to 24 but the file has 20 \(reading the metadata count, from byte 16\)$/],
      [30, /the header needs bytes up to \d+ but the file has 30 \(reading the key of metadata entry 1 of 2, from byte 24\)$/],
      [arrayKeyAt + 40, new RegExp(`but the file has ${arrayKeyAt + 40} \\(reading metadata key test\\.long\\.strings, from byte ${arrayKeyAt}\\)$`)],
      [header.tensorInfosEnd - 3, new RegExp(`\\(reading tensor info b\\.weight, from byte \\d+\\)$`)],
    ];
    for (const [cut, message] of cases) {
      const path = writeTemp(bytes.subarray(0, cut));
      const err = errorOf(() => parseGgufHeader(path));
      expect(err.message.startsWith(`${path}: truncated: the header needs bytes up to `), err.message).toBe(true);
      expect(err.message).toMatch(message);
    }
  });

  it("readGgufHeader passes the reader's errors on as they are", async () => {
    const bytes = buildGguf(small, []);
    new DataView(bytes.buffer).setUint32(valueTypeOffset(small, "test.value"), 13, true);
    const path = writeTemp(bytes);
    const err = await readGgufHeader(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).problem).toMatch(/^unparsable GGUF header: metadata key test\.value has value type 13 at byte \d+/);
  });
});

const real = await locateRealModel();

describe("parseGgufHeader on the real SmolLM2 GGUF", () => {
  if (realModelMissing(real)) return;

  it("reads what @huggingface/gguf reads: every key and value, tensor infos, data offset", async () => {
    const header = parseGgufHeader(real.path);
    expect(header.tensorInfos).toHaveLength(272);
    for (const key of ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"]) {
      expect(isUnread(header.metadata, key), key).toBe(true);
    }
    await expectSameAsLibrary(real.path, header);
  });

  it("opening the model and running it reads none of the tokenizer's arrays; building the tokenizer does", async () => {
    const loaded = await openModel(real.path);
    const metadata = loaded.ggufMetadata!;
    const model = new LlamaModel(loaded.weights, await defaultBackend());
    const { logits } = model.prefill([1, 9690, 28], { logits: "last" });
    expect(logits.length).toBe(49152);
    const lazy = ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"];
    for (const key of lazy) expect(isUnread(metadata, key), key).toBe(true);

    const tokenizer = tokenizerFromGguf(metadata, { source: real.path });
    for (const key of lazy) expect(isUnread(metadata, key), key).toBe(false);
    const reference = tokenizerFromGguf((await gguf(real.path, { allowLocalFile: true })).metadata, { source: real.path });
    const text = "The quick brown fox — naïve café <|im_start|>user\nHello!";
    expect(tokenizer.encode(text)).toEqual(reference.encode(text));
  });
});
