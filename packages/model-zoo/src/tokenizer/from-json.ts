import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chatTemplateFromConfig } from "./chat-template.js";
import { HfBackedTokenizer, type TokenizerJson } from "./hf-backed.js";
import type { Tokenizer } from "./types.js";

/** The fields of a transformers tokenizer_config.json that this module reads; the rest is ignored. */
export interface TokenizerConfigJson {
  /** A token string, or an AddedToken object `{ content }` as transformers writes it. */
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  chat_template?: string | { name: string; template: string }[] | null;
  clean_up_tokenization_spaces?: boolean;
  [key: string]: unknown;
}

/** Ids a model config (config.json, generation_config.json) gives for BOS and EOS; EOS may be a list. */
interface ModelConfigIds {
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read ${what}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function readSibling<T>(dir: string, name: string): T | undefined {
  const path = join(dir, name);
  return existsSync(path) ? (readJson(path, name) as T) : undefined;
}

function tokenText(value: TokenizerConfigJson["bos_token"], field: string, origin: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof value.content === "string") return value.content;
  throw new Error(`${origin}: tokenizer_config ${field} must be a string or {content}; found ${JSON.stringify(value)}`);
}

export interface JsonTokenizerExtras {
  /** config.json / generation_config.json ids, used where tokenizer_config names no BOS/EOS token. */
  modelConfigs?: ModelConfigIds[];
  /** Chat template from a separate file (transformers' chat_template.jinja), used where tokenizer_config has none. */
  chatTemplate?: string;
  /** File the tokenizer came from, for error messages. */
  origin?: string;
}

/**
 * A tokenizer from an already parsed tokenizer.json object and tokenizer_config.json fields. BOS/EOS come from
 * the config's `bos_token`/`eos_token` strings, else from `extras.modelConfigs` ids; every EOS id listed there
 * (generation_config's list form) also ends generation.
 */
export function tokenizerFromJsonObject(
  tokenizerJson: unknown,
  tokenizerConfig: TokenizerConfigJson = {},
  extras: JsonTokenizerExtras = {},
): Tokenizer {
  const origin = extras.origin ?? "tokenizer.json";
  const json = tokenizerJson as TokenizerJson;
  if (json === null || typeof json !== "object" || json.model === null || typeof json.model !== "object") {
    throw new Error(`${origin}: not a tokenizer.json (no "model" object)`);
  }
  if (typeof json.model.vocab !== "object" || json.model.vocab === null || Array.isArray(json.model.vocab)) {
    throw new Error(`${origin}: model.vocab must map token strings to ids (model type ${json.model.type})`);
  }

  const lookup = (text: string | null, field: string): number | null => {
    if (text === null) return null;
    const added = (json.added_tokens ?? []).find((t) => t.content === text);
    const id = added?.id ?? (Object.hasOwn(json.model.vocab, text) ? json.model.vocab[text] : undefined);
    if (id === undefined) {
      throw new Error(`${origin}: tokenizer_config ${field} ${JSON.stringify(text)} is not in the vocabulary`);
    }
    return id;
  };
  let bosId = lookup(tokenText(tokenizerConfig.bos_token, "bos_token", origin), "bos_token");
  let eosId = lookup(tokenText(tokenizerConfig.eos_token, "eos_token", origin), "eos_token");

  const endOfGenerationIds: number[] = [];
  for (const cfg of extras.modelConfigs ?? []) {
    const eos = cfg.eos_token_id;
    const eosList = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
    endOfGenerationIds.push(...eosList);
    if (eosId === null && eosList.length > 0) eosId = eosList[0];
    if (bosId === null && typeof cfg.bos_token_id === "number") bosId = cfg.bos_token_id;
  }

  return new HfBackedTokenizer({
    json,
    bosId,
    eosId,
    endOfGenerationIds,
    chatTemplate: chatTemplateFromConfig(tokenizerConfig.chat_template, origin) ?? extras.chatTemplate ?? null,
    // transformers 5 ignores the flag for BPE models (it deletes real spaces before punctuation: "x !== 3" →
    // "x!== 3"), and Llama 3.1's tokenizer_config sets it; decode then stays the inverse of encode.
    cleanUpTokenizationSpaces: (tokenizerConfig.clean_up_tokenization_spaces ?? false) && json.model.type !== "BPE",
    origin,
  });
}

/**
 * A tokenizer from a Hugging Face tokenizer.json file. `tokenizerConfig` gives the tokenizer_config.json fields;
 * when omitted, tokenizer_config.json beside the file is read if present. Beside files also used when present:
 * chat_template.jinja (template), generation_config.json and config.json (BOS/EOS ids where the tokenizer
 * config names none; generation_config's EOS list ends generation).
 */
export function tokenizerFromJson(tokenizerJsonPath: string, tokenizerConfig?: TokenizerConfigJson): Tokenizer {
  const dir = dirname(tokenizerJsonPath);
  const json = readJson(tokenizerJsonPath, "tokenizer.json");
  const config = tokenizerConfig ?? readSibling<TokenizerConfigJson>(dir, "tokenizer_config.json") ?? {};
  const modelConfigs = [
    readSibling<ModelConfigIds>(dir, "generation_config.json"),
    readSibling<ModelConfigIds>(dir, "config.json"),
  ].filter((c): c is ModelConfigIds => c !== undefined);
  const templatePath = join(dir, "chat_template.jinja");
  const chatTemplate = existsSync(templatePath) ? readFileSync(templatePath, "utf8") : undefined;
  return tokenizerFromJsonObject(json, config, { modelConfigs, chatTemplate, origin: tokenizerJsonPath });
}
