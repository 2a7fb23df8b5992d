/**
 * One entry point from a model reference to weights: resolve (resolve.ts), open by format, and hand over what the
 * tokenizer needs (GGUF metadata, or the checkpoint's tokenizer.json). Everything that can be checked without
 * decoding tensors is checked here, so a bad file fails before any compute.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ModelWeights } from "./model/types.js";
import { openGguf, type GgufModel } from "./formats/gguf.js";
import { openSafetensors, type SafetensorsModel } from "./formats/safetensors.js";
import { resolveModelRef, type ModelFormat, type ResolveOptions } from "./resolve.js";

export interface LoadedModel {
  /** The reference as given. */
  readonly ref: string;
  /** The .gguf file, or the checkpoint directory. */
  readonly path: string;
  readonly format: ModelFormat;
  readonly weights: ModelWeights;
  /** The same object as `weights` when the file is GGUF: raw quantized tensors, tensor infos, header. */
  readonly gguf?: GgufModel;
  /** The same object as `weights` for a safetensors checkpoint. */
  readonly safetensors?: SafetensorsModel;
  /** GGUF metadata as stored: `tokenizer.ggml.*`, `tokenizer.chat_template`, `general.*`, `<arch>.*`. */
  readonly ggufMetadata?: Readonly<Record<string, unknown>>;
  /** tokenizer.json next to a safetensors checkpoint, when there is one. */
  readonly tokenizerJsonPath?: string;
  /** tokenizer_config.json next to a safetensors checkpoint (chat template, special tokens), when there is one. */
  readonly tokenizerConfigPath?: string;
}

/** Resolves `ref` (alias, hf: reference or path) and opens the model it names. */
export async function openModel(ref: string, options: ResolveOptions = {}): Promise<LoadedModel> {
  const resolved = await resolveModelRef(ref, options);
  if (resolved.format === "gguf") {
    const gguf = await openGguf(resolved.path);
    return { ref, path: resolved.path, format: "gguf", weights: gguf, gguf, ggufMetadata: gguf.metadata };
  }
  const safetensors = await openSafetensors(resolved.path);
  const tokenizerJson = join(resolved.path, "tokenizer.json");
  const tokenizerConfig = join(resolved.path, "tokenizer_config.json");
  return {
    ref,
    path: resolved.path,
    format: "safetensors",
    weights: safetensors,
    safetensors,
    ...(existsSync(tokenizerJson) ? { tokenizerJsonPath: tokenizerJson } : {}),
    ...(existsSync(tokenizerConfig) ? { tokenizerConfigPath: tokenizerConfig } : {}),
  };
}
