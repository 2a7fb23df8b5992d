/**
 * A model ready to run: weights opened, the forward pass on the fastest available backend, and the tokenizer that
 * came with the file (GGUF metadata, or tokenizer.json beside a safetensors checkpoint).
 */
import { readFileSync } from "node:fs";
import { RazorkvError } from "@razorkv/core";
import { openModel, type LoadedModel } from "./load.js";
import { LlamaModel, type LlamaModelOptions } from "./model/llama.js";
import { typescriptBackend, type ComputeBackend } from "./model/backend.js";
import { tokenizerFromGguf, tokenizerFromJson, type Tokenizer } from "./tokenizer/index.js";
import type { ResolveOptions } from "./resolve.js";
import { kernelsUnavailableReason, loadKernels } from "@razorkv/kernels-cpu";

export interface LanguageModel {
  readonly ref: string;
  readonly loaded: LoadedModel;
  readonly model: LlamaModel;
  readonly tokenizer: Tokenizer;
}

export interface LoadOptions extends ResolveOptions {
  /** Compute backend; the native addon when it loads, else plain TypeScript. */
  readonly backend?: ComputeBackend;
  /** The model's options (LlamaModelOptions: prefill chunking, the prefill's products). */
  readonly model?: LlamaModelOptions;
}

export async function loadLanguageModel(ref: string, options: LoadOptions = {}): Promise<LanguageModel> {
  const loaded = await openModel(ref, options);
  const tokenizer = tokenizerFor(loaded);
  const model = new LlamaModel(loaded.weights, options.backend ?? (await defaultBackend()), options.model);
  return { ref, loaded, model, tokenizer };
}

function tokenizerFor(loaded: LoadedModel): Tokenizer {
  if (loaded.ggufMetadata) return tokenizerFromGguf(loaded.ggufMetadata, { source: loaded.path });
  if (loaded.tokenizerJsonPath) {
    const config = loaded.tokenizerConfigPath ? JSON.parse(readFileSync(loaded.tokenizerConfigPath, "utf8")) : undefined;
    return tokenizerFromJson(loaded.tokenizerJsonPath, config);
  }
  throw new RazorkvError(`${loaded.path}: no tokenizer: expected tokenizer.json beside the safetensors checkpoint`);
}

let chosenBackend: ComputeBackend | null = null;

/**
 * The backend every model uses unless told otherwise, resolved once per process: the native addon when it loads
 * (kernels-cpu), else the plain-TypeScript reference — said once on stderr, since it is 50–100× slower.
 */
export async function defaultBackend(): Promise<ComputeBackend> {
  if (!chosenBackend) {
    const native = loadKernels();
    if (native) chosenBackend = native;
    else {
      process.stderr.write(`razorkv: native CPU kernels unavailable (${kernelsUnavailableReason() ?? "unknown reason"}); using the TypeScript reference path\n`);
      chosenBackend = typescriptBackend;
    }
  }
  return chosenBackend;
}
