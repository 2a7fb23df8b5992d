/**
 * Rotary position embedding in Hugging Face's layout ("rotate half"): dimension i of a head rotates with
 * dimension i + headDim/2 by angle position · θ^(−2i/headDim) (Su et al. 2021, RoFormer eq. 34; HF LlamaRotaryEmbedding).
 * GGUF files of llama architecture store Q/K permuted for adjacent-pair rotation; the loader undoes that, so this
 * is the only RoPE.
 */
export class Rope {
  readonly headDim: number;
  private readonly invFreq: Float32Array;
  /** cos and sin of every angle, [position × headDim/2], for positions below `tabled`: computed once, not per layer. */
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private tabled = 0;

  constructor(headDim: number, theta: number) {
    if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head dimension, got ${headDim}`);
    this.headDim = headDim;
    this.invFreq = new Float32Array(headDim / 2);
    // computed as HF does (float32 inverse frequencies), so angles round the same way
    for (let i = 0; i < headDim / 2; i++) this.invFreq[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  }

  /** Rotates `numHeads` heads of each of the rows in place; row r is at position positions[r]. */
  apply(x: Float32Array, numHeads: number, positions: ArrayLike<number>): void {
    const d = this.headDim;
    const half = d / 2;
    let maxPosition = -1;
    for (let r = 0; r < positions.length; r++) maxPosition = Math.max(maxPosition, positions[r]);
    this.ensureTable(maxPosition + 1);
    const { cos, sin } = this;
    for (let r = 0; r < positions.length; r++) {
      const t = positions[r] * half;
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

  /** Extends the tables to cover positions 0 … count−1 (at least doubling, so a decode loop extends them rarely). */
  private ensureTable(count: number): void {
    if (count <= this.tabled) return;
    const half = this.headDim / 2;
    const size = Math.max(count, 2 * this.tabled, 64);
    const cos = new Float32Array(size * half);
    const sin = new Float32Array(size * half);
    cos.set(this.cos);
    sin.set(this.sin);
    for (let p = this.tabled; p < size; p++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(p * this.invFreq[i]);
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.tabled = size;
  }
}
