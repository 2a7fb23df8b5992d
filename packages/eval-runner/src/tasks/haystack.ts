import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RazorkvError } from "@razorkv/core";
import type { TaskTokenizer } from "./types.js";

/**
 * Haystack text for the needle tasks and the language-model-loss task, and its tokenization (done once per
 * tokenizer and text, then sliced by tokens).
 */

/**
 * The haystack the project ships (generated prose, ours to redistribute: datasets/README.md). Resolved from this
 * module's location, which is packages/eval-runner/{src,dist}/tasks/ in both the sources and the build.
 */
export const DEFAULT_HAYSTACK_FILE = fileURLToPath(new URL("../../../../datasets/haystack/generated-essays.txt", import.meta.url));

export interface HaystackSource {
  /**
   * A directory of UTF-8 `.txt` files, concatenated in file-name order with a blank line between files (e.g. the
   * Paul Graham essays, /work/shared/data/paul-graham-essays: the standard NIAH haystack, read in place because
   * it is not ours to redistribute).
   */
  readonly haystackDir?: string;
  /** One UTF-8 text file. Neither given: the shipped DEFAULT_HAYSTACK_FILE. */
  readonly haystackFile?: string;
}

export interface HaystackText {
  readonly text: string;
  /** Where it came from, for ids and error messages: the directory or file path. */
  readonly origin: string;
}

const textCache = new Map<string, string>();

function describeFsError(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** Reads the haystack a task's parameters name; errors name the task, the parameter and the path. */
export function loadHaystackText(task: string, source: HaystackSource): HaystackText {
  if (source.haystackDir !== undefined && source.haystackFile !== undefined) {
    throw new RazorkvError(`${task}: give either parameter "haystackDir" or "haystackFile", not both`);
  }
  if (source.haystackDir !== undefined) return { text: readDirectory(task, source.haystackDir), origin: source.haystackDir };
  if (source.haystackFile !== undefined) {
    return { text: readTextFile(task, source.haystackFile, `parameter "haystackFile"`), origin: source.haystackFile };
  }
  return {
    text: readTextFile(
      task,
      DEFAULT_HAYSTACK_FILE,
      `the shipped default haystack (regenerate it with \`node datasets/haystack/generate.mjs\` after a build, or set parameter "haystackDir")`,
    ),
    origin: DEFAULT_HAYSTACK_FILE,
  };
}

function readTextFile(task: string, path: string, what: string): string {
  const cached = textCache.get(path);
  if (cached !== undefined) return cached;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RazorkvError(`${task}: ${what}: cannot read ${path} (${describeFsError(error)})`);
  }
  text = text.replace(/\r\n?/g, "\n");
  if (text.trim().length === 0) throw new RazorkvError(`${task}: ${what}: ${path} is empty`);
  textCache.set(path, text);
  return text;
}

function readDirectory(task: string, dir: string): string {
  const cached = textCache.get(dir);
  if (cached !== undefined) return cached;
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new RazorkvError(`${task}: parameter "haystackDir": ${dir} is not a directory`);
    names = readdirSync(dir);
  } catch (error) {
    if (error instanceof RazorkvError) throw error;
    throw new RazorkvError(`${task}: parameter "haystackDir": cannot read directory ${dir} (${describeFsError(error)})`);
  }
  const files = names.filter((n) => n.endsWith(".txt")).sort();
  if (files.length === 0) throw new RazorkvError(`${task}: parameter "haystackDir": ${dir} holds no .txt files`);
  const text = files
    .map((name) => readTextFile(task, join(dir, name), `parameter "haystackDir"`).trim())
    .join("\n\n");
  textCache.set(dir, text);
  return text;
}

/** Token ids of a prefix of a haystack text (at least the tokens asked for), cached per tokenizer. */
export interface TokenizedHaystack {
  readonly origin: string;
  readonly ids: readonly number[];
}

const tokenCache = new WeakMap<TaskTokenizer, Map<string, { chars: number; ids: number[] }>>();

/**
 * Tokenizes enough of `haystack` to cover `wantTokens` tokens, or all of it if it is shorter; fewer than
 * `minTokens` is an error. Only a prefix is tokenized, cut at a line break, because the Paul Graham essays are
 * ≈ 800K tokens and a sweep needs a context's worth; the last 16 tokens of a prefix are dropped (the cut may
 * change how they merge), so the first N ids do not depend on how much was tokenized. The result may hold more
 * ids than asked for (a cached longer prefix): callers slice what they need.
 */
export function tokenizeHaystack(
  task: string,
  tokenizer: TaskTokenizer,
  haystack: HaystackText,
  minTokens: number,
  wantTokens: number = minTokens,
): TokenizedHaystack {
  let perTokenizer = tokenCache.get(tokenizer);
  if (perTokenizer === undefined) {
    perTokenizer = new Map();
    tokenCache.set(tokenizer, perTokenizer);
  }
  const key = `${haystack.origin}\u0000${haystack.text.length}`;
  const text = haystack.text;
  let entry = perTokenizer.get(key);
  // 6 characters per token overshoots English BPE (≈ 4–4.5) so one pass is usually enough.
  const want = Math.max(minTokens, wantTokens);
  let chars = Math.min(text.length, Math.ceil(want * 6) + 4096);
  while (entry === undefined || (entry.chars < text.length && entry.ids.length < want)) {
    if (entry !== undefined) chars = Math.min(text.length, Math.max(chars, entry.chars) * 2);
    let cut = chars >= text.length ? text.length : text.indexOf("\n", chars);
    if (cut < 0) cut = text.length;
    // A haystack is a document: control-token strings in it stay text (tasks/types.ts TextPiece).
    const ids = tokenizer.encode(text.slice(0, cut), { addSpecialTokens: false, parseSpecialTokens: false });
    entry = { chars: cut, ids: cut >= text.length ? ids : ids.slice(0, Math.max(0, ids.length - 16)) };
    perTokenizer.set(key, entry);
  }
  if (entry.ids.length < minTokens) {
    throw new RazorkvError(
      `${task}: the haystack ${haystack.origin} has ${entry.ids.length} tokens; the task needs ${minTokens}: use a longer haystack or shorter context lengths`,
    );
  }
  return { origin: haystack.origin, ids: entry.ids };
}
