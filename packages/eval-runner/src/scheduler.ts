/**
 * Runs one sample against every cell of a sweep (DESIGN §2): tokenize, prefill once with the union of the
 * statistics the cells' policies need, compress per cell (cheap, no model call), then decode all cells together,
 * one token per cell per step, so the weights are read once per step. `--no-share-prefill` calls this with one
 * cell at a time, which is the naive protocol peers use.
 *
 * One answer-time protocol for every cell (schema.ts AnswerProtocol): under "append" the question and the answer
 * are appended to every compressed cache; under "hold-budget" every policy's decode rule holds its budget, and a
 * policy without one cannot take part below kvBudget 1. Either way the cache is measured after compression, when
 * the first answer token is predicted and at the end, and at the first answer token every cell of a budget must
 * hold what the protocol promises within one entry per head: the comparison is at equal memory.
 *
 * A cell that cannot be run on this sample (a RazorkvError from the policy: a budget below its floor; or a prompt
 * longer than the model's context) becomes an InfeasibleRow naming the task, sample and cell; the others go on.
 */
import { performance } from "node:perf_hooks";
import {
  assertRealizedBudget, mergeStatsRequests, nominalKvBudget, nominalKvBudgetOf, RazorkvError,
  type Budget, type CompressionPolicy, type DecodeSession, type KvCache,
} from "@razorkv/core";
import { argmax, logProbability, type LlamaModel, type Tokenizer } from "@razorkv/model-zoo";
import type { AnswerProtocol, InfeasibleRow, Mode, ResultRow, ScoredRow } from "@razorkv/report";
import { scoreContinuation, scoreGeneration } from "./metrics/index.js";
import { encodeSegment, type Sample, type Segment } from "./tasks/index.js";

export interface Cell {
  readonly policy: CompressionPolicy;
  readonly label: string;
  /** Canonical JSON of the manifest params. */
  readonly params: string;
  readonly budget: Budget;
  /** `<label>@<budget>`: unique within an experiment. */
  readonly id: string;
  /**
   * SHA-256 of the artefact the policy's per-model preparation gave it (canonical JSON), when it has one: part of the
   * row key, so rows made from an older artefact (a step whose code changed) are recomputed, never reused.
   */
  readonly prepared?: string;
}

/** A cell to run on one sample, with the results-store key of the row it will produce (experiment.ts rowKey). */
export interface KeyedCell {
  readonly cell: Cell;
  readonly key: string;
}

export interface SampleContext {
  readonly experiment: string;
  readonly modelRef: string;
  /** SHA-256 of the model's files (model-zoo modelDigest). */
  readonly modelDigest: string;
  readonly model: LlamaModel;
  readonly tokenizer: Tokenizer;
  readonly task: string;
  readonly mode: Mode;
  readonly protocol: AnswerProtocol;
}

/** The cache's realized budget and bytes at one moment. */
interface CacheMeasure {
  readonly budget: number;
  readonly kvBytes: number;
}

interface CellRun {
  readonly cell: Cell;
  readonly key: string;
  readonly cache: KvCache;
  readonly session: DecodeSession | null;
  readonly nominal: number;
  readonly compressed: CacheMeasure;
  /** Measured when the first answer token is predicted. */
  answer: CacheMeasure | null;
  /** Tokens still to feed before the next prediction is read. */
  readonly feed: number[];
  logits: Float32Array | null;
  readonly generated: number[];
  readonly continuationLogProbs: number[];
  readonly continuationGreedy: number[];
  done: boolean;
  decodeMs: number;
  decodeTokens: number;
}

const measure = (cache: KvCache): CacheMeasure => ({ budget: cache.realizedBudget(), kvBytes: cache.kvBytes(2) });

/** A segment's token ids: template pieces with control tokens parsed, text pieces without (tasks/prompt.ts). */
export function segmentIds(segment: Segment, tokenizer: Tokenizer, continues = false): number[] {
  // the query and the continuation follow the context in one sequence: a SentencePiece tokenizer must not start
  // them with the prefix space it gives a sequence's first word (prompt.ts, encodeSegment)
  return encodeSegment(tokenizer, segment, { continues });
}

/**
 * Result rows of `sample` for `cells`, in the order of `cells`: a ScoredRow per cell that ran, an InfeasibleRow per
 * cell that could not. Throws only on a harness or policy bug (a cell that breaks the answer-time protocol).
 */
export function runSample(ctx: SampleContext, sample: Sample, cells: readonly KeyedCell[]): ResultRow[] {
  const { model, tokenizer } = ctx;
  const contextIds = segmentIds(sample.context, tokenizer);
  const queryIds = segmentIds(sample.query, tokenizer, true);
  const target = sample.target;
  const continuationIds = target.kind === "continuation" ? segmentIds(target.continuation, tokenizer, true) : [];
  const queryAware = ctx.mode === "query-aware";
  const prefillIds = queryAware ? [...contextIds, ...queryIds] : contextIds;
  const promptTokens = contextIds.length + queryIds.length;
  const where = (cell: Cell) => `${ctx.task} sample ${sample.id}, cell ${cell.id}`;
  const identity = ({ cell, key }: KeyedCell) => ({
    experiment: ctx.experiment, key, model: ctx.modelRef, modelDigest: ctx.modelDigest, task: ctx.task, sampleId: sample.id,
    mode: ctx.mode, protocol: ctx.protocol, prefillProducts: ctx.model.prefillProducts, targetLength: sample.contextLength, promptTokens, depth: sample.depth ?? null,
    policy: cell.policy.name, policyParams: cell.params, policyLabel: cell.label, cell: cell.id, metric: target.metric,
  });
  const infeasible = (c: KeyedCell, budgetNominal: number, reason: string): InfeasibleRow => ({
    ...identity(c), budgetNominal, status: "infeasible", reason,
  });
  const requested = (c: KeyedCell) => nominalKvBudgetOf(c.cell.policy, prefillIds.length, c.cell.budget, model.cacheLayout);

  const answerRoom = target.kind === "generate" ? target.maxNewTokens : continuationIds.length;
  if (promptTokens + answerRoom > model.config.maxContext) {
    const reason = `${promptTokens} prompt tokens + ${answerRoom} answer tokens exceed the model's context of ${model.config.maxContext}; use shorter lengths`;
    return cells.map((c) => infeasible(c, requested(c), `${where(c.cell)}: ${reason}`));
  }

  const request = mergeStatsRequests(cells.map((c) => c.cell.policy.statsRequest));
  const t0 = performance.now();
  const prefill = model.prefill(prefillIds, { stats: request });
  const prefillMs = performance.now() - t0;
  const prefillStats = { request, layers: prefill.stats ?? [] };
  const full = prefill.cache;
  const kvBytesFull = full.kvBytes(2);
  const holdBudget = ctx.protocol === "hold-budget";

  const outcomes: (CellRun | InfeasibleRow)[] = cells.map((c): CellRun | InfeasibleRow => {
    const { cell } = c;
    let cache: KvCache;
    let nominal: number;
    try {
      cache = cell.policy.compress(full, prefillStats, cell.budget);
      nominal = nominalKvBudget(cell.policy, full, cell.budget);
      assertRealizedBudget(cache, nominal, where(cell));
      if (holdBudget && nominal < 1 && !cell.policy.decode) {
        throw new RazorkvError(
          `${cell.policy.name} has no decode-time eviction, so it cannot hold kvBudget ${nominal} while the question and the answer are fed ` +
            `(answerProtocol: hold-budget); run it under answerProtocol: append`,
        );
      }
    } catch (error) {
      if (!(error instanceof RazorkvError)) throw error;
      const message = error.message.startsWith(where(cell)) ? error.message : `${where(cell)}: ${error.message}`;
      return infeasible(c, requested(c), message);
    }
    return {
      cell, key: c.key, cache, nominal, compressed: measure(cache), answer: null,
      session: holdBudget ? (cell.policy.decode?.start(cache, prefillStats, cell.budget) ?? null) : null,
      feed: queryAware ? [] : [...queryIds],
      logits: queryAware ? prefill.logits : null,
      generated: [], continuationLogProbs: [], continuationGreedy: [],
      done: false, decodeMs: 0, decodeTokens: 0,
    };
  });
  const runs = outcomes.filter((o): o is CellRun => "cache" in o);

  const isEnd = (id: number) => tokenizer.isEndOfGeneration(id);
  const advance = (run: CellRun) => {
    while (!run.done && run.feed.length === 0) {
      const logits = run.logits;
      if (!logits) throw new Error(`cell ${run.cell.id}: nothing to feed and no logits to read`);
      run.logits = null;
      if (run.answer === null) run.answer = answerTimeMeasure(run, full.nextPosition, holdBudget, where(run.cell));
      if (target.kind === "generate") {
        const next = argmax(logits);
        run.generated.push(next);
        if (isEnd(next) || run.generated.length >= target.maxNewTokens) run.done = true;
        else run.feed.push(next);
      } else {
        const i = run.continuationLogProbs.length;
        run.continuationLogProbs.push(logProbability(logits, continuationIds[i]));
        run.continuationGreedy.push(argmax(logits));
        if (i + 1 >= continuationIds.length) run.done = true;
        else run.feed.push(continuationIds[i]);
      }
    }
  };
  runs.forEach(advance);

  const decodeStats = mergeStatsRequests(runs.flatMap((r) => (r.session && r.cell.policy.decode ? [r.cell.policy.decode.statsRequest] : [])));
  const wantStats = Object.keys(decodeStats).length > 0;
  const V = model.config.vocabSize;
  for (;;) {
    const active = runs.filter((r) => !r.done && r.feed.length > 0);
    if (active.length === 0) break;
    // whole pending runs (the question) go in one pass; afterwards one token per cell per step
    const inputs = active.map((r) => r.feed.splice(0, r.feed.length));
    const t = performance.now();
    // teacher-forced scoring (a continuation target) multiplies as a prefill does, so its NLLs are the f32 model's
    // within rounding; generation takes the decode path (8-bit activations, as llama.cpp decodes)
    const step = model.extendBatch(active.map((r) => r.cache), inputs, {
      ...(wantStats ? { stats: decodeStats } : {}), ...(target.kind === "continuation" ? { exactProducts: true } : {}),
    });
    const rows = inputs.reduce((n, x) => n + x.length, 0);
    const msPerRow = (performance.now() - t) / rows;
    active.forEach((run, i) => {
      run.logits = step.logits.slice(i * V, (i + 1) * V);
      run.session?.afterForward(step.stats ? step.stats[i] : null);
      run.decodeMs += msPerRow * inputs[i].length;
      run.decodeTokens += inputs[i].length;
      advance(run);
    });
  }

  return outcomes.map((o, i): ResultRow => {
    if (!("cache" in o)) return o;
    const run = o;
    let score: number;
    let prediction = "";
    if (target.kind === "generate") {
      prediction = tokenizer.decode(run.generated, { skipSpecialTokens: true });
      score = scoreGeneration(target, prediction);
    } else {
      score = scoreContinuation(target, {
        targetLogProbs: run.continuationLogProbs, greedyIds: run.continuationGreedy, targetIds: continuationIds,
      });
    }
    const answer = run.answer!;
    const end = measure(run.cache);
    const row: ScoredRow = {
      ...identity(cells[i]), status: "ok", prefillTokens: prefillIds.length,
      budgetNominal: run.nominal, budgetRealized: run.compressed.budget, budgetAnswer: answer.budget, budgetEnd: end.budget,
      kvBytes: run.compressed.kvBytes, kvBytesAnswer: answer.kvBytes, kvBytesEnd: end.kvBytes, kvBytesFull,
      score, prediction,
      prefillMs: round(prefillMs), decodeMs: round(run.decodeMs), decodeTokens: run.decodeTokens,
    };
    return row;
  });
}

/**
 * The cache when the first answer token is predicted, checked against what the protocol promises, in entries, with
 * full(x) the uncompressed cache's entry count at x tokens (Σ over heads of min(x, the window of its layer)): under
 * "append" the compressed prefill (nominal · full(P)) plus what every token fed since adds, full(seen) − full(P);
 * under "hold-budget" nominal · full(seen). Without sliding windows that is nominal · P + (seen − P), resp.
 * nominal · seen, per head. A head compressed before its layer's window bound (P ≤ W < seen) may hold up to
 * seen − W more under "append": the window dropped fewer of its entries than it would have of a whole one. More
 * than one entry per head off means a policy broke the protocol: a bug, not a result.
 */
function answerTimeMeasure(run: CellRun, prefillTokens: number, holdBudget: boolean, where: string): CacheMeasure {
  const cache = run.cache;
  const seen = cache.nextPosition;
  const heads = cache.heads.length;
  const full = (x: number) => cache.layerWindows.reduce<number>((n, w) => n + (w === null ? x : Math.min(x, w)) * cache.numKvHeads, 0);
  const expected = holdBudget ? run.nominal * full(seen) : run.nominal * full(prefillTokens) + full(seen) - full(prefillTokens);
  const slack = holdBudget
    ? 0
    : cache.layerWindows.reduce<number>((n, w) => n + (w !== null && prefillTokens <= w && w < seen ? (seen - w) * cache.numKvHeads : 0), 0);
  const held = cache.entryCount();
  if (!(held >= expected - heads - 1e-9 && held <= expected + slack + heads + 1e-9)) {
    throw new Error(
      `${where}: at the first answer token the cache holds ${(held / heads).toFixed(2)} entries per head where the ` +
        `${holdBudget ? "hold-budget" : "append"} protocol promises ${(expected / heads).toFixed(2)}` +
        `${slack > 0 ? ` (up to ${((expected + slack) / heads).toFixed(2)} with the windows that bound since the prefill)` : ""} ` +
        `(kvBudget ${run.nominal}, ${prefillTokens} tokens prefilled, ${seen} seen)`,
    );
  }
  return measure(cache);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
