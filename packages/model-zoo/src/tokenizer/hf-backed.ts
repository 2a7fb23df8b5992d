import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { ChatTemplate } from "./chat-template.js";
import type {
  ChatMessage,
  ChatTemplateOptions,
  DecodeOptions,
  EncodeOptions,
  EncodePartsOptions,
  TextPart,
  Tokenizer,
} from "./types.js";

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

/**
 * Where a tokenizer puts a space before a text: nowhere; before every section between added tokens (a `Prepend`
 * normalizer, as HF's Llama 2 and Mistral files have; Metaspace `prepend_scheme: "always"`; ByteLevel
 * `add_prefix_space`); or before the section at the start of the input only (Metaspace `prepend_scheme: "first"`).
 * The Rust and JavaScript `tokenizers` both normalize and pre-tokenize each section between added tokens alone.
 */
type PrefixScheme = "none" | "every-section" | "first-section";

type Component = { type?: string; [key: string]: unknown } | null;

/** The components of a tokenizer.json section, a `Sequence` flattened (`listKey`: normalizers / pretokenizers). */
function components(section: unknown, listKey: string): Component[] {
  if (section === null || typeof section !== "object") return [];
  const c = section as Component & object;
  if (c.type === "Sequence" && Array.isArray(c[listKey])) return (c[listKey] as unknown[]).flatMap((x) => components(x, listKey));
  return [c];
}

function prefixScheme(json: TokenizerJson): PrefixScheme {
  let scheme: PrefixScheme = "none";
  if (components(json.normalizer, "normalizers").some((c) => c?.type === "Prepend")) scheme = "every-section";
  for (const c of components(json.pre_tokenizer, "pretokenizers")) {
    if (c?.type === "ByteLevel" && c.add_prefix_space === true) scheme = "every-section";
    if (c?.type === "Metaspace") {
      // @huggingface/tokenizers reads prepend_scheme only, "always" when absent
      const metaspace = (c.prepend_scheme as string | undefined) ?? "always";
      if (metaspace === "always") scheme = "every-section";
      else if (metaspace === "first" && scheme === "none") scheme = "first-section";
    }
  }
  return scheme;
}

/** `json` with every prefix-space component switched off (see PrefixScheme); the caller's object is not modified. */
function withoutPrefixSpace(json: TokenizerJson): TokenizerJson {
  const normalizer = (section: unknown): unknown => {
    if (section === null || typeof section !== "object") return section;
    const c = section as { type?: string; normalizers?: unknown[] };
    if (c.type === "Prepend") return null;
    if (c.type === "Sequence" && Array.isArray(c.normalizers)) {
      return { ...c, normalizers: c.normalizers.map(normalizer).filter((x) => x !== null) };
    }
    return section;
  };
  const preTokenizer = (section: unknown): unknown => {
    if (section === null || typeof section !== "object") return section;
    const c = section as { type?: string; pretokenizers?: unknown[] };
    if (c.type === "Metaspace") return { ...c, prepend_scheme: "never", add_prefix_space: false };
    if (c.type === "ByteLevel") return { ...c, add_prefix_space: false };
    if (c.type === "Sequence" && Array.isArray(c.pretokenizers)) return { ...c, pretokenizers: c.pretokenizers.map(preTokenizer) };
    return section;
  };
  return { ...json, normalizer: normalizer(json.normalizer), pre_tokenizer: preTokenizer(json.pre_tokenizer) };
}

interface TrieNode {
  readonly next: Map<string, TrieNode>;
  token?: AddedTokenJson;
}

/**
 * Added tokens found in a text as @huggingface/tokenizers' DictionarySplitter finds them: scanning left to right,
 * the longest token that starts at the first position where any does (matched in UTF-16 code units).
 */
class AddedTokenMatcher {
  private readonly root: TrieNode = { next: new Map() };

  constructor(tokens: readonly AddedTokenJson[]) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      let node = this.root;
      for (const unit of t.content.split("")) {
        let child = node.next.get(unit);
        if (child === undefined) node.next.set(unit, (child = { next: new Map() }));
        node = child;
      }
      node.token = t;
    }
  }

  /** The first match at or after `from`, or null. */
  find(text: string, from = 0): { start: number; token: AddedTokenJson } | null {
    for (let i = from; i < text.length; i++) {
      let node = this.root.next.get(text[i]);
      let match: AddedTokenJson | undefined;
      for (let j = i + 1; node !== undefined; j++) {
        if (node.token !== undefined) match = node.token;
        node = j < text.length ? node.next.get(text[j]) : undefined;
      }
      if (match !== undefined) return { start: i, token: match };
    }
    return null;
  }
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
  /** Whether the tokenizer has special added tokens, which `core` parses and `textCore` must not. */
  private readonly hasSpecialTokens: boolean;
  private readonly endOfGeneration: ReadonlySet<number>;
  private readonly cleanUp: boolean;
  private readonly origin: string;
  private readonly specialTokenText: Readonly<Record<string, string>>;
  private chatTemplate: ChatTemplate | null = null;
  /** The adapted tokenizer.json `core` runs. */
  private readonly json: TokenizerJson;
  private readonly prefixScheme: PrefixScheme;
  /** Special added tokens (control tokens), as `core` finds them in a text; null when there are none. */
  private readonly specialMatcher: AddedTokenMatcher | null;
  /** Non-special added tokens (built on first use). */
  private plainMatcher: AddedTokenMatcher | null = null;
  /** `core` and `textCore` without their prefix space, for continuations (built on first use). */
  private readonly bareCores = new Map<"core" | "text", HfTokenizer>();

  constructor(spec: TokenizerSpec) {
    const json = adaptForJsTokenizers(spec.json);
    this.json = json;
    this.prefixScheme = prefixScheme(json);
    const specials = json.added_tokens.filter((t) => t.special);
    this.specialMatcher = specials.length === 0 ? null : new AddedTokenMatcher(specials);
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
    // (Built on first use, with a copy of the vocabulary: most texts hold no control-token string, see coreFor.)
    this.hasSpecialTokens = specials.length > 0;

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
    const parse = opts.parseSpecialTokens ?? true;
    if (opts.continuation === true) {
      if (opts.addSpecialTokens === true) {
        throw new Error(`${this.origin}: encode: a continuation gets no special tokens added; drop addSpecialTokens or continuation`);
      }
      return this.encodeParts([{ text, parseSpecialTokens: parse }], { continuation: true });
    }
    const core = parse ? this.core : this.coreFor(text);
    return core.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /**
   * One pass over the joined text: the control tokens of parsing parts are found here (as `core` would find them),
   * and each stretch of text between them, across part boundaries, is encoded whole with control-token strings kept
   * as characters. lstrip/rstrip of a control token trim the whitespace beside it, as the library does.
   */
  encodeParts(parts: readonly TextPart[], opts: EncodePartsOptions = {}): number[] {
    const sections: string[] = [""];
    const tokens: AddedTokenJson[] = []; // tokens[i] sits between sections[i] and sections[i + 1]
    for (const part of parts) {
      let at = 0;
      if (part.parseSpecialTokens && this.specialMatcher !== null) {
        for (let m = this.specialMatcher.find(part.text); m !== null; m = this.specialMatcher.find(part.text, at)) {
          sections[sections.length - 1] += part.text.slice(at, m.start);
          tokens.push(m.token);
          sections.push("");
          at = m.start + m.token.content.length;
        }
      }
      sections[sections.length - 1] += part.text.slice(at);
    }
    tokens.forEach((t, i) => {
      if (t.lstrip) sections[i] = sections[i].trimEnd();
      if (t.rstrip) sections[i + 1] = sections[i + 1].trimStart();
    });
    const ids: number[] = [];
    sections.forEach((section, i) => {
      if (i > 0) ids.push(tokens[i - 1].id);
      if (section.length === 0) return;
      // after a control token the section starts afresh under "every-section" and continues under "first-section"
      const continuation = i === 0 ? (opts.continuation ?? false) : this.prefixScheme === "first-section";
      ids.push(...this.encodeSection(section, continuation));
    });
    return ids;
  }

  /** Text that holds no control token to parse; `continuation`: it goes on from earlier text of the sequence. */
  private encodeSection(text: string, continuation: boolean): number[] {
    const core = this.coreFor(text);
    const plain = { add_special_tokens: false };
    if (!continuation || this.prefixScheme === "none") return core.encode(text, plain).ids;
    const bare = this.bareCore(core === this.core ? "core" : "text");
    if (this.prefixScheme === "first-section") return bare.encode(text, plain).ids;
    // Every section gets the prefix, so only the text up to the first added token the core splits at goes without.
    this.plainMatcher ??= new AddedTokenMatcher(this.json.added_tokens.filter((t) => !t.special));
    const m = this.plainMatcher.find(text);
    if (m === null) return bare.encode(text, plain).ids;
    const head = m.token.lstrip ? text.slice(0, m.start).trimEnd() : text.slice(0, m.start);
    return [...(head.length > 0 ? bare.encode(head, plain).ids : []), ...core.encode(text.slice(m.start), plain).ids];
  }

  /**
   * The instance that encodes `text` with control-token strings kept as characters: `core` itself when the text
   * holds none (the two differ only there), which spares building the second instance for most texts.
   */
  private coreFor(text: string): HfTokenizer {
    return this.specialMatcher !== null && this.specialMatcher.find(text) !== null ? this.unparsedCore() : this.core;
  }

  private bareCore(which: "core" | "text"): HfTokenizer {
    let bare = this.bareCores.get(which);
    if (bare === undefined) {
      const json = which === "core" ? this.json : this.textJson();
      bare = new HfTokenizer(withoutPrefixSpace(json), { clean_up_tokenization_spaces: this.cleanUp });
      this.bareCores.set(which, bare);
    }
    return bare;
  }

  private unparsedCore(): HfTokenizer {
    if (!this.hasSpecialTokens) return this.core;
    this.textCore ??= new HfTokenizer(this.textJson(), { clean_up_tokenization_spaces: this.cleanUp });
    return this.textCore;
  }

  /** The adapted tokenizer.json without the special added tokens, which stay in the vocabulary (see above). */
  private textJson(): TokenizerJson {
    const json = this.json;
    if (!this.hasSpecialTokens) return json;
    const vocab = { ...json.model.vocab };
    for (const t of json.added_tokens) if (t.special && !Object.hasOwn(vocab, t.content)) vocab[t.content] = t.id;
    return { ...json, added_tokens: json.added_tokens.filter((t) => !t.special), model: { ...json.model, vocab } };
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
