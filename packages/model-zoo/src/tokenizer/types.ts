/** One turn of a conversation, as chat templates receive it (`messages[i].role`, `messages[i].content`). */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /**
   * Add what the tokenizer's post-processor adds (BOS for Llama 3, nothing for SmolLM2). Default true, as in
   * Hugging Face `tokenizers`.
   */
  addSpecialTokens?: boolean;
  /**
   * Recognize the text of special (control) tokens inside `text`: `<|im_end|>` becomes its one id. Default true,
   * as Hugging Face `tokenizers` does; right for a rendered chat template. False treats that text as ordinary
   * characters (byte-level BPE pieces `<|`, `im`, `_`, …), exactly like Python `tokenizers` with
   * `tokenizer.encode_special_tokens = True`: right for documents, questions and any text not written by the harness,
   * which may contain such strings but must never end a turn. Added tokens that are not special are still split
   * out either way, as in Python.
   */
  parseSpecialTokens?: boolean;
  /**
   * `text` continues text already encoded in the same sequence, so no prefix space is put before it: SentencePiece
   * tokenizers that prepend "▁" to a text (Llama 2, Mistral v0.1–0.3 and Phi-3 files: a `Prepend` normalizer or a
   * `Metaspace` pre-tokenizer; GGUF `tokenizer.ggml.add_space_prefix`) would otherwise add one more token than the
   * same text gets inside the joined string. Hugging Face's equivalent is Metaspace `prepend_scheme: "first"` for
   * every section but the first (transformers' `add_prefix_space=False`); llama.cpp adds the prefix only before the
   * first fragment. Text after a control token inside `text` still gets what the tokenizer gives it there. Implies
   * `addSpecialTokens: false` unless that is given. Default false; no effect on byte-level BPE without
   * `add_prefix_space` (SmolLM2, Llama 3, Qwen) or on Gemma, which prepends nothing.
   */
  continuation?: boolean;
}

/** One part of a text encoded in one pass with its neighbours (`Tokenizer.encodeParts`). */
export interface TextPart {
  readonly text: string;
  /**
   * Recognize control-token strings inside this part (a rendered chat template), or keep them as characters
   * (documents, questions: see `EncodeOptions.parseSpecialTokens`).
   */
  readonly parseSpecialTokens: boolean;
}

export interface EncodePartsOptions {
  /** The parts continue text already encoded in the same sequence (see `EncodeOptions.continuation`). Default false. */
  continuation?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens (`<|im_end|>`, …) from the output. Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the header that opens the assistant's turn (`<|im_start|>assistant\n` for SmolLM2). Default false. */
  addGenerationPrompt?: boolean;
  /**
   * Further template variables, as transformers' `apply_chat_template(**kwargs)` passes them: `enable_thinking`
   * (Qwen3), `date_string` (Llama 3.1/3.2; without it Llama 3.2 asks `strftime_now` for today), `tools`, … They
   * cannot override `messages`, `add_generation_prompt` or the special-token strings.
   */
  variables?: Readonly<Record<string, unknown>>;
}

/**
 * Text ↔ token ids for one model, plus its chat template. Both constructors (`tokenizerFromJson`,
 * `tokenizerFromGguf`) give the same ids as Hugging Face `tokenizers` on the model's original tokenizer.json,
 * with either setting of `EncodeOptions.parseSpecialTokens`.
 */
export interface Tokenizer {
  /** Token ids of `text`; control-token strings in it are parsed unless `parseSpecialTokens` is false. */
  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * Token ids of the parts' texts joined, as one `encode` of the joined string (no special tokens added) gives them,
   * except that control-token strings are recognized only inside parts that say so. Tokens merge across part
   * boundaries exactly as they do in the joined string ("[INST] " + "Read" is "▁Read", not "▁" + "▁Read"), so a
   * prompt assembled from template and document parts gets the ids Python `tokenizers` gives the whole rendered
   * prompt (transformers' `apply_chat_template(tokenize=True)`) whenever its documents hold no control-token strings.
   * Optional so that test doubles need not implement it; every tokenizer this package builds has it.
   */
  encodeParts?(parts: readonly TextPart[], opts?: EncodePartsOptions): number[];
  /** Inverse of `encode` for every valid id sequence; throws on an id outside [0, vocabSize). */
  decode(ids: number[], opts?: DecodeOptions): string;
  /** Number of token ids (largest id + 1): the embedding matrix's row count. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Id of a token given as its vocabulary string (byte-level form, e.g. `Ġthe`), or of an added token. */
  tokenId(token: string): number | undefined;
  /** Renders the model's chat template (Jinja); throws when the model has none. */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string;
  /**
   * True for EOS and for the end-of-turn tokens a chat model emits when it stops
   * (SmolLM2: `<|im_end|>`, `<|endoftext|>`).
   */
  isEndOfGeneration(id: number): boolean;
}
