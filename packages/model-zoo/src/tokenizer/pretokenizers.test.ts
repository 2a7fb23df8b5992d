import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { describe, expect, it } from "vitest";
import { adaptForJsTokenizers, type TokenizerJson } from "./hf-backed.js";
import { BYTE_LEVEL_PROFILES, byteLevelProfile } from "./pretokenizers.js";

// The pre-tokenizers of the GGUF table against the Rust crate, on the parity strings; no model file needed.
// The fixture holds, per name, the original tokenizer.json sections and the pieces Python `tokenizers` made.

const here = dirname(fileURLToPath(import.meta.url));
const fixture = JSON.parse(readFileSync(join(here, "../../test/fixtures/tokenizer-parity.json"), "utf8")) as {
  strings: { name: string; text?: string }[];
  preTokenizers: { name: string; normalizer: unknown; pre_tokenizer: unknown; pieces: string[][] }[];
};
const texts = fixture.strings.filter((s) => s.text !== undefined).map((s) => ({ name: s.name, text: s.text! }));

/** Normalizer then pre-tokenizer, as @huggingface/tokenizers runs them for a tokenizer.json with these sections. */
function pieces(normalizer: unknown, preTokenizer: unknown, text: string): string[] {
  const json: TokenizerJson = {
    added_tokens: [],
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: null,
    model: { type: "BPE", vocab: {}, merges: [] },
  };
  const core = new HfTokenizer(adaptForJsTokenizers(json), {});
  const normalized = core.normalizer ? core.normalizer.normalize(text) : text;
  return core.pre_tokenizer!.pre_tokenize_text(normalized);
}

describe("GGUF pre-tokenizer table", () => {
  it("covers SmolLM2, Llama 3 and Qwen2 in the fixture", () => {
    expect(fixture.preTokenizers.map((p) => p.name)).toEqual(["gpt-2", "smollm", "llama-bpe", "qwen2"]);
    expect(texts.length).toBeGreaterThanOrEqual(24);
  });

  for (const ref of fixture.preTokenizers) {
    describe(ref.name, () => {
      const profile = byteLevelProfile(ref.name, "test");

      it("holds the original tokenizer.json sections", () => {
        expect(profile.normalizer).toEqual(ref.normalizer);
        expect(profile.preTokenizer(false)).toEqual(ref.pre_tokenizer);
      });

      it("splits every parity string into the pieces the Rust crate makes", () => {
        texts.forEach((t, i) => {
          expect(pieces(profile.normalizer, profile.preTokenizer(false), t.text), t.name).toEqual(ref.pieces[i]);
        });
      });
    });
  }

  it("gives aliases the same profile and names the supported ones for an unknown name", () => {
    expect(BYTE_LEVEL_PROFILES["llama3"]).toBe(BYTE_LEVEL_PROFILES["llama-bpe"]);
    expect(BYTE_LEVEL_PROFILES["starcoder"]).toBe(BYTE_LEVEL_PROFILES["smollm"]);
    expect(() => byteLevelProfile("toString", "f.gguf")).toThrow(/f\.gguf: unsupported pre-tokenizer .*"toString"/);
    expect(() => byteLevelProfile("bloom", "f.gguf")).toThrow(/supported: gpt-2, gpt2, smollm/);
  });

  it("puts add_space_prefix into the byte-level step", () => {
    const pre = byteLevelProfile("gpt-2", "test").preTokenizer(true);
    expect(pieces(null, pre, "hello world")).toEqual(["Ġhello", "Ġworld"]);
  });
});
