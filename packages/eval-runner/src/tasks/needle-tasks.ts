import { RazorkvError } from "@razorkv/core";
import { loadHaystackText, tokenizeHaystack, type HaystackSource, type HaystackText } from "./haystack.js";
import { buildNeedleContext, type Needle } from "./needle.js";
import { depthLabel, depthList, positiveInteger, positiveIntegers } from "./params.js";
import { segmentText, splitPrompt } from "./prompt.js";
import { randomInt, sampleDistinct, sampleRng } from "./random.js";
import type { Sample, TaskTokenizer } from "./types.js";

/**
 * Retrieval tasks over a grid of context length × needle depth: passkey retrieval and needle-in-a-haystack
 * (single needle, multi-key). Every sample is a generation scored by contains-match on the hidden value; the
 * value occurs in the context exactly once (a draw that collides with the haystack is redrawn).
 */

/** Parameters common to the needle grids. */
export interface NeedleGridParams {
  /** Context lengths in tokens (the context segment: chat header + instruction + haystack). */
  readonly lengths: readonly number[];
  /** Needle depths in [0, 1] (fraction of the haystack before the needle). Default 0, 0.25, 0.5, 0.75, 1. */
  readonly depths?: readonly number[];
  /** Samples per (length, depth) cell, each with its own value (and key). Default 1. */
  readonly samplesPerCell?: number;
  /** Render through the model's chat template (instruct models). Default true. */
  readonly chat?: boolean;
  /**
   * Start the assistant's reply with the sentence the answer completes ("The pass key is"), as RULER's
   * `answer_prefix` does: small models then answer with the value rather than a preamble. Default true.
   */
  readonly answerPrefix?: boolean;
  readonly maxNewTokens?: number;
}

const DEFAULT_DEPTHS = [0, 0.25, 0.5, 0.75, 1];
/** Redraws allowed when a drawn value already occurs in the haystack (essays contain numbers). */
const MAX_REDRAWS = 20;

interface CellSpec {
  readonly needles: readonly Needle[];
  readonly instruction: string;
  readonly question: string;
  readonly answerPrefix: string;
  readonly answer: string;
}

function generateGrid(
  task: string,
  params: NeedleGridParams,
  tokenizer: TaskTokenizer,
  seed: number,
  haystack: HaystackText,
  defaultMaxNewTokens: number,
  drawCell: (rand: () => number, depth: number) => CellSpec,
): Sample[] {
  const lengths = positiveIntegers(task, "lengths", params.lengths);
  const depths = depthList(task, params.depths ?? DEFAULT_DEPTHS);
  const perCell = positiveInteger(task, "samplesPerCell", params.samplesPerCell, 1);
  const maxNewTokens = positiveInteger(task, "maxNewTokens", params.maxNewTokens, defaultMaxNewTokens);
  const chat = params.chat ?? true;
  const useAnswerPrefix = params.answerPrefix ?? true;
  const tokenized = tokenizeHaystack(task, tokenizer, haystack, Math.max(...lengths));
  const samples: Sample[] = [];
  for (const length of lengths) {
    for (const depth of depths) {
      for (let i = 0; i < perCell; i++) {
        const id = `${task}/seed${seed}/L${length}/d${depthLabel(depth)}/${i}`;
        const rand = sampleRng(seed, task, length, depth, i);
        for (let attempt = 0; ; attempt++) {
          const cell = drawCell(rand, depth);
          const frame = (body: string) =>
            splitPrompt(
              tokenizer,
              chat,
              { head: `${cell.instruction}\n\n${body}`, tail: `\n\n${cell.question}`, answerPrefix: useAnswerPrefix ? cell.answerPrefix : "" },
              task,
            );
          const built = buildNeedleContext({ task, tokenizer, haystack: tokenized, length, needles: cell.needles, frame });
          if (occurrences(segmentText(tokenizer, built.context) + segmentText(tokenizer, built.query), cell.answer) === 1) {
            samples.push({
              id,
              task,
              contextLength: length,
              depth,
              context: built.context,
              query: built.query,
              target: { kind: "generate", answers: [cell.answer], maxNewTokens, metric: "contains" },
            });
            break;
          }
          if (attempt >= MAX_REDRAWS) {
            throw new RazorkvError(`${task}: sample ${id}: could not draw a value that the haystack ${haystack.origin} does not already contain`);
          }
        }
      }
    }
  }
  return samples;
}

function occurrences(text: string, needle: string): number {
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) count++;
  return count;
}

// ---------------------------------------------------------------------------------------------------------------
// Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention"): a 5-digit key in repeated filler.

export type PasskeyParams = NeedleGridParams;

/** The classic filler: five short sentences repeated; it carries no information, so only the key matters. */
export const PASSKEY_FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

export function generatePasskey(params: PasskeyParams, tokenizer: TaskTokenizer, seed: number): Sample[] {
  const task = "passkey";
  const longest = Math.max(...positiveIntegers(task, "lengths", params.lengths));
  // Every tokenizer spends at least one token per word of filler (18 words), so this many copies always suffice.
  const copies = Math.ceil(longest / 8) + 8;
  const haystack = { text: Array.from({ length: copies }, () => PASSKEY_FILLER).join(" "), origin: "passkey-filler" };
  return generateGrid(task, params, tokenizer, seed, haystack, 16, (rand, depth) => {
    const key = String(randomInt(rand, 10000, 100000));
    return {
      needles: [{ text: `The pass key is ${key}. Remember it.`, depth }],
      instruction:
        "Somewhere in the long, repetitive text below there is one important piece of information. Find it and keep it in mind: you will be asked about it after the text.",
      question: "What is the pass key?",
      answerPrefix: "The pass key is",
      answer: key,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Needle in a haystack: "The special magic number for <city> is <7 digits>." (RULER's key-value needle, with
// city keys as in gkamradt's multi-needle variants) in essay text.

export interface NiahParams extends NeedleGridParams, HaystackSource {
  /**
   * Needles per context (multi-key only; default 4): each has its own city and number; one is asked for and sits
   * at the cell's depth, the others (distractors) at depths drawn uniformly.
   */
  readonly needles?: number;
}

/** Keys: well-known cities, none of which the shipped haystack mentions. */
export const NIAH_CITIES = [
  "Amsterdam", "Athens", "Auckland", "Baghdad", "Bangkok", "Barcelona", "Beijing", "Berlin", "Bogota", "Boston",
  "Brussels", "Budapest", "Buenos Aires", "Cairo", "Cape Town", "Caracas", "Chicago", "Copenhagen", "Dakar", "Delhi",
  "Dhaka", "Dubai", "Dublin", "Edinburgh", "Florence", "Hanoi", "Havana", "Helsinki", "Hong Kong", "Istanbul",
  "Jakarta", "Jerusalem", "Johannesburg", "Kabul", "Karachi", "Kyoto", "Lagos", "Lima", "Lisbon", "London",
  "Los Angeles", "Madrid", "Manila", "Melbourne", "Mexico City", "Montreal", "Moscow", "Mumbai", "Nairobi",
  "Oslo", "Paris", "Prague", "Reykjavik", "Rome", "Santiago", "Seoul", "Shanghai", "Singapore", "Stockholm",
  "Sydney", "Tehran", "Tokyo", "Toronto", "Vienna", "Warsaw", "Zurich",
] as const;

function niahCell(rand: () => number, depth: number, count: number): CellSpec {
  const keys = sampleDistinct(rand, NIAH_CITIES, count);
  const values = new Set<string>();
  while (values.size < count) values.add(String(randomInt(rand, 1_000_000, 10_000_000)));
  const vals = [...values];
  // keys[0] is asked for and sits at the cell's depth; distractors anywhere.
  const needles = keys.map((key, k) => ({
    text: `The special magic number for ${key} is ${vals[k]}.`,
    depth: k === 0 ? depth : rand(),
  }));
  const plural = count > 1;
  return {
    needles,
    instruction: plural
      ? "The text below hides several special magic numbers, each belonging to a different city. Read it carefully and remember them: after the text you will be asked for one of them."
      : "The text below hides a special magic number that belongs to a city. Read it carefully and remember it: after the text you will be asked for it.",
    question: `What is the special magic number for ${keys[0]} mentioned in the text above?`,
    answerPrefix: `The special magic number for ${keys[0]} mentioned in the text above is`,
    answer: vals[0],
  };
}

/** One needle per context, haystack from `haystackDir` / `haystackFile` / the shipped essays. */
export function generateNiahSingle(params: NiahParams, tokenizer: TaskTokenizer, seed: number): Sample[] {
  const task = "niah-single";
  if (params.needles !== undefined && params.needles !== 1) {
    throw new RazorkvError(`${task}: parameter "needles" must be 1 (use niah-multikey for several); found ${params.needles}`);
  }
  const haystack = loadHaystackText(task, params);
  return generateGrid(task, params, tokenizer, seed, haystack, 24, (rand, depth) => niahCell(rand, depth, 1));
}

/** Several needles with different keys per context; one is asked for. */
export function generateNiahMultiKey(params: NiahParams, tokenizer: TaskTokenizer, seed: number): Sample[] {
  const task = "niah-multikey";
  const count = positiveInteger(task, "needles", params.needles, 4);
  if (count < 2 || count > NIAH_CITIES.length) {
    throw new RazorkvError(`${task}: parameter "needles" must lie in [2, ${NIAH_CITIES.length}]; found ${count}`);
  }
  const haystack = loadHaystackText(task, params);
  return generateGrid(task, params, tokenizer, seed, haystack, 24, (rand, depth) => niahCell(rand, depth, count));
}

