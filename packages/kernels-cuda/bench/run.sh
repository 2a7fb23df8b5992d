#!/usr/bin/env bash
# `pnpm bench`: decode attention over a Llama-3-8B-shaped stack (32 layers, 32 query heads, 8 KV heads, d 128) at
# contexts 4K…128K and kvBudget 1.0 / 0.5 / 0.3 / 0.15 (build/cuda/gpu_bench), PyTorch SDPA on the same full-cache
# shapes (bench/sdpa_baseline.py), and the merged table (bench/report.py). Files land in $RAZORKV_BENCH_OUT
# (default bench/out). Extra arguments go to gpu_bench (e.g. --sweep, --dtype bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${RAZORKV_BENCH_OUT:-bench/out}
contexts=${RAZORKV_BENCH_CONTEXTS:-4096,8192,16384,32768,65536,131072}
dtype=f16
prev=""
for a in "$@"; do
  if [ "$prev" = "--dtype" ]; then dtype=$a; fi
  prev=$a
done
mkdir -p "$out"
if [ ! -x build/cuda/gpu_bench ] || [ -n "$(find native -newer build/cuda/gpu_bench -name '*.c*' -o -newer build/cuda/gpu_bench -name '*.h')" ]; then
  bash native/build-cuda.sh
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >"$out/gpu.txt" 2>&1 || true
build/cuda/gpu_bench --contexts "$contexts" "$@" >"$out/razorkv.csv"
if python3 -c 'import torch' 2>/dev/null; then
  python3 bench/sdpa_baseline.py --contexts "$contexts" --dtype "$dtype" >"$out/sdpa.csv"
else
  echo "bench: PyTorch not found, SDPA baseline skipped" >&2
  : >"$out/sdpa.csv"
fi
python3 bench/report.py "$out/razorkv.csv" "$out/sdpa.csv" | tee "$out/table.md"
