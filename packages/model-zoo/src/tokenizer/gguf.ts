import { HfBackedTokenizer, type AddedTokenJson, type TokenizerJson } from "./hf-backed.js";
import { byteLevelProfile } from "./pretokenizers.js";
import type { Tokenizer } from "./types.js";

/** llama.cpp's `llama_token_type` values in `tokenizer.ggml.token_type`. */
const TOKEN_TYPE_UNKNOWN = 2;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;

/**
 * GGUF key → value, as readGgufHeader (formats/gguf.ts) or `gguf()` from @huggingface/gguf returns it: the same
 * values (`Record<string, unknown>` in effect), the long arrays read on first access in the former. Typed as
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
  if (model === "llama") return sentencePieceJson(md);
  if (model !== "gpt2") {
    throw new Error(
      `${md.origin}: unsupported tokenizer.ggml.model = "${model}" (supported: "gpt2", byte-level BPE; ` +
        `"llama", SentencePiece BPE)`,
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

  // llama.cpp adds no BOS to a byte-level vocabulary that does not ask for it.
  const postProcessor = bosEosPostProcessor(md, tokens, vocab, false);

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
 * The TemplateProcessing post-processor for `tokenizer.ggml.add_bos_token` / `add_eos_token`, as HF's Llama and
 * Gemma files write it (the second sequence's tokens carry type_id 1); null when neither is added.
 */
function bosEosPostProcessor(
  md: Metadata,
  tokens: string[],
  vocab: Record<string, number>,
  addBosDefault: boolean,
): unknown {
  const addBos = md.bool("tokenizer.ggml.add_bos_token", addBosDefault);
  const addEos = md.bool("tokenizer.ggml.add_eos_token", false);
  if (!addBos && !addEos) return null;
  const text = (flag: string, idKey: string) => {
    const id = md.int(idKey);
    if (id === undefined) throw new Error(`${md.origin}: ${flag} is true but ${idKey} is missing`);
    if (id >= tokens.length) throw new Error(`${md.origin}: ${idKey} = ${id} is outside the ${tokens.length} tokens`);
    return tokens[id];
  };
  const bos = addBos ? text("tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id") : null;
  const eos = addEos ? text("tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id") : null;
  const around = (typeId: number, seq: "A" | "B") => [
    ...(bos === null ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]),
    { Sequence: { id: seq, type_id: typeId } },
    ...(eos === null ? [] : [{ SpecialToken: { id: eos, type_id: typeId } }]),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const t of [bos, eos]) if (t !== null) specialTokens[t] = { id: t, ids: [vocab[t]], tokens: [t] };
  return { type: "TemplateProcessing", single: around(0, "A"), pair: [...around(0, "A"), ...around(1, "B")], special_tokens: specialTokens };
}

/**
 * Architectures whose SentencePiece merge order is the order of the tokens in the file, not their scores: Gemma's
 * scores do not follow its merges (transformers' GGUF loader makes the same choice for gemma, gemma2, gemma3).
 */
const MERGE_ORDER_BY_TOKEN_ID = /^gemma(2|3|3n)?$/;

/**
 * The tokenizer.json equivalent to a SentencePiece GGUF vocabulary (`tokenizer.ggml.model` = llama: Llama 2,
 * Mistral v0.1–0.3, Gemma 1–3, Phi-3), in the form Hugging Face's own files for those models take: BPE with byte
 * fallback over the `▁`-spelled pieces, spaces replaced by `▁` (and one prepended when
 * `tokenizer.ggml.add_space_prefix`, default true, as llama.cpp), no pre-tokenization.
 *
 * SentencePiece BPE, and llama.cpp's SPM tokenizer, merge the adjacent pair whose joined piece has the highest
 * score; tokenizer.json's ranked merges express the same rule once every pair that joins to a piece is listed in
 * the order of that piece's score (ties: by piece id, then by the two halves' ids, which is the order of the merges
 * in HF's converted files). UNKNOWN and CONTROL tokens become special added tokens, USER_DEFINED ones plain added
 * tokens; llama.cpp's converter writes the `▁` of user-defined whitespace pieces as spaces, undone here.
 */
function sentencePieceJson(md: Metadata): TokenizerJson {
  const tokens = [...md.array<string>("tokenizer.ggml.tokens", "string")];
  const types = md.array<number>("tokenizer.ggml.token_type", "number");
  if (types.length !== tokens.length) {
    throw new Error(
      `${md.origin}: tokenizer.ggml.token_type has ${types.length} entries but tokenizer.ggml.tokens has ${tokens.length}`,
    );
  }
  const arch = md.string("general.architecture", true) ?? "";
  const byTokenOrder = MERGE_ORDER_BY_TOKEN_ID.test(arch);
  let scores: number[] | null = null;
  if (!byTokenOrder) {
    scores = md.array<number>("tokenizer.ggml.scores", "number");
    if (scores.length !== tokens.length) {
      throw new Error(
        `${md.origin}: tokenizer.ggml.scores has ${scores.length} entries but tokenizer.ggml.tokens has ${tokens.length}`,
      );
    }
  }

  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const addedTokens: AddedTokenJson[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const type = types[id];
    if (type === TOKEN_TYPE_USER_DEFINED && /^ +$/.test(tokens[id])) tokens[id] = "\u2581".repeat(tokens[id].length);
    vocab[tokens[id]] = id;
    if (type === TOKEN_TYPE_CONTROL || type === TOKEN_TYPE_UNKNOWN || type === TOKEN_TYPE_USER_DEFINED) {
      const special = type !== TOKEN_TYPE_USER_DEFINED;
      addedTokens.push({ id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special });
    }
  }
  const rank = (id: number) => (scores === null ? -id : scores[id]);
  const userDefined = new Set<number>();
  types.forEach((type, id) => type === TOKEN_TYPE_USER_DEFINED && userDefined.add(id));
  const merges = sentencePieceMerges(vocab, rank, userDefined, byTokenOrder);

  const unkId = md.int("tokenizer.ggml.unknown_token_id") ?? types.indexOf(TOKEN_TYPE_UNKNOWN);
  const unkToken = unkId >= 0 && unkId < tokens.length ? tokens[unkId] : null;
  const addSpacePrefix = md.bool("tokenizer.ggml.add_space_prefix", true);
  const spaceToMeta = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
  const decoders: unknown[] = [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (addSpacePrefix) decoders.push({ type: "Strip", content: " ", start: 1, stop: 0 });

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: addSpacePrefix
      ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, spaceToMeta] }
      : spaceToMeta,
    // Gemma's own file splits on " " after the normalizer has replaced every space: a no-op, kept to match it.
    pre_tokenizer: addSpacePrefix
      ? null
      : { type: "Split", pattern: { String: " " }, behavior: "MergedWithPrevious", invert: false },
    // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
    post_processor: bosEosPostProcessor(md, tokens, vocab, true),
    decoder: { type: "Sequence", decoders },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unkToken,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/**
 * Every split of every vocabulary piece into two pieces that are also in the vocabulary, ordered by the joined
 * piece's rank (highest first), then by its id, then by the left and right halves' ids (Llama 2, Mistral) or
 * longest left half first (Gemma, whose file transformers wrote that way).
 *
 * User-defined pieces (Gemma's runs of spaces, tabs and newlines) come first: SentencePiece keeps them whole, with
 * a score above every learned piece (the GGUF's -1000 is the converter's placeholder, not that score), and HF's
 * converted files order their merges longest left half first, then longest right half, then by piece id.
 */
function sentencePieceMerges(
  vocab: Record<string, number>,
  rank: (id: number) => number,
  userDefined: ReadonlySet<number>,
  longerLeftFirst: boolean,
): [string, string][] {
  const left: string[] = [];
  const right: string[] = [];
  const joined: number[] = [];
  const leftId: number[] = [];
  const rightId: number[] = [];
  for (const piece in vocab) {
    const id = vocab[piece];
    // Split at code points: a half ending in a lone surrogate is never a piece.
    for (let k = 1; k < piece.length; k++) {
      const c = piece.charCodeAt(k);
      if (c >= 0xdc00 && c <= 0xdfff) continue;
      const l = piece.slice(0, k);
      const r = piece.slice(k);
      const lid = vocab[l];
      const rid = vocab[r];
      if (lid === undefined || rid === undefined) continue;
      left.push(l);
      right.push(r);
      joined.push(id);
      leftId.push(lid);
      rightId.push(rid);
    }
  }
  const order = Array.from({ length: left.length }, (_, i) => i);
  const score = joined.map(rank);
  const isUser = joined.map((id) => userDefined.has(id));
  order.sort((a, b) => {
    if (isUser[a] !== isUser[b]) return isUser[a] ? -1 : 1;
    if (isUser[a]) return left[b].length - left[a].length || right[b].length - right[a].length || joined[a] - joined[b];
    const byRank = score[b] - score[a] || joined[a] - joined[b];
    if (byRank !== 0 || !longerLeftFirst) return byRank || leftId[a] - leftId[b] || rightId[a] - rightId[b];
    return left[b].length - left[a].length || right[b].length - right[a].length;
  });
  return order.map((i) => [left[i], right[i]]);
}

/**
 * A tokenizer built from GGUF metadata (`GgufMetadata`): byte-level BPE from
 * `tokenizer.ggml.{model,pre,tokens,merges,token_type}`, BOS/EOS from `tokenizer.ggml.{bos,eos}_token_id`,
 * `add_bos_token`, and the chat template from `tokenizer.chat_template`.
 */
export function tokenizerFromGguf(metadata: GgufMetadata, opts: GgufTokenizerOptions = {}): Tokenizer {
  const json = ggufToTokenizerJson(metadata, opts);
  const md = new Metadata(metadata as Record<string, unknown>, opts.source ?? "GGUF metadata");
  const tokens = md.array<string>("tokenizer.ggml.tokens", "string");
  const inVocab = new Uint8Array(tokens.length);
  for (const id of Object.values(json.model.vocab)) inVocab[id] = 1;
  const shadowedIds: [number, string][] = [];
  tokens.forEach((token, id) => {
    if (inVocab[id] === 0) shadowedIds.push([id, token]);
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
