/**
 * Bring your own model (#16): `razorkv generate` and `razorkv run` on GGUF files shaped like the hub's conversions of
 * Llama 3.1 8B Instruct and Gemma 3 1B it — their real vocabularies (128256 and 262144 tokens) and chat templates,
 * the metadata keys convert_hf_to_gguf.py writes (rope_freqs.weight, freq_base_swa, sliding window, q/k norms…) —
 * with random weights and hidden size 32 (model-zoo formats/real-shaped.ts), written here into a temp dir.
 *
 * References: the prompt ids are Python `tokenizers`' for the prompt transformers' apply_chat_template renders (or
 * HF's `tokenizer(prompt)` without the chat template), from tools/parity/prompt_pieces_reference.py's fixture; the
 * generated ids are model-zoo's greedy decode on the same file, in this process; the stop tokens are the ones each
 * model card names. The Llama file ends its turn right after "\n\n" (the last token of its chat prompt), so one
 * chat turn stops at once and a plain prompt runs to --max-new-tokens.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESULT_COLUMNS, type ResultRow, type ScoredRow } from "@razorkv/report";
import { defaultBackend, generateGreedy, LlamaModel, openModel, type LoadedModel } from "@razorkv/model-zoo";
import { gemma3ShapedGguf, lenmlTokenizer, llama31ShapedGguf, llama3RopeFactors } from "../../model-zoo/dist/formats/real-shaped.js";
import { CLI, runManifest } from "./testing/run-cli.js";

interface PromptCase {
  name: string;
  chat: boolean;
  head: string;
  ids: number[];
}
interface PromptFamily {
  family: string;
  chatTemplate: string;
  prompts: PromptCase[];
}
const fixture = JSON.parse(readFileSync(new URL("../../model-zoo/test/fixtures/prompt-pieces-parity.json", import.meta.url), "utf8")) as {
  families: PromptFamily[];
};
const family = (name: string) => fixture.families.find((f) => f.family === name)!;
const generateCase = (name: string, chat: boolean) => family(name).prompts.find((p) => p.name === "generate" && p.chat === chat)!;

/** The tokens each model card says end a turn (Llama 3.1: eot, eom, end_of_text; Gemma 3: end_of_turn, eos). */
const STOP_TOKENS: Record<string, string[]> = {
  llama3_1: ["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"],
  gemma3: ["<end_of_turn>", "<eos>"],
};

const TIMEOUT = 300_000;
const MAX_NEW = 8;
const dir = mkdtempSync(join(tmpdir(), "razorkv-real-shaped-"));
const files = { llama3_1: join(dir, "llama-3.1-8b-instruct-shaped.Q8_0.gguf"), gemma3: join(dir, "gemma-3-1b-it-shaped.Q8_0.gguf") };
const stopIds: Record<string, Set<number>> = {};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  for (const name of ["llama3_1", "gemma3"] as const) {
    const { json, config } = lenmlTokenizer(name);
    const ids = (texts: string[]) => new Set(texts.map((t) => json.added_tokens.find((a) => a.content === t)?.id ?? json.model.vocab[t]));
    stopIds[name] = ids(STOP_TOKENS[name]);
    const options = { tokenizerJson: json, tokenizerConfig: config, chatTemplate: family(name).chatTemplate, seed: 3 };
    const model = name === "llama3_1" ? llama31ShapedGguf({ ...options, endOfTurnAfter: json.model.vocab["\u010a\u010a"] }) : gemma3ShapedGguf(options);
    writeFileSync(files[name], model.bytes);
  }
}, TIMEOUT);

interface GenerateLine {
  model: string;
  promptTokens: number;
  newTokens: number;
  text: string;
  promptIds: number[];
  newIds: number[];
}

function generate(model: string, prompt: string, chat: boolean): Promise<{ line: GenerateLine }> {
  const args = [CLI, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens", String(MAX_NEW), "--ids", ...(chat ? ["--chat"] : [])];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`razorkv generate failed: ${stderr}`));
      const lines = stdout.split("\n").filter((l) => l !== "");
      if (lines.length !== 1) return reject(new Error(`expected one JSON line on stdout, got ${lines.length}: ${stdout}`));
      resolve({ line: JSON.parse(lines[0]) as GenerateLine });
    });
  });
}

const opened = new Map<string, Promise<LoadedModel>>();

/** model-zoo's greedy decode of `promptIds` on the file, cut after the first stop token. */
async function referenceGreedy(path: string, promptIds: number[], stop: ReadonlySet<number>): Promise<number[]> {
  if (!opened.has(path)) opened.set(path, openModel(path));
  const loaded = await opened.get(path)!;
  const ids = generateGreedy(new LlamaModel(loaded.weights, await defaultBackend()), promptIds, { maxNewTokens: MAX_NEW });
  const end = ids.findIndex((id) => stop.has(id));
  return end < 0 ? ids : ids.slice(0, end + 1);
}

/**
 * Byte-level BPE decode written out (GPT-2's bytes_to_unicode, inverted), special tokens skipped: the text a
 * byte-level tokenizer gives `ids`, invalid UTF-8 replaced by U+FFFD as Rust's from_utf8_lossy does.
 */
function byteLevelDecode(ids: number[]): string {
  const { json } = lenmlTokenizer("llama3_1");
  const tokenOf = new Map<number, string>(Object.entries(json.model.vocab).map(([t, id]) => [id, t]));
  const special = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const byteOf = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) byteOf.set(String.fromCodePoint(printable(b) ? b : 256 + shifted++), b);
  const bytes = ids.filter((id) => !special.has(id)).flatMap((id) => [...tokenOf.get(id)!].map((ch) => byteOf.get(ch)!));
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

function checkLine(line: GenerateLine, path: string, expectedPromptIds: number[]): void {
  expect(Object.keys(line).sort()).toEqual(["model", "newIds", "newTokens", "promptIds", "promptTokens", "text"]);
  expect(line.model).toBe(path);
  expect(line.promptIds).toEqual(expectedPromptIds);
  expect(line.promptTokens).toBe(expectedPromptIds.length);
  expect(line.newTokens).toBe(line.newIds.length);
}

describe("razorkv generate on a Llama-3.1-shaped GGUF", () => {
  it("chat: the official Llama 3.1 template as transformers renders it, one BOS, and the turn ends at <|eot_id|>", async () => {
    const c = generateCase("llama3_1", true);
    const { line } = await generate(files.llama3_1, c.head, true);
    checkLine(line, files.llama3_1, c.ids);
    expect(line.promptIds.filter((id) => id === 128000)).toHaveLength(1); // <|begin_of_text|>, written by the template
    const reference = await referenceGreedy(files.llama3_1, c.ids, stopIds.llama3_1);
    expect(reference).toEqual([128009]); // <|eot_id|> right after the assistant header's "\n\n"
    // what the loader read from the converter's keys: Llama 3.1's scaling as frequency factors, untied output
    const config = (await opened.get(files.llama3_1)!).weights.config;
    expect(config).toMatchObject({ vocabSize: 128256, tiedEmbeddings: false, maxContext: 131072, ropeTheta: 500000 });
    expect(config.ropeScaling).toEqual({ type: "frequency-factors", factors: llama3RopeFactors(500000, 8).map(Math.fround) });
    expect(line.newIds).toEqual(reference);
    expect(line.text).toBe("");
  }, TIMEOUT);

  it("plain: HF's tokenizer(prompt) ids with BOS, and --max-new-tokens tokens, decoded", async () => {
    const c = generateCase("llama3_1", false);
    const { line } = await generate(files.llama3_1, c.head, false);
    checkLine(line, files.llama3_1, c.ids);
    expect(line.promptIds[0]).toBe(128000);
    const reference = await referenceGreedy(files.llama3_1, c.ids, stopIds.llama3_1);
    expect(reference).toHaveLength(MAX_NEW); // no stop token: the model ends its turn only after "\n\n"
    expect(line.newIds).toEqual(reference);
    expect(line.text).toBe(byteLevelDecode(reference));
  }, TIMEOUT);
});

describe("razorkv generate on a Gemma-3-shaped GGUF", () => {
  it("chat: Gemma 3's template with its own <bos> once, and greedy tokens up to --max-new-tokens or <end_of_turn>", async () => {
    const c = generateCase("gemma3", true);
    const { line } = await generate(files.gemma3, c.head, true);
    checkLine(line, files.gemma3, c.ids);
    expect(line.promptIds.slice(0, 2)).toEqual([2, 105]); // <bos><start_of_turn>
    const reference = await referenceGreedy(files.gemma3, c.ids, stopIds.gemma3);
    expect(line.newIds).toEqual(reference);
    // what the loader read from the converter's keys: llama.cpp's default layer pattern, the local RoPE base
    const config = (await opened.get(files.gemma3)!).weights.config;
    expect(config).toMatchObject({ vocabSize: 262144, tiedEmbeddings: true, qkNorm: true, sandwichNorms: true, ropeTheta: 1_000_000, localRope: { theta: 10000 } });
    expect(config.layerWindows).toEqual([512, 512, 512, 512, 512, null]);
    expect(line.newTokens === MAX_NEW || stopIds.gemma3.has(line.newIds.at(-1)!)).toBe(true);
  }, TIMEOUT);
});

describe("razorkv run on the Llama-3.1-shaped GGUF", () => {
  it("sweeps two policies at two budgets over a plain passkey task and repeated tokens: every row scored, at its budget", async () => {
    const out = join(dir, "sweep");
    const manifest = join(dir, "sweep.yaml");
    writeFileSync(manifest, `name: real-shaped-sweep
seed: 5
models: [${files.llama3_1}]
budgets: [0.5, 0.3]
policies:
  - name: streamingllm
  - name: snapkv
tasks:
  - type: passkey
    params: { lengths: [192], depths: [0.5], samplesPerCell: 1, maxNewTokens: 4, chat: false }
  - type: repeated-tokens
    params: { lengths: [160], samplesPerLength: 1, continuationTokens: 4 }
output: ${out}
`);
    await runManifest(manifest);
    expect(readFileSync(join(out, "results.csv"), "utf8").split("\n")[0]).toBe(RESULT_COLUMNS.join(","));
    const rows = readFileSync(join(out, "results.jsonl"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as ResultRow);
    expect(rows).toHaveLength(2 * 4); // 2 samples × (2 policies × 2 budgets)
    expect(rows.filter((r) => r.status !== "ok")).toEqual([]);
    const scored = rows as ScoredRow[];
    for (const r of scored) {
      for (const column of RESULT_COLUMNS.filter((c) => c !== "reason")) expect(r, column).toHaveProperty(column);
      expect(r.model).toBe(files.llama3_1);
      // the cache right after compression holds the nominal budget within one entry per head (DESIGN §3)
      expect(Math.abs(r.budgetRealized - r.budgetNominal), `${r.cell} ${r.task}`).toBeLessThanOrEqual(1 / r.prefillTokens + 1e-9);
      expect(r.budgetAnswer).toBeGreaterThan(0);
      expect(Number.isFinite(r.score)).toBe(true);
    }
    const cells = new Set(scored.map((r) => `${r.policy}@${r.budgetNominal}`));
    expect([...cells].sort()).toEqual(["snapkv@0.3", "snapkv@0.5", "streamingllm@0.3", "streamingllm@0.5"]);
    const passkey = scored.filter((r) => r.task === "passkey");
    expect(passkey).toHaveLength(4);
    // the plain prompt (chat: false) does not end in the "\n\n" after which this model ends its turn: it answers
    for (const r of passkey) expect(r.prediction, r.cell).not.toBe("");
  }, TIMEOUT);
});
