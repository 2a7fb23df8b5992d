/** Tokenizers and chat templates: byte-level and SentencePiece BPE from GGUF metadata or tokenizer.json, via @huggingface/tokenizers. */
export type {
  ChatMessage,
  ChatTemplateOptions,
  DecodeOptions,
  EncodeOptions,
  EncodePartsOptions,
  TextPart,
  Tokenizer,
} from "./types.js";
export { tokenizerFromGguf, ggufToTokenizerJson, type GgufMetadata, type GgufTokenizerOptions } from "./gguf.js";
export {
  tokenizerFromJson,
  tokenizerFromJsonObject,
  type JsonTokenizerExtras,
  type TokenizerConfigJson,
} from "./from-json.js";
export type { TokenizerJson, AddedTokenJson } from "./hf-backed.js";
export { BYTE_LEVEL_PROFILES } from "./pretokenizers.js";
