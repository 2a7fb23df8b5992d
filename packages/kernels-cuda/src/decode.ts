/**
 * Decode attention over a packed ragged layer: one query token per sequence, every query head of a GQA group
 * reading its KV head's entries plus the compensation slot. `decodeReference` runs the CPU reference
 * (native/reference.cpp, double precision), `decodeAttention` the CUDA kernels (split-K, native/kernels.cu) on a
 * `DeviceLayer` whose buffers TypeScript owns.
 *
 * Shapes: queries [batch × numHeads × headDim] f32 (already rotated), out the same. Query head h of sequence b reads
 * pair b · numKvHeads + floor(h / (numHeads / numKvHeads)).
 */
import { cudaAddon, native, type DeviceBuffer } from "./native.js";
import { numPairs, totalEntries, validatePackedLayer, type KvDtype, type PackedLayer } from "./layout.js";

export interface DecodeOptions {
  /**
   * Per sequence, the query's position: entries at a larger position are hidden, as in attendReference. Default:
   * every entry is visible (a decode step's query is the newest token).
   */
  readonly queryPositions?: ArrayLike<number>;
  /** Softmax scale; 1/√headDim by default. */
  readonly scale?: number;
}

function groupOf(layer: { numKvHeads: number }, numHeads: number): number {
  if (!Number.isInteger(numHeads) || numHeads <= 0 || numHeads % layer.numKvHeads !== 0) {
    throw new Error(`decode: numHeads ${numHeads} is not a positive multiple of numKvHeads ${layer.numKvHeads}`);
  }
  return numHeads / layer.numKvHeads;
}

function checkQueries(layer: { batch: number; headDim: number }, queries: Float32Array, numHeads: number, options: DecodeOptions): void {
  const expected = layer.batch * numHeads * layer.headDim;
  if (queries.length !== expected) {
    throw new Error(`decode: queries has ${queries.length} values, expected batch ${layer.batch} × ${numHeads} heads × ${layer.headDim}`);
  }
  if (options.queryPositions && options.queryPositions.length !== layer.batch) {
    throw new Error(`decode: queryPositions has ${options.queryPositions.length} values, expected one per sequence (${layer.batch})`);
  }
}

/** CPU reference (double precision) of decode attention over `layer`. */
export function decodeReference(layer: PackedLayer, queries: Float32Array, numHeads: number, options: DecodeOptions = {}): Float32Array {
  validatePackedLayer(layer);
  const group = groupOf(layer, numHeads);
  checkQueries(layer, queries, numHeads, options);
  const out = new Float32Array(queries.length);
  native().decodeReference({
    dtype: layer.dtype,
    numPairs: numPairs(layer),
    numKvHeads: layer.numKvHeads,
    headDim: layer.headDim,
    totalEntries: totalEntries(layer),
    group,
    scale: options.scale ?? 0,
    headOffset: layer.headOffset,
    keys: layer.keys,
    values: layer.values,
    positions: layer.positions,
    compKeys: layer.compKeys,
    compValues: layer.compValues,
    compCounts: layer.compCounts,
    queries,
    queryPositions: options.queryPositions ? Int32Array.from(options.queryPositions) : undefined,
    out,
  });
  return out;
}

/** A packed layer in device memory. TypeScript owns the buffers: call `free()` when done (or leave it to the GC). */
export class DeviceLayer {
  readonly dtype: KvDtype;
  readonly batch: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Host copy of headOffset (the kernels read the device copy). */
  readonly headOffsetHost: Int32Array;
  readonly headOffset: DeviceBuffer;
  readonly keys: DeviceBuffer;
  readonly values: DeviceBuffer;
  readonly positions: DeviceBuffer;
  readonly compKeys: DeviceBuffer;
  readonly compValues: DeviceBuffer;
  readonly compCounts: DeviceBuffer;

  /** Allocates (uninitialized) device buffers for a layer with these pair offsets. */
  constructor(shape: { dtype: KvDtype; batch: number; numKvHeads: number; headDim: number }, headOffset: Int32Array) {
    const { DeviceBuffer } = cudaAddon();
    this.dtype = shape.dtype;
    this.batch = shape.batch;
    this.numKvHeads = shape.numKvHeads;
    this.headDim = shape.headDim;
    const pairs = numPairs(shape);
    if (headOffset.length !== pairs + 1) throw new Error(`DeviceLayer: headOffset has ${headOffset.length} values, expected ${pairs + 1}`);
    this.headOffsetHost = Int32Array.from(headOffset);
    const total = totalEntries({ headOffset: this.headOffsetHost });
    this.headOffset = new DeviceBuffer((pairs + 1) * 4).upload(this.headOffsetHost);
    this.keys = new DeviceBuffer(total * shape.headDim * 2);
    this.values = new DeviceBuffer(total * shape.headDim * 2);
    this.positions = new DeviceBuffer(total * 4);
    this.compKeys = new DeviceBuffer(pairs * shape.headDim * 4);
    this.compValues = new DeviceBuffer(pairs * shape.headDim * 4);
    this.compCounts = new DeviceBuffer(pairs * 4);
  }

  static upload(layer: PackedLayer): DeviceLayer {
    validatePackedLayer(layer);
    const d = new DeviceLayer(layer, layer.headOffset);
    d.keys.upload(layer.keys);
    d.values.upload(layer.values);
    d.positions.upload(layer.positions);
    d.compKeys.upload(layer.compKeys);
    d.compValues.upload(layer.compValues);
    d.compCounts.upload(layer.compCounts);
    return d;
  }

  get entryCount(): number {
    return totalEntries({ headOffset: this.headOffsetHost });
  }

  download(): PackedLayer {
    const pairs = numPairs(this);
    const total = this.entryCount;
    return {
      dtype: this.dtype,
      batch: this.batch,
      numKvHeads: this.numKvHeads,
      headDim: this.headDim,
      headOffset: Int32Array.from(this.headOffsetHost),
      keys: this.keys.download(new Uint16Array(total * this.headDim)),
      values: this.values.download(new Uint16Array(total * this.headDim)),
      positions: this.positions.download(new Int32Array(total)),
      compKeys: this.compKeys.download(new Float32Array(pairs * this.headDim)),
      compValues: this.compValues.download(new Float32Array(pairs * this.headDim)),
      compCounts: this.compCounts.download(new Int32Array(pairs)),
    };
  }

  free(): void {
    for (const b of [this.headOffset, this.keys, this.values, this.positions, this.compKeys, this.compValues, this.compCounts]) b.free();
  }
}

export interface DeviceDecodeArgs {
  readonly numHeads: number;
  /** [batch × numHeads × headDim] f32. */
  readonly queries: DeviceBuffer;
  /** [batch × numHeads × headDim] f32, written. */
  readonly out: DeviceBuffer;
  /** [batch] int32, see DecodeOptions.queryPositions. */
  readonly queryPositions?: DeviceBuffer;
  readonly scale?: number;
  /** Entries per split-K block; by default the kernel fills the GPU with one wave of equal blocks. */
  readonly chunk?: number;
  /** At least `decodeWorkspaceBytes(...)` bytes; allocated per call when absent. */
  readonly workspace?: DeviceBuffer;
}

function decodeFields(layer: DeviceLayer, numHeads: number): Record<string, unknown> {
  return {
    dtype: layer.dtype,
    numPairs: numPairs(layer),
    numKvHeads: layer.numKvHeads,
    headDim: layer.headDim,
    totalEntries: layer.entryCount,
    group: groupOf(layer, numHeads),
    headOffset: layer.headOffset,
    keys: layer.keys,
    values: layer.values,
    positions: layer.positions,
    compKeys: layer.compKeys,
    compValues: layer.compValues,
    compCounts: layer.compCounts,
  };
}

/** Workspace bytes `enqueueDecodeAttention` needs for this layer. */
export function decodeWorkspaceBytes(layer: DeviceLayer, numHeads: number, chunk = 0): number {
  return cudaAddon().decodeWorkspaceBytes({ ...decodeFields(layer, numHeads), chunk });
}

/** Queues decode attention on the default stream; results are in `args.out` once a download or synchronize returns. */
export function enqueueDecodeAttention(layer: DeviceLayer, args: DeviceDecodeArgs): void {
  cudaAddon().decode({
    ...decodeFields(layer, args.numHeads),
    queries: args.queries,
    out: args.out,
    queryPositions: args.queryPositions,
    scale: args.scale ?? 0,
    chunk: args.chunk ?? 0,
    workspace: args.workspace,
  });
}

/** Decode attention on the GPU for host queries: uploads them, runs the kernels, returns the output. */
export function decodeAttention(
  layer: DeviceLayer,
  queries: Float32Array,
  numHeads: number,
  options: DecodeOptions & { readonly chunk?: number } = {},
): Float32Array {
  checkQueries(layer, queries, numHeads, options);
  const { DeviceBuffer } = cudaAddon();
  const q = new DeviceBuffer(queries.byteLength).upload(queries);
  const out = new DeviceBuffer(queries.byteLength);
  const positions = options.queryPositions
    ? new DeviceBuffer(layer.batch * 4).upload(Int32Array.from(options.queryPositions))
    : undefined;
  try {
    enqueueDecodeAttention(layer, { numHeads, queries: q, out, queryPositions: positions, scale: options.scale, chunk: options.chunk });
    return out.download(new Float32Array(queries.length));
  } finally {
    q.free();
    out.free();
    positions?.free();
  }
}
