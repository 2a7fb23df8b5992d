#!/usr/bin/env bash
# `pnpm test:gpu`: every CUDA kernel against its CPU reference on random inputs, on the GPU of this machine.
#   1. build/cuda/gpu_check (standalone, needs only nvcc's output): decode attention and compaction on many shapes;
#   2. the N-API binding (DeviceBuffer, DeviceLayer, decodeAttention, compactOnDevice) through scripts/gpu-binding-check.mjs,
#      when Node and the built addon are present.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/cuda/gpu_check ] || [ -n "$(find native -newer build/cuda/gpu_check -name '*.c*' -o -newer build/cuda/gpu_check -name '*.h')" ]; then
  bash native/build-cuda.sh
fi
build/cuda/gpu_check "$@"
if command -v node >/dev/null && [ -f build/Release/razorkv_cuda.node ] && [ -f dist/index.js ]; then
  node scripts/gpu-binding-check.mjs
else
  echo "test-gpu: Node or the built addon is missing; binding checks skipped" >&2
fi
