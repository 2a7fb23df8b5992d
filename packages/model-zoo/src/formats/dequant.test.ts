import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  GgmlType,
  SUPPORTED_TYPE_NAMES,
  bf16ToFloat,
  dequantize,
  ggmlByteSize,
  ggmlTypeName,
  ggmlTypeTraits,
  halfToFloat,
  isDequantizable,
} from "./dequant.js";

// Every block below is written byte by byte; expected values are worked out by hand in the comments.
// Halves used: 0x3C00 = 1, 0x3800 = 0.5, 0x4000 = 2, 0xBC00 = -1, 0x3400 = 0.25, 0xC000 = -2.

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

describe("scalars", () => {
  it("decodes halves, including subnormals and infinities", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0x3800)).toBe(0.5);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3e00)).toBe(1.5);
    expect(halfToFloat(0x7bff)).toBe(65504); // largest finite half
    expect(halfToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfToFloat(0x0000)).toBe(0);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  it("decodes bfloat16 as the top half of a float32", () => {
    expect(bf16ToFloat(0x3f80)).toBe(1);
    expect(bf16ToFloat(0xc000)).toBe(-2);
    expect(bf16ToFloat(0x4049)).toBe(3.140625); // 0x40490000: 1.5703125 · 2
  });
});

describe("plain float tensors", () => {
  it("F32, also from an unaligned slice", () => {
    // 1.0 = 00 00 80 3F, -2.5 = 00 00 20 C0 (little-endian)
    const raw = bytes(0xaa, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0);
    expect([...dequantize(GgmlType.F32, raw.subarray(1), 2, "t")]).toEqual([1, -2.5]);
  });

  it("F16", () => {
    const raw = bytes(0x00, 0x3c, 0x00, 0xbc, 0x00, 0x34, 0x01, 0x00);
    expect([...dequantize(GgmlType.F16, raw, 4, "t")]).toEqual([1, -1, 0.25, 2 ** -24]);
  });

  it("BF16", () => {
    // 0x3F80 = 1, 0xC000 = -2, 0x3F00 = 0.5, 0x4040 = 3
    const raw = bytes(0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40);
    expect([...dequantize(GgmlType.BF16, raw, 4, "t")]).toEqual([1, -2, 0.5, 3]);
  });
});

describe("quantized blocks", () => {
  it("Q8_0: x = d · q", () => {
    // block 0: d = 0.5, qs = 0, 1, -1, 2, -128, 127, then 26 × 4
    // block 1: d = -2,  qs = 3, then 31 × 0
    const block0 = [0x00, 0x38, 0, 1, 0xff, 2, 0x80, 0x7f, ...new Array(26).fill(4)];
    const block1 = [0x00, 0xc0, 3, ...new Array(31).fill(0)];
    const out = dequantize(GgmlType.Q8_0, bytes(...block0, ...block1), 64, "t");
    expect([...out.subarray(0, 6)]).toEqual([0, 0.5, -0.5, 1, -64, 63.5]);
    expect([...out.subarray(6, 32)]).toEqual(new Array(26).fill(2));
    expect(out[32]).toBe(-6);
    expect([...out.subarray(33, 64)]).toEqual(new Array(31).fill(-0)); // −2 · 0 is −0, as in ggml
  });

  it("Q4_0: low nibbles are weights 0..15, high nibbles 16..31, x = (q − 8) · d", () => {
    // block 0: d = 2; byte 0 = 0x80 → w0 = (0 − 8)·2 = −16, w16 = (8 − 8)·2 = 0
    //                 byte 1 = 0xF9 → w1 = (9 − 8)·2 = 2,   w17 = (15 − 8)·2 = 14
    //                 bytes 2..15 = 0x88 → 0
    // block 1: d = 0.25; byte 15 = 0x0F → w15 = (15 − 8)/4 = 1.75, w31 = (0 − 8)/4 = −2; other bytes 0x88 → 0
    const block0 = [0x00, 0x40, 0x80, 0xf9, ...new Array(14).fill(0x88)];
    const block1 = [0x00, 0x34, ...new Array(15).fill(0x88), 0x0f];
    const out = dequantize(GgmlType.Q4_0, bytes(...block0, ...block1), 64, "t");
    const expected = new Array(64).fill(0);
    expected[0] = -16;
    expected[16] = 0;
    expected[1] = 2;
    expected[17] = 14;
    expected[32 + 15] = 1.75;
    expected[32 + 31] = -2;
    expect([...out]).toEqual(expected);
  });

  it("Q4_1: x = q · d + m, same nibble order", () => {
    // block 0: d = 0.5, m = -1; byte 0 = 0x21 → w0 = 1·0.5 − 1 = −0.5, w16 = 2·0.5 − 1 = 0
    //                          byte 15 = 0xF0 → w15 = −1, w31 = 15·0.5 − 1 = 6.5; other bytes 0 → −1
    // block 1: d = 1, m = 0.25; byte 0 = 0x3C → w0 = 12.25, w16 = 3.25; other bytes 0x11 → 1.25
    const block0 = [0x00, 0x38, 0x00, 0xbc, 0x21, ...new Array(14).fill(0x00), 0xf0];
    const block1 = [0x00, 0x3c, 0x00, 0x34, 0x3c, ...new Array(15).fill(0x11)];
    const out = dequantize(GgmlType.Q4_1, bytes(...block0, ...block1), 64, "t");
    const expected = [...new Array(32).fill(-1), ...new Array(32).fill(1.25)];
    expected[0] = -0.5;
    expected[16] = 0;
    expected[15] = -1;
    expected[31] = 6.5;
    expected[32] = 12.25;
    expected[48] = 3.25;
    expect([...out]).toEqual(expected);
  });
});

describe("bit for bit as gguf-py (test/fixtures/gguf-quants.json, tools/gguf-quants/generate.py)", () => {
  interface FixtureType {
    type: string;
    id: number;
    blockSize: number;
    typeSize: number;
    nElements: number;
    bytes: string;
    float32: string;
  }
  const fixture = JSON.parse(
    readFileSync(new URL("../../test/fixtures/gguf-quants.json", import.meta.url), "utf8"),
  ) as { gguf: string; types: FixtureType[] };
  const bytesOf = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
  const bitsOf = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
  const hex = (bits: number) => `0x${bits.toString(16).padStart(8, "0")}`;

  /** The first element whose float32 bits differ, described for the failure message; undefined when none. */
  function firstMismatch(entry: FixtureType, got: Float32Array): string | undefined {
    const expected = bitsOf(new Float32Array(bytesOf(entry.float32).slice().buffer));
    const actual = bitsOf(got);
    if (actual.length !== expected.length) return `${actual.length} elements, expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      if (actual[i] !== expected[i]) {
        return `element ${i} (block ${Math.floor(i / entry.blockSize)}): ${hex(actual[i])}, gguf-py ${hex(expected[i])}`;
      }
    }
    return undefined;
  }

  it("covers every supported type, with ggml's block sizes", () => {
    expect(fixture.types.map((t) => t.type).sort()).toEqual([...SUPPORTED_TYPE_NAMES].sort());
    for (const t of fixture.types) {
      expect(ggmlTypeTraits(t.id), t.type).toEqual({ name: t.type, blockSize: t.blockSize, typeSize: t.typeSize });
      expect(bytesOf(t.bytes).length, t.type).toBe((t.nElements / t.blockSize) * t.typeSize);
    }
  });

  for (const entry of fixture.types) {
    it(`${entry.type}: every float32 equals gguf ${fixture.gguf}'s, also from an unaligned slice`, () => {
      const raw = bytesOf(entry.bytes);
      expect(firstMismatch(entry, dequantize(entry.id, raw, entry.nElements, "t"))).toBeUndefined();
      const shifted = new Uint8Array(raw.length + 1);
      shifted.set(raw, 1);
      expect(firstMismatch(entry, dequantize(entry.id, shifted.subarray(1), entry.nElements, "t"))).toBeUndefined();
    });
  }
});

describe("sizes and errors", () => {
  it("knows block sizes, also of types it cannot decode", () => {
    expect(ggmlByteSize(GgmlType.Q4_1, 64)).toBe(40);
    expect(ggmlByteSize(GgmlType.Q8_0, 32)).toBe(34);
    expect(ggmlByteSize(GgmlType.Q5_K, 512)).toBe(352);
    expect(ggmlByteSize(GgmlType.IQ4_XS, 256)).toBe(136);
    expect(ggmlByteSize(GgmlType.IQ4_NL, 64)).toBe(36);
    expect(ggmlByteSize(GgmlType.BF16, 3)).toBe(6);
    expect(ggmlByteSize(GgmlType.IQ2_XXS, 512)).toBe(132); // sized, not decoded
    expect(ggmlByteSize(31, 32)).toBeUndefined(); // Q4_0_4_4, removed from ggml: named, not sized
    expect(() => ggmlByteSize(GgmlType.Q4_0, 48)).toThrow(/not a whole number of Q4_0 blocks of 32/);
    expect(() => ggmlByteSize(GgmlType.Q6_K, 128)).toThrow(/not a whole number of Q6_K blocks of 256/);
  });

  it("names the type and the tensor when the type is unsupported", () => {
    expect(isDequantizable(GgmlType.Q5_K)).toBe(true);
    expect(isDequantizable(GgmlType.IQ2_XXS)).toBe(false);
    expect(() => dequantize(GgmlType.IQ2_XXS, new Uint8Array(66), 256, "blk.3.ffn_down.weight")).toThrow(
      "tensor blk.3.ffn_down.weight has type IQ2_XXS, which cannot be dequantized " +
        "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)",
    );
    expect(ggmlTypeName(23)).toBe("IQ4_XS");
    expect(ggmlTypeName(33)).toBe("Q4_0_8_8");
    expect(ggmlTypeName(99)).toBe("type 99");
  });

  it("refuses too few bytes", () => {
    expect(() => dequantize(GgmlType.Q4_1, new Uint8Array(39), 64, "blk.0.attn_q.weight")).toThrow(
      "tensor blk.0.attn_q.weight: 64 Q4_1 elements need 40 bytes, got 39",
    );
    expect(() => dequantize(GgmlType.Q4_K, new Uint8Array(287), 512, "blk.0.ffn_up.weight")).toThrow(
      "tensor blk.0.ffn_up.weight: 512 Q4_K elements need 288 bytes, got 287",
    );
  });
});
