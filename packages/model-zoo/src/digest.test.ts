import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileDigest, modelDigest } from "./digest.js";

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

describe("model digests", () => {
  it("hash a file's bytes, and a checkpoint's weights, config and tokenizer by name", () => {
    const dir = mkdtempSync(join(tmpdir(), "digest-"));
    writeFileSync(join(dir, "m.gguf"), "weights");
    expect(fileDigest(join(dir, "m.gguf"))).toBe(sha("weights"));
    expect(modelDigest({ path: join(dir, "m.gguf"), format: "gguf" })).toBe(sha("weights"));

    const ckpt = join(dir, "ckpt");
    mkdirSync(ckpt);
    writeFileSync(join(ckpt, "model.safetensors"), "w");
    writeFileSync(join(ckpt, "config.json"), "{}");
    writeFileSync(join(ckpt, "README.md"), "not part of the model");
    const before = modelDigest({ path: ckpt, format: "safetensors" });
    expect(before).toBe(sha(`config.json\u0000${sha("{}")}\nmodel.safetensors\u0000${sha("w")}\n`));
    writeFileSync(join(ckpt, "README.md"), "edited");
    expect(modelDigest({ path: ckpt, format: "safetensors" })).toBe(before);
    writeFileSync(join(ckpt, "config.json"), '{"rope_theta": 500000}');
    expect(modelDigest({ path: ckpt, format: "safetensors" })).not.toBe(before);
  });

  it("take a hub blob's name as its digest, as the hub cache names LFS files by their SHA-256", () => {
    const dir = mkdtempSync(join(tmpdir(), "digest-hub-"));
    const name = "ab".repeat(32);
    mkdirSync(join(dir, "blobs"));
    mkdirSync(join(dir, "snapshots"));
    writeFileSync(join(dir, "blobs", name), "content whose hash is not read");
    symlinkSync(join(dir, "blobs", name), join(dir, "snapshots", "m.gguf"));
    expect(fileDigest(join(dir, "snapshots", "m.gguf"))).toBe(name);
  });
});
