/**
 * The retrieval score of Wu et al. 2024 ("Retrieval Head Mechanistically Explains Long-Context Factuality",
 * arXiv 2404.15574, §2, eq. 1). While the model produces the answer to a needle prompt, a head *copies and pastes*
 * the token w being produced when (1) w is a token of the needle and (2) the position the head attends to most (the
 * argmax of its attention over the context) lies inside the needle and holds w. With g_h the needle tokens head h
 * copied and k the needle's tokens, the head's score on one prompt is |g_h| / |k|; over prompts it is the mean.
 *
 * Which attention: the token w is produced by the forward pass whose query is the token before it (the last prompt
 * token for the first answer token), so the attention examined is that query's, exactly as the authors' code does
 * (retrieval_head_detection.py: decode feeds the previous token and inspects attentions[layer][0][head][-1]).
 * Through core's preparation interface that is `sequence.extend([previous], { stats: { accumulated: true } })`:
 * `stats[layer].accumulated[h]` is query head h's attention of that one query over every slot of its KV head,
 * `sequence.positions(layer, kv)` turns slots into positions.
 *
 * Two answer protocols:
 *   - teacher-forced (default): the answer prefix and the needle's value tokens are fed whatever the model would say;
 *     every prompt credits exactly |k| steps, so every prompt counts and the score is the share of the needle's
 *     tokens the head copied. A small model that fails some prompts still shows which heads retrieve.
 *   - greedy (the paper's protocol): the model decodes freely; a step credits a head when the generated token equals
 *     the token at its argmax, inside the needle. As in the authors' code each credited step adds 1/|k| (repeats
 *     included), decoding stops at a newline or end of generation, and only prompts the model answered (the value
 *     appears in its output; the paper: ROUGE-1 recall > 50%) count.
 */
import type { LayerAttentionStats, ModelShape, PreparationModel } from "@razorkv/core";
import type { NeedlePrompt } from "./needle-prompts.js";

/** Which answer is fed: the needle (teacher forcing) or what the model generates greedily. */
export type AnswerProtocol = "teacher-forced" | "greedy";

/** One prompt's scores: [layer][query head] copy share, and whether the prompt counts (greedy: answered). */
export interface PromptScores {
  readonly scores: number[][];
  /** Greedy: the model's output contained the needle's value; teacher-forced: always true. */
  readonly counted: boolean;
  /** The answer tokens fed or generated. */
  readonly answer: number[];
}

/** Index of the largest value (the first on a tie), or −1 for an empty array. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best < 0 || values[i] > values[best]) best = i;
  return best;
}

/**
 * Counts a copy (adds 1 to counts[layer][h]) for every query head h whose most-attended slot (in `stats`, one query)
 * holds a position inside `span` whose prompt token is `token`. `positions(layer, kv)` maps a head's slots to positions.
 */
export function creditCopies(
  counts: number[][], stats: readonly LayerAttentionStats[], shape: Pick<ModelShape, "numLayers" | "numHeads" | "numKvHeads">,
  positions: (layer: number, kvHead: number) => ArrayLike<number>, prompt: Pick<NeedlePrompt, "ids" | "span">, token: number,
): void {
  const group = shape.numHeads / shape.numKvHeads;
  for (let layer = 0; layer < shape.numLayers; layer++) {
    const attention = stats[layer]?.accumulated;
    if (!attention) throw new Error(`retrieval-heads: the decode step returned no attention for layer ${layer} (stats { accumulated: true })`);
    for (let h = 0; h < shape.numHeads; h++) {
      const slot = argmax(attention[h]);
      const position = slot < 0 ? -1 : positions(layer, Math.floor(h / group))[slot];
      if (position >= prompt.span[0] && position < prompt.span[1] && prompt.ids[position] === token) counts[layer][h]++;
    }
  }
}

/** Runs one needle prompt and returns its per-query-head copy scores (file comment). */
export function scorePrompt(model: PreparationModel, prompt: NeedlePrompt, protocol: AnswerProtocol, maxNewTokens: number): PromptScores {
  const shape = model.shape;
  const counts = Array.from({ length: shape.numLayers }, () => new Array<number>(shape.numHeads).fill(0));
  // |k|: each copy counts 1/|k| (divided once at the end, so k of |k| copies is exactly k/|k|)
  const share = () => counts.map((row) => row.map((c) => c / (prompt.span[1] - prompt.span[0])));
  // the last prompt token is fed as the first decode step: its query's attention decides the first answer token
  const { sequence } = model.prefill(prompt.ids.slice(0, -1), { logits: "none" });
  const positions = (layer: number, kv: number) => sequence.positions(layer, kv);
  let input = prompt.ids[prompt.ids.length - 1];
  if (protocol === "teacher-forced") {
    // the steps whose target is a value token: answer[valueStart …]; nothing after the last one is needed
    for (let t = 0; t < prompt.answer.length; t++) {
      const target = prompt.answer[t];
      const copying = t >= prompt.valueStart;
      const { stats } = sequence.extend([input], copying ? { stats: { accumulated: true }, logits: "none" } : { logits: "none" });
      if (copying) creditCopies(counts, stats, shape, positions, prompt, target);
      input = target;
    }
    return { scores: share(), counted: true, answer: [...prompt.answer] };
  }
  const answer: number[] = [];
  for (let t = 0; t < maxNewTokens; t++) {
    const { stats, logits } = sequence.extend([input], { stats: { accumulated: true }, logits: "last" });
    const token = argmax(logits);
    answer.push(token);
    creditCopies(counts, stats, shape, positions, prompt, token);
    if (model.tokenizer.isEndOfGeneration(token) || model.tokenizer.decode([token]).includes("\n")) break;
    input = token;
  }
  const counted = model.tokenizer.decode(answer).includes(prompt.value);
  return { scores: share(), counted, answer };
}

/** The mean of the counted prompts' scores, [layer][query head]; zeros when none counted. */
export function meanScores(results: readonly PromptScores[], shape: Pick<ModelShape, "numLayers" | "numHeads">): number[][] {
  const counted = results.filter((r) => r.counted);
  return Array.from({ length: shape.numLayers }, (_, l) =>
    Array.from({ length: shape.numHeads }, (_, h) => (counted.length === 0 ? 0 : counted.reduce((a, r) => a + r.scores[l][h], 0) / counted.length)),
  );
}
