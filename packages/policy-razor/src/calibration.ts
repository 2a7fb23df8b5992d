/**
 * RazorAttention calibration (arXiv 2407.15891 §3.2; DESIGN §4), once per model and independent of any query.
 * Input: BOS + a block of K random ordinary tokens repeated `repeats` times. On such input an echo head attends
 * from each token to its earlier copies, an induction head to the tokens that followed them — the two patterns
 * that let a head retrieve from anywhere in the context. One full-attention prefill measures both per query head
 * (core's `repeatedSequence` statistics: for every query in the second block or later, the summed weight on the
 * earlier copies (echo) and on their successors (induction), averaged over those queries).
 */
import { mulberry32, RazorkvError, type AttentionStatsRequest, type LayerAttentionStats, type ModelShape } from "@razorkv/core";
import { selectRetrievalHeads, type CalibrationSettings, type HeadProfile } from "./profile.js";

/** What calibration needs of a model: the part of core's PreparationModel it uses (no engine import). */
export interface CalibrationModel {
  readonly shape: Pick<ModelShape, "numLayers" | "numHeads" | "numKvHeads" | "vocabSize" | "maxContext">;
  prefill(tokens: ArrayLike<number>, options: { stats?: AttentionStatsRequest; logits?: "none" }): { readonly stats: readonly LayerAttentionStats[] | null };
}

export interface CalibrationParams {
  /** K, the block length. Paper: 2500; default min(2500, ⌊(maxContext − 1) / repeats⌋) so the input fits (SmolLM2: 2047). */
  readonly blockLength?: number;
  /** Copies of the block. Paper: 4 — echo and induction are averaged over queries of copies 2…4. */
  readonly repeats?: number;
  /** Seed of the block's token draw, fixed so a profile is reproducible. */
  readonly seed?: number;
  /**
   * [first, end) of the uniformly drawn ids. Default [min(1000, ⌊V/4⌋), min(V, 20000)): above the low ids where
   * BPE vocabularies keep special and byte tokens, below the rarest merges.
   */
  readonly tokenRange?: readonly [number, number];
  /** The tokenizer's BOS id, prepended as in any prompt; null for none. */
  readonly bosId?: number | null;
  /** Selection (profile.ts): paper 14% of KV heads by induction … */
  readonly inductionFraction?: number;
  /** … plus 1% by echo. */
  readonly echoFraction?: number;
}

export const defaultSelection = { inductionFraction: 0.14, echoFraction: 0.01 } as const;

/** The calibration settings for a model of `config`'s shape, defaults filled in; a RazorkvError names a bad field. */
export function resolveCalibration(config: CalibrationModel["shape"], p: CalibrationParams = {}): CalibrationSettings {
  const repeats = p.repeats ?? 4;
  const bosId = p.bosId ?? null;
  const room = config.maxContext - (bosId === null ? 0 : 1);
  const blockLength = p.blockLength ?? Math.min(2500, Math.floor(room / repeats));
  const V = config.vocabSize;
  const tokenRange = p.tokenRange ?? ([Math.min(1000, Math.floor(V / 4)), Math.min(V, 20000)] as const);
  const check = (ok: boolean, field: string, expected: string, got: unknown) => {
    if (!ok) throw new RazorkvError(`calibration: ${field}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  check(Number.isInteger(repeats) && repeats >= 2, "repeats", "an integer ≥ 2", repeats);
  check(Number.isInteger(blockLength) && blockLength >= 2, "blockLength", "an integer ≥ 2", blockLength);
  check(
    blockLength * repeats <= room,
    "blockLength",
    `a block whose ${repeats} copies${bosId === null ? "" : " + BOS"} fit the model's context of ${config.maxContext} (K ≤ ${Math.floor(room / repeats)})`,
    blockLength,
  );
  check(
    Number.isInteger(tokenRange[0]) && Number.isInteger(tokenRange[1]) && tokenRange[0] >= 0 && tokenRange[1] <= V && tokenRange[1] - tokenRange[0] >= 2,
    "tokenRange",
    `[first, end) inside the vocabulary of ${V} with at least 2 ids`,
    tokenRange,
  );
  check(bosId === null || (Number.isInteger(bosId) && bosId >= 0 && bosId < V), "bosId", `an id below ${V} or null`, bosId);
  const inductionFraction = p.inductionFraction ?? defaultSelection.inductionFraction;
  const echoFraction = p.echoFraction ?? defaultSelection.echoFraction;
  check(inductionFraction >= 0 && inductionFraction <= 1, "inductionFraction", "a fraction in [0, 1]", inductionFraction);
  check(echoFraction >= 0 && echoFraction <= 1, "echoFraction", "a fraction in [0, 1]", echoFraction);
  return { blockLength, repeats, seed: p.seed ?? 2407, tokenRange: [tokenRange[0], tokenRange[1]], bosId, inductionFraction, echoFraction };
}

/** The calibration input and the statistics request that reads it. */
export function calibrationInput(s: CalibrationSettings): { tokens: Int32Array; stats: AttentionStatsRequest } {
  const rand = mulberry32(s.seed);
  const [first, end] = s.tokenRange;
  const block = Array.from({ length: s.blockLength }, () => first + Math.floor(rand() * (end - first)));
  const head = s.bosId === null ? [] : [s.bosId];
  const tokens = Int32Array.from([...head, ...Array.from({ length: s.repeats }, () => block).flat()]);
  return { tokens, stats: { repeatedSequence: { period: s.blockLength, firstPosition: head.length } } };
}

/** Runs the calibration prefill and returns the head profile (`model` labels it). */
export function calibrate(model: CalibrationModel, modelLabel: string, params: CalibrationParams = {}): HeadProfile {
  const c = model.shape;
  const settings = resolveCalibration(c, params);
  const { tokens, stats: request } = calibrationInput(settings);
  const { stats } = model.prefill(tokens, { stats: request, logits: "none" });
  const echo: number[][] = [];
  const induction: number[][] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const s = stats?.[l];
    if (!s?.echo || !s.induction) throw new Error(`calibration: the prefill returned no echo/induction statistics for layer ${l}`);
    echo.push(Array.from(s.echo));
    induction.push(Array.from(s.induction));
  }
  const scores = { numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, echo, induction };
  return { model: modelLabel, ...scores, retrieval: selectRetrievalHeads(scores, settings), params: settings };
}
