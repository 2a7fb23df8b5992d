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
/**
 * Bytes per underlying buffer. One typed array holds at most 2^32 − 1 bytes on Node 20, fewer than an 8B model's
 * 4.6 GB of blocks, so the arena is a run of buffers; a slice never straddles two.
 */
export const ARENA_CHUNK_BYTES = 1 << 30;

export class WeightArena {
  private chunk: Uint8Array | null = null;
  private chunkUsed = 0;
  private handedOut = 0;
  private hugePages = 0;

  /** `capacity`: the sum of the slices' lengths, each rounded up to 64 bytes (`WeightArena.sizeFor`). */
  constructor(readonly capacity: number) {}

  /** The capacity that holds slices of these lengths. */
  static sizeFor(lengths: Iterable<number>): number {
    let total = 0;
    for (const length of lengths) total += alignUp(length);
    return total;
  }

  /** Bytes the kernels asked Linux to back with huge pages (0 without the native kernels, off Linux, or refused). */
  get hugePageBytes(): number {
    return this.hugePages;
  }

  /** A fresh slice of `length` bytes (zeroed), or null once the slices handed out would pass the capacity. */
  slice(length: number): Uint8Array | null {
    const need = alignUp(length);
    if (this.handedOut + need > this.capacity) return null;
    if (this.chunk === null || this.chunkUsed + length > this.chunk.length) {
      // a new buffer for what is left (a chunk at most), or for this slice alone if it is larger
      this.chunk = new Uint8Array(Math.max(length, Math.min(this.capacity - this.handedOut, ARENA_CHUNK_BYTES)));
      this.chunkUsed = 0;
      this.hugePages += loadKernels()?.adviseHugePages(this.chunk) ?? 0;
    }
    const slice = this.chunk.subarray(this.chunkUsed, this.chunkUsed + length);
    this.chunkUsed += need;
    this.handedOut += need;
    return slice;
  }
}

function alignUp(length: number): number {
  return Math.ceil(length / ALIGN) * ALIGN;
}
