import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { ChatTemplate } from "./chat-template.js";
import type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";

/** An entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The parts of a Hugging Face tokenizer.json that this module reads or writes; the rest passes through. */
export interface TokenizerJson {
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type?: string; vocab: Record<string, number>; merges?: unknown[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** What a constructor has worked out besides the tokenizer.json itself. */
export interface TokenizerSpec {
  json: TokenizerJson;
  bosId: number | null;
  eosId: number | null;
  /** Ids besides `eosId` that end generation (end-of-turn tokens, generation_config's extra EOS ids). */
  endOfGenerationIds: Iterable<number>;
  chatTemplate: string | null;
  /**
   * Ids whose token string also belongs to a later id (a GGUF vocabulary may repeat a string; encode yields the
   * later id, as llama.cpp does). They are absent from `json.model.vocab` but must still decode.
   */
  shadowedIds?: Iterable<[number, string]>;
  /** transformers' `clean_up_tokenization_spaces` (" ." → "."); false keeps decode the exact inverse of encode. */
  cleanUpTokenizationSpaces: boolean;
  /** File or metadata the tokenizer came from, for error messages. */
  origin: string;
}

/**
 * Control tokens that end a chat model's turn, by their text. EOS alone is not enough: SmolLM2's EOS is
 * `<|im_end|>` but the base model it was tuned from stops with `<|endoftext|>`; Llama 3 Instruct ends turns with
 * `<|eot_id|>` while its EOS is `<|end_of_text|>`. Only tokens the tokenizer marks special are matched.
 */
const END_OF_TURN_TOKENS = new Set([
  "<|endoftext|>",
  "<|im_end|>",
  "<|eot_id|>",
  "<|eom_id|>",
  "<|end_of_text|>",
  "<|end|>",
  "<end_of_turn>",
  "<|end_of_turn|>",
  "<|return|>",
  "</s>",
]);

/**
 * Unicode digits, the way the Rust `Digits` pre-tokenizer sees them: it tests `char::is_numeric`, i.e. the general
 * categories Nd, Nl and No (`\p{N}`), while @huggingface/tokenizers' `Digits` uses JavaScript's ASCII-only `\d`.
 * `Split` on `\p{N}` with behavior Isolated (or `\p{N}+` for contiguous runs) is the exact equivalent, and the
 * library compiles it as a Unicode regex. Without this, " ٣" or " ²" encode differently from Python.
 */
function digitsAsSplit(individualDigits: boolean): unknown {
  return { type: "Split", pattern: { Regex: individualDigits ? "\\p{N}" : "\\p{N}+" }, behavior: "Isolated", invert: false };
}

function adaptPreTokenizer(config: unknown): unknown {
  if (config === null || typeof config !== "object") return config;
  const c = config as { type?: string; pretokenizers?: unknown[]; individual_digits?: boolean };
  if (c.type === "Digits") return digitsAsSplit(c.individual_digits ?? false);
  if (c.type === "Sequence" && Array.isArray(c.pretokenizers)) {
    return { ...c, pretokenizers: c.pretokenizers.map(adaptPreTokenizer) };
  }
  return config;
}

/**
 * A copy of `json` that @huggingface/tokenizers runs with the same results as the Rust implementation: components
 * whose JavaScript port diverges are replaced by exact equivalents, and absent optional sections become null
 * (the library's constructor requires the keys). The caller's object is not modified.
 */
export function adaptForJsTokenizers(json: TokenizerJson): TokenizerJson {
  return {
    ...json,
    added_tokens: json.added_tokens ?? [],
    normalizer: json.normalizer ?? null,
    pre_tokenizer: adaptPreTokenizer(json.pre_tokenizer ?? null),
    post_processor: json.post_processor ?? null,
    decoder: json.decoder ?? null,
  };
}

/** `Tokenizer` over @huggingface/tokenizers; both public constructors end here. */
export class HfBackedTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** The Jinja source of the chat template, or null when the model has none. */
  readonly chatTemplateSource: string | null;
  private readonly core: HfTokenizer;
  /** `core` without the special added tokens: encodes with parseSpecialTokens false (built on first use). */
  private textCore: HfTokenizer | null = null;
  /** The adapted tokenizer.json without special added tokens; null when it has none (then `core` serves). */
  private readonly textJson: TokenizerJson | null;
  private readonly endOfGeneration: ReadonlySet<number>;
  private readonly cleanUp: boolean;
  private readonly origin: string;
  private readonly specialTokenText: Readonly<Record<string, string>>;
  private chatTemplate: ChatTemplate | null = null;

  constructor(spec: TokenizerSpec) {
    const json = adaptForJsTokenizers(spec.json);
    this.origin = spec.origin;
    this.cleanUp = spec.cleanUpTokenizationSpaces;
    try {
      this.core = new HfTokenizer(json, { clean_up_tokenization_spaces: spec.cleanUpTokenizationSpaces });
    } catch (err) {
      throw new Error(`${spec.origin}: @huggingface/tokenizers rejected the tokenizer: ${(err as Error).message}`);
    }

    // Python tokenizers' `encode_special_tokens = True` skips special added tokens when it splits the text and
    // still splits out the others; the library has no such switch, so a second instance is built without them.
    // The special tokens stay in the model's vocabulary, where the post-processor (BOS) still finds their ids:
    // Llama 3's <|begin_of_text|> is in added_tokens only. No BPE merge produces them, so they never match text.
    const plainAdded = json.added_tokens.filter((t) => !t.special);
    if (plainAdded.length === json.added_tokens.length) {
      this.textJson = null;
    } else {
      const vocab = { ...json.model.vocab };
      for (const t of json.added_tokens) if (t.special && !Object.hasOwn(vocab, t.content)) vocab[t.content] = t.id;
      this.textJson = { ...json, added_tokens: plainAdded, model: { ...json.model, vocab } };
    }

    // The library's id → token table is built from the vocab object; give repeated strings their other ids.
    const shadowed = [...(spec.shadowedIds ?? [])];
    for (const [id, token] of shadowed) this.core.model!.vocab[id] = token;

    let maxId = -1;
    for (const id of Object.values(json.model.vocab)) maxId = Math.max(maxId, id);
    for (const t of json.added_tokens) maxId = Math.max(maxId, t.id);
    for (const [id] of shadowed) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    for (const [name, id] of [["BOS", spec.bosId], ["EOS", spec.eosId]] as const) {
      if (id !== null && !(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new Error(`${spec.origin}: ${name} id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;

    const eog = new Set<number>(spec.endOfGenerationIds);
    if (spec.eosId !== null) eog.add(spec.eosId);
    for (const t of json.added_tokens) if (t.special && END_OF_TURN_TOKENS.has(t.content)) eog.add(t.id);
    this.endOfGeneration = eog;

    const text: Record<string, string> = {};
    const bos = spec.bosId === null ? undefined : this.core.id_to_token(spec.bosId);
    const eos = spec.eosId === null ? undefined : this.core.id_to_token(spec.eosId);
    if (bos !== undefined) text.bos_token = bos;
    if (eos !== undefined) text.eos_token = eos;
    this.specialTokenText = text;
    this.chatTemplateSource = spec.chatTemplate;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const core = opts.parseSpecialTokens ?? true ? this.core : this.unparsedCore();
    return core.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  private unparsedCore(): HfTokenizer {
    if (this.textJson === null) return this.core;
    this.textCore ??= new HfTokenizer(this.textJson, { clean_up_tokenization_spaces: this.cleanUp });
    return this.textCore;
  }

  decode(ids: number[], opts: DecodeOptions = {}): string {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        const range = `[0, ${this.vocabSize})`;
        throw new Error(`${this.origin}: cannot decode id ${id} at index ${i}: outside the vocabulary ${range}`);
      }
    }
    if (ids.length === 0) return ""; // the library refuses an empty list
    return this.core.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUp,
    });
  }

  tokenId(token: string): number | undefined {
    return this.core.token_to_id(token);
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      if (this.chatTemplateSource === null) {
        throw new Error(
          `${this.origin}: no chat template (GGUF key tokenizer.chat_template, or chat_template in tokenizer_config.json)`,
        );
      }
      this.chatTemplate = new ChatTemplate(this.chatTemplateSource, this.specialTokenText, this.origin);
    }
    return this.chatTemplate.render(messages, opts);
  }

  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }
}
