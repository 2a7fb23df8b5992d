#!/usr/bin/env bash
# Compiles the CUDA kernels for sm_80 and sm_90 into build/cuda/: kernels.o (linked into the N-API addon),
# gpu_check and gpu_bench. Needs nvcc and a host C++ compiler, not a GPU. Usable on its own (the device machines
# have nvcc but no Node); `native/build.mjs` calls it during `pnpm build`.
# Environment: NVCC (default: nvcc on PATH, else $CUDA_HOME/bin/nvcc), CUDA_ARCHS (default "80 90").
set -euo pipefail
cd "$(dirname "$0")/.."
nvcc=${NVCC:-$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")}
archs=${CUDA_ARCHS:-80 90}
gencode=()
for a in $archs; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
out=build/cuda
mkdir -p "$out"
flags=(-O3 -std=c++17 -Xcompiler -fPIC -Xcompiler -Wall)

# The three nvcc compilations are independent: run them side by side, then link.
"$nvcc" "${flags[@]}" "${gencode[@]}" -c native/kernels.cu -o "$out/kernels.o" &
k=$!
"$nvcc" "${flags[@]}" "${gencode[@]}" -c native/gpu_bench.cu -o "$out/gpu_bench.o" &
b=$!
"$nvcc" "${flags[@]}" -x c++ -c native/reference.cpp -o "$out/reference.o" &
r=$!
"$nvcc" "${flags[@]}" -x c++ -c native/gpu_check.cpp -o "$out/gpu_check.o" &
c=$!
status=0
for pid in $k $b $r $c; do wait "$pid" || status=1; done
[ "$status" = 0 ] || { echo "kernels-cuda: nvcc compilation failed" >&2; exit 1; }
"$nvcc" "${gencode[@]}" "$out/gpu_check.o" "$out/kernels.o" "$out/reference.o" -o "$out/gpu_check"
"$nvcc" "${gencode[@]}" "$out/gpu_bench.o" "$out/kernels.o" "$out/reference.o" -o "$out/gpu_bench"
# What the addon links (read by native/gyp-config.mjs): kernels.o and the static CUDA runtime, so that the addon
# loads on machines without a CUDA toolkit (and without a GPU: CUDA calls then fail with an error, not the load).
top=$("$nvcc" --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
libdir=""
for d in "$top/lib64" "$top/targets/x86_64-linux/lib" "$top/targets/sbsa-linux/lib" "$top/lib"; do
  if [ -f "$d/libcudart_static.a" ]; then libdir=$(cd "$d" && pwd); break; fi
done
[ -n "$libdir" ] || { echo "kernels-cuda: libcudart_static.a not found under $top" >&2; exit 1; }
incdir=$(cd "$top/include" && pwd)
cat >"$out/config.json" <<JSON
{ "include": "$incdir", "libraries": ["$(pwd)/$out/kernels.o", "$libdir/libcudart_static.a", "-ldl", "-lpthread", "-lrt"] }
JSON
echo "kernels-cuda: CUDA kernels built for sm_${archs// /, sm_} with $("$nvcc" --version | tail -1)" >&2
