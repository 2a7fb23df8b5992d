/**
 * Retrieval heads (Wu, Wang, Xiao, Peng, Fu 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality",
 * arXiv 2404.15574): the few attention heads that copy needle tokens from the context into the answer. Each head's
 * retrieval score (§2, eq. 1: the share of the needle's tokens it copies and pastes while the answer is produced —
 * score.ts) is measured once per model on needle prompts this package builds (needle-prompts.ts), in core's
 * preparation step; query heads are reduced to their KV head by the max over the GQA group (a group is a retrieval
 * head if any of its heads is, as RazorAttention reduces its scores); the top `protectedFraction` of KV heads (or, with
 * `selection: "threshold"`, every KV head scoring above the paper's 0.1) keep their whole cache.
 *
 * The cache layout is RazorAttention's (arXiv 2407.15891 §3.3), core's protected-heads.ts: every other KV head keeps
 * N0 attention sinks + a recent window and folds what it drops into one compensation token, the window solved so the
 * realized kvBudget meets the nominal one. So at one budget and one protected share, this policy, RazorAttention's
 * echo/induction heads and random heads differ only in which heads they protect. (Wu et al. prune heads to show they
 * matter; they propose no cache policy. Using their heads with RazorAttention's layout is this package's choice.)
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  definePolicy, HEAD_SELECTION_FORMAT, param, protectedHeadsPolicy, RazorkvError, topKSlots, type CompressionPolicy, type HeadRef,
  type HeadSelection, type ParamsOf, type PolicyContext, type PreparationModel, type PreparationModelInfo, type PreparationStep,
} from "@razorkv/core";
import {
  fileHaystack, generatedHaystack, needlePrompt, sentenceBoundaries, wordTokens, type Haystack, type NeedleKind, type NeedlePrompt,
} from "./needle-prompts.js";
import { meanScores, scorePrompt, type AnswerProtocol, type PromptScores } from "./score.js";

export * from "./needle-prompts.js";
export * from "./score.js";

/** A list of numbers as a manifest writes it, each checked by `ok`. */
function numberList(what: string, ok: (x: number) => boolean) {
  return (value: unknown): number[] => {
    if (!Array.isArray(value) || value.length === 0 || value.some((x) => typeof x !== "number" || !ok(x))) {
      throw new Error(`expected a non-empty list of ${what}, got ${JSON.stringify(value)}`);
    }
    return value as number[];
  };
}

export const params = {
  protectedFraction: param.number({
    default: 0.15,
    min: 0,
    max: 1,
    doc:
      "Share of all KV heads (layers × KV heads) kept whole, the top round(f · N) by retrieval score. Default 0.15, RazorAttention's " +
      "14% + 1% (arXiv 2407.15891 §4.1), so the two compare at the same protected share; the head-selection sweep uses 0.05/0.15/0.25/0.40.",
  }),
  selection: param.choice({
    choices: ["top-fraction", "threshold"],
    default: "top-fraction",
    doc:
      "top-fraction: protect the top protectedFraction of KV heads (comparable across methods). threshold: protect every KV head whose " +
      "retrieval score exceeds `threshold` — the paper's definition of a retrieval head (§2), whatever their number.",
  }),
  threshold: param.number({
    default: 0.1,
    min: 0,
    max: 1,
    doc: "Score above which a head is a retrieval head (Wu et al. 2024 §2: 0.1). Used by selection: threshold, and reported in the head selection's rule.",
  }),
  groupReduce: param.choice({
    choices: ["max", "mean"],
    default: "max",
    doc:
      "How a GQA group's query-head scores become its KV head's score. max (default, as RazorAttention reduces echo/induction): a KV head " +
      "whose cache any of its query heads retrieves from is kept. mean: the group's average. The paper's models (Llama 2) have no GQA.",
  }),
  sinks: param.integer({ default: 4, min: 0, doc: "N0, initial tokens every compressed head keeps: attention sinks (Xiao et al. 2023). RazorAttention: 4." }),
  compensation: param.boolean({
    default: true,
    doc: "Fold the dropped tokens into one compensation slot per compressed head (RazorAttention §3.3). Off: plain dropping.",
  }),
  answer: param.choice({
    choices: ["teacher-forced", "greedy"],
    default: "teacher-forced",
    doc:
      "teacher-forced (default): the answer prefix and the needle are fed and every prompt counts, so a small model that misses some " +
      "needles still shows which heads copy. greedy: the paper's protocol — the model decodes, and only prompts it answers count.",
  }),
  maxNewTokens: param.integer({ default: 32, min: 1, doc: "Greedy mode: most tokens decoded per prompt (the authors' code: 50, stopping at a newline)." }),
  lengths: param.custom<number[]>({
    default: [512, 1024],
    doc:
      "Prompt lengths in tokens. The paper sweeps 1K–50K (20 lengths × 10 depths); the default keeps the preparation of SmolLM2-135M " +
      "under two minutes on two busy cores (76–103 s measured, README). Each must leave room for the answer in the model's context.",
    parse: numberList("prompt lengths (integers ≥ 64)", (x) => Number.isInteger(x) && x >= 64),
  }),
  depths: param.custom<number[]>({
    default: [0, 0.25, 0.5, 0.75, 1],
    doc: "Needle depths: fraction of the haystack before the needle (0 = right after the instruction, 1 = right before the question).",
    parse: numberList("depths in [0, 1]", (x) => x >= 0 && x <= 1),
  }),
  samplesPerCell: param.integer({ default: 1, min: 1, doc: "Prompts per (length, depth), each with its own haystack and needle." }),
  seed: param.integer({ default: 2404, min: 0, doc: "Seed of the haystacks and needles (mulberry32); a prompt's seed is derived from it and its cell." }),
  needle: param.choice({
    choices: ["number", "words"],
    default: "number",
    doc:
      'number: "The special magic number is 4829173." (the harness\'s NIAH needle; digits never occur in the generated haystack). ' +
      "words: a passphrase of random vocabulary words, left out of that prompt's haystack.",
  }),
  needleLength: param.integer({ default: 7, min: 1, doc: "Digits of a number needle (default 7, as RULER's and the harness's magic numbers), words of a words needle." }),
  chat: param.boolean({ default: true, doc: "Render the prompt through the model's chat template (instruct models); false for base models." }),
  wordRange: param.custom<[number, number]>({
    default: [1000, 20000],
    doc: "[first, end) of the token ids the generated haystack draws its words from (low BPE ids are the common words).",
    parse: (value) => {
      if (!Array.isArray(value) || value.length !== 2 || !value.every((x) => Number.isInteger(x) && x >= 0) || value[1] <= value[0]) {
        throw new Error(`expected [first, end) with 0 ≤ first < end, got ${JSON.stringify(value)}`);
      }
      return [value[0], value[1]];
    },
  }),
  haystackFile: param.custom<string | null>({
    default: null,
    doc:
      "A text file to take haystacks from instead of generating them (e.g. the Paul Graham essays the paper uses, concatenated); " +
      "its SHA-256 is part of the preparation's cache key. Default: generated from the tokenizer (no repository data is read).",
    parse: (value) => {
      if (value === null || (typeof value === "string" && value !== "")) return value;
      throw new Error(`expected a file path or null, got ${JSON.stringify(value)}`);
    },
  }),
};
export type RetrievalHeadsParams = ParamsOf<typeof params>;

/** The preparation's inputs, resolved: everything besides the model file the scores depend on. */
export interface RetrievalInputs {
  readonly lengths: number[];
  readonly depths: number[];
  readonly samplesPerCell: number;
  readonly seed: number;
  readonly needle: NeedleKind;
  readonly needleLength: number;
  readonly chat: boolean;
  readonly answer: AnswerProtocol;
  /** Greedy only. */
  readonly maxNewTokens?: number;
  /** [first, end) of the ids word tokens are drawn from (the generated haystack, a words needle). */
  readonly wordRange: [number, number];
  /** Generated from the tokenizer, or a text file (its path and SHA-256). */
  readonly haystack: "generated" | { readonly file: string; readonly sha256: string };
}

/** The artefact: per (layer, query head) the retrieval score, and what it was measured on. */
export interface RetrievalProfile {
  readonly model: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  /** [layer][query head]: mean over the counted prompts of the share of needle tokens the head copied. */
  readonly retrieval: number[][];
  /** Prompts run, and how many counted (greedy: answered; teacher-forced: all). */
  readonly prompts: number;
  readonly counted: number;
  /** Per prompt: its length, depth, hidden value, whether it counted, and the answer fed or generated (decoded). */
  readonly perPrompt: { length: number; depth: number; value: string; counted: boolean; answer: string }[];
  readonly params: RetrievalInputs;
}

/** Longest answer a prompt may need after it: the answer prefix + value (teacher-forced) or maxNewTokens (greedy). */
const ANSWER_ROOM = 48;

function resolveInputs(p: RetrievalHeadsParams, model: PreparationModelInfo): RetrievalInputs {
  const room = p.answer === "greedy" ? p.maxNewTokens + 1 : ANSWER_ROOM;
  const tooLong = p.lengths.find((n) => n + room > model.shape.maxContext);
  if (tooLong !== undefined) {
    throw new RazorkvError(
      `retrieval-heads: params.lengths: a ${tooLong}-token prompt and its answer (${room} tokens) exceed the context of ${model.ref} (${model.shape.maxContext})`,
    );
  }
  let haystack: RetrievalInputs["haystack"] = "generated";
  if (p.haystackFile !== null) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(p.haystackFile);
    } catch (error) {
      throw new RazorkvError(`retrieval-heads: params.haystackFile ${p.haystackFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    haystack = { file: p.haystackFile, sha256: createHash("sha256").update(bytes).digest("hex") };
  }
  return {
    lengths: [...p.lengths], depths: [...p.depths], samplesPerCell: p.samplesPerCell, seed: p.seed, needle: p.needle, needleLength: p.needleLength,
    chat: p.chat, answer: p.answer, ...(p.answer === "greedy" ? { maxNewTokens: p.maxNewTokens } : {}), wordRange: [...p.wordRange], haystack,
  };
}

/** Characters of a haystack file that are tokenized: plenty for 8K-token windows at many offsets, bounded in time. */
const FILE_CHARS = 400_000;

/** The needle prompts of `inputs`, in (length, depth, sample) order. */
export function needlePrompts(model: Pick<PreparationModel, "tokenizer">, inputs: RetrievalInputs): NeedlePrompt[] {
  const tokenizer = model.tokenizer;
  const period = tokenizer.encode(".", { addSpecialTokens: false, parseSpecialTokens: false });
  const needsWords = inputs.haystack === "generated" || inputs.needle === "words";
  const words = needsWords ? wordTokens(tokenizer, inputs.wordRange) : [];
  let haystackOf: (tokens: number, rand: () => number, exclude: ReadonlySet<number>) => Haystack;
  if (inputs.haystack === "generated") {
    haystackOf = (tokens, rand, exclude) => generatedHaystack(rand, words, period, tokens, exclude);
  } else {
    const { file, sha256 } = inputs.haystack;
    const bytes = readFileSync(file);
    const found = createHash("sha256").update(bytes).digest("hex");
    if (found !== sha256) throw new RazorkvError(`retrieval-heads: params.haystackFile ${file}: changed since the preparation was planned (SHA-256 ${found}, expected ${sha256})`);
    const ids = tokenizer.encode(bytes.toString("utf8").slice(0, FILE_CHARS), { addSpecialTokens: false, parseSpecialTokens: false });
    const text = { ids, boundaries: sentenceBoundaries(tokenizer, ids) };
    haystackOf = (tokens, rand) => fileHaystack(text, tokens, rand, file);
  }
  const prompts: NeedlePrompt[] = [];
  inputs.lengths.forEach((length, li) =>
    inputs.depths.forEach((depth, di) => {
      for (let k = 0; k < inputs.samplesPerCell; k++) {
        const seed = (inputs.seed * 1_000_003 + (li * 1009 + di) * 101 + k) >>> 0;
        prompts.push(needlePrompt(tokenizer, { length, depth, needle: inputs.needle, needleLength: inputs.needleLength, chat: inputs.chat, seed }, words, haystackOf));
      }
    }),
  );
  return prompts;
}

/** Runs every needle prompt and averages the scores (score.ts); `log` gets one line per prompt. */
export function measureRetrieval(model: PreparationModel, inputs: RetrievalInputs, log?: (line: string) => void): RetrievalProfile {
  const prompts = needlePrompts(model, inputs);
  const results: PromptScores[] = [];
  const started = Date.now();
  prompts.forEach((prompt, i) => {
    const r = scorePrompt(model, prompt, inputs.answer, inputs.maxNewTokens ?? 0);
    results.push(r);
    log?.(
      `retrieval-heads: prompt ${i + 1}/${prompts.length}: ${prompt.ids.length} tokens, depth ${prompt.depth}, needle "${prompt.value}"` +
        `${inputs.answer === "greedy" ? `, answered ${r.counted ? "yes" : "no"}` : ""} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  });
  const { numLayers, numHeads, numKvHeads } = model.shape;
  return {
    model: model.ref, numLayers, numHeads, numKvHeads,
    retrieval: meanScores(results, model.shape),
    prompts: prompts.length,
    counted: results.filter((r) => r.counted).length,
    perPrompt: prompts.map((prompt, i) => ({
      length: prompt.ids.length, depth: prompt.depth, value: prompt.value, counted: results[i].counted, answer: model.tokenizer.decode(results[i].answer),
    })),
    params: inputs,
  };
}

/** Validates an artefact read back from the cache; a RazorkvError names `source` and the field. */
export function parseRetrievalProfile(value: unknown, source: string): RetrievalProfile {
  const fail = (field: string, expected: string): never => {
    throw new RazorkvError(`${source}: ${field}: expected ${expected}`);
  };
  if (!value || typeof value !== "object" || Array.isArray(value)) fail("profile", "a retrieval-score object (see `razorkv prepare --policy retrieval-heads`)");
  const v = value as Record<string, unknown>;
  if (typeof v.model !== "string") fail("model", "a string");
  for (const k of ["numLayers", "numHeads", "numKvHeads", "prompts", "counted"]) {
    if (!Number.isInteger(v[k]) || (v[k] as number) < (k === "counted" ? 0 : 1)) fail(k, k === "counted" ? "an integer ≥ 0" : "a positive integer");
  }
  const [L, H, K] = [v.numLayers, v.numHeads, v.numKvHeads] as number[];
  if (H % K !== 0) fail("numHeads", `a multiple of numKvHeads ${K}`);
  if (!Array.isArray(v.retrieval) || v.retrieval.length !== L) fail("retrieval", `an array of ${L} layers`);
  (v.retrieval as unknown[]).forEach((row, l) => {
    if (!Array.isArray(row) || row.length !== H || row.some((x) => typeof x !== "number" || !(x >= 0))) fail(`retrieval[${l}]`, `${H} numbers ≥ 0 (one per query head)`);
  });
  if (!Array.isArray(v.perPrompt) || v.perPrompt.length !== v.prompts) fail("perPrompt", `${v.prompts} prompt records`);
  if (!v.params || typeof v.params !== "object") fail("params", "the preparation inputs");
  return value as RetrievalProfile;
}

/** Per KV head ([layer][kvHead]) the reduction of its query heads' retrieval scores. */
export function kvScores(profile: Pick<RetrievalProfile, "numLayers" | "numHeads" | "numKvHeads" | "retrieval">, groupReduce: "max" | "mean"): number[][] {
  const g = profile.numHeads / profile.numKvHeads;
  return profile.retrieval.map((row) =>
    Array.from({ length: profile.numKvHeads }, (_, kv) => {
      const group = row.slice(kv * g, (kv + 1) * g);
      return groupReduce === "max" ? Math.max(...group) : group.reduce((a, b) => a + b, 0) / g;
    }),
  );
}

/**
 * The protected KV heads, in (layer, kvHead) order: the top round(protectedFraction · N) by KV-head score (ties: the
 * earlier head), or with selection "threshold" every head scoring above `threshold`.
 */
export function selectRetrievalHeads(
  profile: Pick<RetrievalProfile, "numLayers" | "numHeads" | "numKvHeads" | "retrieval">,
  p: Pick<RetrievalHeadsParams, "protectedFraction" | "selection" | "threshold" | "groupReduce">,
): HeadRef[] {
  const K = profile.numKvHeads;
  const flat = kvScores(profile, p.groupReduce).flat();
  const chosen = p.selection === "threshold" ? flat.flatMap((x, i) => (x > p.threshold ? [i] : [])) : topKSlots(flat, Math.round(p.protectedFraction * flat.length));
  return chosen.map((i) => ({ layer: Math.floor(i / K), kvHead: i % K }));
}

function percent(x: number): string {
  return `${Number((x * 100).toFixed(2))}%`;
}

/** The selection as core's HeadSelection (the report draws it): the per-query-head scores and the protected KV heads. */
export function headSelectionOf(profile: RetrievalProfile, p: RetrievalHeadsParams): HeadSelection {
  const protectedHeads = selectRetrievalHeads(profile, p);
  const N = profile.numLayers * profile.numKvHeads;
  const above = kvScores(profile, p.groupReduce).flat().filter((x) => x > p.threshold).length;
  const input = profile.params;
  const haystack = input.haystack === "generated" ? "generated word-salad haystacks" : `haystacks from ${input.haystack.file}`;
  const rule =
    (p.selection === "threshold"
      ? `KV heads with retrieval score > ${p.threshold}: ${protectedHeads.length} of ${N}`
      : `top ${percent(p.protectedFraction)} of KV heads by retrieval score (${protectedHeads.length} of ${N}); ${above} score above ${p.threshold}`) +
    ` (${p.groupReduce} over each GQA group)`;
  return {
    format: HEAD_SELECTION_FORMAT,
    policy: "retrieval-heads",
    title: "Retrieval heads (Wu et al. 2024)",
    description:
      `Retrieval score (arXiv 2404.15574 §2): the share of a needle's tokens a head copies — its most-attended position lies in the needle and ` +
      `holds the token being produced — averaged over ${profile.counted} of ${profile.prompts} needle prompts (${input.lengths.join("/")} tokens, ` +
      `${haystack}, ${input.answer} answers). Protected KV heads keep their whole cache; every other KV head keeps its attention sinks, a recent ` +
      "window and, with compensation on, one compensation token (RazorAttention's layout).",
    rule,
    model: profile.model,
    numLayers: profile.numLayers,
    numHeads: profile.numHeads,
    numKvHeads: profile.numKvHeads,
    scores: [{
      kind: "retrieval", description: "share of needle tokens the head copied (argmax attention on the needle position holding the token produced)",
      per: "query-head", groupReduce: p.groupReduce, values: profile.retrieval,
    }],
    protected: protectedHeads,
    params: { ...input, protectedFraction: p.protectedFraction, selection: p.selection, threshold: p.threshold, groupReduce: p.groupReduce },
  };
}

/**
 * The preparation step: needle prompts built from the model's tokenizer, one prefill and a few decode steps each, the
 * per-head retrieval score. Inputs: everything the prompts and the protocol depend on (not the selection, so a sweep
 * of protectedFraction reuses one artefact).
 */
export const retrievalStep: PreparationStep<typeof params, RetrievalProfile> = {
  description: "retrieval-head scores (Wu et al. 2024): needle prompts built from the tokenizer, the answer fed token by token, each head's argmax checked against the needle",
  version: 1,
  inputs: (p, model) => resolveInputs(p, model) as unknown as Record<string, unknown>,
  run: (model, inputs, log) => measureRetrieval(model, inputs as unknown as RetrievalInputs, log),
  parse: parseRetrievalProfile,
  headSelection: (profile, p) => headSelectionOf(profile, p),
};

export function createRetrievalHeads(p: RetrievalHeadsParams, context: PolicyContext = {}): CompressionPolicy {
  const profile = (context.prepared as RetrievalProfile | undefined) ?? null;
  return protectedHeadsPolicy({
    policy: "retrieval-heads",
    protectedParams: p.selection === "threshold" ? "the protected share (raise threshold)" : "protectedFraction",
    sinks: p.sinks,
    compensation: p.compensation,
    protectedHeads(layout) {
      if (!profile) {
        throw new RazorkvError(
          `retrieval-heads: no retrieval scores were prepared for ${context.modelRef ? `model "${context.modelRef}"` : "this model"}; ` +
            "`razorkv run` and `razorkv prepare --model <ref> --policy retrieval-heads` measure them",
        );
      }
      if (layout && (layout.numLayers !== profile.numLayers || layout.numKvHeads !== profile.numKvHeads)) {
        throw new RazorkvError(
          `retrieval-heads: the retrieval scores of "${profile.model}" cover ${profile.numLayers} layers × ${profile.numKvHeads} KV heads, the model's cache ` +
            `${layout.numLayers} × ${layout.numKvHeads}; prepare this model`,
        );
      }
      if (profile.counted === 0) {
        throw new RazorkvError(
          `retrieval-heads: the model answered none of the ${profile.prompts} needle prompts, so every retrieval score is 0 and no head can be chosen; ` +
            'use answer: "teacher-forced" or shorter lengths',
        );
      }
      const heads = new Set(selectRetrievalHeads(profile, p).map((r) => r.layer * profile.numKvHeads + r.kvHead));
      return { heads, totalHeads: profile.numLayers * profile.numKvHeads };
    },
  });
}

export default definePolicy({
  name: "retrieval-heads",
  description: "Retrieval heads (Wu et al. 2024, arXiv 2404.15574) kept whole, selected by retrieval score on needle prompts; RazorAttention's layout elsewhere",
  params,
  create: createRetrievalHeads,
  prepare: retrievalStep,
});
