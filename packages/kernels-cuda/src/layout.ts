/**
 * The packed ragged layout the CUDA kernels read (native/razorkv_cuda.h), built from core's KvCache.
 *
 * One layer of a batch of sequences. A pair is one (sequence b, KV head h), index p = b · numKvHeads + h; its
 * entries are rows headOffset[p] … headOffset[p+1]−1 of keys / values ([totalEntries × headDim], fp16 or bf16 bits)
 * and positions, in increasing position (HeadCache's slot order). Pair p's compensation slot is
 * compKeys / compValues[p · headDim …] (f32) with compCounts[p] = n dropped entries (0 = none): logit
 * q·k̂/√d + ln n (DESIGN §3).
 */
import type { KvCache } from "@razorkv/core";
import { native } from "./native.js";

export type KvDtype = "f16" | "bf16";

export interface PackedLayer {
  readonly dtype: KvDtype;
  readonly batch: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** [batch · numKvHeads + 1] prefix sums of the pairs' entry counts. */
  readonly headOffset: Int32Array;
  /** [totalEntries × headDim] fp16 or bf16 bits. */
  readonly keys: Uint16Array;
  readonly values: Uint16Array;
  /** [totalEntries] original positions. */
  readonly positions: Int32Array;
  /** [pairs × headDim] means of the dropped keys / values; [pairs] their counts, 0 = no compensation slot. */
  readonly compKeys: Float32Array;
  readonly compValues: Float32Array;
  readonly compCounts: Int32Array;
}

export function numPairs(layer: Pick<PackedLayer, "batch" | "numKvHeads">): number {
  return layer.batch * layer.numKvHeads;
}

export function totalEntries(layer: Pick<PackedLayer, "headOffset">): number {
  return layer.headOffset[layer.headOffset.length - 1];
}

/** f32 values rounded to fp16 or bf16 (round to nearest even), as raw bits. */
export function toBits(values: Float32Array, dtype: KvDtype): Uint16Array {
  return native().toBits(values, dtype);
}

/** fp16 or bf16 bits widened to f32 (exact). */
export function fromBits(bits: Uint16Array, dtype: KvDtype): Float32Array {
  return native().fromBits(bits, dtype);
}

/**
 * Packs layer `layer` of one cache, or of a batch of caches (sequence b = caches[b]), rounding keys and values to
 * `dtype`. Compensation slots stay f32.
 */
export function packLayer(caches: KvCache | readonly KvCache[], layer: number, dtype: KvDtype): PackedLayer {
  const batch = Array.isArray(caches) ? (caches as readonly KvCache[]) : [caches as KvCache];
  if (batch.length === 0) throw new Error("packLayer: empty batch");
  const { numKvHeads, headDim } = batch[0];
  for (const [b, c] of batch.entries()) {
    if (c.numKvHeads !== numKvHeads || c.headDim !== headDim) {
      throw new Error(`packLayer: cache ${b} has ${c.numKvHeads} KV heads of dim ${c.headDim}, cache 0 has ${numKvHeads} of dim ${headDim}`);
    }
    if (layer < 0 || layer >= c.numLayers) throw new Error(`packLayer: layer ${layer} is outside cache ${b}'s ${c.numLayers} layers`);
  }
  const pairs = batch.length * numKvHeads;
  const headOffset = new Int32Array(pairs + 1);
  for (let p = 0; p < pairs; p++) {
    headOffset[p + 1] = headOffset[p] + batch[Math.floor(p / numKvHeads)].head(layer, p % numKvHeads).length;
  }
  const total = headOffset[pairs];
  const keys = new Float32Array(total * headDim);
  const values = new Float32Array(total * headDim);
  const positions = new Int32Array(total);
  const compKeys = new Float32Array(pairs * headDim);
  const compValues = new Float32Array(pairs * headDim);
  const compCounts = new Int32Array(pairs);
  for (let p = 0; p < pairs; p++) {
    const head = batch[Math.floor(p / numKvHeads)].head(layer, p % numKvHeads);
    const base = headOffset[p];
    keys.set(head.keys.subarray(0, head.length * headDim), base * headDim);
    values.set(head.values.subarray(0, head.length * headDim), base * headDim);
    positions.set(head.positions.subarray(0, head.length), base);
    if (head.compensation) {
      compKeys.set(head.compensation.key, p * headDim);
      compValues.set(head.compensation.value, p * headDim);
      compCounts[p] = head.compensation.count;
    }
  }
  return {
    dtype,
    batch: batch.length,
    numKvHeads,
    headDim,
    headOffset,
    keys: toBits(keys, dtype),
    values: toBits(values, dtype),
    positions,
    compKeys,
    compValues,
    compCounts,
  };
}

/** Checks the invariants the kernels rely on; throws naming the field, what was expected and what was found. */
export function validatePackedLayer(layer: PackedLayer): void {
  const pairs = numPairs(layer);
  const d = layer.headDim;
  if (layer.dtype !== "f16" && layer.dtype !== "bf16") throw new Error(`PackedLayer.dtype: expected "f16" or "bf16", got ${String(layer.dtype)}`);
  if (!Number.isInteger(d) || d <= 0 || d % 8 !== 0) throw new Error(`PackedLayer.headDim: expected a positive multiple of 8, got ${d}`);
  if (layer.headOffset.length !== pairs + 1) {
    throw new Error(`PackedLayer.headOffset: expected ${pairs + 1} values (batch ${layer.batch} × ${layer.numKvHeads} KV heads + 1), got ${layer.headOffset.length}`);
  }
  if (layer.headOffset[0] !== 0) throw new Error(`PackedLayer.headOffset[0]: expected 0, got ${layer.headOffset[0]}`);
  for (let p = 0; p < pairs; p++) {
    if (layer.headOffset[p + 1] < layer.headOffset[p]) throw new Error(`PackedLayer.headOffset: decreases at pair ${p}`);
  }
  const total = totalEntries(layer);
  const expect = (name: string, got: number, want: number) => {
    if (got !== want) throw new Error(`PackedLayer.${name}: expected ${want} values, got ${got}`);
  };
  expect("keys", layer.keys.length, total * d);
  expect("values", layer.values.length, total * d);
  expect("positions", layer.positions.length, total);
  expect("compKeys", layer.compKeys.length, pairs * d);
  expect("compValues", layer.compValues.length, pairs * d);
  expect("compCounts", layer.compCounts.length, pairs);
  for (let p = 0; p < pairs; p++) {
    if (layer.compCounts[p] < 0) throw new Error(`PackedLayer.compCounts[${p}]: expected ≥ 0, got ${layer.compCounts[p]}`);
    for (let e = layer.headOffset[p] + 1; e < layer.headOffset[p + 1]; e++) {
      if (layer.positions[e] <= layer.positions[e - 1]) {
        throw new Error(`PackedLayer.positions: pair ${p} is not in increasing position order at entry ${e}`);
      }
    }
  }
}
