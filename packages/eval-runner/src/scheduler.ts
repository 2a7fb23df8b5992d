/**
 * Runs one sample against every cell of a sweep (DESIGN §2): tokenize, prefill once with the union of the
 * statistics the cells' policies need, compress per cell (cheap, no model call), then decode all cells together,
 * one token per cell per step, so the weights are read once per step. `--no-share-prefill` calls this with one
 * cell at a time, which is the naive protocol peers use.
 */
import { performance } from "node:perf_hooks";
import {
  assertRealizedBudget, mergeStatsRequests, nominalKvBudget, RazorkvError,
  type Budget, type CompressionPolicy, type DecodeSession, type KvCache,
} from "@razorkv/core";
import { argmax, logProbability, type LlamaModel, type Tokenizer } from "@razorkv/model-zoo";
import type { Mode, ResultRow } from "@razorkv/report";
import { scoreContinuation, scoreGeneration } from "./metrics/index.js";
import { encodeSegment, type Sample, type Segment } from "./tasks/index.js";

export interface Cell {
  readonly policy: CompressionPolicy;
  readonly label: string;
  /** Canonical JSON of the manifest params. */
  readonly params: string;
  readonly budget: Budget;
  /** `<label>@<budget>`: unique within an experiment; the results store keys rows by it. */
  readonly id: string;
}

export interface SampleContext {
  readonly experiment: string;
  readonly modelRef: string;
  readonly model: LlamaModel;
  readonly tokenizer: Tokenizer;
  readonly task: string;
  readonly mode: Mode;
}

interface CellRun {
  readonly cell: Cell;
  readonly cache: KvCache;
  readonly session: DecodeSession | null;
  readonly nominal: number;
  readonly realized: number;
  readonly kvBytes: number;
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

/** A segment's token ids: template pieces with control tokens parsed, text pieces without (tasks/prompt.ts). */
export function segmentIds(segment: Segment, tokenizer: Tokenizer): number[] {
  return encodeSegment(tokenizer, segment);
}

/** Result rows of `sample` for `cells` (in the order of `cells`). */
export function runSample(ctx: SampleContext, sample: Sample, cells: readonly Cell[]): ResultRow[] {
  const { model, tokenizer } = ctx;
  const contextIds = segmentIds(sample.context, tokenizer);
  const queryIds = segmentIds(sample.query, tokenizer);
  const target = sample.target;
  const continuationIds = target.kind === "continuation" ? segmentIds(target.continuation, tokenizer) : [];
  const queryAware = ctx.mode === "query-aware";
  const prefillIds = queryAware ? [...contextIds, ...queryIds] : contextIds;
  const promptTokens = contextIds.length + queryIds.length;
  const answerRoom = target.kind === "generate" ? target.maxNewTokens : continuationIds.length;
  if (promptTokens + answerRoom > model.config.maxContext) {
    throw new RazorkvError(
      `${ctx.task} sample ${sample.id}: ${promptTokens} prompt tokens + ${answerRoom} answer tokens exceed the model's context of ` +
        `${model.config.maxContext}; use shorter lengths`,
    );
  }

  const request = mergeStatsRequests(cells.map((c) => c.policy.statsRequest));
  const t0 = performance.now();
  const prefill = model.prefill(prefillIds, { stats: request });
  const prefillMs = performance.now() - t0;
  const prefillStats = { request, layers: prefill.stats ?? [] };
  const full = prefill.cache;
  const kvBytesFull = full.kvBytes(2);

  const runs: CellRun[] = cells.map((cell) => {
    const cache = cell.policy.compress(full, prefillStats, cell.budget);
    const nominal = nominalKvBudget(cell.policy, full, cell.budget);
    assertRealizedBudget(cache, nominal, `${ctx.task} sample ${sample.id}, cell ${cell.id}`);
    return {
      cell, cache, nominal, realized: cache.realizedBudget(), kvBytes: cache.kvBytes(2),
      session: cell.policy.decode?.start(cache, prefillStats, cell.budget) ?? null,
      feed: queryAware ? [] : [...queryIds],
      logits: queryAware ? prefill.logits : null,
      generated: [], continuationLogProbs: [], continuationGreedy: [],
      done: false, decodeMs: 0, decodeTokens: 0,
    };
  });

  const isEnd = (id: number) => tokenizer.isEndOfGeneration(id);
  const advance = (run: CellRun) => {
    while (!run.done && run.feed.length === 0) {
      const logits = run.logits;
      if (!logits) throw new Error(`cell ${run.cell.id}: nothing to feed and no logits to read`);
      run.logits = null;
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

  const decodeStats = mergeStatsRequests(cells.flatMap((c) => (c.policy.decode ? [c.policy.decode.statsRequest] : [])));
  const wantStats = Object.keys(decodeStats).length > 0;
  const V = model.config.vocabSize;
  for (;;) {
    const active = runs.filter((r) => !r.done && r.feed.length > 0);
    if (active.length === 0) break;
    // whole pending runs (the question) go in one pass; afterwards one token per cell per step
    const inputs = active.map((r) => r.feed.splice(0, r.feed.length));
    const t = performance.now();
    const step = model.extendBatch(active.map((r) => r.cache), inputs, wantStats ? { stats: decodeStats } : {});
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

  return runs.map((run): ResultRow => {
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
    return {
      experiment: ctx.experiment, model: ctx.modelRef, task: ctx.task, sampleId: sample.id, mode: ctx.mode,
      targetLength: sample.contextLength, promptTokens, depth: sample.depth ?? null,
      policy: run.cell.policy.name, policyParams: run.cell.params, policyLabel: run.cell.label, cell: run.cell.id,
      budgetNominal: run.nominal, budgetRealized: run.realized, kvBytes: run.kvBytes, kvBytesFull,
      metric: target.metric, score, prediction: prediction.slice(0, 200),
      prefillMs: round(prefillMs), decodeMs: round(run.decodeMs), decodeTokens: run.decodeTokens,
    };
  });
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
