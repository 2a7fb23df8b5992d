/**
 * Cache compaction: a full per-pair cache of one layer → the packed ragged layout, keeping the listed slots of every
 * pair and folding the others into its compensation slot (means of the dropped keys and values, their count n):
 * HeadCache.select + HeadCache.foldDropped of core, for a whole layer at once. `compactReference` is the CPU
 * reference, `compactOnDevice` the CUDA kernels, which never move the cache off the device.
 */
import { cudaAddon, native, type DeviceBuffer } from "./native.js";
import { numPairs, type KvDtype, type PackedLayer } from "./layout.js";
import { DeviceLayer } from "./decode.js";

/** One layer's full cache for a batch: pair p's slot s is row p · fullLength + s. */
export interface FullLayer {
  readonly dtype: KvDtype;
  readonly batch: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly fullLength: number;
  /** [pairs × fullLength × headDim] fp16 or bf16 bits. */
  readonly keys: Uint16Array;
  readonly values: Uint16Array;
  /** [pairs × fullLength]; by default the position of slot s is s. */
  readonly positions?: Int32Array;
}

/** The same, in device memory. */
export interface DeviceFullLayer extends Omit<FullLayer, "keys" | "values" | "positions"> {
  readonly keys: DeviceBuffer;
  readonly values: DeviceBuffer;
  readonly positions?: DeviceBuffer;
}

/** Per pair, the kept slots (strictly increasing, in [0, fullLength)) → offsets and one concatenated list. */
function keptLists(full: Omit<FullLayer, "keys" | "values" | "positions">, kept: readonly ArrayLike<number>[]): { offset: Int32Array; slots: Int32Array } {
  const pairs = numPairs(full);
  if (kept.length !== pairs) throw new Error(`compact: kept has ${kept.length} slot lists, expected one per pair (${pairs})`);
  const offset = new Int32Array(pairs + 1);
  for (let p = 0; p < pairs; p++) offset[p + 1] = offset[p] + kept[p].length;
  const slots = new Int32Array(offset[pairs]);
  for (let p = 0; p < pairs; p++) {
    let previous = -1;
    for (let i = 0; i < kept[p].length; i++) {
      const s = kept[p][i];
      if (!Number.isInteger(s) || s <= previous || s >= full.fullLength) {
        throw new Error(`compact: kept[${p}] must hold strictly increasing slots in [0, ${full.fullLength}); got ${s} after ${previous}`);
      }
      previous = s;
      slots[offset[p] + i] = s;
    }
  }
  return { offset, slots };
}

function checkFull(full: Omit<FullLayer, "keys" | "values" | "positions">, keys: number, positions: number | undefined): void {
  const rows = numPairs(full) * full.fullLength;
  if (keys !== rows * full.headDim) {
    throw new Error(`compact: full keys hold ${keys} values, expected ${numPairs(full)} pairs × ${full.fullLength} × ${full.headDim}`);
  }
  if (positions !== undefined && positions !== rows) throw new Error(`compact: full positions hold ${positions} values, expected ${rows}`);
}

/** CPU reference of compaction. */
export function compactReference(full: FullLayer, kept: readonly ArrayLike<number>[]): PackedLayer {
  checkFull(full, full.keys.length, full.positions?.length);
  const { offset, slots } = keptLists(full, kept);
  const pairs = numPairs(full);
  const total = slots.length;
  const out: PackedLayer = {
    dtype: full.dtype,
    batch: full.batch,
    numKvHeads: full.numKvHeads,
    headDim: full.headDim,
    headOffset: offset,
    keys: new Uint16Array(total * full.headDim),
    values: new Uint16Array(total * full.headDim),
    positions: new Int32Array(total),
    compKeys: new Float32Array(pairs * full.headDim),
    compValues: new Float32Array(pairs * full.headDim),
    compCounts: new Int32Array(pairs),
  };
  native().compactReference({
    dtype: full.dtype,
    numPairs: pairs,
    headDim: full.headDim,
    fullLength: full.fullLength,
    totalKept: total,
    fullKeys: full.keys,
    fullValues: full.values,
    fullPositions: full.positions,
    keptOffset: offset,
    keptSlots: slots,
    keys: out.keys,
    values: out.values,
    positions: out.positions,
    compKeys: out.compKeys,
    compValues: out.compValues,
    compCounts: out.compCounts,
  });
  return out;
}

/** Copies a host full layer to the device. */
export function uploadFullLayer(full: FullLayer): DeviceFullLayer {
  checkFull(full, full.keys.length, full.positions?.length);
  const { DeviceBuffer } = cudaAddon();
  return {
    dtype: full.dtype,
    batch: full.batch,
    numKvHeads: full.numKvHeads,
    headDim: full.headDim,
    fullLength: full.fullLength,
    keys: new DeviceBuffer(full.keys.byteLength).upload(full.keys),
    values: new DeviceBuffer(full.values.byteLength).upload(full.values),
    positions: full.positions ? new DeviceBuffer(full.positions.byteLength).upload(full.positions) : undefined,
  };
}

/** Compaction on the GPU: returns a new DeviceLayer (the caller frees it); the full layer is left as it was. */
export function compactOnDevice(full: DeviceFullLayer, kept: readonly ArrayLike<number>[]): DeviceLayer {
  checkFull(full, full.keys.byteLength / 2, full.positions ? full.positions.byteLength / 4 : undefined);
  if (full.headDim !== 64 && full.headDim !== 128) throw new Error(`compactOnDevice: headDim ${full.headDim} has no kernel (64 or 128)`);
  const { offset, slots } = keptLists(full, kept);
  const addon = cudaAddon();
  const out = new DeviceLayer(full, offset);
  const keptOffset = new addon.DeviceBuffer(offset.byteLength).upload(offset);
  const keptSlots = new addon.DeviceBuffer(Math.max(4, slots.byteLength));
  if (slots.length > 0) keptSlots.upload(slots);
  try {
    addon.compact({
      dtype: full.dtype,
      numPairs: numPairs(full),
      headDim: full.headDim,
      fullLength: full.fullLength,
      totalKept: slots.length,
      fullKeys: full.keys,
      fullValues: full.values,
      fullPositions: full.positions,
      keptOffset,
      keptSlots,
      keys: out.keys,
      values: out.values,
      positions: out.positions,
      compKeys: out.compKeys,
      compValues: out.compValues,
      compCounts: out.compCounts,
    });
    addon.synchronize();
  } catch (error) {
    out.free();
    throw error;
  } finally {
    keptOffset.free();
    keptSlots.free();
  }
  return out;
}
