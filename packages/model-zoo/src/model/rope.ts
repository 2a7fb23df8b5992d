/**
 * Rotary position embedding in Hugging Face's layout ("rotate half"): dimension i of a head rotates with
 * dimension i + headDim/2 by angle position · invFreq[i], invFreq[i] = θ^(−2i/headDim) (Su et al. 2021, RoFormer
 * eq. 34; HF LlamaRotaryEmbedding). GGUF files of llama architecture store Q/K permuted for adjacent-pair rotation;
 * the loader undoes that, so this is the only RoPE.
 *
 * Long-context scalings change invFreq (and, for YaRN and LongRoPE, the magnitude of cos and sin); `ropeFrequencies` computes
 * them as transformers' `ROPE_INIT_FUNCTIONS` does, step by step in float32 (Math.fround after every tensor
 * operation), so that our tables equal transformers' to the bit or within an ulp.
 */
import type { RopeScaling } from "./types.js";

const f32 = Math.fround;

export interface RopeFrequencies {
  /** [headDim/2] inverse frequencies, float32 values. */
  readonly invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's and LongRoPE's attention factor; 1 otherwise). */
  readonly attentionFactor: number;
}

/**
 * The inverse frequencies for a call whose sequence reaches `sequenceLength` tokens (largest position + 1): only
 * dynamic NTK and LongRoPE depend on it, as transformers' `dynamic_rope_update` recomputes them from the call's
 * positions (default 0: the frequencies a model starts with).
 */
export function ropeFrequencies(
  headDim: number,
  theta: number,
  scaling: RopeScaling | undefined,
  sequenceLength = 0,
): RopeFrequencies {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  // exponent 2i/d as a float32 tensor (torch.arange(0, dim, 2).float() / dim)
  const exponent = (i: number) => f32((2 * i) / headDim);
  // base ** exponent in float32, then 1.0 / it
  const inverse = (base: number) => {
    const out = new Float32Array(half);
    for (let i = 0; i < half; i++) out[i] = f32(1 / f32(Math.pow(base, exponent(i))));
    return out;
  };
  if (scaling === undefined) {
    // computed as HF does (float32 inverse frequencies), so angles round the same way
    for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(theta, (2 * i) / headDim);
    return { invFreq, attentionFactor: 1 };
  }
  const base = f32(theta);
  switch (scaling.type) {
    case "linear": {
      // _compute_linear_scaling_rope_parameters: inv_freq /= factor
      const plain = inverse(base);
      for (let i = 0; i < half; i++) invFreq[i] = f32(plain[i] / f32(scaling.factor));
      return { invFreq, attentionFactor: 1 };
    }
    case "dynamic": {
      // _compute_dynamic_ntk_parameters, with seq_len a tensor (as dynamic_rope_update passes it): float32 steps
      const length = Math.max(sequenceLength, scaling.originalContext);
      if (length <= scaling.originalContext) return { invFreq: inverse(base), attentionFactor: 1 };
      const factor = f32(scaling.factor);
      const ratio = f32(f32(f32(factor * length) / scaling.originalContext) - f32(scaling.factor - 1));
      // torch raises a float32 tensor to a Python float exponent without rounding the exponent to float32
      const grown = f32(base * f32(Math.pow(ratio, headDim / (headDim - 2))));
      return { invFreq: inverse(grown), attentionFactor: 1 };
    }
    case "llama3": {
      // _compute_llama3_parameters
      const plain = inverse(base);
      const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
      const lowFreqWavelen = originalContext / lowFreqFactor;
      const highFreqWavelen = originalContext / highFreqFactor;
      for (let i = 0; i < half; i++) {
        const wavelen = f32(f32(2 * Math.PI) / plain[i]);
        const scaled = wavelen > lowFreqWavelen ? f32(plain[i] / f32(factor)) : plain[i];
        const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
        if (!medium) {
          invFreq[i] = scaled;
          continue;
        }
        const smooth = f32(f32(f32(originalContext / wavelen) - f32(lowFreqFactor)) / f32(highFreqFactor - lowFreqFactor));
        invFreq[i] = f32(f32(f32(f32(1 - smooth) * scaled) / f32(factor)) + f32(smooth * scaled));
      }
      return { invFreq, attentionFactor: 1 };
    }
    case "yarn": {
      // _compute_yarn_parameters
      const { factor, originalContext, betaFast, betaSlow, truncate } = scaling;
      const correctionDim = (rotations: number) =>
        (headDim * Math.log(originalContext / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, headDim - 1);
      if (low === high) high += 0.001; // transformers' guard against a zero-width ramp
      for (let i = 0; i < half; i++) {
        const posFreq = f32(Math.pow(base, exponent(i)));
        const extrapolation = f32(1 / posFreq);
        const interpolation = f32(1 / f32(f32(factor) * posFreq));
        const ramp = Math.min(1, Math.max(0, f32(f32(i - f32(low)) / f32(high - low))));
        const keep = f32(1 - ramp); // weight of the original (extrapolated) frequency
        invFreq[i] = f32(f32(interpolation * f32(1 - keep)) + f32(extrapolation * keep));
      }
      return { invFreq, attentionFactor: scaling.attentionFactor };
    }
    case "longrope": {
      // _compute_longrope_parameters: 1.0 / (ext_factors * base ** (arange(0, dim, 2) / dim)), float32 tensors;
      // the long list once the call's sequence is longer than the original context (longrope_frequency_update)
      const factors = sequenceLength > scaling.originalContext ? scaling.longFactor : scaling.shortFactor;
      if (scaling.shortFactor.length !== half || scaling.longFactor.length !== half) {
        throw new Error(`LongRoPE: ${scaling.shortFactor.length} short and ${scaling.longFactor.length} long factors for ${half} frequencies`);
      }
      for (let i = 0; i < half; i++) invFreq[i] = f32(1 / f32(f32(factors[i]) * f32(Math.pow(base, exponent(i)))));
      return { invFreq, attentionFactor: scaling.attentionFactor };
    }
    case "frequency-factors": {
      // llama.cpp ggml_rope_cache_init: theta / freq_factors[i]
      if (scaling.factors.length !== half) {
        throw new Error(`RoPE frequency factors: ${scaling.factors.length} values for ${half} frequencies`);
      }
      const plain = inverse(base);
      for (let i = 0; i < half; i++) invFreq[i] = f32(plain[i] / f32(scaling.factors[i]));
      return { invFreq, attentionFactor: 1 };
    }
  }
}

export class Rope {
  readonly headDim: number;
  private readonly theta: number;
  private readonly scaling: RopeScaling | undefined;
  private readonly attentionFactor: number;
  /** Angles of the frequencies a call within the original context uses (all calls, for every scaling but two). */
  private readonly table: AngleTable;
  /** LongRoPE: angles of the long factors, for calls whose sequence is longer than the original context. */
  private readonly longTable: AngleTable | null;

  constructor(headDim: number, theta: number, scaling?: RopeScaling) {
    if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head dimension, got ${headDim}`);
    this.headDim = headDim;
    this.theta = theta;
    this.scaling = scaling;
    const short = ropeFrequencies(headDim, theta, scaling);
    this.attentionFactor = short.attentionFactor;
    this.table = new AngleTable(short.invFreq, short.attentionFactor);
    const long = scaling?.type === "longrope" ? ropeFrequencies(headDim, theta, scaling, scaling.originalContext + 1) : null;
    this.longTable = long && new AngleTable(long.invFreq, long.attentionFactor);
  }

  /**
   * Rotates `numHeads` heads of each of the rows in place; row r is at position positions[r]. `sequenceLength`
   * (default: largest position + 1) is the length the sequence reaches in this call; dynamic NTK scales by it, and
   * LongRoPE takes its long factors when it exceeds the original context.
   */
  apply(x: Float32Array, numHeads: number, positions: ArrayLike<number>, sequenceLength?: number): void {
    const d = this.headDim;
    const half = d / 2;
    let maxPosition = -1;
    for (let r = 0; r < positions.length; r++) maxPosition = Math.max(maxPosition, positions[r]);
    const length = sequenceLength ?? maxPosition + 1;
    let cos: Float32Array;
    let sin: Float32Array;
    let rowOf: (r: number) => number;
    if (this.scaling?.type === "dynamic" && length > this.scaling.originalContext) {
      // frequencies of this length only: angles for just these rows, not cached
      const { invFreq } = ropeFrequencies(d, this.theta, this.scaling, length);
      cos = new Float32Array(positions.length * half);
      sin = new Float32Array(positions.length * half);
      for (let r = 0; r < positions.length; r++) fillAngles(cos, sin, r, positions[r], invFreq, this.attentionFactor);
      rowOf = (r) => r * half;
    } else {
      const long = this.longTable !== null && this.scaling?.type === "longrope" && length > this.scaling.originalContext;
      const table = long ? (this.longTable as AngleTable) : this.table;
      table.ensure(maxPosition + 1);
      ({ cos, sin } = table);
      rowOf = (r) => positions[r] * half;
    }
    for (let r = 0; r < positions.length; r++) {
      const t = rowOf(r);
      for (let h = 0; h < numHeads; h++) {
        const base = (r * numHeads + h) * d;
        for (let i = 0; i < half; i++) {
          const a = x[base + i];
          const b = x[base + i + half];
          x[base + i] = a * cos[t + i] - b * sin[t + i];
          x[base + i + half] = b * cos[t + i] + a * sin[t + i];
        }
      }
    }
  }
}

/** cos/sin of position · invFreq (float32 angle, as HF), times the attention factor, into row `row` of the tables. */
function fillAngles(cos: Float32Array, sin: Float32Array, row: number, position: number, invFreq: Float32Array, attentionFactor: number): void {
  const half = invFreq.length;
  const scale = f32(attentionFactor);
  for (let i = 0; i < half; i++) {
    const angle = f32(position * invFreq[i]);
    if (scale === 1) {
      cos[row * half + i] = Math.cos(angle);
      sin[row * half + i] = Math.sin(angle);
    } else {
      cos[row * half + i] = f32(f32(Math.cos(angle)) * scale);
      sin[row * half + i] = f32(f32(Math.sin(angle)) * scale);
    }
  }
}

/** cos and sin of every angle of one frequency table, [position × headDim/2], for positions below `tabled`: computed once, not per layer. */
class AngleTable {
  cos = new Float32Array(0);
  sin = new Float32Array(0);
  private tabled = 0;

  constructor(
    private readonly invFreq: Float32Array,
    private readonly attentionFactor: number,
  ) {}

  /** Extends the tables to cover positions 0 … count−1 (at least doubling, so a decode loop extends them rarely). */
  ensure(count: number): void {
    if (count <= this.tabled) return;
    const half = this.invFreq.length;
    const size = Math.max(count, 2 * this.tabled, 64);
    const cos = new Float32Array(size * half);
    const sin = new Float32Array(size * half);
    cos.set(this.cos);
    sin.set(this.sin);
    for (let p = this.tabled; p < size; p++) fillAngles(cos, sin, p, p, this.invFreq, this.attentionFactor);
    this.cos = cos;
    this.sin = sin;
    this.tabled = size;
  }
}
