import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gguf } from "@huggingface/gguf";
import { beforeAll, describe, expect, it } from "vitest";
import { tokenizerFromJsonObject } from "./from-json.js";
import { tokenizerFromGguf } from "./gguf.js";
import { SMOLLM2_GGUF, SMOLLM2_TOKENIZER_JSON } from "./smollm2-files.testing.js";
import type { TokenizerJson } from "./hf-backed.js";
import type { Tokenizer } from "./types.js";

// `encode(text, { parseSpecialTokens: false })` against Python tokenizers' `encode_special_tokens = True`; the
// fixture is written by tools/parity/special_tokens_reference.py, whose header says how to regenerate it.

const here = dirname(fileURLToPath(import.meta.url));
const GGUF_PATH = SMOLLM2_GGUF;
const TOKENIZER_JSON = SMOLLM2_TOKENIZER_JSON;
/** llama.cpp's token_type USER_DEFINED: a plain (not special) added token. */
const TOKEN_TYPE_USER_DEFINED = 4;

interface FixtureString {
  name: string;
  text: string;
  ids: number[];
  textIds: number[];
  textDecoded: string;
}
interface FixtureVocabulary {
  name: string;
  notSpecial: string[];
  strings: FixtureString[];
}
const fixture = JSON.parse(readFileSync(join(here, "../../test/fixtures/special-tokens-parity.json"), "utf8")) as {
  tokenizersVersion: string;
  vocabularies: FixtureVocabulary[];
};

const missing = [GGUF_PATH, TOKENIZER_JSON].filter((p) => !existsSync(p));
// Locally the model may be absent: skip loudly. Under CI a missing model is a failure, never a skip.
const skipLocally = missing.length > 0 && !process.env.CI;
if (skipLocally) {
  console.warn(`[special-token tests] SKIPPED: missing ${missing.join(", ")}. Run /work/shared/bin/seed-hf-cache.`);
}

describe.skipIf(skipLocally)("parseSpecialTokens: false matches Python encode_special_tokens = True", () => {
  const built = new Map<string, { json: Tokenizer; gguf: Tokenizer }>();

  beforeAll(async () => {
    if (missing.length > 0) throw new Error(`required model files are missing (CI=${process.env.CI}): ${missing.join(", ")}`);
    const metadata = (await gguf(GGUF_PATH, { allowLocalFile: true })).metadata as Record<string, unknown>;
    const tokens = metadata["tokenizer.ggml.tokens"] as string[];
    for (const v of fixture.vocabularies) {
      const json = JSON.parse(readFileSync(TOKENIZER_JSON, "utf8")) as TokenizerJson;
      for (const t of json.added_tokens) if (v.notSpecial.includes(t.content)) t.special = false;
      const types = [...(metadata["tokenizer.ggml.token_type"] as number[])];
      for (const content of v.notSpecial) types[tokens.indexOf(content)] = TOKEN_TYPE_USER_DEFINED;
      built.set(v.name, {
        json: tokenizerFromJsonObject(json, {}, { origin: `${TOKENIZER_JSON} (${v.name})` }),
        gguf: tokenizerFromGguf({ ...metadata, "tokenizer.ggml.token_type": types }, { source: GGUF_PATH }),
      });
    }
  });

  it("has a fixture with both vocabularies", () => {
    expect(fixture.vocabularies.map((v) => v.name)).toEqual(["smollm2", "smollm2-repo-name-not-special"]);
    expect(fixture.tokenizersVersion).toMatch(/^\d+\.\d+/);
  });

  for (const v of fixture.vocabularies) {
    for (const route of ["json", "gguf"] as const) {
      it(`${v.name} from ${route}: Python's ids with and without parsing, and the text round-trips`, () => {
        const tok = built.get(v.name)![route];
        for (const s of v.strings) {
          expect(tok.encode(s.text, { addSpecialTokens: false }), s.name).toEqual(s.ids);
          expect(tok.encode(s.text, { addSpecialTokens: false, parseSpecialTokens: true }), s.name).toEqual(s.ids);
          const textIds = tok.encode(s.text, { addSpecialTokens: false, parseSpecialTokens: false });
          expect(textIds, s.name).toEqual(s.textIds);
          expect(tok.decode(textIds), s.name).toBe(s.text);
          expect(s.textDecoded, s.name).toBe(s.text);
        }
      });
    }
  }

  it("keeps every special id out of unparsed text, and splits out a non-special added token", () => {
    const tok = built.get("smollm2-repo-name-not-special")!.json;
    const ids = tok.encode("a <|im_end|> b <|endoftext|> c <repo_name> d", { parseSpecialTokens: false });
    expect(ids).not.toContain(tok.tokenId("<|im_end|>"));
    expect(ids).not.toContain(tok.tokenId("<|endoftext|>"));
    expect(ids).toContain(tok.tokenId("<repo_name>"));
  });
});
