// out = x · Wᵀ over GGUF weight blocks (layout and the two paths in qmatmul.h).
#include "qmatmul.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "qdot.h"
#include "qgemm.h"
#include "scratch.h"
#include "threadpool.h"

#ifndef RAZORKV_PREFETCH_BYTES
#define RAZORKV_PREFETCH_BYTES 8192
#endif

namespace razorkv {
namespace {

// Auto takes the Dot path up to this many rows of x and the Dequant path above. Dot reads each weight row once
// per call and decodes each block once per group of 4 rows of x; Dequant decodes it once and leaves the M rows to
// the SGEMM (OpenBLAS's AVX-512 kernel here), which outruns the integer dots once M is large. bench/quant.mjs paths,
// 2 threads, quiet machine (BENCHMARKS.md, "Quantized weights"), Dequant time / Dot time at M = 32, 48, 64:
// SmolLM2's Q4_1 FFN (1536 × 576) 1.16, 0.88, 0.75; Q8_0 0.93, 0.74, 0.68; a Llama-1B-shaped Q4_K FFN (8192 × 2048)
// 1.40, 1.09, 0.92; Q6_K (2048 × 8192) 1.66, 1.27, 1.09; at M = 512 Dequant is 1.7–2.4× faster (250–265 GFLOP/s).
// 48 is within 15% of the better path everywhere, and keeps every row of a sweep's decode step (up to 25 cells) on
// Dot, where a row's bits do not depend on the batch.
constexpr int kQuantDotMaxRows = 48;
// Below this many multiply-adds a call runs on one thread. A 135M model's K/V projection (192 × 576, one row) is
// 110 592: above, so both threads take it.
constexpr double kParallelMinWork = 1 << 15;
// The dequant path cuts W into two panels per thread, each at most kPanelBytes of f32 (nc·K floats) and within
// [kPanelMinRows, kPanelMaxRows] rows. Every panel is one SGEMM call, which repacks all of x (M·K floats): fewer,
// larger panels win. Llama-1B-shaped Q4_K_M prefill of 512 tokens, kernel-level (bench/lib/kernel-forward.js), 2
// threads: 1 MiB panels (≤ 256 rows) 87 tok/s, 8 MiB 95–101, four panels per thread 101–104, two 108–113, one
// 107 (less room to rebalance when the other core is busy). The panel is a thread's scratch, kept between calls: up
// to 32 MiB per thread (an 8B model's FFN).
constexpr size_t kPanelBytes = size_t(32) << 20;
constexpr int kPanelMinRows = 64;
constexpr int kPanelMaxRows = 4096;
// Up to this many rows of x the Dequant path decodes W row by row into a buffer in L1 and takes f32 dot products
// from it (the F32 Dot kernel) instead of panels and the SGEMM: for a prefill's last-row logits (M = 1) the panels
// would write the whole LM head out as f32 and OpenBLAS would repack it, all for one row.
constexpr int kDequantRowwiseMaxRows = 4;
// The rows of quantized x a Dot chunk sweeps per weight row are cut into tiles of about this many bytes (in L2).
constexpr size_t kActivationTileBytes = 256 << 10;

thread_local Scratch t_activations, t_panel;

// While a weight row is computed, the row about kPrefetchBytes ahead is requested from memory. One core's hardware
// prefetchers keep too few lines in flight to stream a GEMV's weights from DRAM at the memory's speed: an 8B-shaped
// Q6_K LM head (411 MiB) streamed at 8.6 GB/s on 2 threads without, 10.8 with (4 KiB–16 KiB ahead within ±5%); the
// 1B- and 8B-shaped Q4_K_M decode went from 10.4 to 13.4 and from 1.66 to 2.38 tokens/s (kernel-level).
constexpr size_t kPrefetchBytes = RAZORKV_PREFETCH_BYTES;

inline void prefetchBytes(const uint8_t* p, size_t bytes) {
#if defined(__GNUC__)
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
#endif
}

int threadsFor(double work) { return work < kParallelMinWork ? 1 : kernelThreads(); }

/** [0, total) in chunks of `size` (a multiple of `unit`, within [minSize, maxSize]), about four per thread. */
struct Chunks {
  int size;
  int count;
  Chunks(int total, int unit, int threads, int minSize, int maxSize) {
    int target = (total + 4 * threads - 1) / (4 * threads);
    target = std::max(minSize, std::min(maxSize, target));
    size = std::max(unit, (target + unit - 1) / unit * unit);
    count = (total + size - 1) / size;
  }
};

/** Rows of x in `format` at act (actBytes apart), quantized on up to `threads` threads. */
void quantizeActivations(ActivationFormat format, const float* x, uint8_t* act, size_t actBytes, int M, int K, int threads, bool simd) {
  if (format == ActivationFormat::F32) {
    std::memcpy(act, x, actBytes * M);
    return;
  }
  Chunks rows(M, 1, threads, 8, 64);
  parallelFor(rows.count, M * K >= (1 << 16) ? threads : 1, [&](int c, int) {
    for (int m = c * rows.size; m < std::min(M, (c + 1) * rows.size); m++) {
      quantizeActivationRow(format, x + static_cast<size_t>(m) * K, act + m * actBytes, K, simd);
    }
  });
}

/** One weight matrix of a Dot call with its activations already quantized (all M rows at act, actBytes apart). */
struct DotOperand {
  RowsDotFn dot;
  const uint8_t* w;
  size_t rowBytes;
  const uint8_t* act;
  size_t actBytes;
  float* out;  // [M × N]
  int N;
};

/** out[·, n0 … n1) of one Dot operand: each weight row read once, its blocks decoded once per group of x rows. */
void dotRows(const DotOperand& op, int M, int K, int n0, int n1) {
  const int ahead = static_cast<int>((kPrefetchBytes + op.rowBytes - 1) / op.rowBytes);  // rows
  const int tile = static_cast<int>(std::max<size_t>(kMaxDotRows, kActivationTileBytes / op.actBytes));
  for (int m0 = 0; m0 < M; m0 += tile) {
    const int m1 = std::min(M, m0 + tile);
    for (int n = n0; n < n1; n++) {
      const uint8_t* row = op.w + n * op.rowBytes;
      if (n + ahead < op.N) prefetchBytes(row + ahead * op.rowBytes, op.rowBytes);  // past the chunk too: the next chunk is next in memory
      for (int m = m0; m < m1; m += kMaxDotRows) {
        op.dot(row, op.act + m * op.actBytes, op.actBytes, std::min(kMaxDotRows, m1 - m), K, op.out + static_cast<size_t>(m) * op.N + n, op.N);
      }
    }
  }
}

/** Throws naming `who` unless quantMatmul has kernels for `type` and K is a whole number of its blocks. */
void checkTypeAndK(const char* who, GgmlType type, int K) {
  const GgmlTypeInfo info = ggmlTypeInfo(type);
  if (info.blockSize == 0) throw std::invalid_argument(std::string(who) + ": unsupported ggml type " + std::to_string(static_cast<int>(type)));
  if (K % info.blockSize != 0) {
    throw std::invalid_argument(std::string(who) + ": K = " + std::to_string(K) + " is not a multiple of " + info.name + "'s block of " + std::to_string(info.blockSize));
  }
}

void checkBackend(GemmBackend backend) {
  if (!gemmBackendAvailable(backend)) throw std::invalid_argument(std::string("GEMM backend ") + gemmBackendName(backend) + " is not compiled into this build");
}

/**
 * The Dot path for operands that share x [M × K] (checked, M and K > 0): x quantized once per activation format
 * they need, then one list of (operand, rows) chunks for the threads. One operand is quantMatmul's Dot path.
 */
void matmulDotMany(const QuantMatmulOperand* operands, int count, const float* x, int M, int K, bool simd) {
  double work = 0;
  for (int i = 0; i < count; i++) work += static_cast<double>(M) * operands[i].N * K;
  const int threads = threadsFor(work);
  // x quantized once per activation format the operands need (at most three), side by side in one scratch
  constexpr int kFormats = 3;
  const ActivationFormat formats[kFormats] = {ActivationFormat::F32, ActivationFormat::Q8x32, ActivationFormat::Q8_K};
  size_t offset[kFormats], total = 0;
  bool needed[kFormats] = {false, false, false};
  for (int i = 0; i < count; i++) needed[static_cast<int>(activationFormat(operands[i].type))] = true;
  for (int f = 0; f < kFormats; f++) {
    offset[f] = total;
    if (needed[f]) total += (activationRowBytes(formats[f], K) * M + 63) / 64 * 64;
  }
  uint8_t* act = static_cast<uint8_t*>(t_activations.get(total));
  for (int f = 0; f < kFormats; f++) {
    if (needed[f]) quantizeActivations(formats[f], x, act + offset[f], activationRowBytes(formats[f], K), M, K, threads, simd);
  }
  // one list of (operand, rows) chunks for all operands: one parallelFor, both threads busy across the small ones
  std::vector<DotOperand> ops;
  std::vector<std::array<int, 3>> chunks;  // operand, n0, n1
  ops.reserve(count);
  for (int i = 0; i < count; i++) {
    const QuantMatmulOperand& o = operands[i];
    const int f = static_cast<int>(activationFormat(o.type));
    ops.push_back({rowsDotKernel(o.type, simd), o.w, ggmlRowBytes(o.type, K), act + offset[f], activationRowBytes(formats[f], K), o.out, o.N});
    if (o.N <= 0) continue;
    const Chunks c(o.N, 1, threads, 8, 256);
    for (int k = 0; k < c.count; k++) chunks.push_back({i, k * c.size, std::min(o.N, (k + 1) * c.size)});
  }
  parallelFor(static_cast<int>(chunks.size()), threads, [&](int c, int) {
    const auto& [i, n0, n1] = chunks[c];
    dotRows(ops[i], M, K, n0, n1);
  });
}

void matmulDequantRowwise(GgmlType type, const uint8_t* w, size_t rowBytes, const float* x, float* out, int M, int N, int K, bool simd) {
  const RowsDotFn dot = rowsDotKernel(GgmlType::F32, simd);
  const size_t xBytes = sizeof(float) * static_cast<size_t>(K);
  const int threads = threadsFor(static_cast<double>(M) * N * K);
  const int ahead = static_cast<int>((kPrefetchBytes + rowBytes - 1) / rowBytes);  // rows
  Chunks chunks(N, 1, threads, 8, 256);
  parallelFor(chunks.count, threads, [&](int c, int) {
    float* row = static_cast<float*>(t_panel.get(xBytes));
    const uint8_t* rowBytesF32 = reinterpret_cast<const uint8_t*>(row);
    for (int n = c * chunks.size; n < std::min(N, (c + 1) * chunks.size); n++) {
      if (n + ahead < N) prefetchBytes(w + (n + ahead) * rowBytes, rowBytes);
      dequantizeRow(type, w + n * rowBytes, row, K);
      for (int m = 0; m < M; m += kMaxDotRows) {
        dot(rowBytesF32, reinterpret_cast<const uint8_t*>(x + static_cast<size_t>(m) * K), xBytes, std::min(kMaxDotRows, M - m), K, out + static_cast<size_t>(m) * N + n, N);
      }
    }
  });
}

void matmulDequant(GgmlType type, const uint8_t* w, size_t rowBytes, const float* x, float* out, int M, int N, int K, GemmBackend backend) {
  const int threads = threadsFor(static_cast<double>(M) * N * K);
  const int panelRows = std::max(kPanelMinRows, std::min<int>(kPanelMaxRows, static_cast<int>(kPanelBytes / (sizeof(float) * K))));
  // two panels per thread: every panel call repacks all of x (M·K floats) in the SGEMM, so fewer, larger panels
  const int size = std::max(16, std::min(panelRows, (N + 2 * threads - 1) / (2 * threads) + 15) / 16 * 16);
  const struct { int size, count; } chunks = {size, (N + size - 1) / size};
  parallelFor(chunks.count, threads, [&](int c, int) {
    const int n0 = c * chunks.size, n = std::min(N - n0, chunks.size);
    float* panel = static_cast<float*>(t_panel.get(sizeof(float) * static_cast<size_t>(n) * K));
    for (int r = 0; r < n; r++) dequantizeRow(type, w + (n0 + r) * rowBytes, panel + static_cast<size_t>(r) * K, K);
    matmulTransposedPanel(x, panel, out + n0, M, n, K, N, backend);
  });
}

}  // namespace

size_t ggmlRowBytes(GgmlType type, int K) {
  const GgmlTypeInfo info = ggmlTypeInfo(type);
  return static_cast<size_t>(K / info.blockSize) * info.blockBytes;
}

void quantMatmul(GgmlType type, const uint8_t* w, const float* x, float* out, int M, int N, int K, QuantPath path, GemmBackend backend) {
  checkBackend(backend);
  checkTypeAndK("quantMatmul", type, K);
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    std::fill(out, out + static_cast<size_t>(M) * N, 0.0f);
    return;
  }
  if (path == QuantPath::Auto) path = M <= kQuantDotMaxRows ? QuantPath::Dot : QuantPath::Dequant;
  // F32, F16, BF16 have no 8-bit arithmetic (their dot kernels take x in f32): a prefill asking for int8 gets the
  // f32 GEMM, as it would without asking, not the per-row dots
  if (path == QuantPath::Int8 && activationFormat(type) == ActivationFormat::F32) path = QuantPath::Dequant;
  const size_t rowBytes = ggmlRowBytes(type, K);
  const bool simd = backend != GemmBackend::Scalar && quantSimdCompiled();
  // the 8-bit GEMM where it runs (the scalar backend asks for the plain kernels: the dot path's scalar ones, whose
  // bits the GEMM gives); elsewhere the int8 path is the dot path, the same 8-bit arithmetic
  if (path == QuantPath::Int8 && int8GemmSupports(type) && int8GemmVnni() && backend != GemmBackend::Scalar) {
    const ActivationFormat format = activationFormat(type);
    const size_t actBytes = activationRowBytes(format, K);
    uint8_t* act = static_cast<uint8_t*>(t_activations.get(actBytes * M));
    const int threads = threadsFor(static_cast<double>(M) * N * K);
    quantizeActivations(format, x, act, actBytes, M, K, threads, simd);
    int8Gemm(type, w, rowBytes, act, actBytes, out, M, N, K, threads);
  } else if (path == QuantPath::Dot || path == QuantPath::Int8) {
    const QuantMatmulOperand operand{type, w, out, N};
    matmulDotMany(&operand, 1, x, M, K, simd);
  } else if (type == GgmlType::F32 && reinterpret_cast<uintptr_t>(w) % alignof(float) == 0) {
    matmulTransposed(x, reinterpret_cast<const float*>(w), out, M, N, K, backend);  // nothing to decode
  } else if (M <= kDequantRowwiseMaxRows) {
    matmulDequantRowwise(type, w, rowBytes, x, out, M, N, K, simd);
  } else {
    matmulDequant(type, w, rowBytes, x, out, M, N, K, backend);
  }
}

void quantMatmulDotMany(const QuantMatmulOperand* operands, int count, const float* x, int M, int K, GemmBackend backend) {
  checkBackend(backend);
  for (int i = 0; i < count; i++) checkTypeAndK("quantMatmulDotMany", operands[i].type, K);
  if (count <= 0 || M <= 0) return;
  if (K == 0) {  // as quantMatmul: every product is an empty sum
    for (int i = 0; i < count; i++) std::fill(operands[i].out, operands[i].out + static_cast<size_t>(M) * std::max(0, operands[i].N), 0.0f);
    return;
  }
  matmulDotMany(operands, count, x, M, K, backend != GemmBackend::Scalar && quantSimdCompiled());
}

void dequantizeRows(GgmlType type, const uint8_t* w, float* out, int rows, int K) {
  const size_t rowBytes = ggmlRowBytes(type, K);
  const int threads = threadsFor(static_cast<double>(rows) * K);
  Chunks chunks(rows, 1, threads, 16, 1024);
  parallelFor(chunks.count, threads, [&](int c, int) {
    for (int r = c * chunks.size; r < std::min(rows, (c + 1) * chunks.size); r++) {
      dequantizeRow(type, w + r * rowBytes, out + static_cast<size_t>(r) * K, K);
    }
  });
}

}  // namespace razorkv
