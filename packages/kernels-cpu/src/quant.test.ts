/**
 * quantMatmul and dequantizeRows over every GGUF weight type, against an independent reference: the blocks decoded
 * in TypeScript (test-ggml.ts, itself checked bit for bit against gguf-py's dequantize), then x · Wᵀ in float64.
 *
 * Tolerance (test-ggml.ts referenceWithBound): the dot path quantizes each row of x to 8 bits per block with
 * d = amax/127, so each element of x moves by at most amax/254 of its block and an output by at most
 * Σ_blocks amax/254 · Σ|w|; plus 2^-14 · Σ|w·x| for float32 rounding. Every output must lie within its own bound.
 * The bound is sharp enough to catch layout mistakes: a block whose scale is doubled, or a reference that reads
 * the nibbles or sub-blocks in the wrong order, fails it (the "catches" tests).
 */
import { mulberry32 } from "@razorkv/core";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GGML_WEIGHT_TYPES, ggmlRowBytes, type CpuKernels, type GemmBackend, type GgmlWeightType, type QuantPath } from "./index.js";
import { kernels, kernelsDisabled, sameBits } from "./test-helpers.js";
import { HALF_FIELDS, activationBlock, dequantizeReference, randomBlocks, referenceWithBound, worstBoundRatio } from "./test-ggml.js";

const TYPES = Object.keys(GGML_WEIGHT_TYPES) as GgmlWeightType[];

/** K values per type: multiples of the block size, odd numbers of blocks where there are several. */
function kValues(type: GgmlWeightType): number[] {
  const { blockSize } = GGML_WEIGHT_TYPES[type];
  if (blockSize === 1) return [37, 301];
  if (blockSize === 32) return [32, 160, 608];
  return [256, 1280];
}

function randomX(rand: () => number, length: number): Float32Array {
  // a few large entries per row, as real activations have: they set their blocks' scales
  return Float32Array.from({ length }, () => (rand() < 0.02 ? 8 : 1) * (rand() * 2 - 1));
}

interface Case {
  type: GgmlWeightType;
  N: number;
  K: number;
  blocks: Uint8Array;
  w: Float32Array;
}
function makeCase(type: GgmlWeightType, N: number, K: number, seed: number): Case {
  const blocks = randomBlocks(type, N, K, mulberry32(seed));
  return { type, N, K, blocks, w: dequantizeReference(type, blocks, N, K) };
}

/** The kernel's worst |out − x·Wᵀ| / bound over all outputs. */
function run(k: CpuKernels, c: Case, x: Float32Array, M: number, opts: { path?: QuantPath; backend?: GemmBackend } = {}) {
  const out = new Float32Array(M * c.N).fill(Number.NaN); // every entry must be written
  k.quantMatmul(c.type, c.blocks, x, out, M, c.N, c.K, opts);
  return out;
}

describe.skipIf(kernelsDisabled)("dequantizeRows and the TypeScript reference decoders", () => {
  // gguf-py's dequantize of random and edge-case blocks of every type (model-zoo's fixture, tools/gguf-quants)
  const fixture = JSON.parse(readFileSync(new URL("../../model-zoo/test/fixtures/gguf-quants.json", import.meta.url), "utf8")) as {
    types: { type: string; id: number; nElements: number; bytes: string; float32: string }[];
  };
  const decode = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));

  it("the fixture has every type quantMatmul reads", () => {
    expect(fixture.types.map((t) => t.type).sort()).toEqual([...TYPES].sort());
  });

  for (const entry of fixture.types) {
    const type = entry.type as GgmlWeightType;
    it(`${type}: native and TypeScript decoders give gguf-py's floats bit for bit`, () => {
      const bytes = decode(entry.bytes);
      const expected = new Float32Array(decode(entry.float32).buffer.slice(0));
      const K = entry.nElements; // one row
      const native = new Float32Array(K);
      kernels().dequantizeRows(entry.id, bytes, native, 1, K);
      expect(sameBits(dequantizeReference(type, bytes, 1, K), expected)).toBe(true);
      expect(sameBits(native, expected)).toBe(true);
    });
  }
});

describe.skipIf(kernelsDisabled)("quantMatmul", () => {
  let k: CpuKernels;
  let backends: GemmBackend[];
  beforeAll(() => {
    k = kernels();
    // the default (AVX2 dot kernels when compiled) and the scalar kernels, whichever build this is
    backends = [...new Set([k.gemmBackend(), "scalar" as GemmBackend])];
  });

  for (const type of TYPES) {
    for (const K of kValues(type)) {
      it(`${type} K=${K}: M = 1, 3, 17, 70 × N = 37, 129 within the 8-bit activation bound, every kernel and path`, () => {
        const c129 = makeCase(type, 129, K, K * 31 + GGML_WEIGHT_TYPES[type].id);
        const rand = mulberry32(K + 7);
        for (const N of [37, 129]) {
          // the first N rows of the 129-row matrix: an odd N that splits unevenly between threads and chunks
          const c: Case = { ...c129, N, blocks: c129.blocks.subarray(0, N * ggmlRowBytes(type, K)), w: c129.w.subarray(0, N * K) };
          for (const M of [1, 3, 17, 70]) {
            const x = randomX(rand, M * K);
            const { expected, bound } = referenceWithBound(type, c.w, x, M, N, K);
            for (const backend of backends) {
              const paths: QuantPath[] = M === 70 ? ["auto", "dot", "int8"] : ["auto"];
              if (M === 3) paths.push("dequant");
              for (const path of paths) {
                const ratio = worstBoundRatio(run(k, c, x, M, { path, backend }), expected, bound);
                expect(ratio, `${type} M=${M} N=${N} K=${K} ${backend} ${path}`).toBeLessThanOrEqual(1);
              }
            }
          }
        }
      });
    }
  }

  for (const type of TYPES) {
    it(`${type}: the bound catches a doubled block scale and a wrong element order`, () => {
      const K = kValues(type)[0];
      const c = makeCase(type, 37, K, 99 + GGML_WEIGHT_TYPES[type].id);
      const M = 3;
      const x = randomX(mulberry32(5), M * K);
      const { expected, bound } = referenceWithBound(type, c.w, x, M, c.N, K);
      expect(worstBoundRatio(run(k, c, x, M), expected, bound)).toBeLessThanOrEqual(1);

      // 1. row 0's first block with its scale doubled (the f16 exponent + 1; plain types: the first weight doubled)
      const corrupt = c.blocks.slice();
      const view = new DataView(corrupt.buffer);
      const halfAt = HALF_FIELDS[type]?.[0];
      if (halfAt !== undefined) view.setUint16(halfAt, view.getUint16(halfAt, true) + 0x400, true);
      else if (type === "F32") view.setFloat32(0, 2 * view.getFloat32(0, true) + 1, true);
      else view.setUint16(0, view.getUint16(0, true) + (type === "F16" ? 0x400 : 0x80), true);
      const corrupted = run(k, { ...c, blocks: corrupt }, x, M);
      expect(worstBoundRatio(corrupted, expected, bound)).toBeGreaterThan(1);

      // 2. a reference that reads elements in the wrong order: the nibble halves of each 32 swapped (i ↔ i ^ 16),
      //    and for the 256-element types also the sub-block pairs (i ↔ i ^ 32)
      if (activationBlock(type) === 0) return;
      const swaps = GGML_WEIGHT_TYPES[type].blockSize === 256 ? [16, 32] : [16];
      for (const bit of swaps) {
        const permuted = new Float32Array(c.w.length);
        for (let i = 0; i < permuted.length; i++) permuted[i] = c.w[i ^ bit];
        const wrong = referenceWithBound(type, permuted, x, M, c.N, K);
        expect(worstBoundRatio(run(k, c, x, M), wrong.expected, wrong.bound), `order i ^ ${bit}`).toBeGreaterThan(1);
      }
    });
  }

  it("gives a row of x the same bits alone, in a batch, and on any thread count (dot path)", () => {
    const threads = k.threads();
    try {
      for (const type of ["Q4_1", "Q4_K", "Q6_K", "F16"] as GgmlWeightType[]) {
        const K = kValues(type)[1];
        const c = makeCase(type, 300, K, 3);
        const x = randomX(mulberry32(4), 17 * K);
        const batch = run(k, c, x, 17);
        for (const m of [0, 9, 16]) {
          expect(sameBits(run(k, c, x.subarray(m * K, (m + 1) * K), 1), batch.subarray(m * c.N, (m + 1) * c.N)), `${type} row ${m}`).toBe(true);
        }
        k.setThreads(1);
        expect(sameBits(run(k, c, x, 17), batch), `${type} on one thread`).toBe(true);
        k.setThreads(threads);
      }
    } finally {
      k.setThreads(threads);
    }
  });

  it("int8 path: the 8-bit GEMM's types give the scalar dot kernel's bits, any M and N, on any thread count", () => {
    // The 8-bit GEMM (native/qgemm.cc) claims each output is dotQ*_KScalar's value: exact integer sums and that
    // kernel's float expression. The "scalar" backend runs that kernel itself, so the two must agree bit for bit;
    // odd M and N exercise the micro-kernel's row tails (4 rows) and the panel's column tails (32 rows of W).
    if (process.platform === "linux" && process.arch === "x64") {
      const flags = readFileSync("/proc/cpuinfo", "utf8");
      const vnni = ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"].every((f) => new RegExp(`\\b${f}\\b`).test(flags));
      expect(k.int8GemmVnni(), "the VNNI GEMM runs wherever the CPU has it (else this test compares the dot path with itself)").toBe(vnni);
    }
    const threads = k.threads();
    try {
      for (const type of ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"] as GgmlWeightType[]) {
        // K-quants: 5 blocks; 32-element types: 19 (an odd count: the packer transposes two blocks at a time)
        const K = GGML_WEIGHT_TYPES[type].blockSize === 256 ? 1280 : 608;
        const c129 = makeCase(type, 129, K, 17 + GGML_WEIGHT_TYPES[type].id);
        const rand = mulberry32(23);
        for (const N of [1, 15, 17, 33, 129]) {
          const c: Case = { ...c129, N, blocks: c129.blocks.subarray(0, N * ggmlRowBytes(type, K)), w: c129.w.subarray(0, N * K) };
          for (const M of [1, 3, 53, 70]) {
            const x = randomX(rand, M * K);
            // without VNNI the int8 path is the dot path (its AVX2 kernels sum in float lanes: other bits)
            const scalar = k.int8GemmVnni() ? run(k, c, x, M, { path: "int8", backend: "scalar" }) : run(k, c, x, M, { path: "dot" });
            const fast = run(k, c, x, M, { path: "int8" });
            expect(sameBits(fast, scalar), `${type} M=${M} N=${N}`).toBe(true);
            if (N === 129 && M === 53) {
              k.setThreads(1);
              expect(sameBits(run(k, c, x, M, { path: "int8" }), scalar), `${type} on one thread`).toBe(true);
              k.setThreads(threads);
              // a row's bits do not depend on the rows beside it
              const tail = run(k, c, x.subarray(4 * K), M - 4, { path: "int8" });
              expect(sameBits(tail, fast.subarray(4 * N)), `${type} rows 4 … ${M - 1} alone`).toBe(true);
            }
          }
        }
      }
    } finally {
      k.setThreads(threads);
    }
  });

  it("adviseHugePages advises the 2 MiB-aligned interior of a buffer on Linux, and nothing of a small one", () => {
    const big = new Uint8Array(9 << 20);
    const advised = k.adviseHugePages(big);
    if (process.platform === "linux") {
      expect(advised % (2 << 20)).toBe(0);
      expect(advised).toBeGreaterThanOrEqual(6 << 20); // 9 MiB hold at least three aligned 2 MiB pages
    } else expect(advised).toBe(0);
    expect(k.adviseHugePages(new Uint8Array(4096))).toBe(0);
    expect(() => k.adviseHugePages(new Float32Array(4) as unknown as Uint8Array)).toThrow(/adviseHugePages: bytes must be a Uint8Array, got Float32Array/);
  });

  it("takes the type by ggml id as well as by name", () => {
    const c = makeCase("Q5_K", 5, 256, 8);
    const x = randomX(mulberry32(9), 256);
    const byId = new Float32Array(5);
    k.quantMatmul(13, c.blocks, x, byId, 1, 5, 256);
    expect(sameBits(byId, run(k, c, x, 1))).toBe(true);
  });

  it("names the argument and the expected size", () => {
    const x = new Float32Array(64);
    expect(() => k.quantMatmul("Q8_0", new Uint8Array(100), x, new Float32Array(2), 1, 2, 64)).toThrow(
      /quantMatmul: blocks has 100 values, expected at least rows×\(K\/32\)×34 bytes = 2×2×34 = 136/,
    );
    expect(() => k.quantMatmul("Q4_K", new Uint8Array(1000), x, new Float32Array(2), 1, 2, 64)).toThrow(
      /quantMatmul: K must be a multiple of Q4_K's block of 256 elements, got 64/,
    );
    expect(() => k.quantMatmul("Q1_0" as GgmlWeightType, new Uint8Array(80), x, new Float32Array(2), 1, 2, 64)).toThrow(/quantMatmul: type must be one of F32, .*IQ4_XS.*, got Q1_0/);
    expect(() => k.quantMatmul(16, new Uint8Array(80), x, new Float32Array(2), 1, 2, 64)).toThrow(/type must be one of .* got 16/);
    expect(() => k.quantMatmul("Q8_0", new Uint8Array(136), x, new Float32Array(1), 1, 2, 64)).toThrow(/out has 1 values, expected at least M×N = 1×2 = 2/);
    expect(() => k.quantMatmul("Q8_0", new Uint8Array(136), x, new Float32Array(2), 1, 2, 64, { path: "fast" as QuantPath })).toThrow(/path must be auto, dot, dequant, int8, got fast/);
    expect(() => k.dequantizeRows("Q6_K", new Uint8Array(200), new Float32Array(256), 1, 256)).toThrow(/dequantizeRows: blocks has 200 values, expected at least rows×\(K\/256\)×210 bytes = 1×1×210 = 210/);
  });
});

describe.skipIf(kernelsDisabled)("quantMatmulDotMany", () => {
  it("gives every operand the bits of its own dot-path quantMatmul, over mixed types (all three activation formats)", () => {
    const k = kernels();
    const K = 512; // a multiple of 32 and of 256: every type
    // Q/K/V-like (one big, two small) with the types a Q4_K_M file mixes, plus the plain and 32-element families
    const shapes: [GgmlWeightType, number][] = [["Q4_K", 129], ["Q6_K", 37], ["Q4_K", 37], ["Q8_0", 70], ["Q4_1", 33], ["F16", 19], ["BF16", 5], ["F32", 3]];
    const cases = shapes.map(([type, N], i) => makeCase(type, N, K, 1000 + i));
    const rand = mulberry32(77);
    for (const backend of [...new Set([k.gemmBackend(), "scalar" as GemmBackend])]) {
      for (const M of [1, 5, 17]) {
        const x = randomX(rand, M * K);
        const outs = cases.map((c) => new Float32Array(M * c.N).fill(Number.NaN));
        k.quantMatmulDotMany(cases.map((c, i) => ({ type: c.type, blocks: c.blocks, out: outs[i], N: c.N })), x, M, K, { backend });
        cases.forEach((c, i) => {
          const alone = run(k, c, x, M, { path: "dot", backend });
          expect(sameBits(outs[i], alone), `${c.type} N=${c.N} M=${M} ${backend}`).toBe(true);
        });
      }
    }
  });

  it("K = 0 writes zeros, as quantMatmul does (empty sums)", () => {
    const k = kernels();
    const outs = [new Float32Array(6).fill(7), new Float32Array(4).fill(7)];
    k.quantMatmulDotMany([{ type: "Q4_K", blocks: new Uint8Array(0), out: outs[0], N: 3 }, { type: "Q8_0", blocks: new Uint8Array(0), out: outs[1], N: 2 }], new Float32Array(0), 2, 0);
    expect(outs.map((o) => Array.from(o))).toEqual([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it("refuses, naming the operand, a wrong size, a K off the block, and outs that overlap", () => {
    const k = kernels();
    const c = makeCase("Q4_K", 8, 256, 5);
    const x = new Float32Array(2 * 256);
    const shared = new Float32Array(32);
    expect(() => k.quantMatmulDotMany([{ type: "Q4_K", blocks: c.blocks, out: new Float32Array(15), N: 8 }], x, 2, 256)).toThrow(/operands\[0\].*out/);
    expect(() => k.quantMatmulDotMany([{ type: "Q4_K", blocks: c.blocks.subarray(1), out: new Float32Array(16), N: 8 }], x, 2, 256)).toThrow(/operands\[0\].*blocks/);
    expect(() => k.quantMatmulDotMany([{ type: "Q4_K", blocks: c.blocks, out: new Float32Array(16), N: 8 }], new Float32Array(2 * 128), 2, 128)).toThrow(/multiple of Q4_K's block/);
    expect(() =>
      k.quantMatmulDotMany(
        [
          { type: "Q4_K", blocks: c.blocks, out: shared.subarray(0, 16), N: 8 },
          { type: "Q4_K", blocks: c.blocks, out: shared.subarray(8, 24), N: 8 },
        ],
        x, 2, 256,
      ),
    ).toThrow(/operands\[1\]\.out overlaps operands\[0\]\.out/);
  });
});

describe.skipIf(kernelsDisabled)("quantMatmul's dequant path for a few rows (a prefill's last-row logits)", () => {
  it("is f32 arithmetic on the decoded weights, not the 8-bit dot: within 1e-5 · Σ|w·x| of float64, every type, M = 1 … 5", () => {
    const k = kernels();
    for (const type of TYPES) {
      const K = kValues(type).at(-1)!;
      const c = makeCase(type, 37, K, 4242 + GGML_WEIGHT_TYPES[type].id);
      const rand = mulberry32(K + 11);
      for (const M of [1, 2, 4, 5]) {
        const x = randomX(rand, M * K);
        for (const backend of [...new Set([k.gemmBackend(), "scalar" as GemmBackend])]) {
          const out = run(k, c, x, M, { path: "dequant", backend });
          for (let m = 0; m < M; m++) {
            for (let n = 0; n < c.N; n++) {
              let exact = 0, magnitude = 0;
              for (let i = 0; i < K; i++) {
                exact += c.w[n * K + i] * x[m * K + i];
                magnitude += Math.abs(c.w[n * K + i] * x[m * K + i]);
              }
              expect(Math.abs(out[m * c.N + n] - exact), `${type} M=${M} m=${m} n=${n} ${backend}`).toBeLessThanOrEqual(1e-5 * magnitude + 1e-30);
            }
          }
        }
      }
    }
  });
});
