import { RazorkvError } from "@razorkv/core";
import { loadHaystackText, tokenizeHaystack, type HaystackSource } from "./haystack.js";
import { positiveInteger, positiveIntegers } from "./params.js";
import { randomInt, sampleRng } from "./random.js";
import type { Sample, TaskTokenizer } from "./types.js";

/**
 * Teacher-forced continuation tasks, built from token ids (no prompt, no chat template): the contexts hit their
 * length exactly and no tokenization boundary is involved.
 */

// ---------------------------------------------------------------------------------------------------------------
// Repeated random tokens: the input RazorAttention calibrates on (arXiv 2407.15891 §3.2), turned into a task. A
// block of K random ordinary tokens is repeated; continuing it after the block restarts needs an induction head
// that can still see an earlier copy. A policy that evicts the earlier copies from every head loses the task; one
// that keeps the retrieval heads whole keeps it.

export interface RepeatedTokensParams {
  /** Context lengths in tokens (BOS included when prepended). */
  readonly lengths: readonly number[];
  /** Samples per length, each with its own block. Default 4. */
  readonly samplesPerLength?: number;
  /** Block length K. Default: floor((length − BOS) / copies). */
  readonly blockLength?: number;
  /** Copies of the block in the context when `blockLength` is not given. Default 4, as in the calibration input. */
  readonly copies?: number;
  /** Ids fed as the query: the block's next ids (its first ids when the context holds whole copies). Default 8. */
  readonly queryTokens?: number;
  /** Ids scored after the query. Default 32. */
  readonly continuationTokens?: number;
  /**
   * Token ids are drawn from [lo, hi). Default [1000, vocabSize − 1000): clear of the special and control tokens
   * of the supported families (SmolLM2: 0–16; Llama 2 / Mistral: 0–2; Llama 3: ≥ 128000 of 128256; Qwen2:
   * ≥ 151643 of 151936) and of the byte and single-character tokens at the bottom of BPE vocabularies.
   */
  readonly idRange?: readonly [number, number];
  /** Start the context with the tokenizer's BOS id (when it has one), as the calibration input does. Default true. */
  readonly prependBos?: boolean;
}

export function generateRepeatedTokens(params: RepeatedTokensParams, tokenizer: TaskTokenizer, seed: number): Sample[] {
  const task = "repeated-tokens";
  const lengths = positiveIntegers(task, "lengths", params.lengths);
  const perLength = positiveInteger(task, "samplesPerLength", params.samplesPerLength, 4);
  const queryTokens = positiveInteger(task, "queryTokens", params.queryTokens, 8);
  const continuationTokens = positiveInteger(task, "continuationTokens", params.continuationTokens, 32);
  const copies = positiveInteger(task, "copies", params.copies, 4);
  const [lo, hi] = params.idRange ?? [1000, tokenizer.vocabSize - 1000];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > tokenizer.vocabSize || hi <= lo) {
    throw new RazorkvError(
      `${task}: parameter "idRange" must be integers [lo, hi) with 0 ≤ lo < hi ≤ vocabSize (${tokenizer.vocabSize}); found ${JSON.stringify([lo, hi])}`,
    );
  }
  const bos = (params.prependBos ?? true) && tokenizer.bosId !== null ? [tokenizer.bosId] : [];
  const samples: Sample[] = [];
  for (const length of lengths) {
    const body = length - bos.length;
    const blockLength = params.blockLength ?? Math.floor(body / copies);
    if (!Number.isInteger(blockLength) || blockLength < 2) {
      throw new RazorkvError(`${task}: the block length must be an integer ≥ 2; found ${blockLength} for context length ${length}`);
    }
    if (body < blockLength) {
      throw new RazorkvError(`${task}: a context of ${length} tokens does not hold one copy of a ${blockLength}-token block`);
    }
    const excluded = new Set(bos);
    if (hi - lo - excluded.size < blockLength) {
      throw new RazorkvError(`${task}: parameter "idRange" [${lo}, ${hi}) holds fewer ids than a block of ${blockLength}`);
    }
    for (let i = 0; i < perLength; i++) {
      const rand = sampleRng(seed, task, length, blockLength, i);
      // Distinct ids: each id then has one successor in the block, so the continuation is determined by the copies.
      const seen = new Set<number>();
      const block: number[] = [];
      while (block.length < blockLength) {
        const id = randomInt(rand, lo, hi);
        if (!seen.has(id) && !excluded.has(id)) {
          seen.add(id);
          block.push(id);
        }
      }
      const at = (position: number) => block[position % blockLength];
      const periodic = (from: number, count: number) => Array.from({ length: count }, (_, k) => at(from + k));
      samples.push({
        id: `${task}/seed${seed}/L${length}/K${blockLength}/${i}`,
        task,
        contextLength: length,
        context: { ids: [...bos, ...periodic(0, body)] },
        query: { ids: periodic(body, queryTokens) },
        target: { kind: "continuation", continuation: { ids: periodic(body + queryTokens, continuationTokens) }, metric: "token-accuracy" },
      });
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------------------------
// Language-model loss on the continuation of a long text: how much a compressed cache hurts ordinary next-token
// prediction, the quantity StreamingLLM and H2O report as perplexity.

export interface LmLossParams extends HaystackSource {
  /** Context lengths in tokens. */
  readonly lengths: readonly number[];
  /** Windows per length, spread over the text. Default 4. */
  readonly samplesPerLength?: number;
  /**
   * Tokens fed as the query after compression, before the scored continuation. Default 1: every scored token is
   * then predicted from the compressed cache (the prediction of the token right after the context would come
   * from the prefill's own full-attention logits).
   */
  readonly queryTokens?: number;
  /** Tokens scored (mean NLL). Default 256. */
  readonly continuationTokens?: number;
}

/**
 * Context = L consecutive tokens of the text (raw text, no BOS: the convention of `razorkv ppl` and the parity
 * tools), query = the next `queryTokens`, continuation = the `continuationTokens` after those. Window starts are
 * drawn one per equal stratum of the text, so windows are spread out and overlap only when the text is short.
 */
export function generateLmLoss(params: LmLossParams, tokenizer: TaskTokenizer, seed: number): Sample[] {
  const task = "lm-loss";
  const lengths = positiveIntegers(task, "lengths", params.lengths);
  const perLength = positiveInteger(task, "samplesPerLength", params.samplesPerLength, 4);
  const queryTokens = positiveInteger(task, "queryTokens", params.queryTokens, 1);
  const continuationTokens = positiveInteger(task, "continuationTokens", params.continuationTokens, 256);
  const haystack = loadHaystackText(task, params);
  const need = Math.max(...lengths) + queryTokens + continuationTokens;
  // Spread windows over at most perLength·need tokens, a span fixed by the parameters (not by how much of the
  // text a cache happens to hold), so that samples are reproducible.
  const { ids } = tokenizeHaystack(task, tokenizer, haystack, need, perLength * need);
  const span = Math.min(ids.length, perLength * need);
  const samples: Sample[] = [];
  for (const length of lengths) {
    const window = length + queryTokens + continuationTokens;
    const stratum = (span - window) / perLength;
    for (let i = 0; i < perLength; i++) {
      const rand = sampleRng(seed, task, length, i);
      const start = Math.floor(i * stratum + rand() * stratum);
      samples.push({
        id: `${task}/seed${seed}/L${length}/${i}`,
        task,
        contextLength: length,
        context: { ids: ids.slice(start, start + length) },
        query: { ids: ids.slice(start + length, start + length + queryTokens) },
        target: {
          kind: "continuation",
          continuation: { ids: ids.slice(start + length + queryTokens, start + window) },
          metric: "nll",
        },
      });
    }
  }
  return samples;
}
