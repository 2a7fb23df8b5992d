import { HfBackedTokenizer, type AddedTokenJson, type TokenizerJson } from "./hf-backed.js";
import { byteLevelProfile } from "./pretokenizers.js";
import type { Tokenizer } from "./types.js";

/** llama.cpp's `llama_token_type` values in `tokenizer.ggml.token_type`. */
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;

/**
 * GGUF key → value, as `gguf()` from @huggingface/gguf returns it (`Record<string, unknown>` in effect). Typed as
 * `object` so that the library's precisely typed metadata passes without a cast; values are checked on read.
 */
export type GgufMetadata = object;

export interface GgufTokenizerOptions {
  /** The GGUF file's path or reference, named in error messages. */
  source?: string;
  /**
   * Pre-tokenizer name to use instead of `tokenizer.ggml.pre`, for files written before llama.cpp recorded it
   * (their tokenizer cannot be told from the metadata alone).
   */
  pre?: string;
}

/** Typed reads of GGUF metadata that name the key and the file when a value is missing or of the wrong type. */
class Metadata {
  constructor(
    private readonly kv: Record<string, unknown>,
    readonly origin: string,
  ) {}

  private fail(key: string, expected: string, found: unknown): never {
    const what = found === undefined ? "nothing" : Array.isArray(found) ? "an array" : `${typeof found} ${String(found)}`;
    throw new Error(`${this.origin}: metadata key ${key}: expected ${expected}, found ${what}`);
  }

  string(key: string): string;
  string(key: string, optional: true): string | undefined;
  string(key: string, optional = false): string | undefined {
    const v = this.kv[key];
    if (v === undefined && optional) return undefined;
    return typeof v === "string" ? v : this.fail(key, "a string", v);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.kv[key];
    if (v === undefined) return fallback;
    return typeof v === "boolean" ? v : this.fail(key, "a boolean", v);
  }

  /** GGUF integers arrive as number or, for 64-bit types, bigint. */
  int(key: string): number | undefined {
    const v = this.kv[key];
    if (v === undefined) return undefined;
    if (typeof v === "bigint" && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n) return Number(v);
    if (typeof v === "number" && Number.isInteger(v)) return v;
    return this.fail(key, "an integer", v);
  }

  array<T>(key: string, element: "string" | "number"): T[] {
    const v = this.kv[key];
    if (!Array.isArray(v)) return this.fail(key, `an array of ${element}s`, v);
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== element) this.fail(`${key}[${i}]`, `a ${element}`, v[i]);
    }
    return v as T[];
  }
}

/**
 * The Hugging Face tokenizer.json equivalent to a GGUF's byte-level BPE tokenizer (`tokenizer.ggml.model` = gpt2),
 * so that @huggingface/tokenizers does the BPE. For SmolLM2 the result matches the original tokenizer.json in
 * every section that affects ids (vocab, merges, added tokens, normalizer, pre-tokenizer, post-processor, decoder).
 * Control tokens (token_type 3) become special added tokens, user-defined ones (4) plain added tokens;
 * `add_bos_token`/`add_eos_token` become a TemplateProcessing post-processor, as in HF's Llama 3 files.
 */
export function ggufToTokenizerJson(metadata: GgufMetadata, opts: GgufTokenizerOptions = {}): TokenizerJson {
  const md = new Metadata(metadata as Record<string, unknown>, opts.source ?? "GGUF metadata");
  const model = md.string("tokenizer.ggml.model");
  if (model !== "gpt2") {
    throw new Error(
      `${md.origin}: unsupported tokenizer.ggml.model = "${model}" (only "gpt2", byte-level BPE, is supported)`,
    );
  }
  const pre = opts.pre ?? md.string("tokenizer.ggml.pre", true);
  if (pre === undefined) {
    throw new Error(
      `${md.origin}: metadata key tokenizer.ggml.pre is missing, so the pre-tokenizer is unknown; pass { pre } ` +
        `(e.g. "llama-bpe", "qwen2", "smollm") to name it`,
    );
  }
  const profile = byteLevelProfile(pre, md.origin);

  const tokens = md.array<string>("tokenizer.ggml.tokens", "string");
  const types = md.array<number>("tokenizer.ggml.token_type", "number");
  if (types.length !== tokens.length) {
    throw new Error(
      `${md.origin}: tokenizer.ggml.token_type has ${types.length} entries but tokenizer.ggml.tokens has ${tokens.length}`,
    );
  }
  const merges = md.array<string>("tokenizer.ggml.merges", "string");
  for (let i = 0; i < merges.length; i++) {
    // Byte-level tokens never hold a raw space (it is mapped to Ġ), so each merge is exactly "left right".
    const parts = merges[i].split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new Error(`${md.origin}: tokenizer.ggml.merges[${i}] = ${JSON.stringify(merges[i])} is not "left right"`);
    }
  }

  // A token string that repeats maps to its last id, as in llama.cpp's loader; tokenizer.json cannot express the
  // earlier ids, which tokenizerFromGguf still makes decodable.
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const addedTokens: AddedTokenJson[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const token = tokens[id];
    vocab[token] = id;
    const type = types[id];
    if (type === TOKEN_TYPE_CONTROL || type === TOKEN_TYPE_USER_DEFINED) {
      const special = type === TOKEN_TYPE_CONTROL;
      addedTokens.push({ id, content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
    }
  }

  const bosId = md.int("tokenizer.ggml.bos_token_id");
  const eosId = md.int("tokenizer.ggml.eos_token_id");
  const addBos = md.bool("tokenizer.ggml.add_bos_token", false);
  const addEos = md.bool("tokenizer.ggml.add_eos_token", false);
  const special = (key: string, id: number | undefined) => {
    const idKey = `tokenizer.ggml.${key.replace("add_", "")}_id`;
    if (id === undefined) throw new Error(`${md.origin}: tokenizer.ggml.${key} is true but ${idKey} is missing`);
    if (id >= tokens.length) throw new Error(`${md.origin}: ${idKey} = ${id} is outside the ${tokens.length} tokens`);
    return { id: tokens[id], type_id: 0 };
  };
  let postProcessor: unknown = null;
  if (addBos || addEos) {
    const bos = addBos ? [{ SpecialToken: special("add_bos_token", bosId) }] : [];
    const eos = addEos ? [{ SpecialToken: special("add_eos_token", eosId) }] : [];
    const specialTokens: Record<string, unknown> = {};
    for (const t of [...bos, ...eos]) {
      const text = t.SpecialToken.id;
      specialTokens[text] = { id: text, ids: [vocab[text]], tokens: [text] };
    }
    postProcessor = {
      type: "TemplateProcessing",
      single: [...bos, { Sequence: { id: "A", type_id: 0 } }, ...eos],
      pair: [...bos, { Sequence: { id: "A", type_id: 0 } }, ...eos, ...bos, { Sequence: { id: "B", type_id: 1 } }, ...eos],
      special_tokens: specialTokens,
    };
  }

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: profile.normalizer,
    pre_tokenizer: profile.preTokenizer(md.bool("tokenizer.ggml.add_space_prefix", false)),
    post_processor: postProcessor,
    decoder: profile.decoder,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: profile.ignoreMerges,
      vocab,
      merges,
    },
  };
}

/**
 * A tokenizer built from GGUF metadata (as `gguf()` from @huggingface/gguf returns it): byte-level BPE from
 * `tokenizer.ggml.{model,pre,tokens,merges,token_type}`, BOS/EOS from `tokenizer.ggml.{bos,eos}_token_id`,
 * `add_bos_token`, and the chat template from `tokenizer.chat_template`.
 */
export function tokenizerFromGguf(metadata: GgufMetadata, opts: GgufTokenizerOptions = {}): Tokenizer {
  const json = ggufToTokenizerJson(metadata, opts);
  const md = new Metadata(metadata as Record<string, unknown>, opts.source ?? "GGUF metadata");
  const shadowedIds: [number, string][] = [];
  md.array<string>("tokenizer.ggml.tokens", "string").forEach((token, id) => {
    if (json.model.vocab[token] !== id) shadowedIds.push([id, token]);
  });
  const endOfGenerationIds: number[] = [];
  for (const key of ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]) {
    const id = md.int(key);
    if (id !== undefined) endOfGenerationIds.push(id);
  }
  return new HfBackedTokenizer({
    json,
    bosId: md.int("tokenizer.ggml.bos_token_id") ?? null,
    eosId: md.int("tokenizer.ggml.eos_token_id") ?? null,
    endOfGenerationIds,
    shadowedIds,
    chatTemplate: md.string("tokenizer.chat_template", true) ?? null,
    // llama.cpp's detokenizer does not clean up spaces, nor does HF tokenizers' decode.
    cleanUpTokenizationSpaces: false,
    origin: md.origin,
  });
}
