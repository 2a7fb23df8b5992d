import type { TaskTokenizer } from "../types.js";

/**
 * A lossless toy tokenizer for unit tests of the task generators: one token per word together with the whitespace
 * before it (as GPT-2-style byte-level BPE keeps a leading space with a word), a token for trailing whitespace,
 * and one token per ChatML special token. decode(encode(x)) === x, and encoding is additive at a boundary between
 * a non-space character and whitespace, which is the boundary the tasks split prompts at. Ids are assigned on
 * first sight, so they depend on the order texts are encoded in: compare texts, not ids, across instances.
 *
 * Not a stand-in for the real tokenizer's counts: word tokens are 1.3–1.5× fewer than BPE tokens on English.
 */
export class WordTokenizer implements TaskTokenizer {
  static readonly SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;
  readonly vocabSize = 50_000;
  readonly bosId = 1;
  private readonly idOf = new Map<string, number>();
  private readonly pieces: string[] = [];

  constructor() {
    for (const s of WordTokenizer.SPECIAL) this.intern(s);
    while (this.pieces.length < 100) this.intern(`<|reserved_${this.pieces.length}|>`);
  }

  private intern(piece: string): number {
    let id = this.idOf.get(piece);
    if (id === undefined) {
      id = this.pieces.length;
      if (id >= this.vocabSize) throw new Error("WordTokenizer: vocabulary full");
      this.pieces.push(piece);
      this.idOf.set(piece, id);
    }
    return id;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const part of text.split(/(<\|[a-z_0-9]+\|>)/)) {
      if (part.length === 0) continue;
      if (/^<\|[a-z_0-9]+\|>$/.test(part)) {
        ids.push(this.intern(part));
        continue;
      }
      for (const piece of part.match(/\s*\S+|\s+/g) ?? []) ids.push(this.intern(piece));
    }
    return ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    let out = "";
    for (const id of ids) {
      const piece = this.pieces[id];
      if (piece === undefined) throw new Error(`WordTokenizer: id ${id} was never assigned`);
      if (opts.skipSpecialTokens && id < 100) continue;
      out += piece;
    }
    return out;
  }

  /** ChatML, as SmolLM2's template renders it (with its default system turn). */
  applyChatTemplate(messages: { role: string; content: string }[], opts: { addGenerationPrompt?: boolean } = {}): string {
    let out = "";
    if (messages.length > 0 && messages[0].role !== "system") {
      out += "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n";
    }
    for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
    if (opts.addGenerationPrompt) out += "<|im_start|>assistant\n";
    return out;
  }
}
