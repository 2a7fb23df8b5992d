/**
 * The prompts HeadKV-R2's head scores are measured on (Fu et al. 2024, arXiv 2410.19258 §3.1, "retrieval-reasoning"
 * examples): a haystack with a needle of two facts and two ages, and a question that needs both — "What is the
 * favourite pastime of the older one between A and B?" — so a head scores only where the model retrieves the right
 * fact after reasoning over the ages. The authors build theirs from a fixed haystack folder and two hand-written
 * needles (Important_Head/haystack_for_detect_r2, context lengths 0–10K × 10 depths). A policy here may not read
 * repository data, so this module writes them itself, deterministically from a seed: generated narrative sentences
 * as the haystack, names, pastimes and ages drawn from fixed lists, the needle at evenly spaced depths, and the
 * question alternating between "older" and "younger" (the authors' two needles ask one each).
 *
 * Every sentence is encoded as its own piece (each starts with a space, so no piece boundary splits a word), which
 * makes the answer sentence's token span exact — the authors locate it by token overlap instead.
 */
import { mulberry32, RazorkvError, type PreparationTokenizer } from "@razorkv/core";

const NAMES = [
  "Nora", "Felix", "Ingrid", "Tomas", "Aisha", "Mateo", "Priya", "Oskar", "Lena", "Jonah", "Mirela", "Samir", "Clara",
  "Bruno", "Yuki", "Daniel",
];
const PASTIMES = [
  "rowing on the lake at dawn", "painting old bridges", "repairing antique clocks", "baking rye bread on Sundays",
  "collecting maps of lost railways", "playing chess in the park", "growing tomatoes on the balcony",
  "writing letters to strangers", "cycling along the coast road", "carving small wooden birds", "singing in the harbour choir",
  "photographing thunderstorms", "restoring vintage radios", "swimming in the cold river",
];

const SUBJECTS = ["The old mill", "A small boat", "The village council", "The morning train", "A farmer", "The baker", "The library", "A tall lighthouse", "The schoolteacher", "A travelling merchant"];
const VERBS = ["stood near", "waited beside", "looked towards", "was built close to", "was often seen at", "slowly passed", "was painted to match"];
const OBJECTS = ["the river", "the market square", "the northern hills", "the harbour wall", "the orchard", "the station", "the church tower", "the quiet lane"];
const TAILS = [
  "while the weather changed", "as it had for many years", "before the autumn fair", "long after the rain stopped",
  "when the bells rang at noon", "although nobody remembered why", "during the long winter", "in the early evening light",
];

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];

/** One haystack sentence (no leading space, full stop at the end). */
function haystackSentence(rand: () => number): string {
  return `${pick(rand, SUBJECTS)} ${pick(rand, VERBS)} ${pick(rand, OBJECTS)} ${pick(rand, TAILS)}.`;
}

/** The scoring input, defaults resolved (index.ts `params`). */
export interface R2Settings {
  /** How many prompts (the authors: 5 context lengths × 10 depths × 2 needles). */
  readonly prompts: number;
  /** Haystack tokens per prompt (the authors: 0 … 10 000). */
  readonly contextTokens: number;
  /** Seed of names, pastimes, ages and haystack. */
  readonly seed: number;
  /** Wrap the prompt in the model's chat template (one user turn) instead of the authors' raw completion prompt. */
  readonly chat: boolean;
  /** Most tokens decoded per prompt; 0: as many as the answer sentence has (the authors), at most 50. */
  readonly maxNewTokens: number;
}

/** One prompt with the answer's span located. */
export interface R2Prompt {
  readonly ids: number[];
  /** [start, end): token positions of the answer sentence (the retrieved fact) in `ids`. */
  readonly span: readonly [number, number];
  /** The answer sentence, what the generation is scored against. */
  readonly answer: string;
  readonly question: string;
  /** Where the needle sits, as a fraction of the haystack. */
  readonly depth: number;
}

/** Marks where the user's text goes in a rendered chat template. */
const CONTENT_MARK = "@@razorkv-headkv-content@@";

/**
 * Prompt `i` of `settings` for `tokenizer`: deterministic in (seed, i) and the tokenizer. A RazorkvError when the
 * chat template cannot hold the content (`chat: false` is the way out).
 */
export function buildPrompt(tokenizer: PreparationTokenizer, settings: R2Settings, i: number): R2Prompt {
  const rand = mulberry32((settings.seed * 1_000_003 + i * 7_919) >>> 0);
  const a = Math.floor(rand() * NAMES.length);
  const b = (a + 1 + Math.floor(rand() * (NAMES.length - 1))) % NAMES.length;
  const pa = Math.floor(rand() * PASTIMES.length);
  const pb = (pa + 1 + Math.floor(rand() * (PASTIMES.length - 1))) % PASTIMES.length;
  const ageA = 18 + Math.floor(rand() * 50);
  let ageB = 18 + Math.floor(rand() * 49);
  if (ageB >= ageA) ageB++; // distinct ages
  const older = i % 2 === 0;
  const askedIsA = (ageA > ageB) === older;
  const fact = (name: string, pastime: string) => `${name}'s favourite pastime is ${pastime}.`;
  const factA = fact(NAMES[a], PASTIMES[pa]);
  const factB = fact(NAMES[b], PASTIMES[pb]);
  const answer = askedIsA ? factA : factB;
  const facts = rand() < 0.5 ? [factA, factB] : [factB, factA];
  const needle = [...facts, `${NAMES[a]} is ${ageA} years old.`, `${NAMES[b]} is ${ageB} years old.`];
  const question = `What is the favourite pastime of the ${older ? "older" : "younger"} one between ${NAMES[a]} and ${NAMES[b]}?`;

  const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: false });
  // the haystack: sentences until it holds contextTokens tokens, each its own piece
  const hay: number[][] = [];
  for (let n = 0; n < settings.contextTokens; ) {
    const ids = encode(` ${haystackSentence(rand)}`);
    hay.push(ids);
    n += ids.length;
  }
  const depth = settings.prompts > 1 ? i / (settings.prompts - 1) : 0.5;
  const at = Math.round(depth * hay.length);

  const suffix = `\n\nBased on the content of the book, Question: ${question}`;
  const [head, tail] = frame(tokenizer, settings.chat);
  const ids: number[] = [...head];
  const push = (piece: number[]) => ids.push(...piece);
  hay.slice(0, at).forEach(push);
  let span: [number, number] = [0, 0];
  for (const sentence of needle) {
    const start = ids.length;
    push(encode(` ${sentence}`));
    if (sentence === answer) span = [start, ids.length];
  }
  hay.slice(at).forEach(push);
  push(encode(suffix));
  push(tail);
  return { ids, span, answer, question, depth };
}

/**
 * The ids around the content: the chat template's text before and after one user turn (encoded with its control
 * tokens, BOS as the tokenizer adds it), or for a raw prompt BOS (when the tokenizer adds it) and the authors'
 * "\nAnswer:" cue.
 */
function frame(tokenizer: PreparationTokenizer, chat: boolean): [number[], number[]] {
  const bos = tokenizer.encode("", { addSpecialTokens: true, parseSpecialTokens: false });
  if (!chat) return [bos, tokenizer.encode("\nAnswer:", { addSpecialTokens: false, parseSpecialTokens: false })];
  let rendered: string;
  try {
    rendered = tokenizer.applyChatTemplate([{ role: "user", content: CONTENT_MARK }], { addGenerationPrompt: true });
  } catch (error) {
    throw new RazorkvError(`headkv: the model has no usable chat template (${(error as Error).message}); set params.chat to false for a raw prompt`);
  }
  const parts = rendered.split(CONTENT_MARK);
  if (parts.length !== 2) throw new RazorkvError(`headkv: the chat template does not place the user's text once (found ${parts.length - 1} times); set params.chat to false`);
  const before = tokenizer.encode(parts[0], { addSpecialTokens: true, parseSpecialTokens: true });
  // a template that writes BOS itself, with a tokenizer that adds it too: once
  if (tokenizer.bosId !== null && before.length > 1 && before[0] === tokenizer.bosId && before[1] === tokenizer.bosId) before.shift();
  return [before, tokenizer.encode(parts[1], { addSpecialTokens: false, parseSpecialTokens: true })];
}
