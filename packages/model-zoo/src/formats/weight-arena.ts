/**
 * One buffer for a model file's weight blocks, handed out in 64-byte-aligned slices and backed by transparent huge
 * pages where Linux allows (kernels-cpu's adviseHugePages: madvise MADV_HUGEPAGE before the first write).
 *
 * Why: a decode step streams every weight once, and with 4 KiB pages it walks a new page every 4 KiB — about 24 000
 * pages per step for SmolLM2-135M's 94 MB, more than the TLB holds. One allocation per tensor cannot use 2 MiB pages
 * (most of a small model's tensors are under 1 MiB), so the tensors share this buffer. Model-level greedy decode at
 * a short context (bench/lib/model-forward.js), 4 alternated pairs against the build before the arena: SmolLM2-135M
 * Q4_1, 128 tokens, 70–74 → 84–91 tokens/s; Llama-3.2-1B-shaped Q4_K_M, 32 tokens, 12.9–13.8 → 14.2–15.4.
 *
 * Pages no slice reaches are never touched, so they cost no resident memory.
 */
import { loadKernels } from "@razorkv/kernels-cpu";

const ALIGN = 64;

export class WeightArena {
  private readonly bytes: Uint8Array;
  private used = 0;
  /** Bytes the kernels asked Linux to back with huge pages (0 without the native kernels, off Linux, or refused). */
  readonly hugePageBytes: number;

  /** `capacity`: the sum of the slices' lengths, each rounded up to 64 bytes (`WeightArena.sizeFor`). */
  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.hugePageBytes = loadKernels()?.adviseHugePages(this.bytes) ?? 0;
  }

  /** The capacity that holds slices of these lengths. */
  static sizeFor(lengths: Iterable<number>): number {
    let total = 0;
    for (const length of lengths) total += alignUp(length);
    return total;
  }

  /** A fresh slice of `length` bytes (zeroed), or null when the arena has no room left for it. */
  slice(length: number): Uint8Array | null {
    if (this.used + length > this.bytes.length) return null;
    const slice = this.bytes.subarray(this.used, this.used + length);
    this.used += alignUp(length);
    return slice;
  }
}

function alignUp(length: number): number {
  return Math.ceil(length / ALIGN) * ALIGN;
}
