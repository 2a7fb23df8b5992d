/**
 * HeadKV-R2's head importance (Fu et al. 2024, arXiv 2410.19258 §3.1; Important_Head/retrieval_head_detection_r2.py).
 * On a retrieval-reasoning prompt (prompts.ts) the model answers greedily; at every decoding step t, for every query
 * head h, take the k = |answer span| slots the step's query attends most, and add the attention a_t[i] / k of each of
 * them that lies inside the answer sentence:
 *
 *   S_h = Σ_t Σ_{i ∈ top-k(a_t), i ∈ answer} a_t[i] / k.
 *
 * Unlike Wu et al.'s retrieval score it counts attention mass, not copy events, and does not ask that the attended
 * token be the one generated, so heads that reason over the needle score too. A prompt counts only when the answer is
 * right enough (the authors: token F1 × 100 > 50); a head's score is the mean over the counted prompts. The first step's
 * query is the prompt's last token (the authors prefill all but it and feed it as the first decoding step), and decoding
 * stops at a newline, the end of the turn, or after `maxNewTokens` — the authors stop after as many tokens as the answer
 * has (at most 50), `maxNewTokens: 0` here.
 */
import { RazorkvError, topKSlots, type PreparationModel } from "@razorkv/core";
import { qaF1 } from "./f1.js";
import { buildPrompt, type R2Settings } from "./prompts.js";

/** One scored prompt of the artefact. */
export interface R2Sample {
  readonly depth: number;
  readonly question: string;
  readonly answer: string;
  /** The model's greedy answer, decoded. */
  readonly response: string;
  /** Token F1 of `response` against `answer`, in [0, 1]. */
  readonly f1: number;
  /** [layer][query head]: S_h on this prompt. */
  readonly scores: number[][];
}

/** The authors' cap on decoding steps (`self.decode(q_outputs, input_ids[:, -1], 50)`). */
export const MAX_ANSWER_STEPS = 50;

/**
 * Adds one decoding step's contribution to `scores` [layer][head]: per query head, the top-k slots of its attention
 * `probabilities` (ties: the earlier slot), those whose position is in [start, end) adding probability / k, with
 * k = end − start. `positionsOf(layer, kvHead)` maps slots to positions (sliding-window layers).
 */
export function addStepScores(
  scores: number[][], probabilities: readonly (readonly ArrayLike<number>[])[], span: readonly [number, number], numKvHeads: number,
  positionsOf: (layer: number, kvHead: number) => ArrayLike<number>,
): void {
  const [start, end] = span;
  const k = end - start;
  probabilities.forEach((layer, l) => {
    const group = layer.length / numKvHeads;
    layer.forEach((a, h) => {
      const positions = positionsOf(l, Math.floor(h / group));
      for (const slot of topKSlots(a, k)) {
        const position = positions[slot];
        if (position >= start && position < end) scores[l][h] += a[slot] / k;
      }
    });
  });
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Scores every prompt of `settings` on `model` (see the file comment). */
export function scoreRetrievalReasoning(model: PreparationModel, settings: R2Settings, log?: (line: string) => void): R2Sample[] {
  const { numLayers: L, numHeads: H, numKvHeads: K, maxContext } = model.shape;
  const tokenizer = model.tokenizer;
  const samples: R2Sample[] = [];
  for (let i = 0; i < settings.prompts; i++) {
    const prompt = buildPrompt(tokenizer, settings, i);
    const steps = settings.maxNewTokens > 0
      ? settings.maxNewTokens
      : Math.min(MAX_ANSWER_STEPS, tokenizer.encode(prompt.answer, { addSpecialTokens: false, parseSpecialTokens: false }).length);
    if (prompt.ids.length + steps > maxContext) {
      throw new RazorkvError(
        `headkv: prompt ${i} has ${prompt.ids.length} tokens and its answer up to ${steps}, beyond the model's context of ${maxContext}; lower params.contextTokens`,
      );
    }
    const { sequence } = model.prefill(prompt.ids.slice(0, -1), { logits: "none" });
    const scores = Array.from({ length: L }, () => new Array<number>(H).fill(0));
    const output: number[] = [];
    let token = prompt.ids[prompt.ids.length - 1];
    for (let step = 0; step < steps; step++) {
      const r = sequence.extend([token], { stats: { accumulated: true } });
      addStepScores(scores, r.stats.map((s) => s.accumulated ?? []), prompt.span, K, (l, kv) => sequence.positions(l, kv));
      token = argmax(r.logits);
      output.push(token);
      if (tokenizer.isEndOfGeneration(token) || tokenizer.decode([token]).includes("\n")) break;
    }
    const response = tokenizer.decode(output, { skipSpecialTokens: true }).trim();
    const f1 = qaF1(response, prompt.answer);
    samples.push({ depth: prompt.depth, question: prompt.question, answer: prompt.answer, response, f1, scores });
    log?.(`headkv: prompt ${i + 1} of ${settings.prompts} (${prompt.ids.length} tokens, depth ${prompt.depth.toFixed(2)}): F1 ${f1.toFixed(2)} "${response}"`);
  }
  return samples;
}
