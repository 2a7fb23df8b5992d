/**
 * The CompressionPolicy contract (DESIGN §2). The runner prefills a sample once, collecting the union of the
 * statistics the sweep's policies declared; then for every (policy, budget) cell it calls `compress` on the same
 * full cache — so `compress` must never mutate it — and decodes with the result. Under the "hold-budget" answer
 * protocol it also starts the policy's decode session and calls it after every forward; under the default "append"
 * protocol nothing is evicted after compression, for every policy alike.
 *
 *   const request = mergeStatsRequests(policies.map((p) => p.statsRequest));
 *   const { cache: full, stats } = model.prefill(prompt, { stats: request });
 *   const prefill = { request, layers: stats ?? [] };
 *   for (const [policy, budget] of cells) {
 *     const cache = policy.compress(full, prefill, budget);   // a RazorkvError: an infeasible row, not a crash
 *     assertRealizedBudget(cache, nominalKvBudget(policy, full, budget));
 *     const session = holdBudget ? policy.decode?.start(cache, prefill, budget) : undefined;
 *     // each step: const r = model.forward(cache, [token], { stats: policy.decode?.statsRequest });
 *     //            session?.afterForward(r.stats);
 *   }
 */
import type { AttentionStatsRequest, LayerAttentionStats } from "./attention.js";
import type { CacheLayout, KvCache } from "./cache.js";
import { toKvBudget, type Budget } from "./budget.js";
import { RazorkvError } from "./errors.js";
import type { ParamsOf, ParamsSchema } from "./params.js";
import type { PreparationStep } from "./preparation.js";

/** What one prefill collected: the merged request it ran with, and per layer the statistics (attention.ts). */
export interface PrefillStats {
  readonly request: AttentionStatsRequest;
  /** Per layer; per query head, indexed by slot of the full cache (slot = position). Empty when nothing was asked. */
  readonly layers: readonly LayerAttentionStats[];
}

export const noStats: PrefillStats = { request: {}, layers: [] };

export interface CompressionPolicy {
  /** Short name for result rows and errors, e.g. "snapkv". */
  readonly name: string;
  /** The prefill statistics `compress` reads (empty for policies that need none). */
  readonly statsRequest: AttentionStatsRequest;
  /**
   * A new cache that holds what the policy keeps of `fullCache` under `budget`. Must not mutate `fullCache` or
   * share mutable head storage with it (build heads with HeadCache.select / clone). Throws a RazorkvError when the
   * budget is infeasible for this policy, saying why and what would be feasible.
   */
  compress(fullCache: KvCache, stats: PrefillStats, budget: Budget): KvCache;
  /**
   * The kvBudget this policy realizes on a sequence of `sequenceLength` tokens when asked for `budget`, for
   * policies that do not follow the requested budget (Full keeps everything; RazorAttention's paper mode fixes
   * its window). Absent: the requested budget. The runner records it as the row's nominal budget. `layout`: the
   * model's layers and sliding windows (absent: none), which a fixed-window policy's realized fraction depends on.
   */
  nominalBudget?(sequenceLength: number, budget: Budget, layout?: CacheLayout): number;
  /**
   * Throws the RazorkvError `compress` would throw when `budget` cannot be met on a prefill of `sequenceLength`
   * tokens (a window longer than the budget, a budget below the protected share), without a cache or a model:
   * `--dry-run` lists every such cell before anything runs. Absent: only the budget's own conversion can fail.
   * The runner records an infeasible (cell × sample) as a result row with this reason, and the sweep goes on.
   * `layout` is the model's layers and sliding windows (a cache, or `LlamaModel.cacheLayout`): with windows, what
   * the windowed layers hold comes off the budget first (`entriesToKeepOf`). Absent: no windows.
   */
  checkFeasible?(sequenceLength: number, budget: Budget, layout?: CacheLayout): void;
  /**
   * Present when the policy can hold its budget while the question and the answer are fed (H2O and StreamingLLM
   * evict as the sequence grows). Used only under the "hold-budget" answer protocol, for every policy alike; under
   * the default "append" protocol every policy appends and nothing is evicted after compression.
   */
  readonly decode?: DecodeHook;
}

export interface DecodeHook {
  /**
   * Statistics each decode forward must collect: the runner passes them as `forward(cache, tokens, { stats })`,
   * and the session reads the result. With `accumulated`, the forward returns for every query head the new
   * queries' softmax weights on each slot of the cache it attended over — after the step's append, so the new
   * tokens' own slots are included.
   */
  readonly statsRequest: AttentionStatsRequest;
  /**
   * Begins decoding one cell: `cache` is what `compress` returned for `budget` (the cell owns it; the session
   * edits it in place), `prefill` the statistics compress saw.
   */
  start(cache: KvCache, prefill: PrefillStats, budget: Budget): DecodeSession;
}

export interface DecodeSession {
  /**
   * Called after every forward over the session's cache (one decoded token, or a chunk such as the question in
   * query-agnostic mode), with that forward's statistics. May evict entries from the cache in place.
   */
  afterForward(stats: readonly LayerAttentionStats[] | null): void;
}

/** What the runner knows when it instantiates a policy for one model. */
export interface PolicyContext {
  /** The model reference as the manifest gave it (e.g. "smollm2-135m-instruct"). */
  readonly modelRef?: string;
  /**
   * The artefact of the definition's preparation step for this model and these params (`prepare.parse` checked it),
   * when the step ran or was found cached. Absent when the policy has no step, its params need none, or nothing was
   * prepared (a parameter check before any model loads): `compress` must then refuse with a RazorkvError.
   */
  readonly prepared?: unknown;
}

/**
 * What a policy package exports (default export, or a named export `policy`): a documented parameter schema and a
 * factory. The registry validates manifest params against `params` before calling `create`.
 */
export interface PolicyDefinition<S extends ParamsSchema = ParamsSchema> {
  /** Short name, e.g. "snapkv"; by convention the package is named `policy-<name>`. */
  readonly name: string;
  /** One line: what the method does and the paper it comes from. */
  readonly description: string;
  readonly params: S;
  create(params: ParamsOf<S>, context?: PolicyContext): CompressionPolicy;
  /**
   * Optional per-model preparation (DESIGN §3; preparation.ts): run once per model file and inputs through core's
   * narrow model interface, cached, and handed to `create` as `context.prepared`. Head-level methods also export
   * their head selection from it, which the report draws.
   */
  readonly prepare?: PreparationStep<S>;
}

/** Identity, for type inference: `export default definePolicy({ name, description, params, create })`. */
export function definePolicy<S extends ParamsSchema>(definition: PolicyDefinition<S>): PolicyDefinition<S> {
  return definition;
}

/**
 * Throws a RazorkvError, with the words `compress` would use, when `policy` cannot meet `budget` on a prefill of
 * `sequenceLength` tokens: the policy's own check, else the budget's conversion (a token budget above the length).
 * `layout`: the model's layers and sliding windows (absent: none).
 */
export function checkFeasible(policy: CompressionPolicy, sequenceLength: number, budget: Budget, layout?: CacheLayout): void {
  if (policy.checkFeasible) policy.checkFeasible(sequenceLength, budget, layout);
  else toKvBudget(budget, sequenceLength);
}

/** The nominal kvBudget of a cell: the policy's own answer when it has one, else the converted budget. */
export function nominalKvBudget(policy: CompressionPolicy, fullCache: KvCache, budget: Budget): number {
  return nominalKvBudgetOf(policy, fullCache.nextPosition, budget, fullCache);
}

/**
 * `nominalKvBudget` for a prefill of `sequenceLength` tokens. When the cell is infeasible (the policy or the
 * conversion refuses), the budget as asked: kvBudget v, 1 − compressionRatio, tokens / length (then above 1).
 * Infeasible rows record this, so that they sit in the same cell as the samples that ran.
 */
export function nominalKvBudgetOf(policy: CompressionPolicy, sequenceLength: number, budget: Budget, layout?: CacheLayout): number {
  try {
    return policy.nominalBudget ? policy.nominalBudget(sequenceLength, budget, layout) : toKvBudget(budget, sequenceLength);
  } catch (error) {
    if (!(error instanceof RazorkvError)) throw error;
    const v = budget.value;
    return budget.kind === "kvBudget" ? v : budget.kind === "compressionRatio" ? 1 - v : v / Math.max(1, sequenceLength);
  }
}

/**
 * One request that collects what every request asks for, for a single prefill. Windowed statistics exist for one
 * window length per prefill (the sums over different windows cannot be recovered from each other), so two
 * different `windowQueries` are an error; likewise two different repeated-sequence layouts.
 */
export function mergeStatsRequests(requests: readonly AttentionStatsRequest[]): AttentionStatsRequest {
  let accumulated = false;
  let windowQueries: number | undefined;
  let repeatedSequence: AttentionStatsRequest["repeatedSequence"];
  for (const r of requests) {
    if (r.accumulated) accumulated = true;
    if (r.windowQueries !== undefined && r.windowQueries > 0) {
      if (windowQueries !== undefined && windowQueries !== r.windowQueries) {
        throw new RazorkvError(
          `policies ask for attention windows of ${windowQueries} and ${r.windowQueries} queries; one prefill collects one window, ` +
            `so give them the same window or run them in separate experiments`,
        );
      }
      windowQueries = r.windowQueries;
    }
    if (r.repeatedSequence) {
      const a = repeatedSequence;
      const b = r.repeatedSequence;
      if (a && (a.period !== b.period || a.firstPosition !== b.firstPosition)) {
        throw new RazorkvError(`policies ask for two repeated-sequence layouts (period ${a.period} and ${b.period}); one prefill has one input`);
      }
      repeatedSequence = b;
    }
  }
  return {
    ...(accumulated ? { accumulated: true } : {}),
    ...(windowQueries !== undefined ? { windowQueries } : {}),
    ...(repeatedSequence ? { repeatedSequence } : {}),
  };
}

/**
 * Layer `layer`'s per-query-head statistic `field`, or a RazorkvError saying the prefill did not collect it
 * (the runner did not merge the policy's statsRequest). `policy` names the caller.
 */
export function layerStat(stats: PrefillStats, layer: number, field: "accumulated" | "windowed", policy: string): Float32Array[] {
  const s = stats.layers[layer]?.[field];
  if (!s) {
    const asked = field === "accumulated" ? "accumulated: true" : "windowQueries";
    throw new RazorkvError(`${policy}: the prefill statistics of layer ${layer} have no "${field}" weights; prefill with stats { ${asked} } (the policy's statsRequest)`);
  }
  return s;
}

/** Windowed statistics are only meaningful for the window they were collected over: check it is the policy's. */
export function requireWindow(stats: PrefillStats, window: number, policy: string): void {
  const collected = stats.request.windowQueries;
  if (collected !== window) {
    throw new RazorkvError(
      `${policy}: needs attention of the last ${window} queries, but the prefill collected ${collected ? `a window of ${collected}` : "no window"}`,
    );
  }
}
