// out[M×N] = x[M×K] · w[N×K]ᵀ  (layouts in gemm.h).
//
// Three backends:
//   scalar    plain loops, one output at a time; the portable fallback.
//   avx2      own kernels: for M ≤ kGemvMaxRows (decode) a GEMV that streams each weight row once; otherwise a
//             register-tiled SGEMM in the BLIS/GotoBLAS scheme: x is packed once into panels of 6 rows, each chunk
//             of columns packs its KC×16 panels of wᵀ, and a 6×16 micro-kernel keeps 12 accumulators in registers
//             while it walks K.
//   openblas  cblas_sgemm (when the build found OpenBLAS), one single-threaded call per column chunk on our own
//             threads. OpenBLAS's own threads, left on, spin in sched_yield for a while after every call: with our
//             pool's workers beside them, three threads competed for two cores: a 6-sample run of the eval runner
//             spent 20–25 of its 118–135 CPU seconds in the kernel (strace: 755 000 sched_yield calls in one
//             sample), 2 s with one pool. It also keeps RAZORKV_THREADS the only knob. M ≤ kGemvMaxRows still
//             takes the own GEMV: on the 2-core build machine it ran the decode FFN shapes (N = 1536, K = 576) in
//             half the time of cblas_sgemv, M = 2–4 four to six times faster than cblas_sgemm, and the memory-bound
//             lm_head (N = 49152) at the same speed.
// The own backends split N into column chunks that the kernel threads take as they come (threadpool.h); an output
// element is computed by one chunk, in the same order, whichever thread runs it, so results are reproducible.
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

// GEMV up to this many rows of x: every weight row is read from memory once for all of them.
constexpr int kGemvMaxRows = 4;
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
// avx2: GEMV for small M

/** out[m, n] for every m < M and n in [n0, n1): four weight rows at a time, each read once for all M rows of x. */
void gemvAvx2Range(const float* x, const float* w, float* out, int M, int N, int K, int n0, int n1) {
  int n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* w0 = w + static_cast<size_t>(n) * K;
    const float* w1 = w0 + K;
    const float* w2 = w1 + K;
    const float* w3 = w2 + K;
    for (int m = 0; m < M; m++) {
      const float* xm = x + static_cast<size_t>(m) * K;
      // two accumulators per row: eight independent FMA chains cover the FMA latency
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
      int k = 0;
      for (; k + 16 <= K; k += 16) {
        __m256 xa = _mm256_loadu_ps(xm + k), xb = _mm256_loadu_ps(xm + k + 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xa, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xa, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xa, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xa, a3);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), xb, b0);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), xb, b1);
        b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), xb, b2);
        b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), xb, b3);
      }
      for (; k + 8 <= K; k += 8) {
        __m256 xa = _mm256_loadu_ps(xm + k);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xa, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xa, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xa, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xa, a3);
      }
      float s[4];
      _mm_storeu_ps(s, hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3)));
      for (; k < K; k++) {
        s[0] += xm[k] * w0[k];
        s[1] += xm[k] * w1[k];
        s[2] += xm[k] * w2[k];
        s[3] += xm[k] * w3[k];
      }
      std::memcpy(out + static_cast<size_t>(m) * N + n, s, sizeof s);
    }
  }
  for (; n < n1; n++) {
    const float* wn = w + static_cast<size_t>(n) * K;
    for (int m = 0; m < M; m++) {
      const float* xm = x + static_cast<size_t>(m) * K;
      __m256 a = _mm256_setzero_ps();
      int k = 0;
      for (; k + 8 <= K; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(wn + k), _mm256_loadu_ps(xm + k), a);
      float s = hsum(a);
      for (; k < K; k++) s += xm[k] * wn[k];
      out[static_cast<size_t>(m) * N + n] = s;
    }
  }
}

void gemvAvx2(const float* x, const float* w, float* out, int M, int N, int K) {
  int threads = threadsFor(static_cast<double>(M) * N * K);
  Chunks chunks(N, 4, threads, 64, 4096);
  parallelFor(chunks.count, threads, [&](int c, int) {
    gemvAvx2Range(x, w, out, M, N, K, c * chunks.size, std::min(N, (c + 1) * chunks.size));
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
  if (M <= kGemvMaxRows) {
    gemvAvx2(x, w, out, M, N, K);
  } else {
    sgemmAvx2(x, w, out, M, N, K);
  }
}
#endif  // RAZORKV_AVX2

#ifdef RAZORKV_OPENBLAS
void matmulOpenBlas(const float* x, const float* w, float* out, int M, int N, int K) {
#ifdef RAZORKV_AVX2
  if (M <= kGemvMaxRows) {
    gemvAvx2(x, w, out, M, N, K);
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
