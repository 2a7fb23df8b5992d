import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkPolicyConformance, defaultParams, kvBudget, noStats, parseHeadSelection, parseParams, prepare, randomPrefill, RazorkvError,
  serializeArtefact, type LayerAttentionStats, type ObserveOptions, type PolicyDefinition, type PreparationModel, type PreparationTokenizer,
} from "@razorkv/core";
import { afterAll, describe, expect, it } from "vitest";
import policy, {
  createRetrievalHeads, needlePrompts, params, selectRetrievalHeads, type RetrievalHeadsParams, type RetrievalInputs, type RetrievalProfile,
} from "./index.js";

/**
 * A word-level tokenizer: control tokens, newlines, spaces, single digits (without their space, as SmolLM2 splits
 * " 4829" into " ", "4", "8", …), punctuation, the words of the prompts' texts (ids below 100), and 300 filler words
 * " wab", " wac", … at ids 100–399 that the generated haystack draws from. Unknown text throws.
 */
function stubTokenizer(): PreparationTokenizer {
  const vocab: string[] = ["<|user|>", "<|end|>", "<|assistant|>", "\n", "\n\n", " ", ".", "?", ":", ...Array.from({ length: 10 }, (_, d) => String(d))];
  const texts = "The text below hides a special magic number secret passphrase Read it carefully and remember after the you will be asked for What is mentioned in above";
  for (const w of texts.split(" ")) for (const v of [w, ` ${w}`]) if (!vocab.includes(v)) vocab.push(v);
  while (vocab.length < 100) vocab.push(`<unused${vocab.length}>`);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; vocab.length < 400; i++) vocab.push(` w${letters[1 + Math.floor(i / 26) % 25]}${letters[i % 26]}`);
  const index = new Map(vocab.map((v, i) => [v, i]));
  const piece = /<\|[a-z]+\|>|\n\n|\n| ?[A-Za-z]+|[0-9]|[.?:]| /g;
  return {
    vocabSize: vocab.length, bosId: null, eosId: 1,
    encode(text, options = {}) {
      return [...text.matchAll(piece)].map((m) => {
        if (m[0].startsWith("<|") && options.parseSpecialTokens === false) throw new Error(`control text ${m[0]} in plain text`);
        const id = index.get(m[0]);
        if (id === undefined) throw new Error(`stub tokenizer: unknown piece ${JSON.stringify(m[0])}`);
        return id;
      });
    },
    decode: (ids: readonly number[]) => ids.map((i) => vocab[i]).join(""),
    applyChatTemplate: (messages) => `<|user|>\n${messages[0].content}<|end|>\n<|assistant|>\n`,
    isEndOfGeneration: (id) => id === 1,
  };
}

const tokenizer = stubTokenizer();
const p = (overrides: Partial<RetrievalHeadsParams> = {}): RetrievalHeadsParams => ({ ...defaultParams(params), wordRange: [100, 400], ...overrides });
const shape = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 4, vocabSize: 400, maxContext: 512, layerWindows: [null, null, null], attentionScale: 0.5 };

/**
 * A stand-in model over the stub tokenizer with one perfect retrieval head, layer 1 query head 2 (KV head 1): at every
 * decode step it attends the needle position holding the token that comes next in the teacher-forced answer (read off
 * the sequence fed so far). Every other head attends position 0. Counts prefills.
 */
function retrievalModel(digest = "digest-1") {
  let prefills = 0;
  const model = {
    ref: "stub-model", digest, shape, tokenizer,
    get prefills() {
      return prefills;
    },
    prefill(prompt: ArrayLike<number>) {
      prefills++;
      const fed = Array.from(prompt);
      const isDigit = (id: number) => /^[0-9]$/.test(tokenizer.decode([id]));
      // the needle: the prompt's digits (the generated haystack has none)
      const needle = fed.flatMap((id, i) => (isDigit(id) ? [i] : []));
      const promptLength = fed.length;
      const sequence = {
        get length() {
          return fed.length;
        },
        extend(tokens: ArrayLike<number>, options: ObserveOptions = {}) {
          fed.push(...Array.from(tokens));
          const stats: LayerAttentionStats[] = [];
          if (options.stats?.accumulated) {
            // the answer's digits fed so far say which needle digit comes next
            const next = needle[fed.slice(promptLength).filter(isDigit).length] ?? 0;
            for (let layer = 0; layer < 3; layer++) {
              stats.push({
                accumulated: [0, 1, 2, 3].map((h) => {
                  const w = new Float32Array(fed.length).fill(0.5 / fed.length);
                  w[layer === 1 && h === 2 ? next : 0] += 0.5;
                  return w;
                }),
              });
            }
          }
          return { stats, logits: new Float32Array(shape.vocabSize) };
        },
        positions: () => Int32Array.from({ length: fed.length }, (_, s) => s),
      };
      return { stats: [], logits: new Float32Array(0), sequence };
    },
  };
  return model satisfies PreparationModel;
}

const inputsOf = (params: RetrievalHeadsParams) => policy.prepare!.inputs(params, retrievalModel()) as unknown as RetrievalInputs;

describe("policy-retrieval-heads: needle prompts", () => {
  const prompts = needlePrompts({ tokenizer }, inputsOf(p({ lengths: [120, 200], depths: [0, 0.5, 1], samplesPerCell: 2 })));

  it("are exactly as long as asked, with the needle's value in its span and repeated by the answer", () => {
    expect(prompts.length).toBe(12);
    for (const prompt of prompts) {
      expect([120, 200]).toContain(prompt.ids.length);
      const value = prompt.ids.slice(prompt.span[0], prompt.span[1]);
      expect(tokenizer.decode(value)).toBe(prompt.value);
      expect(prompt.value).toMatch(/^[1-9][0-9]{6}$/);
      expect(prompt.answer.slice(prompt.valueStart)).toEqual(value);
      expect(tokenizer.decode([...prompt.answer])).toBe(`The special magic number is ${prompt.value}`);
      // the value's digits occur nowhere else in the prompt: the generated haystack is words
      expect(tokenizer.decode([...prompt.ids]).match(/[0-9]/g)!.join("")).toBe(prompt.value);
      // chat frame around the haystack: header + instruction first, question + generation prompt last
      expect(tokenizer.decode(prompt.ids.slice(0, 4))).toBe("<|user|>\nThe text");
      expect(tokenizer.decode(prompt.ids.slice(-7))).toBe(" text above?<|end|>\n<|assistant|>\n");
    }
  });

  it("put the needle at the sentence end nearest its depth, and draw a new haystack and needle per prompt, the same for the same seed", () => {
    const at = (i: number) => tokenizer.decode([...prompts[i].ids]).indexOf(" The special magic number is");
    const text = (i: number) => tokenizer.decode([...prompts[i].ids]);
    // depth 0: right after the instruction's blank line; depth 1: right before the question's
    expect(text(0).slice(at(0) - 2, at(0))).toBe("\n\n");
    expect(text(4).slice(at(4) + ` The special magic number is ${prompts[4].value}.`.length).startsWith("\n\nWhat")).toBe(true);
    // depth 0.5: after a period, about half-way through the haystack
    expect(text(2)[at(2) - 1]).toBe(".");
    const hayStart = text(2).indexOf("\n\n") + 2;
    const hayEnd = text(2).lastIndexOf("\n\nWhat");
    expect((at(2) - hayStart) / (hayEnd - hayStart - 38)).toBeGreaterThan(0.3);
    expect((at(2) - hayStart) / (hayEnd - hayStart - 38)).toBeLessThan(0.7);
    expect(new Set(prompts.map((x) => x.value)).size).toBe(12);
    expect(needlePrompts({ tokenizer }, inputsOf(p({ lengths: [120, 200], depths: [0, 0.5, 1], samplesPerCell: 2 })))).toEqual(prompts);
    expect(needlePrompts({ tokenizer }, inputsOf(p({ lengths: [120], depths: [0], seed: 7 })))[0].value).not.toBe(prompts[0].value);
  });

  it("a words needle leaves its words out of the haystack; a file haystack takes windows of the file", () => {
    const [w] = needlePrompts({ tokenizer }, inputsOf(p({ lengths: [150], depths: [0.5], needle: "words", needleLength: 4 })));
    const value = w.ids.slice(w.span[0], w.span[1]);
    expect(value.length).toBe(4);
    expect(tokenizer.decode([...w.answer])).toBe(`The secret passphrase is ${w.value}`);
    for (const id of value) expect(w.ids.filter((x) => x === id).length).toBe(1);
    const dir = mkdtempSync(join(tmpdir(), "razorkv-retrieval-file-"));
    try {
      const file = join(dir, "hay.txt");
      writeFileSync(file, Array.from({ length: 80 }, (_, i) => ` wba wbb wbc${i % 2 ? " wbd" : ""}.`).join(""));
      const [f] = needlePrompts({ tokenizer }, inputsOf(p({ lengths: [150], depths: [0.5], haystackFile: file })));
      expect(f.ids.length).toBe(150);
      expect(tokenizer.decode(f.ids.slice(f.span[0], f.span[1]))).toBe(f.value);
      expect(inputsOf(p({ lengths: [150], haystackFile: file })).haystack).toEqual({ file, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuse lengths the model cannot take and a frame longer than the prompt, naming the parameter", () => {
    expect(() => inputsOf(p({ lengths: [500] }))).toThrow("retrieval-heads: params.lengths: a 500-token prompt and its answer (48 tokens) exceed the context of stub-model (512)");
    expect(() => needlePrompts({ tokenizer }, inputsOf(p({ lengths: [40] })))).toThrow(/^retrieval-heads: a needle prompt of 40 tokens leaves no room for the haystack \(frame \d+ tokens, needle 14\); raise params\.lengths$/);
    expect(() => parseParams(params, { depths: [1.5] }, "@razorkv/policy-retrieval-heads")).toThrow(
      "@razorkv/policy-retrieval-heads: params.depths: expected a non-empty list of depths in [0, 1], got [1.5]",
    );
  });
});

describe("policy-retrieval-heads: preparation", () => {
  const dir = mkdtempSync(join(tmpdir(), "razorkv-retrieval-heads-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const definition = policy as unknown as PolicyDefinition;
  const small = { lengths: [120, 160], depths: [0.25, 0.75] };

  it("scores the planted retrieval head 1 and every other head 0, caches the artefact, and reuses it for any selection", () => {
    const model = retrievalModel();
    const first = prepare(definition, p(small), model, { cacheDir: dir })!;
    expect(first.fromCache).toBe(false);
    const profile = first.artefact as RetrievalProfile;
    expect(profile.retrieval).toEqual([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]);
    expect(profile.prompts).toBe(4);
    expect(profile.counted).toBe(4);
    expect(readFileSync(first.plan.path, "utf8")).toBe(serializeArtefact(profile));
    const again = prepare(definition, p({ ...small, protectedFraction: 0.4, selection: "threshold" }), model, { cacheDir: dir })!;
    expect(again.fromCache).toBe(true);
    expect(model.prefills).toBe(4);
    expect(prepare(definition, p({ ...small, seed: 3 }), model, { cacheDir: dir })!.fromCache).toBe(false);
    // 15% of 6 KV heads = round(0.9) = 1 head: layer 1, KV head 1
    const selection = parseHeadSelection(JSON.parse(JSON.stringify(definition.prepare!.headSelection!(profile, p(small)))), "sel");
    expect(selection.protected).toEqual([{ layer: 1, kvHead: 1 }]);
    expect(selection.rule).toBe("top 15% of KV heads by retrieval score (1 of 6); 1 score above 0.1 (max over each GQA group)");
    expect(selection.scores[0]).toMatchObject({ kind: "retrieval", per: "query-head", groupReduce: "max" });
  });

  it("the policy protects the selected heads with RazorAttention's layout, and refuses what it cannot do", () => {
    const profile = prepare(definition, p(small), retrievalModel(), { cacheDir: dir })!.artefact as RetrievalProfile;
    const cacheShape = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 4 };
    const retrieval = createRetrievalHeads(p(), { modelRef: "stub-model", prepared: profile });
    checkPolicyConformance(retrieval, { shape: cacheShape, lengths: [57, 101, 263], budgets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] });
    const { cache } = randomPrefill({ ...cacheShape, length: 90 });
    const out = retrieval.compress(cache, noStats, kvBudget(0.5));
    expect(out.heads[3].length).toBe(90); // layer 1, KV head 1: whole
    expect(out.heads.filter((h) => h.length === 90).length).toBe(1);
    expect(() => retrieval.compress(cache, noStats, kvBudget(0.1))).toThrow(
      "retrieval-heads: kvBudget 0.1 is below the protected share 0.1667 (1 of 6 KV heads keep their whole cache): infeasible for this selection; raise the budget or lower protectedFraction",
    );
    expect(() => createRetrievalHeads(p(), { modelRef: "m" }).checkFeasible!(90, kvBudget(0.5), cache)).toThrow(
      "retrieval-heads: no retrieval scores were prepared for model \"m\"; `razorkv run` and `razorkv prepare --model <ref> --policy retrieval-heads` measure them",
    );
    const other = randomPrefill({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, length: 30 }).cache;
    expect(() => retrieval.compress(other, noStats, kvBudget(0.5))).toThrow(/cover 3 layers × 2 KV heads, the model's cache 2 × 2; prepare this model$/);
    const none = { ...profile, counted: 0 };
    expect(() => createRetrievalHeads(p(), { prepared: none }).compress(cache, noStats, kvBudget(0.5))).toThrow(
      'retrieval-heads: the model answered none of the 4 needle prompts, so every retrieval score is 0 and no head can be chosen; use answer: "teacher-forced" or shorter lengths',
    );
    expect(selectRetrievalHeads(profile, { ...p(), selection: "threshold" })).toEqual([{ layer: 1, kvHead: 1 }]);
  });

  it("rejects a broken artefact, naming the file and the field", () => {
    expect(() => definition.prepare!.parse({ model: "m", numLayers: 2, numHeads: 4, numKvHeads: 2, prompts: 1, counted: 1, retrieval: [[0, 0, 0, 0]] }, "x.json")).toThrow(
      RazorkvError,
    );
    expect(() => definition.prepare!.parse({ model: "m", numLayers: 2, numHeads: 4, numKvHeads: 2, prompts: 1, counted: 1, retrieval: [[0, 0, 0, 0]] }, "x.json")).toThrow(
      "x.json: retrieval: expected an array of 2 layers",
    );
  });
});
