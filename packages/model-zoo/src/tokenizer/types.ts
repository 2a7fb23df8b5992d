/** One turn of a conversation, as chat templates receive it (`messages[i].role`, `messages[i].content`). */
export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /**
   * Add what the tokenizer's post-processor adds (BOS for Llama 3, nothing for SmolLM2). Default true, as in
   * Hugging Face `tokenizers`. Special-token strings inside the text (`<|im_start|>`) are always recognized.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens (`<|im_end|>`, …) from the output. Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the header that opens the assistant's turn (`<|im_start|>assistant\n` for SmolLM2). Default false. */
  addGenerationPrompt?: boolean;
}

/**
 * Text ↔ token ids for one model, plus its chat template. Both constructors (`tokenizerFromJson`,
 * `tokenizerFromGguf`) give the same ids as Hugging Face `tokenizers` on the model's original tokenizer.json.
 */
export interface Tokenizer {
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
