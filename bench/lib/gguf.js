// A GGUF header reader for the benchmarks: metadata and tensor table, and each tensor's bytes read from the file
// on demand. (model-zoo has the full reader with validation; the benchmark reads files llama.cpp just wrote or
// loaded, and keeps its own dependencies to the built kernels.)
//
// Layout (GGUF v2/v3, little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; metadata entries
// (string key, u32 value type, value); tensor infos (string name, u32 n_dims, u64 dims[n_dims] innermost first,
// u32 ggml type, u64 offset into the data section); the data section starts at the next multiple of
// general.alignment (default 32). Strings are u64 length + UTF-8 bytes.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

const SCALAR = {
  0: ["getUint8", 1], 1: ["getInt8", 1], 2: ["getUint16", 2], 3: ["getInt16", 2], 4: ["getUint32", 4], 5: ["getInt32", 4],
  6: ["getFloat32", 4], 7: ["getUint8", 1], 10: ["getBigUint64", 8], 11: ["getBigInt64", 8], 12: ["getFloat64", 8],
};

/**
 * Reads the header of the GGUF file at `path`: { version, metadata, tensors: Map(name → {type, dims, offset, bytes}),
 * dataOffset }. Metadata arrays of more than 1024 items are given as { skippedArray: true, length }.
 */
export function readGgufHeader(path) {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    // the header is metadata (a 128k-token vocabulary is a few MiB) plus the tensor table: read until it parses
    for (let length = Math.min(size, 1 << 20); ; length = Math.min(size, length * 4)) {
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, 0);
      try {
        return parse(buffer, path, size);
      } catch (error) {
        if (!(error instanceof RangeError) || length === size) throw new Error(`${path}: not a readable GGUF file (${error.message})`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

function parse(buffer, path, fileSize) {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), view.getUint32(at - 4, true));
  const u64 = () => ((at += 8), Number(view.getBigUint64(at - 8, true)));
  const str = () => {
    const n = u64();
    if (at + n > buffer.length) throw new RangeError("string past the buffer");
    at += n;
    return buffer.toString("utf8", at - n, at);
  };
  const skip = (type) => {
    if (type === 8) {
      const n = u64(); // read before adding: `at += u64()` would add to the old offset
      at += n;
    } else if (type === 9) {
      const itemType = u32();
      for (let i = 0, count = u64(); i < count; i++) skip(itemType);
    } else at += SCALAR[type]?.[1] ?? Infinity;
    if (at > buffer.length) throw new RangeError("value past the buffer");
  };
  const value = (type) => {
    if (type === 8) return str();
    if (type === 9) {
      const itemType = u32();
      const count = u64();
      // long arrays (a vocabulary's tokens, scores, merges) are skipped, not built: the benchmark needs none of them
      if (count > 1024) {
        for (let i = 0; i < count; i++) skip(itemType);
        return { skippedArray: true, length: count };
      }
      const items = new Array(count);
      for (let i = 0; i < count; i++) items[i] = value(itemType);
      return items;
    }
    const scalar = SCALAR[type];
    if (!scalar) throw new Error(`unknown metadata value type ${type}`);
    if (at + scalar[1] > buffer.length) throw new RangeError("value past the buffer");
    const v = view[scalar[0]](at, true);
    at += scalar[1];
    return type === 7 ? v !== 0 : typeof v === "bigint" ? Number(v) : v;
  };
  if (buffer.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${path}: not a GGUF file (magic ${JSON.stringify(buffer.toString("latin1", 0, 4))})`);
  at = 4;
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const metadata = {};
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    metadata[key] = value(u32());
  }
  const infos = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, u64);
    infos.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = metadata["general.alignment"] ?? 32;
  const dataOffset = Math.ceil(at / alignment) * alignment;
  const tensors = new Map();
  const sorted = [...infos].sort((a, b) => a.offset - b.offset);
  sorted.forEach((t, i) => {
    const end = i + 1 < sorted.length ? sorted[i + 1].offset : fileSize - dataOffset;
    tensors.set(t.name, { ...t, bytes: end - t.offset });
  });
  return { path, version, metadata, tensors, dataOffset };
}

/**
 * The bytes of tensor `name` (a fresh Uint8Array, read from the file), `bytes` long (its share of the data section).
 * `prepare(array)`, when given, sees the fresh array before the file is read into it (e.g. to advise huge pages).
 */
export function readTensorBytes(header, name, bytes, prepare) {
  const t = header.tensors.get(name);
  if (!t) throw new Error(`${header.path}: no tensor ${name}`);
  const out = new Uint8Array(bytes ?? t.bytes);
  prepare?.(out);
  const fd = openSync(header.path, "r");
  try {
    for (let done = 0; done < out.length; ) {
      const n = readSync(fd, out, done, Math.min(out.length - done, 1 << 30), header.dataOffset + t.offset + done);
      if (n <= 0) throw new Error(`${header.path}: tensor ${name} ends past the end of the file`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
