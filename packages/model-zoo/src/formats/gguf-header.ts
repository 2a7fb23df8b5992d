/**
 * A synchronous reader of GGUF v2/v3 headers (ggml's docs/gguf.md), little-endian:
 *
 *   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count × (string key | u32 value type | value)
 *   tensor_count × (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
 *   padding to `general.alignment` (default 32) | tensor data
 *
 * A string is a u64 byte length and UTF-8 bytes; an array is a u32 element type, a u64 count and the elements.
 *
 * The file is read through a window of WINDOW_BYTES that moves forward as parsing advances, never as a whole: a
 * header is a few MB, the data behind it GBs. Metadata values come out as `gguf()` from @huggingface/gguf gives
 * them (so callers did not change when this reader replaced it): 64-bit integers as bigint, the other numbers as
 * number, BOOL as boolean, STRING as string, ARRAY as a JS array of those.
 *
 * Why not that library: its parse materialises every array, and a tokenizer's are large (SmolLM2: 49 152 token
 * strings, 48 900 merges), which cost about 29 MB of resident memory at open although only the tokenizer reads
 * them. Here an array longer than EAGER_ARRAY_MAX_LENGTH is only walked past during the header pass; it is decoded
 * from the file on the first read of its metadata property (an enumerable getter that replaces itself with the
 * array, so that later reads return the same array).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ModelFileError } from "./errors.js";

/** gguf.h `enum gguf_type`. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** Bytes of one element of each fixed-size value type, indexed by type (STRING and ARRAY vary). */
const FIXED_BYTES: readonly (number | undefined)[] = [1, 1, 2, 2, 4, 4, 4, 1, undefined, undefined, 8, 8, 8];

/** Arrays of at most this many elements are decoded during the header pass; longer ones on first read. */
export const EAGER_ARRAY_MAX_LENGTH = 1024;

/** The header's own fields, which gguf() puts in front of the metadata (callers skip exactly these names). */
export const HEADER_FIELDS: readonly string[] = ["version", "tensor_count", "kv_count"];

/** ggml.h GGUF_DEFAULT_ALIGNMENT. */
const DEFAULT_ALIGNMENT = 32;

/** ggml.h GGML_MAX_DIMS: gguf.cpp refuses tensor infos with more dimensions. */
const MAX_DIMS = 4;

/**
 * Longest string accepted: far above any key, name, token or chat template, so that a corrupt length fails here
 * rather than as an allocation of gigabytes (@huggingface/gguf refused strings over 10 MB).
 */
const MAX_STRING_BYTES = 1 << 24;

/** The read window: a header fits in a few of them, and the tensor data behind it is never read. */
const WINDOW_BYTES = 1 << 20;

/** One tensor info as stored. */
export interface StoredTensorInfo {
  readonly name: string;
  /** GGUF's ne[]: element counts, innermost dimension first. */
  readonly dims: readonly number[];
  /** ggml type id. */
  readonly type: number;
  /** Byte offset of the data relative to the start of the data section. */
  readonly offset: number;
}

/** Everything in front of the tensor data. */
export interface ParsedGgufHeader {
  readonly version: number;
  /**
   * Key → value in file order, preceded by the header's own `version` (number), `tensor_count` and `kv_count`
   * (bigint), as gguf() reports them. Arrays longer than EAGER_ARRAY_MAX_LENGTH are getters until first read.
   */
  readonly metadata: Record<string, unknown>;
  /** In file order. */
  readonly tensorInfos: readonly StoredTensorInfo[];
  /** `general.alignment`, or 32. */
  readonly alignment: number;
  /** Absolute offset just past the last tensor info (before the padding). */
  readonly tensorInfosEnd: number;
  /** Absolute offset of the data section: tensorInfosEnd rounded up to the alignment. */
  readonly dataOffset: number;
}

/**
 * Reads the header of the GGUF file at `path` (v2 or v3, little-endian) up to the data section, synchronously.
 *
 * Throws ModelFileError, naming the file, for: bad magic; a version other than 2 and 3 (v1 wrote 32-bit lengths) or
 * a big-endian file ("unparsable GGUF header: …"); a value type, array element type or nested array gguf.cpp does
 * not accept, a duplicate key, more than 4 dimensions, a number past 2^53, an alignment that is not a power of two
 * (the same, naming the key or tensor and the byte offset); a header that runs past the end of the file
 * ("truncated: …", naming what was being read and where it began).
 */
export function parseGgufHeader(path: string): ParsedGgufHeader {
  const fd = openSync(path, "r");
  try {
    const stats = fstatSync(fd);
    const cursor = new HeaderCursor(path, fd, stats.size);
    return parse(cursor, { path, size: stats.size, mtimeMs: stats.mtimeMs });
  } finally {
    closeSync(fd);
  }
}

/** The file as it was when the header was read: a lazy array is only decoded from the same file. */
interface FileIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

function parse(c: HeaderCursor, file: FileIdentity): ParsedGgufHeader {
  c.reading("the magic", 0);
  const magic = c.bytes(4);
  if (String.fromCharCode(...magic) !== "GGUF") c.unparsable(`bad magic ${[...magic].map((b) => b.toString(16).padStart(2, "0")).join(" ")}`);
  c.reading("the version", 4);
  const version = c.u32();
  // gguf.cpp tells byte orders apart this way: a version read in the wrong order has its low half zero
  if ((version & 0xffff) === 0 && version !== 0) c.unparsable("big-endian files are not supported");
  if (version !== 2 && version !== 3) {
    c.unparsable(`unsupported version ${version} (only versions 2 and 3 are read${version === 1 ? "; v1 wrote 32-bit lengths" : ""})`);
  }
  c.reading("the tensor count", 8);
  const tensorCount = c.u64();
  c.reading("the metadata count", 16);
  const kvCount = c.u64();

  const metadata: Record<string, unknown> = { version, tensor_count: tensorCount, kv_count: kvCount };
  // each entry takes at least 13 bytes and each tensor info 24, so a count past 2^53 ends in "truncated" anyway
  for (let i = 0; i < Number(kvCount); i++) {
    c.reading(`the key of metadata entry ${i + 1} of ${kvCount}`, c.position);
    const keyStart = c.position;
    const key = c.string();
    if (Object.hasOwn(metadata, key)) {
      const field = HEADER_FIELDS.includes(key) ? ", the name of a header field" : "";
      c.unparsable(`metadata key ${key} at byte ${keyStart} is defined twice${field}`);
    }
    c.reading(`metadata key ${key}`, keyStart);
    const typeAt = c.position;
    const type = c.u32();
    if (type === GgufValueType.ARRAY) readArray(c, file, metadata, key);
    else {
      checkValueType(c, type, `metadata key ${key} has value type`, typeAt);
      define(metadata, key, readScalar(c, type));
    }
  }

  const alignment = alignmentOf(c, metadata);
  const tensorInfos: StoredTensorInfo[] = [];
  for (let i = 0; i < Number(tensorCount); i++) {
    const start = c.position;
    c.reading(`the name of tensor info ${i + 1} of ${tensorCount}`, start);
    const name = c.string();
    c.reading(`tensor info ${name}`, start);
    const nDims = c.u32();
    if (nDims > MAX_DIMS) c.unparsable(`tensor ${name} (at byte ${start}) has ${nDims} dimensions, more than ggml's ${MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.safeNumber("a dimension"));
    const type = c.u32();
    const offset = c.safeNumber("a data offset");
    tensorInfos.push({ name, dims, type, offset });
  }
  const tensorInfosEnd = c.position;
  const dataOffset = Math.ceil(tensorInfosEnd / alignment) * alignment;
  return { version, metadata, tensorInfos, alignment, tensorInfosEnd, dataOffset };
}

function checkValueType(c: HeaderCursor, type: number, what: string, at: number): void {
  if (type >= FIXED_BYTES.length) {
    c.unparsable(`${what} ${type} at byte ${at}, which is not a GGUF value type (0–${FIXED_BYTES.length - 1})`);
  }
}

/** Defines a data property: a key named `__proto__` must not reach the prototype setter. */
function define(metadata: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
}

function readScalar(c: HeaderCursor, type: number): unknown {
  const start = c.position;
  skipElements(c, type, 1);
  return decodeElements(c.bytesAt(start, c.position - start), type, 1, c.path)[0];
}

/**
 * An ARRAY value: the element type, the count, then the elements. Short arrays are decoded now; a long one is
 * walked past (a string array's lengths are read, nothing else) and becomes a getter that decodes it on first read.
 */
function readArray(c: HeaderCursor, file: FileIdentity, metadata: Record<string, unknown>, key: string): void {
  const typeAt = c.position;
  const elementType = c.u32();
  checkValueType(c, elementType, `metadata key ${key} is an array of value type`, typeAt);
  if (elementType === GgufValueType.ARRAY) c.unparsable(`metadata key ${key} at byte ${typeAt} is an array of arrays, which gguf.cpp refuses`);
  const count = c.safeNumber("an array length");
  const start = c.position;
  skipElements(c, elementType, count);
  const byteLength = c.position - start;
  if (count <= EAGER_ARRAY_MAX_LENGTH) {
    define(metadata, key, decodeElements(c.bytesAt(start, byteLength), elementType, count, c.path));
    return;
  }
  Object.defineProperty(metadata, key, {
    enumerable: true,
    configurable: true,
    get() {
      const bytes = readRange(file, key, start, byteLength);
      const value = decodeElements(bytes, elementType, count, file.path);
      define(metadata, key, value);
      return value;
    },
  });
}

/** Moves the cursor past `count` elements of `type`, checking that they lie inside the file. */
function skipElements(c: HeaderCursor, type: number, count: number): void {
  if (type !== GgufValueType.STRING) c.skip(count * (FIXED_BYTES[type] as number)); // past 2^53 still past the end
  else for (let i = 0; i < count; i++) c.skip(c.stringLength());
}

/** How each fixed-size value type is read at a byte offset (little-endian), as gguf() returns it. */
const FIXED_READERS: readonly (((view: DataView, at: number) => unknown) | undefined)[] = [
  (v, at) => v.getUint8(at),
  (v, at) => v.getInt8(at),
  (v, at) => v.getUint16(at, true),
  (v, at) => v.getInt16(at, true),
  (v, at) => v.getUint32(at, true),
  (v, at) => v.getInt32(at, true),
  (v, at) => v.getFloat32(at, true),
  (v, at) => v.getUint8(at) !== 0,
  undefined, // STRING
  undefined, // ARRAY
  (v, at) => v.getBigUint64(at, true),
  (v, at) => v.getBigInt64(at, true),
  (v, at) => v.getFloat64(at, true),
];

/** `count` elements of `type` stored back to back in `bytes` (a string array's lengths included). */
function decodeElements(bytes: Uint8Array, type: number, count: number, path: string): unknown[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: unknown[] = new Array(count);
  if (type === GgufValueType.STRING) {
    let at = 0;
    for (let i = 0; i < count; i++) {
      const length = Number(view.getBigUint64(at, true));
      if (at + 8 + length > bytes.length) {
        throw new ModelFileError(path, `unparsable GGUF header: string ${i} of an array of ${count} runs past the array's ${bytes.length} bytes`);
      }
      out[i] = utf8.decode(bytes.subarray(at + 8, at + 8 + length));
      at += 8 + length;
    }
    return out;
  }
  const read = FIXED_READERS[type];
  const size = FIXED_BYTES[type];
  if (read === undefined || size === undefined) throw new Error(`no decoder for GGUF value type ${type}`); // unreachable: types are checked while walking
  for (let i = 0; i < count; i++) out[i] = read(view, i * size);
  return out;
}

// @huggingface/gguf decodes with a default TextDecoder too (invalid bytes → U+FFFD, a leading BOM dropped)
const utf8 = new TextDecoder();

/** A lazy array's bytes, from the file the header was read from (refused if it changed since). */
function readRange(file: FileIdentity, key: string, start: number, length: number): Uint8Array {
  const fd = openSync(file.path, "r");
  try {
    const stats = fstatSync(fd);
    if (stats.size !== file.size || stats.mtimeMs !== file.mtimeMs) {
      throw new ModelFileError(file.path, `metadata key ${key}: the file changed since its GGUF header was read`);
    }
    const bytes = new Uint8Array(length);
    readFully(fd, bytes, start, () => new ModelFileError(file.path, `metadata key ${key}: the file ended before byte ${start + length}`));
    return bytes;
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, into: Uint8Array, position: number, ended: () => Error): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw ended();
    done += n;
  }
}

function alignmentOf(c: HeaderCursor, metadata: Record<string, unknown>): number {
  const value = metadata["general.alignment"];
  if (value === undefined) return DEFAULT_ALIGNMENT;
  const alignment = typeof value === "bigint" ? Number(value) : value;
  // gguf.cpp: the alignment must be a non-zero power of two
  if (typeof alignment !== "number" || !(alignment >= 1) || !Number.isInteger(Math.log2(alignment))) {
    c.unparsable(`general.alignment ${String(value)} is not a power of two`);
  }
  return alignment;
}

/**
 * The read position in the file and a window of bytes around it. `reading` names the item being parsed and where
 * it began, for the truncation message.
 */
class HeaderCursor {
  position = 0;
  private buffer = new Uint8Array(WINDOW_BYTES);
  private view = new DataView(this.buffer.buffer);
  /** File offsets of buffer[0] and just past the last byte the buffer holds. */
  private start = 0;
  private end = 0;
  private item = "the header";
  private itemStart = 0;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly fileSize: number,
  ) {}

  reading(item: string, start: number): void {
    this.item = item;
    this.itemStart = start;
  }

  unparsable(problem: string): never {
    throw new ModelFileError(this.path, `unparsable GGUF header: ${problem}`);
  }

  private truncated(end: number): never {
    throw new ModelFileError(
      this.path,
      `truncated: the header needs bytes up to ${end} but the file has ${this.fileSize} (reading ${this.item}, from byte ${this.itemStart})`,
    );
  }

  skip(n: number): void {
    if (this.position + n > this.fileSize) this.truncated(this.position + n);
    this.position += n;
  }

  /** Index in the buffer of the n bytes at the position, made resident; advances past them. */
  private take(n: number): number {
    const at = this.position;
    this.skip(n);
    return this.windowIndex(at, n);
  }

  /** `n` bytes from file offset `at` (behind or at the position), valid until the window next moves. */
  bytesAt(at: number, n: number): Uint8Array {
    const index = this.windowIndex(at, n);
    return this.buffer.subarray(index, index + n);
  }

  /** The next n bytes, valid until the window next moves; advances past them. */
  bytes(n: number): Uint8Array {
    const index = this.take(n);
    return this.buffer.subarray(index, index + n);
  }

  private windowIndex(at: number, n: number): number {
    if (at < this.start || at + n > this.end) {
      if (n > this.buffer.length) {
        this.buffer = new Uint8Array(Math.max(n, 2 * this.buffer.length));
        this.view = new DataView(this.buffer.buffer);
      }
      const length = Math.min(this.buffer.length, this.fileSize - at);
      readFully(this.fd, this.buffer.subarray(0, length), at, () => this.truncated(at + length));
      this.start = at;
      this.end = at + length;
    }
    return at - this.start;
  }

  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  u64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }

  /** A u64 that must be exact as a number: a length, a dimension or an offset. */
  safeNumber(what: string): number {
    const at = this.position;
    const value = this.u64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.unparsable(`${what} ${value} at byte ${at} (in ${this.item}) is beyond 2^53`);
    return Number(value);
  }

  stringLength(): number {
    const at = this.position;
    const length = this.safeNumber("a string length");
    if (length > MAX_STRING_BYTES) this.unparsable(`a string length ${length} at byte ${at} (in ${this.item}) is over ${MAX_STRING_BYTES} bytes`);
    return length;
  }

  string(): string {
    return utf8.decode(this.bytes(this.stringLength()));
  }
}
