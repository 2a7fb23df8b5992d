/**
 * Byte-level BPE pre-tokenizers by GGUF `tokenizer.ggml.pre` name, written as the tokenizer.json sections that the
 * original Hugging Face tokenizers carry (llama.cpp's converter derives the name from those same files). The regexes
 * are Oniguruma syntax, as in tokenizer.json; @huggingface/tokenizers translates them.
 */

/** GPT-2's split regex; the Rust `ByteLevel` pre-tokenizer applies it when `use_regex` is true. */
export const GPT2_SPLIT_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** Llama 3's split regex: case-insensitive contractions, letters with one leading non-letter, digits in threes. */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen2's split regex: Llama 3's with single digits. */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface ByteLevelProfile {
  /** tokenizer.json `normalizer`. */
  normalizer: unknown;
  /** tokenizer.json `pre_tokenizer`, given the GGUF's `tokenizer.ggml.add_space_prefix`. */
  preTokenizer(addPrefixSpace: boolean): unknown;
  /** tokenizer.json `decoder`. */
  decoder: unknown;
  /** BPE `ignore_merges`: a pre-token that is itself in the vocabulary is emitted whole (Llama 3). */
  ignoreMerges: boolean;
}

const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean, useRegex: boolean) => ({
  type: "ByteLevel",
  add_prefix_space: addPrefixSpace,
  trim_offsets: trimOffsets,
  use_regex: useRegex,
});

const isolate = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });

const GPT2: ByteLevelProfile = {
  normalizer: null,
  preTokenizer: (prefix) => byteLevel(prefix, true, true),
  decoder: byteLevel(true, true, true),
  ignoreMerges: false,
};

/** StarCoder's pre-tokenizer, which SmolLM and SmolLM2 inherit: every digit alone, then GPT-2's split. */
const STARCODER: ByteLevelProfile = {
  normalizer: null,
  preTokenizer: (prefix) => ({
    type: "Sequence",
    pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(prefix, true, true)],
  }),
  decoder: byteLevel(true, true, true),
  ignoreMerges: false,
};

const LLAMA3: ByteLevelProfile = {
  normalizer: null,
  preTokenizer: (prefix) => ({
    type: "Sequence",
    pretokenizers: [isolate(LLAMA3_SPLIT_REGEX), byteLevel(prefix, true, false)],
  }),
  decoder: byteLevel(true, true, true),
  ignoreMerges: true,
};

/** Qwen2's tokenizer.json NFC-normalizes before splitting. */
const QWEN2: ByteLevelProfile = {
  normalizer: { type: "NFC" },
  preTokenizer: (prefix) => ({
    type: "Sequence",
    pretokenizers: [isolate(QWEN2_SPLIT_REGEX), byteLevel(prefix, false, false)],
  }),
  decoder: byteLevel(false, false, false),
  ignoreMerges: false,
};

/** Names as llama.cpp's converter writes them; aliases share a profile. */
export const BYTE_LEVEL_PROFILES: Readonly<Record<string, ByteLevelProfile>> = {
  "gpt-2": GPT2,
  gpt2: GPT2,
  smollm: STARCODER,
  starcoder: STARCODER,
  refact: STARCODER,
  "llama-bpe": LLAMA3,
  llama3: LLAMA3,
  "llama-v3": LLAMA3,
  qwen2: QWEN2,
  "deepseek-r1-qwen": QWEN2,
};

export function byteLevelProfile(pre: string, origin: string): ByteLevelProfile {
  const profile = Object.hasOwn(BYTE_LEVEL_PROFILES, pre) ? BYTE_LEVEL_PROFILES[pre] : undefined;
  if (profile === undefined) {
    const known = Object.keys(BYTE_LEVEL_PROFILES).join(", ");
    throw new Error(`${origin}: unsupported pre-tokenizer tokenizer.ggml.pre = "${pre}" (supported: ${known})`);
  }
  return profile;
}
