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
