/**
 * Parity per architecture (issue #16): tiny random-weight models of each family, built and run by transformers
 * (tools/arch-parity/generate.py wrote test/fixtures/arch/), loaded here from the safetensors checkpoint and from
 * the F32 GGUF that llama.cpp's convert_hf_to_gguf.py made of it. At every position of a 300-token input, with the
 * long-context RoPE scaling active and sliding windows far shorter than the input, our log-probabilities must be
 * within 1e-4 of transformers'. Phi-3's continued legs start below its LongRoPE threshold, so they also check which
 * factor list each call takes.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openGguf } from "./formats/gguf.js";
import { openSafetensors, readSafetensorsHeader } from "./formats/safetensors.js";
import { LlamaModel } from "./model/llama.js";
import { maxDifference, maxDifferenceContinued, parityBackends } from "./arch-parity.testing.js";
import { ropeFrequencies } from "./model/rope.js";
import type { LlamaConfig, ModelWeights } from "./model/types.js";

interface Reference {
  dir: string;
  modelType: string;
  configFormat: string;
  ids: number[];
  targetLogprobs: number[];
  argmax: number[];
  argmaxLogprobs: number[];
  fullRows: { pos: number; logprobs: number[] }[];
  continued: { at: number; targetLogprobs: number[]; lastRow: number[]; differsFromPrefill?: number };
  invFreq: number[];
  attentionScaling: number;
  sensitivity: number;
  /**
   * How far transformers' log-probs move when each setting is removed (sliding window, soft caps) or, for LongRoPE,
   * when the short factor list is used where transformers takes the long one.
   */
  effects?: Record<string, number>;
  gguf: string | null;
}
const fixtures = new URL("../test/fixtures/arch/", import.meta.url).pathname;
const reference = JSON.parse(readFileSync(join(fixtures, "reference.json"), "utf8")) as {
  tolerance: number;
  models: Record<string, Reference>;
};
const TOLERANCE = 1e-4;

const tmp = mkdtempSync(join(tmpdir(), "razorkv-arch-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const backends = await parityBackends();

describe.each(Object.entries(reference.models))("%s", (name, ref) => {
  const formats: [string, () => Promise<ModelWeights>][] = [
    ["safetensors", () => openSafetensors(join(fixtures, ref.dir))],
  ];
  if (ref.gguf) formats.push(["F32 GGUF", () => openGguf(join(fixtures, ref.dir, ref.gguf!))]);

  for (const [format, open] of formats) {
    it(`${format}: log-probs within ${TOLERANCE} of transformers at every one of ${ref.ids.length} positions`, async () => {
      const weights = await open();
      for (const backend of backends) {
        const model = new LlamaModel(weights, backend);
        const diff = maxDifference(model, ref);
        const continued = maxDifferenceContinued(model, ref);
        console.info(
          `arch parity ${name} ${format} (${backend.name}): max |Δ log-prob| = ${diff.toExponential(2)}, ` +
            `continuing a ${ref.continued.at}-token prefill ${continued.toExponential(2)}`,
        );
        expect(diff).toBeLessThanOrEqual(TOLERANCE);
        expect(continued).toBeLessThanOrEqual(TOLERANCE);
      }
    });

    it(`${format}: RoPE tables as transformers computed them, and the scaling matters`, async () => {
      const weights = await open();
      const c = weights.config;
      const { invFreq, attentionFactor } = ropeFrequencies(c.headDim, c.ropeTheta, c.ropeScaling, ref.ids.length);
      let worst = 0;
      invFreq.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - ref.invFreq[i]) / ref.invFreq[i])));
      // bit for bit, except through llama.cpp's frequency factors (stored divisors: an ulp, 1.2e-7 relative) and
      // for plain RoPE, whose table is computed in double and rounded once (an ulp off torch's float32 steps at some
      // frequencies; kept so that the existing models' numbers do not move)
      const ulpAllowed = c.ropeScaling === undefined || c.ropeScaling.type === "frequency-factors";
      expect(worst).toBeLessThanOrEqual(ulpAllowed ? 1.2e-7 : 0);
      expect(Math.fround(attentionFactor)).toBe(Math.fround(ref.attentionScaling));
      // the same weights under plain RoPE are far off: a loader that dropped the scaling would fail the test above
      if (c.ropeScaling) {
        const plain: ModelWeights = { config: { ...c, ropeScaling: undefined }, tensor: (n) => weights.tensor(n), has: (n) => weights.has(n) };
        expect(maxDifference(new LlamaModel(plain), ref)).toBeGreaterThan(100 * TOLERANCE);
      }
    });
  }
});

describe.each(Object.entries(reference.models).filter(([, ref]) => ref.effects))("%s: what the window, the caps and the factor lists change", (name, ref) => {
  const formats: [string, () => Promise<ModelWeights>][] = [["safetensors", () => openSafetensors(join(fixtures, ref.dir))]];
  if (ref.gguf) formats.push(["F32 GGUF", () => openGguf(join(fixtures, ref.dir, ref.gguf!))]);
  const without: Record<string, (c: LlamaConfig) => LlamaConfig> = {
    slidingWindow: (c) => ({ ...c, layerWindows: undefined }),
    attn_logit_softcapping: (c) => ({ ...c, attentionSoftcap: undefined }),
    final_logit_softcapping: (c) => ({ ...c, finalSoftcap: undefined }),
    longFactor: (c) => {
      if (c.ropeScaling?.type !== "longrope") throw new Error(`${name}: a longFactor effect without LongRoPE`);
      return { ...c, ropeScaling: { ...c.ropeScaling, longFactor: c.ropeScaling.shortFactor } };
    },
  };
  for (const [format, open] of formats) {
    it(`${format}: each of ${Object.keys(ref.effects!).join(", ")} moves our log-probs as far as it moves transformers'`, async () => {
      const weights = await open();
      for (const setting of Object.keys(ref.effects!)) {
        const changed: ModelWeights = { config: without[setting](weights.config), tensor: (n) => weights.tensor(n), has: (n) => weights.has(n) };
        // a loader that dropped the setting would be off by about what transformers measured without it
        expect(maxDifference(new LlamaModel(changed), ref), `${name} without ${setting}`).toBeGreaterThan(0.5 * ref.effects![setting]);
      }
    });
  }
});

describe.each(Object.entries(reference.models).filter(([, ref]) => ref.effects?.slidingWindow !== undefined))("%s: the cache of a windowed model", (_name, ref) => {
  it("windowed layers hold the last min(N, W) positions after a prefill, the others all N", async () => {
    const model = new LlamaModel(await openSafetensors(join(fixtures, ref.dir)));
    const { cache } = model.prefill(ref.ids.slice(0, 100), { logits: "none" });
    const windows = model.config.layerWindows!;
    for (let l = 0; l < model.config.numLayers; l++) {
      const head = cache.head(l, 0);
      const held = windows[l] === null ? 100 : Math.min(100, windows[l]!);
      expect(head.length).toBe(held);
      expect(head.positions[0]).toBe(100 - held);
    }
    expect(cache.fullEntryCount()).toBe(windows.reduce<number>((n, w) => n + (w === null ? 100 : Math.min(100, w)) * model.config.numKvHeads, 0));
  });
});

const longrope = Object.entries(reference.models).filter(([, ref]) => ref.continued.differsFromPrefill !== undefined);

describe.each(longrope)("%s: Phi-3's fused tensors and LongRoPE's choice of factors", (name, ref) => {
  it("attn_q/k/v and ffn_gate/up are the rows of qkv_proj and gate_up_proj in the order transformers slices them, from both files", async () => {
    const dir = join(fixtures, ref.dir);
    const header = readSafetensorsHeader(join(dir, "model.safetensors"));
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, number>;
    const headDim = config["hidden_size"] / config["num_attention_heads"];
    const q = config["num_attention_heads"] * headDim;
    const kv = config["num_key_value_heads"] * headDim;
    const F = config["intermediate_size"];
    /** Rows [begin, end) of a stored F32 tensor, read straight from the file (not through the loader). */
    const rows = (hfName: string, begin: number, end: number): Float32Array => {
      const entry = header.tensors.get(hfName)!;
      expect(entry.dtype).toBe("F32");
      const bytes = readFileSync(entry.file).subarray(entry.fileOffset, entry.fileOffset + entry.byteLength);
      const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      return all.subarray(begin * entry.shape[1], end * entry.shape[1]);
    };
    const expected: [string, Float32Array][] = [];
    for (let l = 0; l < config["num_hidden_layers"]; l++) {
      const qkv = `model.layers.${l}.self_attn.qkv_proj.weight`;
      const gateUp = `model.layers.${l}.mlp.gate_up_proj.weight`;
      expected.push(
        [`blk.${l}.attn_q.weight`, rows(qkv, 0, q)],
        [`blk.${l}.attn_k.weight`, rows(qkv, q, q + kv)],
        [`blk.${l}.attn_v.weight`, rows(qkv, q + kv, q + 2 * kv)],
        // Phi3MLP: gate, up = gate_up_proj(x).chunk(2); up * silu(gate)
        [`blk.${l}.ffn_gate.weight`, rows(gateUp, 0, F)],
        [`blk.${l}.ffn_up.weight`, rows(gateUp, F, 2 * F)],
      );
    }
    for (const weights of [await openSafetensors(dir), await openGguf(join(dir, ref.gguf!))]) {
      for (const [tensor, data] of expected) expect(weights.tensor(tensor).data, `${weights.source}: ${tensor}`).toEqual(data);
      expect(weights.tensorNames!()).not.toContain("blk.0.attn_qkv.weight");
    }
  });

  it(`the continued leg tells transformers' per-call choice from one list for the whole run (llama.cpp's, by context size)`, async () => {
    const weights = await openSafetensors(join(fixtures, ref.dir));
    const c = weights.config;
    if (c.ropeScaling?.type !== "longrope") throw new Error(`${name}: expected LongRoPE, found ${c.ropeScaling?.type}`);
    expect(ref.continued.at).toBeLessThanOrEqual(c.ropeScaling.originalContext);
    // long factors from the first token on, as llama.cpp runs a context longer than the original
    const alwaysLong: ModelWeights = {
      config: { ...c, ropeScaling: { ...c.ropeScaling, shortFactor: c.ropeScaling.longFactor } },
      tensor: (n) => weights.tensor(n),
      has: (n) => weights.has(n),
    };
    const off = maxDifferenceContinued(new LlamaModel(alwaysLong), ref);
    console.info(`arch parity ${name}: the long factors from the start miss the continued leg by ${off.toExponential(2)} (transformers' continued vs one prefill: ${ref.continued.differsFromPrefill})`);
    expect(off).toBeGreaterThan(100 * TOLERANCE);
    // …while the one prefill, longer than the original context, takes the long list either way
    expect(maxDifference(new LlamaModel(alwaysLong), ref)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe("config.json as transformers 4.x and 5.x write it: the same model", () => {
  /** A copy of a fixture checkpoint with its RoPE settings rewritten. */
  function rewritten(dir: string, rewrite: (json: Record<string, unknown>) => Record<string, unknown>): string {
    const out = mkdtempSync(join(tmp, `${dir}-`));
    const json = JSON.parse(readFileSync(join(fixtures, dir, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(out, "config.json"), JSON.stringify(rewrite(json)));
    copyFileSync(join(fixtures, dir, "model.safetensors"), join(out, "model.safetensors"));
    return out;
  }

  it("5.x rope_parameters → 4.x rope_theta + rope_scaling (rope_type, or type)", async () => {
    const original = await openSafetensors(join(fixtures, "llama3"));
    for (const typeKey of ["rope_type", "type"]) {
      const dir = rewritten("llama3", ({ rope_parameters, ...rest }) => {
        const { rope_theta, rope_type, ...scaling } = rope_parameters as Record<string, unknown>;
        return { ...rest, rope_theta, rope_scaling: { ...scaling, [typeKey]: rope_type } };
      });
      expect((await openSafetensors(dir)).config).toEqual(original.config);
    }
  });

  it("4.x rope_scaling with type → 5.x rope_parameters", async () => {
    const original = await openSafetensors(join(fixtures, "qwen2-yarn"));
    const dir = rewritten("qwen2-yarn", ({ rope_scaling, rope_theta, ...rest }) => {
      const { type, ...scaling } = rope_scaling as Record<string, unknown>;
      return { ...rest, rope_parameters: { ...scaling, rope_type: type, rope_theta } };
    });
    expect((await openSafetensors(dir)).config).toEqual(original.config);
  });
});
