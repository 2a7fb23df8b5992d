/**
 * The KV cache every policy shapes and every attention kernel reads (DESIGN §2–3).
 *
 * Layout. One `HeadCache` per (layer, KV head), stored layer-major in `KvCache.heads`
 * (index `layer * numKvHeads + kvHead`). A head holds `length` entries in slots `0 … length-1`:
 *   keys[slot * headDim + i], values[slot * headDim + i]   — keys are stored after RoPE, as HF stores them;
 *   positions[slot]                                         — the entry's position in the uncompressed sequence.
 * Heads are ragged: after compression each head may keep a different number of entries.
 * Slots are kept in increasing position order (policies select, they never reorder), which is what lets
 * recency-based policies and the decode-time eviction reason about "the most recent window" by slot.
 *
 * A head may also carry one compensation slot (k̂, v̂, n): the means of n dropped keys and values. Attention
 * gives it the logit q·k̂/√d + ln n, exactly the mass of n copies of (k̂, v̂) (RazorAttention, arXiv 2407.15891 §3.3).
 * It counts as one entry of the realized budget.
 *
 * Sliding-window layers (Mistral, Gemma 2/3 local layers; DESIGN §3). A layer with window W attends, from a query at
 * position p, to the positions (p − W, p] only (transformers' convention: `kv > q − W`). Its full cache is its window:
 * after every forward the model drops what no later query of the layer can attend (`trimToWindows`), so such a head
 * holds the last min(N, W) positions of an N-token sequence, and budgets count that, not N.
 */

/** Per layer, the sliding window W (the layer attends to positions (p − W, p]), or null for full attention. */
export type LayerWindows = readonly (number | null)[];

/** Means of the `count` (≥ 1) keys and values a policy dropped from one head. */
export interface CompensationSlot {
  readonly key: Float32Array;
  readonly value: Float32Array;
  readonly count: number;
}

export class HeadCache {
  readonly headDim: number;
  /** Number of live slots. */
  length = 0;
  positions: Int32Array;
  keys: Float32Array;
  values: Float32Array;
  compensation: CompensationSlot | null = null;

  constructor(headDim: number, capacity = 16) {
    if (!Number.isInteger(headDim) || headDim <= 0) throw new Error(`headDim must be a positive integer, got ${headDim}`);
    this.headDim = headDim;
    const cap = Math.max(1, capacity);
    this.positions = new Int32Array(cap);
    this.keys = new Float32Array(cap * headDim);
    this.values = new Float32Array(cap * headDim);
  }

  get capacity(): number {
    return this.positions.length;
  }

  /** Number of entries the head costs: live slots plus the compensation slot when present. */
  get entryCount(): number {
    return this.length + (this.compensation ? 1 : 0);
  }

  /**
   * Makes room for `capacity` slots. Growth past that is an eighth of the current capacity (at least 64 slots), not a
   * doubling: a decode step after a 2K prefill would otherwise double every head's arrays, and the KV cache is most of a
   * small model's resident memory (SmolLM2-135M at 2K: 94 MB of f32 keys and values). Still geometric, so appends stay
   * amortized O(1).
   */
  reserve(capacity: number): void {
    if (capacity <= this.capacity) return;
    const cap = Math.max(capacity, this.capacity + Math.max(64, this.capacity >> 3));
    const d = this.headDim;
    const positions = new Int32Array(cap);
    positions.set(this.positions.subarray(0, this.length));
    const keys = new Float32Array(cap * d);
    keys.set(this.keys.subarray(0, this.length * d));
    const values = new Float32Array(cap * d);
    values.set(this.values.subarray(0, this.length * d));
    this.positions = positions;
    this.keys = keys;
    this.values = values;
  }

  /** Append one entry; `position` must exceed every position already held. */
  append(position: number, key: ArrayLike<number>, value: ArrayLike<number>, offset = 0): void {
    if (this.length > 0 && position <= this.positions[this.length - 1]) {
      throw new Error(`HeadCache.append: position ${position} is not after the last held position ${this.positions[this.length - 1]}`);
    }
    this.reserve(this.length + 1);
    const d = this.headDim;
    const base = this.length * d;
    for (let i = 0; i < d; i++) {
      this.keys[base + i] = key[offset + i];
      this.values[base + i] = value[offset + i];
    }
    this.positions[this.length] = position;
    this.length++;
  }

  key(slot: number): Float32Array {
    return this.keys.subarray(slot * this.headDim, (slot + 1) * this.headDim);
  }

  value(slot: number): Float32Array {
    return this.values.subarray(slot * this.headDim, (slot + 1) * this.headDim);
  }

  /**
   * A new head holding only `slots` (strictly increasing slot indexes of this head). The compensation slot of
   * the result is `compensation` (default: none); use `foldDropped` to build it from what `slots` leaves out.
   */
  select(slots: ArrayLike<number>, compensation: CompensationSlot | null = null): HeadCache {
    const d = this.headDim;
    const out = new HeadCache(d, Math.max(1, slots.length));
    let previous = -1;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i];
      if (!Number.isInteger(s) || s <= previous || s >= this.length) {
        throw new Error(`HeadCache.select: slots must be strictly increasing integers in [0, ${this.length}); got ${s} after ${previous}`);
      }
      previous = s;
      out.positions[i] = this.positions[s];
      out.keys.set(this.keys.subarray(s * d, (s + 1) * d), i * d);
      out.values.set(this.values.subarray(s * d, (s + 1) * d), i * d);
    }
    out.length = slots.length;
    out.compensation = compensation;
    return out;
  }

  /**
   * The compensation slot for dropping every slot not in `kept` (strictly increasing): means of the dropped keys
   * and values, merged with any compensation slot this head already carries (a weighted mean, so folding twice
   * equals folding once). Null when nothing is dropped and there was no slot.
   */
  foldDropped(kept: ArrayLike<number>): CompensationSlot | null {
    const d = this.headDim;
    const key = new Float64Array(d);
    const value = new Float64Array(d);
    let count = 0;
    let k = 0;
    for (let s = 0; s < this.length; s++) {
      if (k < kept.length && kept[k] === s) {
        k++;
        continue;
      }
      for (let i = 0; i < d; i++) {
        key[i] += this.keys[s * d + i];
        value[i] += this.values[s * d + i];
      }
      count++;
    }
    if (this.compensation) {
      const c = this.compensation;
      for (let i = 0; i < d; i++) {
        key[i] += c.key[i] * c.count;
        value[i] += c.value[i] * c.count;
      }
      count += c.count;
    }
    if (count === 0) return null;
    const meanKey = new Float32Array(d);
    const meanValue = new Float32Array(d);
    for (let i = 0; i < d; i++) {
      meanKey[i] = key[i] / count;
      meanValue[i] = value[i] / count;
    }
    return { key: meanKey, value: meanValue, count };
  }

  /**
   * Drops, in place, every slot at a position below `position` (the oldest ones: slots are in position order), and
   * the compensation slot with them when any is dropped: the folded entries are older than the kept recent ones, so
   * once the window passes the head's oldest entries it has passed (some of) them too. Returns the slots dropped.
   */
  dropBefore(position: number): number {
    let drop = 0;
    while (drop < this.length && this.positions[drop] < position) drop++;
    if (drop === 0) return 0;
    const d = this.headDim;
    this.positions.copyWithin(0, drop, this.length);
    this.keys.copyWithin(0, drop * d, this.length * d);
    this.values.copyWithin(0, drop * d, this.length * d);
    this.length -= drop;
    this.compensation = null;
    return drop;
  }

  clone(): HeadCache {
    const out = new HeadCache(this.headDim, this.length);
    out.positions.set(this.positions.subarray(0, this.length));
    out.keys.set(this.keys.subarray(0, this.length * this.headDim));
    out.values.set(this.values.subarray(0, this.length * this.headDim));
    out.length = this.length;
    out.compensation = this.compensation; // immutable by contract: shared safely
    return out;
  }
}

export interface KvCacheShape {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Per layer, its sliding window or null; absent: every layer attends to the whole sequence. */
  readonly layerWindows?: LayerWindows;
}

export class KvCache implements KvCacheShape {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Per layer, its sliding window (positive) or null (full attention); always numLayers long. */
  readonly layerWindows: LayerWindows;
  /** True when some layer has a window: the arithmetic below counts per head only then (SmolLM2's stays N·heads). */
  private readonly windowed: boolean;
  /** Layer-major: `heads[layer * numKvHeads + kvHead]`. */
  readonly heads: HeadCache[];
  /**
   * Position the next appended token takes: the length of the uncompressed sequence so far. Compression never
   * changes it (DESIGN §3: kept tokens keep their positions, new tokens continue the original numbering).
   */
  nextPosition: number;

  constructor(shape: KvCacheShape, heads?: HeadCache[], nextPosition = 0) {
    this.numLayers = shape.numLayers;
    this.numKvHeads = shape.numKvHeads;
    this.headDim = shape.headDim;
    const n = shape.numLayers * shape.numKvHeads;
    if (heads && heads.length !== n) throw new Error(`KvCache: expected ${n} head caches, got ${heads.length}`);
    this.heads = heads ?? Array.from({ length: n }, () => new HeadCache(shape.headDim));
    for (const h of this.heads) {
      if (h.headDim !== shape.headDim) throw new Error(`KvCache: head of dim ${h.headDim} in a cache of dim ${shape.headDim}`);
    }
    const windows = shape.layerWindows ?? Array.from({ length: shape.numLayers }, () => null);
    if (windows.length !== shape.numLayers) throw new Error(`KvCache: ${windows.length} layer windows for ${shape.numLayers} layers`);
    windows.forEach((w, l) => {
      if (w !== null && !(Number.isInteger(w) && w > 0)) throw new Error(`KvCache: layer ${l}'s window must be a positive integer or null, got ${w}`);
    });
    this.layerWindows = windows;
    this.windowed = windows.some((w) => w !== null);
    this.nextPosition = nextPosition;
  }

  head(layer: number, kvHead: number): HeadCache {
    return this.heads[layer * this.numKvHeads + kvHead];
  }

  /** Layer `layer`'s sliding window, or null for full attention. */
  window(layer: number): number | null {
    return this.layerWindows[layer] ?? null;
  }

  /**
   * True when head `index` (of `heads`) is exactly what the model holds of a layer whose window is shorter than the
   * sequence so far: the last W positions, none missing, no compensation slot. Policies leave such a head alone: it
   * is at the model's own bound (DESIGN §3). A head a policy compressed before its window bound is not held: the
   * policy keeps managing it, and the model's trim only removes what fell out of the window.
   */
  heldByWindow(index: number): boolean {
    const w = this.layerWindows[Math.floor(index / this.numKvHeads)];
    if (w === null || w >= this.nextPosition) return false;
    const h = this.heads[index];
    // positions are increasing integers below nextPosition: w of them from nextPosition − w are all of them
    return h.length === w && h.compensation === null && h.positions[0] === this.nextPosition - w;
  }

  /** Entries held over all heads, compensation slots included (the numerator of the realized budget). */
  entryCount(): number {
    let n = 0;
    for (const h of this.heads) n += h.entryCount;
    return n;
  }

  /**
   * Entries an uncompressed cache of the same sequence would hold: Σ over heads of min(nextPosition, the window of
   * its layer) — what the model really holds, which is what budgets count.
   */
  fullEntryCount(): number {
    return fullEntriesOf(this.nextPosition, this);
  }

  /**
   * Drops from every head of a windowed layer the positions no later query can attend: a query at p ≥ nextPosition
   * sees (p − W, p], so positions below nextPosition − W are gone for good. The model calls this after every forward.
   * Returns the slots dropped per head (index as `heads`), or null when no layer has a window.
   */
  trimToWindows(): number[] | null {
    if (!this.windowed) return null;
    return this.heads.map((head, i) => {
      const w = this.layerWindows[Math.floor(i / this.numKvHeads)];
      return w === null ? 0 : head.dropBefore(this.nextPosition - w);
    });
  }

  /** Realized `kvBudget`: fraction of the full cache's entries held (DESIGN §3). */
  realizedBudget(): number {
    const full = this.fullEntryCount();
    return full === 0 ? 1 : this.entryCount() / full;
  }

  /** Bytes the held keys and values occupy at `bytesPerElement` (2 for fp16/bf16, 4 for f32), positions excluded. */
  kvBytes(bytesPerElement = 2): number {
    return this.entryCount() * 2 * this.headDim * bytesPerElement;
  }

  /** A new cache whose head (layer, kvHead) is `map(head, layer, kvHead)`. */
  mapHeads(map: (head: HeadCache, layer: number, kvHead: number) => HeadCache): KvCache {
    const heads = this.heads.map((h, i) => map(h, Math.floor(i / this.numKvHeads), i % this.numKvHeads));
    return new KvCache(this, heads, this.nextPosition);
  }

  clone(): KvCache {
    return this.mapHeads((h) => h.clone());
  }
}

/** The layers and windows of a cache, without its contents: what budget arithmetic needs before any prefill. */
export interface CacheLayout {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly layerWindows?: LayerWindows;
}

/**
 * Entries the uncompressed cache of a `length`-token sequence holds: Σ over heads of min(length, its layer's window).
 * Without windows exactly length · heads.
 */
export function fullEntriesOf(length: number, layout: CacheLayout): number {
  const heads = layout.numLayers * layout.numKvHeads;
  const windows = layout.layerWindows;
  if (!windows || windows.every((w) => w === null)) return length * heads;
  let n = 0;
  for (const w of windows) n += (w === null ? length : Math.min(length, w)) * layout.numKvHeads;
  return n;
}
