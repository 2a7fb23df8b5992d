import type { AddedTokenJson, TokenizerJson } from "./hf-backed.js";
import type { TokenizerConfigJson } from "./from-json.js";

/**
 * Test helper: the tokenizer part of the GGUF metadata that llama.cpp's convert_hf_to_gguf.py writes for a model
 * whose tokenizer files are these, so that GGUF-route tests run on real vocabularies without a GGUF file.
 *
 * - Byte-level BPE (no byte fallback): `_set_vocab_gpt2` — model gpt2, the given `pre`, merges as "left right",
 *   added tokens CONTROL when special or when they look special (`<|…|>`, `<unused…>`, `<mask>`), else USER_DEFINED.
 * - SentencePiece BPE (byte fallback): `_set_vocab_sentencepiece`, which reads tokenizer.model; that file is not
 *   shipped with tokenizer.json, so its scores are rebuilt the way SentencePiece BPE assigns them: a piece's score
 *   is minus the rank of the first merge that creates it (single characters below every merged piece), byte pieces
 *   0, added tokens -1000. Added tokens become CONTROL (special or special-looking) or USER_DEFINED with `▁` written
 *   as a space, as the converter does. Gemma writes `add_space_prefix = false`.
 */
export interface ConvertOptions {
  architecture: string;
  /** `tokenizer.ggml.pre` for a byte-level vocabulary (llama-bpe, qwen2, …); SentencePiece ones get "default". */
  pre?: string;
  /** Chat template when tokenizer_config.json has none. */
  chatTemplate?: string;
}

const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

/** convert_hf_to_gguf.py's `does_token_look_special`. */
function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<\uff5c") && token.endsWith("\uff5c>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

function tokenText(v: TokenizerConfigJson["bos_token"]): string | null {
  if (v === undefined || v === null) return null;
  return typeof v === "string" ? v : v.content;
}

export function ggufMetadataLikeConverter(
  json: TokenizerJson,
  config: TokenizerConfigJson,
  opts: ConvertOptions,
): Record<string, unknown> {
  const vocab = json.model.vocab;
  const added = new Map<number, AddedTokenJson>(json.added_tokens.map((t) => [t.id, t]));
  let size = 0;
  for (const id of Object.values(vocab)) size = Math.max(size, id + 1);
  for (const id of added.keys()) size = Math.max(size, id + 1);
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array<number>(size).fill(UNUSED);
  for (const [token, id] of Object.entries(vocab)) {
    tokens[id] = token;
    types[id] = NORMAL;
  }
  const spm = json.model.byte_fallback === true;
  for (const [id, t] of added) {
    const control = t.special === true || looksSpecial(t.content);
    tokens[id] = control || !spm ? t.content : t.content.replaceAll("\u2581", " ");
    types[id] = control ? CONTROL : USER_DEFINED;
  }

  const md: Record<string, unknown> = {
    "general.architecture": opts.architecture,
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": types,
  };
  const merges = (json.model.merges ?? []).map((m) => (Array.isArray(m) ? (m as string[]).join(" ") : (m as string)));
  if (spm) {
    const firstMerge = new Map<string, number>();
    merges.forEach((m, rank) => {
      const piece = m.replace(" ", "");
      if (!firstMerge.has(piece)) firstMerge.set(piece, rank);
    });
    const scores = tokens.map((token, id) => {
      if (types[id] !== NORMAL) return types[id] === UNUSED ? -10000 : -1000;
      if (/^<0x[0-9A-F]{2}>$/.test(token)) {
        types[id] = BYTE;
        return 0;
      }
      return -(firstMerge.get(token) ?? merges.length + id);
    });
    const unk = json.model.unk_token;
    if (typeof unk === "string" && vocab[unk] !== undefined && types[vocab[unk]] === NORMAL) types[vocab[unk]] = UNKNOWN;
    md["tokenizer.ggml.model"] = "llama";
    md["tokenizer.ggml.pre"] = "default";
    md["tokenizer.ggml.scores"] = scores;
    if (opts.architecture.startsWith("gemma")) md["tokenizer.ggml.add_space_prefix"] = false;
  } else {
    md["tokenizer.ggml.model"] = "gpt2";
    md["tokenizer.ggml.pre"] = opts.pre;
    md["tokenizer.ggml.merges"] = merges;
  }

  const idOf = (text: string | null) => (text === null ? undefined : (vocab[text] ?? json.added_tokens.find((t) => t.content === text)?.id));
  const bosId = idOf(tokenText(config.bos_token));
  const eosId = idOf(tokenText(config.eos_token));
  const unkId = idOf(tokenText(config.unk_token as TokenizerConfigJson["bos_token"]) ?? (json.model.unk_token as string | null) ?? null);
  if (unkId !== undefined) md["tokenizer.ggml.unknown_token_id"] = unkId;
  if (bosId !== undefined) md["tokenizer.ggml.bos_token_id"] = bosId;
  if (eosId !== undefined) md["tokenizer.ggml.eos_token_id"] = eosId;
  // gguf-py's SpecialVocab: tokenizer_config's add_bos_token, else whether the post-processor adds BOS.
  const bosText = tokenText(config.bos_token);
  const postAddsBos = bosText !== null && JSON.stringify(json.post_processor ?? null).includes(JSON.stringify(bosText));
  const addBos = typeof config.add_bos_token === "boolean" ? config.add_bos_token : postAddsBos;
  md["tokenizer.ggml.add_bos_token"] = addBos;
  md["tokenizer.ggml.add_eos_token"] = config.add_eos_token === true;
  const template = typeof config.chat_template === "string" ? config.chat_template : opts.chatTemplate;
  if (template !== undefined) md["tokenizer.chat_template"] = template;
  return md;
}
