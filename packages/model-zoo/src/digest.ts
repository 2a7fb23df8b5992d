/**
 * The identity of a model's files, for result rows and the results store's keys (DESIGN §3, Determinism): a row
 * computed on one file must never be reused for another file under the same name.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readdirSync, readSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { LoadedModel } from "./load.js";

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Files of a safetensors checkpoint that change what the model computes or how text becomes ids. */
const CHECKPOINT_FILE = /(\.safetensors|^config\.json|^generation_config\.json|^tokenizer\.json|^tokenizer_config\.json)$/;

const memo = new Map<string, string>();

/**
 * Hex SHA-256 of one file. A Hugging Face hub cache stores an LFS file as `blobs/<sha256 of its content>`, so a
 * path that resolves there is named by its digest and is not read again; any other file is hashed (about 1 s per
 * GB), once per process.
 */
export function fileDigest(path: string): string {
  const real = realpathSync(path);
  const name = basename(real);
  if (SHA256_HEX.test(name) && basename(dirname(real)) === "blobs") return name;
  const stat = statSync(real);
  const memoKey = `${real}\u0000${stat.size}\u0000${stat.mtimeMs}`;
  const known = memo.get(memoKey);
  if (known) return known;
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 22);
  const fd = openSync(real, "r");
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const digest = hash.digest("hex");
  memo.set(memoKey, digest);
  return digest;
}

/**
 * Hex SHA-256 naming a model's content: of the .gguf file itself (weights, tokenizer and chat template are all
 * in it), or for a safetensors checkpoint of the list of (file name, file digest) of its weights, config and
 * tokenizer files, in name order.
 */
export function modelDigest(model: Pick<LoadedModel, "path" | "format">): string {
  if (model.format === "gguf") return fileDigest(model.path);
  const files = readdirSync(model.path).filter((f) => CHECKPOINT_FILE.test(f)).sort();
  const hash = createHash("sha256");
  for (const f of files) hash.update(`${f}\u0000${fileDigest(join(model.path, f))}\n`);
  return hash.digest("hex");
}
