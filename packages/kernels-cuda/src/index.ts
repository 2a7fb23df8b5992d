/**
 * @razorkv/kernels-cuda — CUDA decode attention over per-head ragged KV caches (split-K, GQA, fp16/bf16 caches,
 * f32 accumulation, the compensation slot) and on-device cache compaction, with a CPU reference for each kernel
 * (DESIGN §8). Layout: src/layout.ts and native/razorkv_cuda.h. Built without nvcc, the CPU references work and
 * the GPU entry points throw; `cudaStatus()` says which.
 */
import { native, type DeviceBuffer, type DeviceInfo } from "./native.js";

export type { DeviceBuffer, DeviceInfo } from "./native.js";
export { packLayer, validatePackedLayer, toBits, fromBits, numPairs, totalEntries } from "./layout.js";
export type { KvDtype, PackedLayer } from "./layout.js";
export { decodeReference, decodeAttention, enqueueDecodeAttention, decodeWorkspaceBytes, DeviceLayer } from "./decode.js";
export type { DecodeOptions, DeviceDecodeArgs } from "./decode.js";
export { compactReference, compactOnDevice, uploadFullLayer } from "./compact.js";
export type { FullLayer, DeviceFullLayer } from "./compact.js";

/** Whether the CUDA kernels were built into the addon and whether a GPU answers; never throws for a missing GPU. */
export function cudaStatus(): DeviceInfo {
  return native().deviceInfo();
}

/** Allocates a device buffer of `byteLength` bytes (throws without CUDA). */
export function allocateDeviceBuffer(byteLength: number): DeviceBuffer {
  return new (native().DeviceBuffer)(byteLength);
}

/** Waits for every queued kernel and reports the first error of the queued work. */
export function synchronize(): void {
  const s = native().synchronize;
  if (!s) throw new Error("kernels-cuda: built without CUDA (nvcc was not found when the package was built)");
  s();
}
