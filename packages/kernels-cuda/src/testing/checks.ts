/**
 * Agreement checks shared by the vitest suites and `scripts/gpu-binding-check.mjs` (which runs them where a GPU
 * exists but vitest may not):
 *   referenceChecks — the C++ CPU reference (through the binding) against core's TypeScript attendReference and
 *                     HeadCache.select + foldDropped, on random compressed caches; needs no GPU.
 *   gpuChecks       — the CUDA kernels (through the binding, DeviceLayer / DeviceBuffer) against the CPU reference.
 * Caches hold values that fp16 / bf16 represent exactly, so every side reads the same numbers and the error
 * measured is arithmetic only. Error per query head: ‖got − want‖ / ‖want‖; a head whose reference is all zeros
 * must match exactly.
 */
import { attendReference, HeadCache, KvCache, mulberry32, randomArray } from "@razorkv/core";
import { compactOnDevice, compactReference, uploadFullLayer, type FullLayer } from "../compact.js";
import { decodeAttention, decodeReference, DeviceLayer } from "../decode.js";
import { fromBits, packLayer, toBits, type KvDtype } from "../layout.js";

export interface CheckResult {
  readonly name: string;
  readonly maxRelError: number;
  readonly tolerance: number;
  readonly ok: boolean;
}

/** The tolerances for GPU against CPU: fp16 caches 1e-3, bf16 caches 1e-2. */
export function gpuTolerance(dtype: KvDtype): number {
  return dtype === "bf16" ? 1e-2 : 1e-3;
}

export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>, headDim: number): number {
  if (got.length !== want.length) return Infinity;
  let worst = 0;
  for (let base = 0; base < want.length; base += headDim) {
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < headDim; i++) {
      const g = got[base + i];
      const w = want[base + i];
      if (!Number.isFinite(g)) return NaN;
      diff += (g - w) * (g - w);
      norm += w * w;
    }
    worst = Math.max(worst, norm > 0 ? Math.sqrt(diff / norm) : diff > 0 ? Infinity : 0);
  }
  return worst;
}

function result(name: string, maxRel: number, tolerance: number): CheckResult {
  return { name, maxRelError: maxRel, tolerance, ok: maxRel <= tolerance };
}

/** Random values that `dtype` represents exactly. */
function exactValues(rand: () => number, n: number, dtype: KvDtype, scale = 1): Float32Array {
  return fromBits(toBits(randomArray(rand, n, scale), dtype), dtype);
}

type HeadPlan = "full" | "razor" | "random" | "empty" | "one";

/**
 * A cache of `length` tokens compressed per head the ways policies do: everything kept, sinks + window with the
 * dropped span folded into a compensation slot, a random subset (folded too), nothing kept (only the slot), one entry.
 */
export function randomCompressedCache(
  rand: () => number,
  shape: { numLayers: number; numKvHeads: number; headDim: number; length: number; dtype: KvDtype },
  plans: readonly HeadPlan[],
): KvCache {
  const { numLayers, numKvHeads, headDim, length, dtype } = shape;
  const full = new KvCache({ numLayers, numKvHeads, headDim });
  for (const head of full.heads) {
    const keys = exactValues(rand, length * headDim, dtype);
    const values = exactValues(rand, length * headDim, dtype);
    for (let t = 0; t < length; t++) head.append(t, keys, values, t * headDim);
  }
  full.nextPosition = length;
  return full.mapHeads((head: HeadCache, layer: number, kvHead: number) => {
    const plan = plans[(layer * numKvHeads + kvHead) % plans.length];
    let kept: number[];
    if (plan === "full") kept = Array.from({ length }, (_, s) => s);
    else if (plan === "razor") {
      const window = Math.max(1, Math.floor(length / 7));
      kept = Array.from({ length }, (_, s) => s).filter((s) => s < 4 || s >= length - window);
    } else if (plan === "random") kept = Array.from({ length }, (_, s) => s).filter(() => rand() < 0.3);
    else if (plan === "one") kept = [length - 1];
    else kept = [];
    return head.select(kept, plan === "full" ? null : head.foldDropped(kept));
  });
}

/** The C++ reference against core's attendReference and HeadCache surgery (no GPU needed). */
export function referenceChecks(seed = 7): CheckResult[] {
  const out: CheckResult[] = [];
  const rand = mulberry32(seed);
  for (const dtype of ["f16", "bf16"] as const) {
    for (const { headDim, numKvHeads, group, length } of [
      { headDim: 64, numKvHeads: 3, group: 3, length: 97 },
      { headDim: 128, numKvHeads: 4, group: 4, length: 301 },
      { headDim: 32, numKvHeads: 2, group: 1, length: 33 },
    ]) {
      const plans: HeadPlan[] = ["full", "razor", "random", "empty", "one", "razor"];
      const caches = [0, 1].map(() => randomCompressedCache(rand, { numLayers: 2, numKvHeads, headDim, length, dtype }, plans));
      const numHeads = numKvHeads * group;
      for (const masked of [false, true]) {
        const layer = 1;
        const queries = randomArray(rand, caches.length * numHeads * headDim, 2);
        const queryPositions = caches.map((c) => (masked ? Math.floor(c.nextPosition / 2) : c.nextPosition - 1));
        const want = new Float32Array(queries.length);
        caches.forEach((cache, b) => {
          const span = numHeads * headDim;
          attendReference({
            cache,
            layer,
            numHeads,
            queries: queries.subarray(b * span, (b + 1) * span),
            queryPositions: [queryPositions[b]],
            out: want.subarray(b * span, (b + 1) * span),
          });
        });
        const got = decodeReference(packLayer(caches, layer, dtype), queries, numHeads, { queryPositions });
        // both in double; the TypeScript reference rounds its running output to f32 at every step
        out.push(result(`decodeReference ≡ attendReference ${dtype} d${headDim} G${group} batch 2${masked ? " masked" : ""}`, maxRelError(got, want, headDim), 1e-5));
      }
    }
    // compaction against HeadCache.select + foldDropped
    const headDim = 64;
    const length = 123;
    const numKvHeads = 4;
    const full = randomCompressedCache(rand, { numLayers: 1, numKvHeads, headDim, length, dtype }, ["full"]);
    const kept = [
      Array.from({ length }, (_, s) => s).filter((s) => s < 4 || s >= 100),
      [],
      Array.from({ length }, (_, s) => s).filter(() => rand() < 0.5),
      Array.from({ length }, (_, s) => s),
    ];
    const fullLayer: FullLayer = {
      dtype,
      batch: 1,
      numKvHeads,
      headDim,
      fullLength: length,
      keys: toBits(Float32Array.from(full.heads.flatMap((h) => Array.from(h.keys.subarray(0, length * headDim)))), dtype),
      values: toBits(Float32Array.from(full.heads.flatMap((h) => Array.from(h.values.subarray(0, length * headDim)))), dtype),
    };
    const packed = compactReference(fullLayer, kept);
    const expected = packLayer(full.mapHeads((h, _l, kv) => h.select(kept[kv], h.foldDropped(kept[kv]))), 0, dtype);
    const exact =
      packed.keys.every((v, i) => v === expected.keys[i]) &&
      packed.values.every((v, i) => v === expected.values[i]) &&
      packed.positions.every((v, i) => v === expected.positions[i]) &&
      packed.compCounts.every((v, i) => v === expected.compCounts[i]) &&
      packed.headOffset.every((v, i) => v === expected.headOffset[i]);
    const compError = Math.max(maxRelError(packed.compKeys, expected.compKeys, headDim), maxRelError(packed.compValues, expected.compValues, headDim));
    out.push(result(`compactReference ≡ select + foldDropped ${dtype}`, exact ? compError : Infinity, 1e-6));
  }
  return out;
}

/** The CUDA kernels through the binding against the CPU reference (needs a GPU). */
export function gpuChecks(seed = 11): CheckResult[] {
  const out: CheckResult[] = [];
  const rand = mulberry32(seed);
  for (const dtype of ["f16", "bf16"] as const) {
    for (const { headDim, numKvHeads, group, length, batch } of [
      { headDim: 128, numKvHeads: 8, group: 4, length: 1031, batch: 1 },
      { headDim: 64, numKvHeads: 3, group: 3, length: 517, batch: 3 },
      { headDim: 128, numKvHeads: 2, group: 8, length: 77, batch: 2 },
    ]) {
      const plans: HeadPlan[] = ["full", "razor", "random", "empty", "one", "razor", "razor", "full"];
      const caches = Array.from({ length: batch }, () => randomCompressedCache(rand, { numLayers: 1, numKvHeads, headDim, length, dtype }, plans));
      const packed = packLayer(caches, 0, dtype);
      const numHeads = numKvHeads * group;
      const queries = randomArray(rand, batch * numHeads * headDim, 2);
      const device = DeviceLayer.upload(packed);
      try {
        const variants: [string, { queryPositions?: number[]; chunk?: number }][] = [
          ["", {}],
          [" masked chunk 32", { queryPositions: caches.map((c) => Math.floor((c.nextPosition * 2) / 3)), chunk: 32 }],
        ];
        for (const [label, options] of variants) {
          const want = decodeReference(packed, queries, numHeads, { queryPositions: options.queryPositions });
          const got = decodeAttention(device, queries, numHeads, options);
          out.push(result(`decodeAttention ${dtype} d${headDim} G${group} batch ${batch} N=${length}${label}`, maxRelError(got, want, headDim), gpuTolerance(dtype)));
        }
      } finally {
        device.free();
      }

      // compaction on the device, then the device-compacted layout against the reference compaction
      const pairs = batch * numKvHeads;
      const fullLayer: FullLayer = {
        dtype,
        batch,
        numKvHeads,
        headDim,
        fullLength: length,
        keys: toBits(randomArray(rand, pairs * length * headDim), dtype),
        values: toBits(randomArray(rand, pairs * length * headDim), dtype),
        positions: Int32Array.from({ length: pairs * length }, (_, i) => (i % length) * 2),
      };
      const kept = Array.from({ length: pairs }, (_, p) => {
        const all = Array.from({ length }, (_, s) => s);
        return p % 4 === 0 ? all : p % 4 === 1 ? [] : p % 4 === 2 ? all.filter((s) => s < 4 || s >= length - 50) : all.filter(() => rand() < 0.2);
      });
      const expected = compactReference(fullLayer, kept);
      const deviceFull = uploadFullLayer(fullLayer);
      const compacted = compactOnDevice(deviceFull, kept);
      try {
        const got = compacted.download();
        const exact =
          got.keys.every((v, i) => v === expected.keys[i]) &&
          got.values.every((v, i) => v === expected.values[i]) &&
          got.positions.every((v, i) => v === expected.positions[i]) &&
          got.compCounts.every((v, i) => v === expected.compCounts[i]);
        const compError = Math.max(maxRelError(got.compKeys, expected.compKeys, headDim), maxRelError(got.compValues, expected.compValues, headDim));
        out.push(result(`compactOnDevice ${dtype} d${headDim} pairs ${pairs} N=${length}`, exact ? compError : Infinity, 1e-5));
        const q = randomArray(rand, batch * numHeads * headDim, 2);
        out.push(
          result(
            `compactOnDevice + decodeAttention ${dtype} d${headDim}`,
            maxRelError(decodeAttention(compacted, q, numHeads), decodeReference(expected, q, numHeads), headDim),
            gpuTolerance(dtype),
          ),
        );
      } finally {
        compacted.free();
        deviceFull.keys.free();
        deviceFull.values.free();
        deviceFull.positions?.free();
      }
    }
  }
  return out;
}
