/**
 * The compiled addon (native/addon.cpp), loaded once. It always carries the CPU references; the CUDA entry points
 * exist only when the package was built where nvcc exists.
 */
import { createRequire } from "node:module";

/** Owns one device allocation (cudaMalloc); freed by `free()` or when the object is collected. */
export interface DeviceBuffer {
  readonly byteLength: number;
  readonly freed: boolean;
  /** Copies the typed array's bytes into the buffer at `byteOffset`. */
  upload(view: ArrayBufferView, byteOffset?: number): DeviceBuffer;
  /** Fills the typed array from the buffer at `byteOffset`, after the queued kernels finish. */
  download<T extends ArrayBufferView>(view: T, byteOffset?: number): T;
  /** Sets every byte (0xff poisons f32, fp16 and bf16 with NaN). */
  fill(byte: number): DeviceBuffer;
  free(): void;
}

export interface DeviceInfo {
  /** The package was built with nvcc: the CUDA kernels are linked in. */
  readonly built: boolean;
  /** A CUDA device answered. */
  readonly available: boolean;
  readonly name?: string;
  readonly computeCapability?: string;
  readonly multiProcessors?: number;
  readonly memoryBytes?: number;
  /** Why no device is available. */
  readonly reason?: string;
}

export interface NativeAddon {
  DeviceBuffer: new (byteLength: number) => DeviceBuffer;
  deviceInfo(): DeviceInfo;
  decodeReference(args: Record<string, unknown>): void;
  compactReference(args: Record<string, unknown>): void;
  toBits(values: Float32Array, dtype: string): Uint16Array;
  fromBits(bits: Uint16Array, dtype: string): Float32Array;
  decode?(args: Record<string, unknown>): void;
  compact?(args: Record<string, unknown>): void;
  synchronize?(): void;
  decodeWorkspaceBytes?(args: Record<string, unknown>): number;
}

let addon: NativeAddon | null = null;

export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    try {
      addon = require("../build/Release/razorkv_cuda.node") as NativeAddon;
    } catch (error) {
      throw new Error(
        `kernels-cuda: cannot load build/Release/razorkv_cuda.node (run \`pnpm --filter @razorkv/kernels-cuda build\`): ${(error as Error).message}`,
      );
    }
  }
  return addon;
}

/** The CUDA half of the addon; throws with the reason when the package was built without nvcc. */
export function cudaAddon(): Required<NativeAddon> {
  const a = native();
  if (!a.decode || !a.compact || !a.synchronize || !a.decodeWorkspaceBytes) {
    throw new Error("kernels-cuda: built without CUDA (nvcc was not found when the package was built)");
  }
  return a as Required<NativeAddon>;
}
