/**
 * Test-only: comparing our forward pass with a tools/arch-parity fixture (transformers' log-probabilities of a tiny
 * random-weight model), shared by arch-parity.test.ts (safetensors and F32 GGUF) and arch-parity-q4km.test.ts.
 */
import { defaultBackend } from "./language-model.js";
import { typescriptBackend, type ComputeBackend } from "./model/backend.js";
import type { LlamaModel } from "./model/llama.js";
import { logSoftmax } from "./model/ops.js";

/** The fields of a fixture model the comparisons read (tools/arch-parity/README.md, "Fixture schema"). */
export interface LogprobReference {
  ids: number[];
  /** log p(ids[t+1] | ids[0..t]) for t < ids.length − 1. */
  targetLogprobs: number[];
  argmax: number[];
  argmaxLogprobs: number[];
  /** Whole log-prob rows at a few positions. */
  fullRows: { pos: number; logprobs: number[] }[];
  /** Positions `at`… run as a second call continuing, through the KV cache, a prefill of `at` tokens. */
  continued: { at: number; targetLogprobs: number[]; lastRow: number[] };
}

/** Max |Δ log-prob| over every value the fixture holds for one prefill: next-token, argmax, and the full rows. */
export function maxDifference(model: LlamaModel, ref: LogprobReference): number {
  const V = model.config.vocabSize;
  const { logits } = model.prefill(ref.ids, { logits: "all" });
  const full = new Map(ref.fullRows.map((r) => [r.pos, r.logprobs]));
  let max = 0;
  for (let t = 0; t < ref.ids.length; t++) {
    const lp = logSoftmax(logits.subarray(t * V, (t + 1) * V));
    if (t + 1 < ref.ids.length) max = Math.max(max, Math.abs(lp[ref.ids[t + 1]] - ref.targetLogprobs[t]));
    max = Math.max(max, Math.abs(lp[ref.argmax[t]] - ref.argmaxLogprobs[t]));
    full.get(t)?.forEach((x, id) => (max = Math.max(max, Math.abs(lp[id] - x))));
  }
  return max;
}

/**
 * The same for the continued leg (the fixture is transformers doing the same with its KV cache on a fresh model):
 * dynamic NTK and LongRoPE choose their frequencies per call, so this differs from one prefill where they apply.
 */
export function maxDifferenceContinued(model: LlamaModel, ref: LogprobReference): number {
  const V = model.config.vocabSize;
  const { at, targetLogprobs, lastRow } = ref.continued;
  const { cache } = model.prefill(ref.ids.slice(0, at), { logits: "none" });
  const { logits } = model.forward(cache, ref.ids.slice(at), { logits: "all" });
  let max = 0;
  for (let t = at; t < ref.ids.length; t++) {
    const lp = logSoftmax(logits.subarray((t - at) * V, (t - at + 1) * V));
    if (t + 1 < ref.ids.length) max = Math.max(max, Math.abs(lp[ref.ids[t + 1]] - targetLogprobs[t - at]));
    else lastRow.forEach((x, id) => (max = Math.max(max, Math.abs(lp[id] - x))));
  }
  return max;
}

/** The TypeScript reference, and the native kernels when they load. */
export async function parityBackends(): Promise<ComputeBackend[]> {
  const native = await defaultBackend();
  return native === typescriptBackend ? [typescriptBackend] : [typescriptBackend, native];
}
