// The 8-bit GEMM of qgemm.h: packing W for vpdpbusd, the AVX-512 VNNI micro-kernel, and the threaded driver.
#include "qgemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "qdot.h"
#include "threadpool.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RAZORKV_INT8GEMM_VNNI 1
#endif

namespace razorkv {
namespace {

constexpr int kLanes = 16;               // W rows per packed group: one zmm of int32 sums
constexpr int kPanelGroups = 2;          // groups per panel: the micro-kernel's 32 W rows
constexpr int kPanelRows = kLanes * kPanelGroups;
// Rows of x per micro-kernel call. Each of its (row, group) pairs keeps three zmm live (the block's running f32
// sum, the block's integer sum, the sub-block's partial sum): 4 rows × 2 groups × 3 = 24 of the 32 registers, plus
// two of W, the broadcast x and two of scales. 1B-shaped Q4_K FFN (8192 × 2048), M = 512, one thread: see
// BENCHMARKS.md ("Prefill with 8-bit products").
constexpr int kTileRows = 4;

/** 16 rows of W × one 256-block, as the micro-kernel reads them (KBlockInts of each row, transposed to lanes). */
struct alignas(64) PackedK {
  uint8_t q[64][kLanes][4];          // group g: elements 4g … 4g + 3 of each row (one vpdpbusd dword per lane)
  int32_t scales[16][kLanes];        // sub-block scales (8 used by Q4_K and Q5_K)
  int16_t groupWeights[8][kLanes][2];  // bsum weights of groups 2p and 2p + 1 (one vpdpwssd dword per lane)
  float d[kLanes];
  float dmin[kLanes];
};

/** Packs W rows [n0, n0 + 32) × nb blocks into panel[2b + group]; rows at or past N become zero weights. */
void packPanel(GgmlType type, const uint8_t* w, size_t rowBytes, int N, int n0, int nb, PackedK* panel) {
  const size_t blockBytes = ggmlTypeInfo(type).blockBytes;
  KBlockInts k;
  for (int i = 0; i < kPanelRows; i++) {
    const int n = n0 + i, group = i / kLanes, lane = i % kLanes;
    for (int b = 0; b < nb; b++) {
      PackedK& p = panel[kPanelGroups * b + group];
      if (n >= N) {
        for (int g = 0; g < 64; g++) std::memset(p.q[g][lane], 0, 4);
        for (int s = 0; s < 16; s++) p.scales[s][lane] = 0;
        for (int g = 0; g < 8; g++) p.groupWeights[g][lane][0] = p.groupWeights[g][lane][1] = 0;
        p.d[lane] = p.dmin[lane] = 0;
        continue;
      }
      decodeKBlockInts(type, w + n * rowBytes + b * blockBytes, k);
      for (int g = 0; g < 64; g++) std::memcpy(p.q[g][lane], k.q + 4 * g, 4);
      for (int s = 0; s < 16; s++) p.scales[s][lane] = s < k.subBlocks ? k.scales[s] : 0;
      for (int g = 0; g < 8; g++) {
        p.groupWeights[g][lane][0] = k.groupWeights[2 * g];
        p.groupWeights[g][lane][1] = k.groupWeights[2 * g + 1];
      }
      p.d[lane] = k.d;
      p.dmin[lane] = k.dmin;
    }
  }
}

#ifdef RAZORKV_INT8GEMM_VNNI

#define RAZORKV_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
// GCC 12's _mm512_cvtepi32_ps passes _mm512_undefined_ps() (a self-initialized variable) as its unused source,
// which -Wmaybe-uninitialized reports at every inlined call; nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

RAZORKV_VNNI512 inline __m512i broadcastDword(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/**
 * out[r · outStride + c] for R rows of x (BlockQ8_K rows at act, actStride apart) × the panel's 32 W rows, the
 * first `cols` of them stored. Per block and (row, group): the exact integer sums, then the scalar kernel's float
 * operations, fused as there — Q4_K, Q5_K: sum = fma(dx, fma(d, isum, −(dmin·msum)), sum); Q6_K:
 * sum = fma(dx·d, isum − msum, sum) — from sum = +0, so every output is rounded as the scalar kernel rounds it.
 */
template <int R, bool Q6>
RAZORKV_VNNI512 void tileVnni(const PackedK* panel, int nb, const uint8_t* act, size_t actStride, float* out, size_t outStride, int cols) {
  constexpr int subs = Q6 ? 16 : 8;
  constexpr int groupsPerSub = 64 / subs;
  const BlockQ8_K* x[R];
  for (int r = 0; r < R; r++) x[r] = reinterpret_cast<const BlockQ8_K*>(act + r * actStride);
  __m512 sum[R][kPanelGroups];
  for (int r = 0; r < R; r++) sum[r][0] = sum[r][1] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const PackedK& w0 = panel[kPanelGroups * b];
    const PackedK& w1 = panel[kPanelGroups * b + 1];
    __m512i isum[R][kPanelGroups];
    for (int r = 0; r < R; r++) isum[r][0] = isum[r][1] = _mm512_setzero_si512();
    for (int s = 0; s < subs; s++) {
      __m512i part[R][kPanelGroups];
      for (int r = 0; r < R; r++) part[r][0] = part[r][1] = _mm512_setzero_si512();
      for (int g = s * groupsPerSub; g < (s + 1) * groupsPerSub; g++) {
        const __m512i q0 = _mm512_load_si512(w0.q[g]);
        const __m512i q1 = _mm512_load_si512(w1.q[g]);
        for (int r = 0; r < R; r++) {
          const __m512i a = broadcastDword(x[r][b].qs + 4 * g);
          part[r][0] = _mm512_dpbusd_epi32(part[r][0], q0, a);
          part[r][1] = _mm512_dpbusd_epi32(part[r][1], q1, a);
        }
      }
      const __m512i sc0 = _mm512_load_si512(w0.scales[s]);
      const __m512i sc1 = _mm512_load_si512(w1.scales[s]);
      for (int r = 0; r < R; r++) {
        isum[r][0] = _mm512_add_epi32(isum[r][0], _mm512_mullo_epi32(part[r][0], sc0));
        isum[r][1] = _mm512_add_epi32(isum[r][1], _mm512_mullo_epi32(part[r][1], sc1));
      }
    }
    __m512i msum[R][kPanelGroups];
    for (int r = 0; r < R; r++) msum[r][0] = msum[r][1] = _mm512_setzero_si512();
    for (int g = 0; g < 8; g++) {
      const __m512i gw0 = _mm512_load_si512(w0.groupWeights[g]);
      const __m512i gw1 = _mm512_load_si512(w1.groupWeights[g]);
      for (int r = 0; r < R; r++) {
        const __m512i bs = broadcastDword(x[r][b].bsums + 2 * g);
        msum[r][0] = _mm512_dpwssd_epi32(msum[r][0], gw0, bs);
        msum[r][1] = _mm512_dpwssd_epi32(msum[r][1], gw1, bs);
      }
    }
    const __m512 d[2] = {_mm512_load_ps(w0.d), _mm512_load_ps(w1.d)};
    const __m512 dmin[2] = {_mm512_load_ps(w0.dmin), _mm512_load_ps(w1.dmin)};
    for (int r = 0; r < R; r++) {
      const __m512 dx = _mm512_set1_ps(x[r][b].d);
      for (int c = 0; c < kPanelGroups; c++) {
        if constexpr (Q6) {
          sum[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dx, d[c]), _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[r][c], msum[r][c])), sum[r][c]);
        } else {
          const __m512 v = _mm512_fmsub_ps(d[c], _mm512_cvtepi32_ps(isum[r][c]), _mm512_mul_ps(dmin[c], _mm512_cvtepi32_ps(msum[r][c])));
          sum[r][c] = _mm512_fmadd_ps(dx, v, sum[r][c]);
        }
      }
    }
  }
  const __mmask16 lo = static_cast<__mmask16>(cols >= kLanes ? 0xffff : (1u << cols) - 1);
  const __mmask16 hi = static_cast<__mmask16>(cols >= kPanelRows ? 0xffff : cols <= kLanes ? 0 : (1u << (cols - kLanes)) - 1);
  for (int r = 0; r < R; r++) {
    _mm512_mask_storeu_ps(out + r * outStride, lo, sum[r][0]);
    _mm512_mask_storeu_ps(out + r * outStride + kLanes, hi, sum[r][1]);
  }
}

template <bool Q6>
void tileVnniRows(int rows, const PackedK* panel, int nb, const uint8_t* act, size_t actStride, float* out, size_t outStride, int cols) {
  static_assert(kTileRows == 4, "tileVnniRows dispatches 1 … 4 rows");
  switch (rows) {
    case 1: return tileVnni<1, Q6>(panel, nb, act, actStride, out, outStride, cols);
    case 2: return tileVnni<2, Q6>(panel, nb, act, actStride, out, outStride, cols);
    case 3: return tileVnni<3, Q6>(panel, nb, act, actStride, out, outStride, cols);
    default: return tileVnni<4, Q6>(panel, nb, act, actStride, out, outStride, cols);
  }
}

#endif  // RAZORKV_INT8GEMM_VNNI

/** A 64-byte-aligned per-thread buffer for a packed panel, grown on demand and kept for the thread's life. */
struct PanelScratch {
  void* data = nullptr;
  size_t capacity = 0;
  ~PanelScratch() { std::free(data); }
  PackedK* get(size_t count) {
    const size_t bytes = count * sizeof(PackedK);
    if (bytes > capacity) {
      std::free(data);
      data = std::aligned_alloc(64, bytes);
      capacity = data ? bytes : 0;
      if (!data) throw std::bad_alloc();
    }
    return static_cast<PackedK*>(data);
  }
};
thread_local PanelScratch t_packed;

}  // namespace

bool int8GemmSupports(GgmlType type) { return type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K; }

bool int8GemmVnni() {
#ifdef RAZORKV_INT8GEMM_VNNI
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

void int8Gemm(GgmlType type, const uint8_t* w, size_t rowBytes, const uint8_t* act, size_t actStride, float* out, int M, int N,
              int K, bool simd) {
  if (M <= 0 || N <= 0) return;
  const int nb = K / QK_K;
  const int panels = (N + kPanelRows - 1) / kPanelRows;
  const int threads = static_cast<double>(M) * N * K < (1 << 15) ? 1 : kernelThreads();
#ifdef RAZORKV_INT8GEMM_VNNI
  if (simd && int8GemmVnni()) {
    const bool q6 = type == GgmlType::Q6_K;
    parallelFor(panels, threads, [&](int c, int) {
      const int n0 = c * kPanelRows, cols = std::min(kPanelRows, N - n0);
      PackedK* panel = t_packed.get(static_cast<size_t>(kPanelGroups) * nb);
      packPanel(type, w, rowBytes, N, n0, nb, panel);
      for (int m = 0; m < M; m += kTileRows) {
        const int rows = std::min(kTileRows, M - m);
        float* o = out + static_cast<size_t>(m) * N + n0;
        const uint8_t* a = act + m * actStride;
        if (q6) tileVnniRows<true>(rows, panel, nb, a, actStride, o, N, cols);
        else tileVnniRows<false>(rows, panel, nb, a, actStride, o, N, cols);
      }
    });
    return;
  }
#endif
  const RowsDotFn dot = rowsDotKernel(type, false);
  parallelFor(panels, threads, [&](int c, int) {
    for (int n = c * kPanelRows; n < std::min(N, (c + 1) * kPanelRows); n++) {
      for (int m = 0; m < M; m++) dot(w + n * rowBytes, act + m * actStride, actStride, 1, K, out + static_cast<size_t>(m) * N + n, N);
    }
  });
}

}  // namespace razorkv
