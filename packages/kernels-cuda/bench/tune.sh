#!/usr/bin/env bash
# Builds the decode kernel's compile-time variants (native/kernels.cu: RKV_DECODE_*; sm_90 only), checks each with
# gpu_check against the CPU reference, and times the ones that pass. Usage: bench/tune.sh [OUTDIR]
# (default bench/out). Needs build/cuda from native/build-cuda.sh (for gpu_check.o, gpu_bench.o, reference.o).
# Adopting a variant = changing the defaults at the top of kernels.cu, then `pnpm test:gpu` and `pnpm bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/out}
contexts=${RAZORKV_BENCH_CONTEXTS:-4096,32768,131072}
mkdir -p "$out" build/tune
nvcc=${NVCC:-nvcc}
[ -f build/cuda/gpu_bench.o ] || bash native/build-cuda.sh
variants=(
  "default:"
  "minblocks4:-DRKV_DECODE_MIN_BLOCKS=4"
  "combine1:-DRKV_DECODE_COMBINE=1"
  "minblocks4_combine1:-DRKV_DECODE_MIN_BLOCKS=4 -DRKV_DECODE_COMBINE=1"
  "pipelined:-DRKV_DECODE_SPLIT=1 -DRKV_DECODE_COMBINE=1"
  "pipelined_stages3:-DRKV_DECODE_SPLIT=1 -DRKV_DECODE_COMBINE=1 -DRKV_DECODE_STAGES=3"
  "pipelined_tile4k:-DRKV_DECODE_SPLIT=1 -DRKV_DECODE_COMBINE=1 -DRKV_DECODE_TILE_BYTES=4096"
)
pids=()
for v in "${variants[@]}"; do
  name=${v%%:*}
  defs=${v#*:}
  (
    "$nvcc" -O3 -std=c++17 -arch=sm_90 -Xptxas -v $defs -c native/kernels.cu -o "build/tune/kernels_$name.o" \
      2> "build/tune/ptxas_$name.log" &&
    "$nvcc" -arch=sm_90 build/cuda/gpu_check.o "build/tune/kernels_$name.o" build/cuda/reference.o -o "build/tune/gpu_check_$name" &&
    "$nvcc" -arch=sm_90 build/cuda/gpu_bench.o "build/tune/kernels_$name.o" build/cuda/reference.o -o "build/tune/gpu_bench_$name"
  ) &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ "$status" = 0 ] || { echo "tune: a variant failed to build (build/tune/ptxas_*.log)" >&2; exit 1; }
: > "$out/tune.csv"
for v in "${variants[@]}"; do
  name=${v%%:*}
  regs=$(grep -A3 'decode_split_kernelILb0ELi128ELi4E' "build/tune/ptxas_$name.log" | grep -oE 'Used [0-9]+ registers|[0-9]+ bytes spill stores' | tr '\n' ' ')
  if "build/tune/gpu_check_$name" > "build/tune/check_$name.log" 2>&1; then
    echo "== $name: gpu_check passed; f16 d128 G4 split kernel: $regs" | tee -a "$out/tune.csv"
    "build/tune/gpu_bench_$name" --contexts "$contexts" --budgets 1,0.3 --iters 30 | grep -v '^#' | grep -v '^variant' |
      sed "s/^razorkv,/$name,/" | tee -a "$out/tune.csv"
  else
    echo "== $name: gpu_check FAILED (build/tune/check_$name.log), not timed" | tee -a "$out/tune.csv"
    grep -E "FAIL|error" "build/tune/check_$name.log" | head -5 || true
  fi
done
