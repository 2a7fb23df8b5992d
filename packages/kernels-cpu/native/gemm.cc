// out[M×N] = x[M×K] · w[N×K]ᵀ  (layouts in gemm.h).
//
// Three backends:
//   scalar    plain loops, one output at a time; the portable fallback.
//   avx2      own kernels: for M ≤ kSmallMaxRows (a decode step over a batch) a small-M kernel that streams each
//             weight row once for all rows of x; otherwise a register-tiled SGEMM in the BLIS/GotoBLAS scheme: x
//             is packed once into panels of 6 rows, each chunk of columns packs its KC×16 panels of wᵀ, and a 6×16
//             micro-kernel keeps 12 accumulators in registers while it walks K.
//   openblas  cblas_sgemm (when the build found OpenBLAS), one single-threaded call per column chunk on our own
//             threads. OpenBLAS's own threads, left on, spin in sched_yield for a while after every call: with our
//             pool's workers beside them, three threads competed for two cores: a 6-sample run of the eval runner
//             spent 20–25 of its 118–135 CPU seconds in the kernel (strace: 755 000 sched_yield calls in one
//             sample), 2 s with one pool. It also keeps RAZORKV_THREADS the only knob. M ≤ kSmallMaxRows still
//             takes the own small-M kernel, which is faster there (numbers at kSmallMaxRows).
// The own backends split N into column chunks that the kernel threads take as they come (threadpool.h); an output
// element is computed by one chunk, in the same order, whichever thread runs it, so results are reproducible.
// The small-M kernel computes every element the same way whatever M and whatever tile it falls in, so up to
// kSmallMaxRows a row of out does not depend on the other rows: a sequence decoded in a batch gets the bits it
// gets alone.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <stdexcept>

#include "simd.h"
#include "threadpool.h"

#ifdef RAZORKV_OPENBLAS
#include <cblas.h>
#endif

namespace razorkv {
namespace {

// Up to this many rows of x (a decode step, one row per sequence of the batch) the small-M kernel runs: it reads
// every weight row from memory once for all rows. Measured on the 2-core build machine over SmolLM2-135M's 30
// layers: M = 17 in 56–62 ms against OpenBLAS's 87–89 ms, M = 48 at 87–89 GFLOP/s against 64–80, the same as
// OpenBLAS at M = 64 and behind it from there (it has no K blocking and packs nothing).
constexpr int kSmallMaxRows = 48;
// Below this many multiply-adds a call runs on one thread: waking a worker costs more than it saves.
constexpr double kParallelMinWork = 1 << 17;

int threadsFor(double work) { return work < kParallelMinWork ? 1 : kernelThreads(); }

/**
 * Cuts [0, total) into chunks whose size is a multiple of `unit`, between minSize and maxSize, about four per
 * thread: enough that a thread arriving late (or never) leaves little for the others to wait on.
 */
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

// ---------------------------------------------------------------------------------------------------------------
// scalar

void matmulScalarRange(const float* x, const float* w, float* out, int M, int N, int K, int n0, int n1) {
  for (int m = 0; m < M; m++) {
    const float* xm = x + static_cast<size_t>(m) * K;
    for (int n = n0; n < n1; n++) {
      const float* wn = w + static_cast<size_t>(n) * K;
      float sum = 0;
      for (int k = 0; k < K; k++) sum += xm[k] * wn[k];
      out[static_cast<size_t>(m) * N + n] = sum;
    }
  }
}

void matmulScalar(const float* x, const float* w, float* out, int M, int N, int K) {
  int threads = threadsFor(static_cast<double>(M) * N * K);
  Chunks chunks(N, 1, threads, 16, 1024);
  parallelFor(chunks.count, threads, [&](int c, int) {
    matmulScalarRange(x, w, out, M, N, K, c * chunks.size, std::min(N, (c + 1) * chunks.size));
  });
}

#ifdef RAZORKV_AVX2
// ---------------------------------------------------------------------------------------------------------------
// avx2: small-M GEMM (a decode step over a batch of sequences)

constexpr int SR = 3;  // rows of x per tile
constexpr int SW = 4;  // rows of w per tile
static_assert(SW == 4, "smallTile sums its accumulators with hsum4");

/**
 * out[m, n] for m in the SR rows `xr` and n in the SW rows `wr`: SR·SW accumulators over k in steps of 8, then a
 * horizontal sum and the scalar tail. Every output element is computed the same way whatever tile it sits in.
 */
inline void smallTile(const float* const xr[SR], const float* const wr[SW], int K, float out[SR][SW]) {
  __m256 acc[SR][SW];
  for (int i = 0; i < SR; i++)
    for (int j = 0; j < SW; j++) acc[i][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[SW];
#pragma GCC unroll 4
    for (int j = 0; j < SW; j++) wv[j] = _mm256_loadu_ps(wr[j] + k);
#pragma GCC unroll 3
    for (int i = 0; i < SR; i++) {
      __m256 xv = _mm256_loadu_ps(xr[i] + k);
#pragma GCC unroll 4
      for (int j = 0; j < SW; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < SR; i++) {
    alignas(16) float sums[SW];
    _mm_store_ps(sums, hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
    for (int t = k; t < K; t++)
      for (int j = 0; j < SW; j++) sums[j] += xr[i][t] * wr[j][t];
    for (int j = 0; j < SW; j++) out[i][j] = sums[j];
  }
}

/** Columns [n0, n1) of out, every row: each group of SW rows of w is read from memory once, for all M rows of x. */
void smallMRange(const float* x, const float* w, float* out, int M, int N, int K, int n0, int n1) {
  for (int n = n0; n < n1; n += SW) {
    const float* wr[SW];
    for (int j = 0; j < SW; j++) wr[j] = w + static_cast<size_t>(std::min(n + j, n1 - 1)) * K;  // a short group repeats its last row
    for (int m = 0; m < M; m += SR) {
      const float* xr[SR];
      for (int i = 0; i < SR; i++) xr[i] = x + static_cast<size_t>(std::min(m + i, M - 1)) * K;
      float tile[SR][SW];
      smallTile(xr, wr, K, tile);
      for (int i = 0; i < SR && m + i < M; i++)
        for (int j = 0; j < SW && n + j < n1; j++) out[static_cast<size_t>(m + i) * N + n + j] = tile[i][j];
    }
  }
}

void smallMAvx2(const float* x, const float* w, float* out, int M, int N, int K) {
  int threads = threadsFor(static_cast<double>(M) * N * K);
  Chunks chunks(N, SW, threads, 64, 4096);
  parallelFor(chunks.count, threads, [&](int c, int) {
    smallMRange(x, w, out, M, N, K, c * chunks.size, std::min(N, (c + 1) * chunks.size));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// avx2: packed SGEMM

constexpr int MR = 6;       // micro-tile rows (of x / out)
constexpr int NR = 16;      // micro-tile columns (of out; rows of w), two AVX registers
constexpr int KC = 320;     // K block: a 16×KC panel of w (20 KiB) stays in L1 while the micro-kernel sweeps x
constexpr int MC = 96;      // M block: MC×KC of packed x (120 KiB) stays in L2 while a chunk's panels pass
constexpr int NCMAX = 512;  // widest column chunk: its packed w (KC×512 floats, 640 KiB) is a thread's scratch

/** A 64-byte-aligned scratch buffer per thread, grown on demand and kept for the thread's life. */
struct Scratch {
  float* data = nullptr;
  size_t capacity = 0;
  ~Scratch() { std::free(data); }
  float* get(size_t count) {
    if (count > capacity) {
      std::free(data);
      size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data) throw std::bad_alloc();
      capacity = bytes / sizeof(float);
    }
    return data;
  }
};
thread_local Scratch t_packedX, t_packedW;

/**
 * Packs rows [n0, n0+nc) × columns [k0, k0+kc) of w as ⌈nc/16⌉ panels, panel p laid out [kc][16]:
 * packed[p·kc·16 + k·16 + j] = w[(n0 + 16p + j)·K + k0 + k], zero past row n0+nc.
 */
void packW(const float* w, int K, int n0, int nc, int k0, int kc, float* packed) {
  for (int p = 0; p * NR < nc; p++) {
    float* panel = packed + static_cast<size_t>(p) * kc * NR;
    for (int j = 0; j < NR; j++) {
      int row = p * NR + j;
      if (row < nc) {
        const float* src = w + static_cast<size_t>(n0 + row) * K + k0;
        for (int k = 0; k < kc; k++) panel[k * NR + j] = src[k];
      } else {
        for (int k = 0; k < kc; k++) panel[k * NR + j] = 0;
      }
    }
  }
}

/** Packs rows [m0, m0+6) × columns [k0, k0+kc) of x as one panel laid out [kc][6], zero past row M. */
void packXPanel(const float* x, int M, int K, int m0, int k0, int kc, float* panel) {
  for (int i = 0; i < MR; i++) {
    if (m0 + i < M) {
      const float* src = x + static_cast<size_t>(m0 + i) * K + k0;
      for (int k = 0; k < kc; k++) panel[k * MR + i] = src[k];
    } else {
      for (int k = 0; k < kc; k++) panel[k * MR + i] = 0;
    }
  }
}

/** c[6×16] (row stride ldc) = (accumulate ? c : 0) + a[kc×6]-panel · b[kc×16]-panel. */
inline void microKernel6x16(int kc, const float* __restrict a, const float* __restrict b, float* __restrict c, int ldc, bool accumulate) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    acc[i][0] = accumulate ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc[i][1] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(b);
    __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    _mm256_storeu_ps(c + i * ldc, acc[i][0]);
    _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
  }
}

/**
 * Columns [n0, n0+nc) of out, every row. packedX holds all of x: for the K block starting at pc, the panel of rows
 * 6p … 6p+5 sits at packedX + pc·Mpad + p·kc·6 (Mpad = M rounded up to a multiple of 6).
 */
void sgemmAvx2Columns(const float* packedX, const float* w, float* out, int M, int N, int K, int kc0, int n0, int nc) {
  const int Mpad = (M + MR - 1) / MR * MR;
  float* packedW = t_packedW.get(static_cast<size_t>(kc0) * ((nc + NR - 1) / NR * NR));
  alignas(32) float edge[MR * NR];
  for (int pc = 0; pc < K; pc += kc0) {
    const int kc = std::min(kc0, K - pc);
    const bool accumulate = pc > 0;
    packW(w, K, n0, nc, pc, kc, packedW);
    const float* xBlock = packedX + static_cast<size_t>(pc) * Mpad;
    for (int ic = 0; ic < M; ic += MC) {
      const int mc = std::min(MC, M - ic);
      for (int jr = 0; jr < nc; jr += NR) {
        const int nr = std::min(NR, nc - jr);
        const float* b = packedW + static_cast<size_t>(jr) * kc;
        for (int ir = 0; ir < mc; ir += MR) {
          const int mr = std::min(MR, mc - ir);
          const float* a = xBlock + static_cast<size_t>(ic + ir) * kc;
          float* c = out + static_cast<size_t>(ic + ir) * N + n0 + jr;
          if (mr == MR && nr == NR) {
            microKernel6x16(kc, a, b, c, N, accumulate);
            continue;
          }
          // ragged edge: run the full tile on a scratch copy, write back the valid part
          for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) edge[i * NR + j] = (accumulate && i < mr && j < nr) ? c[i * N + j] : 0.0f;
          microKernel6x16(kc, a, b, edge, NR, true);
          for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) c[i * N + j] = edge[i * NR + j];
        }
      }
    }
  }
}

void sgemmAvx2(const float* x, const float* w, float* out, int M, int N, int K) {
  const int threads = threadsFor(static_cast<double>(M) * N * K);
  // equal K blocks no larger than KC (K = 576 → two blocks of 288, not 320 + 256)
  const int kBlocks = (K + KC - 1) / KC;
  const int kc0 = (K + kBlocks - 1) / kBlocks;
  const int panels = (M + MR - 1) / MR;
  // 1. pack x once, for every column chunk of step 2
  float* packedX = t_packedX.get(static_cast<size_t>(panels) * MR * K);
  Chunks panelChunks(panels, 1, threads, 4, 64);
  parallelFor(panelChunks.count, threads, [&](int c, int) {
    for (int p = c * panelChunks.size; p < std::min(panels, (c + 1) * panelChunks.size); p++) {
      for (int pc = 0; pc < K; pc += kc0) {
        const int kc = std::min(kc0, K - pc);
        packXPanel(x, M, K, p * MR, pc, kc, packedX + static_cast<size_t>(pc) * panels * MR + static_cast<size_t>(p) * kc * MR);
      }
    }
  });
  // 2. chunks of columns: each packs its slice of w and runs the micro-kernel over all rows
  Chunks chunks(N, NR, threads, 64, NCMAX);
  parallelFor(chunks.count, threads, [&](int c, int) {
    const int n0 = c * chunks.size;
    sgemmAvx2Columns(packedX, w, out, M, N, K, kc0, n0, std::min(chunks.size, N - n0));
  });
}

void matmulAvx2(const float* x, const float* w, float* out, int M, int N, int K) {
  if (M <= kSmallMaxRows) {
    smallMAvx2(x, w, out, M, N, K);
  } else {
    sgemmAvx2(x, w, out, M, N, K);
  }
}
#endif  // RAZORKV_AVX2

#ifdef RAZORKV_OPENBLAS
void matmulOpenBlas(const float* x, const float* w, float* out, int M, int N, int K) {
#ifdef RAZORKV_AVX2
  if (M <= kSmallMaxRows) {
    smallMAvx2(x, w, out, M, N, K);
    return;
  }
#endif
  // OpenBLAS runs single-threaded inside our pool (useSingleThreadedBlas): each chunk multiplies x by a slice of
  // w's rows into the matching columns of out.
  const int threads = threadsFor(static_cast<double>(M) * N * K);
  Chunks chunks(N, 64, threads, 64, 1 << 20);
  parallelFor(chunks.count, threads, [&](int c, int) {
    const int n0 = c * chunks.size;
    const int n = std::min(chunks.size, N - n0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n, K, 1.0f, x, K, w + static_cast<size_t>(n0) * K, K, 0.0f, out + n0, N);
  });
}
#endif

#ifdef RAZORKV_AVX2
/** Packs all of x for sgemmAvx2Columns on this thread (K blocks of kc0), into this thread's scratch. */
const float* packAllRows(const float* x, int M, int K, int kc0) {
  const int panels = (M + MR - 1) / MR;
  float* packedX = t_packedX.get(static_cast<size_t>(panels) * MR * K);
  for (int p = 0; p < panels; p++) {
    for (int pc = 0; pc < K; pc += kc0) {
      const int kc = std::min(kc0, K - pc);
      packXPanel(x, M, K, p * MR, pc, kc, packedX + static_cast<size_t>(pc) * panels * MR + static_cast<size_t>(p) * kc * MR);
    }
  }
  return packedX;
}
#endif  // RAZORKV_AVX2 (again, for matmulTransposedPanel)

}  // namespace

const char* gemmBackendName(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::OpenBlas: return "openblas";
    case GemmBackend::Avx2: return "avx2";
    case GemmBackend::Scalar: return "scalar";
  }
  return "unknown";
}

bool gemmBackendAvailable(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::OpenBlas:
#ifdef RAZORKV_OPENBLAS
      return true;
#else
      return false;
#endif
    case GemmBackend::Avx2:
#ifdef RAZORKV_AVX2
      return true;
#else
      return false;
#endif
    case GemmBackend::Scalar:
      return true;
  }
  return false;
}

GemmBackend defaultGemmBackend() {
  if (gemmBackendAvailable(GemmBackend::OpenBlas)) return GemmBackend::OpenBlas;
  if (gemmBackendAvailable(GemmBackend::Avx2)) return GemmBackend::Avx2;
  return GemmBackend::Scalar;
}

void useSingleThreadedBlas() {
#ifdef RAZORKV_OPENBLAS
  openblas_set_num_threads(1);
#endif
}

void matmulTransposedPanel(const float* x, const float* w, float* out, int M, int n, int K, int ldc, GemmBackend backend) {
  if (M <= 0 || n <= 0) return;
  switch (backend) {
    case GemmBackend::OpenBlas:
#ifdef RAZORKV_OPENBLAS
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n, K, 1.0f, x, K, w, K, 0.0f, out, ldc);
      return;
#else
      break;
#endif
    case GemmBackend::Avx2:
#ifdef RAZORKV_AVX2
      if (M <= kSmallMaxRows) {
        smallMRange(x, w, out, M, ldc, K, 0, n);  // its N is out's row stride only
      } else {
        const int kBlocks = (K + KC - 1) / KC;
        const int kc0 = (K + kBlocks - 1) / kBlocks;
        sgemmAvx2Columns(packAllRows(x, M, K, kc0), w, out, M, ldc, K, kc0, 0, n);
      }
      return;
#else
      break;
#endif
    case GemmBackend::Scalar:
      matmulScalarRange(x, w, out, M, ldc, K, 0, n);
      return;
  }
  throw std::invalid_argument(std::string("GEMM backend ") + gemmBackendName(backend) + " is not compiled into this build");
}

void matmulTransposed(const float* x, const float* w, float* out, int M, int N, int K, GemmBackend backend) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    std::fill(out, out + static_cast<size_t>(M) * N, 0.0f);
    return;
  }
  switch (backend) {
    case GemmBackend::OpenBlas:
#ifdef RAZORKV_OPENBLAS
      matmulOpenBlas(x, w, out, M, N, K);
      return;
#else
      break;
#endif
    case GemmBackend::Avx2:
#ifdef RAZORKV_AVX2
      matmulAvx2(x, w, out, M, N, K);
      return;
#else
      break;
#endif
    case GemmBackend::Scalar:
      matmulScalar(x, w, out, M, N, K);
      return;
  }
  throw std::invalid_argument(std::string("GEMM backend ") + gemmBackendName(backend) + " is not compiled into this build");
}

}  // namespace razorkv
