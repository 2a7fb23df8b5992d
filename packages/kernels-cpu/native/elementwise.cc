// RMSNorm and SwiGLU (semantics and precision in elementwise.h). Plain loops in double: the point is to match the
// reference exactly while leaving V8's boxed-number arithmetic; the work is split over the kernel threads in
// chunks of whole rows (RMSNorm) or fixed ranges (SwiGLU), and every element depends on its own inputs alone, so
// the result does not depend on which thread ran what.
#include "elementwise.h"

#include <algorithm>
#include <cmath>

#include "threadpool.h"

namespace razorkv {
namespace {

// Below this many elements a call runs on one thread: a decode step's rows are done before a worker wakes.
constexpr size_t kParallelMinElements = 1 << 15;
// Elements per chunk the threads take: 64 KB of floats, a few rows of any model.
constexpr size_t kChunkElements = 1 << 14;

}  // namespace

void rmsNorm(const float* x, const float* weight, float* out, int rows, int n, double eps) {
  if (rows <= 0 || n <= 0) return;
  const size_t total = static_cast<size_t>(rows) * n;
  const int threads = total < kParallelMinElements ? 1 : kernelThreads();
  const int rowsPerChunk = std::max(1, static_cast<int>(kChunkElements / static_cast<size_t>(n)));
  const int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
  parallelFor(chunks, threads, [&](int chunk, int) {
    const int r1 = std::min(rows, (chunk + 1) * rowsPerChunk);
    for (int r = chunk * rowsPerChunk; r < r1; r++) {
      const float* xr = x + static_cast<size_t>(r) * n;
      float* o = out + static_cast<size_t>(r) * n;
      double ss = 0;
      for (int i = 0; i < n; i++) ss += static_cast<double>(xr[i]) * xr[i];
      const double inv = 1 / std::sqrt(ss / n + eps);
      for (int i = 0; i < n; i++) o[i] = static_cast<float>(static_cast<double>(xr[i]) * inv * weight[i]);
    }
  });
}

void swiglu(float* gate, const float* up, size_t n) {
  if (n == 0) return;
  const int threads = n < kParallelMinElements ? 1 : kernelThreads();
  const int chunks = static_cast<int>((n + kChunkElements - 1) / kChunkElements);
  parallelFor(chunks, threads, [&](int chunk, int) {
    const size_t i1 = std::min(n, (chunk + 1) * kChunkElements);
    for (size_t i = chunk * kChunkElements; i < i1; i++) {
      const double g = gate[i];
      gate[i] = static_cast<float>(g / (1 + std::exp(-g)) * up[i]);
    }
  });
}

}  // namespace razorkv
