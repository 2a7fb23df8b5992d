import { HeadCache, KvCache, mulberry32 } from "@razorkv/core";
import { describe, expect, it } from "vitest";
import { cudaStatus, decodeReference, fromBits, packLayer, toBits, validatePackedLayer, type PackedLayer } from "./index.js";
import { maxRelError, referenceChecks } from "./testing/checks.js";

describe("CPU reference (native/reference.cpp through the binding)", () => {
  it("agrees with core's attendReference and HeadCache.select + foldDropped", () => {
    const results = referenceChecks();
    expect(results.length).toBeGreaterThan(10);
    for (const r of results) expect(r, r.name).toMatchObject({ ok: true });
  });

  it("gives the compensation slot the mass of n copies of (k̂, v̂)", () => {
    const d = 16;
    const rand = mulberry32(3);
    const exact = (n: number) => fromBits(toBits(Float32Array.from({ length: n }, () => rand() * 2 - 1), "f16"), "f16");
    const keys = exact(5 * d);
    const values = exact(5 * d);
    const k = exact(d);
    const v = exact(d);
    const n = 3;
    const withSlot = new HeadCache(d);
    const withCopies = new HeadCache(d);
    for (let t = 0; t < 5; t++) {
      withSlot.append(t, keys, values, t * d);
      withCopies.append(t, keys, values, t * d);
    }
    for (let c = 0; c < n; c++) withCopies.append(5 + c, k, v);
    withSlot.compensation = { key: k, value: v, count: n };
    const queries = Float32Array.from({ length: 2 * d }, () => rand() * 4 - 2);
    const a = decodeReference(packLayer(new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d }, [withSlot]), 0, "f16"), queries, 2);
    const b = decodeReference(packLayer(new KvCache({ numLayers: 1, numKvHeads: 1, headDim: d }, [withCopies]), 0, "f16"), queries, 2);
    expect(maxRelError(a, b, d)).toBeLessThan(1e-6);
  });

  it("rounds to fp16 and bf16 to nearest even", () => {
    const f16 = toBits(Float32Array.from([1, -2, 65504, 65520, 1e-8, 6e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11]), "f16");
    expect(Array.from(f16)).toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00, 0, 1, 0x3c00, 0x3c02]);
    const bf16 = toBits(Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0.5]), "bf16");
    expect(Array.from(bf16)).toEqual([0x3f80, 0x3f80, 0x3f82, 0xbf00]);
    expect(Array.from(fromBits(Uint16Array.from([0x3c00, 0x0001, 0xfc00]), "f16"))).toEqual([1, 2 ** -24, -Infinity]);
  });

  it("rejects a malformed layout, naming the field", () => {
    const cache = new KvCache({ numLayers: 1, numKvHeads: 2, headDim: 8 });
    cache.head(0, 0).append(0, new Float32Array(8), new Float32Array(8));
    const packed = packLayer(cache, 0, "bf16");
    validatePackedLayer(packed);
    const broken: PackedLayer = { ...packed, positions: new Int32Array(0) };
    expect(() => validatePackedLayer(broken)).toThrow(/PackedLayer.positions: expected 1 values, got 0/);
    expect(() => decodeReference(packed, new Float32Array(3), 2)).toThrow(/queries has 3 values/);
  });

  it("reports whether CUDA was built and a GPU answers, without throwing", () => {
    const status = cudaStatus();
    expect(typeof status.built).toBe("boolean");
    if (!status.available) expect(status.reason).toBeTruthy();
  });
});
