// The 8-bit GEMM of qgemm.h: packing W for vpdpbusd, the AVX-512 VNNI micro-kernel, and the threaded driver.
#include "qgemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "qdot.h"
#include "scratch.h"
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
// two of W, the broadcast x and two of scales. 3 rows ran at 0.8× of 4; 5 and 6 (spilling) within the machine's
// ±10% of 4 (1B-shaped Q4_K and Q6_K matrices, M = 512, 2 threads, alternated).
constexpr int kTileRows = 4;

/** 16 rows of W × one 256-block, as the micro-kernel reads them: each row's q and KBlockScales, transposed to lanes. */
struct alignas(64) PackedK {
  uint8_t q[64][kLanes][4];          // group g: elements 4g … 4g + 3 of each row (one vpdpbusd dword per lane)
  int32_t scales[16][kLanes];        // sub-block scales (8 used by Q4_K and Q5_K)
  int16_t groupWeights[8][kLanes][2];  // bsum weights of groups 2p and 2p + 1 (one vpdpwssd dword per lane)
  float d[kLanes];
  float dmin[kLanes];
};

/** 16 rows of W × one 32-element block (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): q per k-group and lane, d and m. */
struct alignas(64) PackedB32 {
  uint8_t q[8][kLanes][4];  // unsigned q (Q8_0: its int8 + 128)
  float d[kLanes];
  float m[kLanes];          // Q4_1, Q5_1: the block's min
};

#ifdef RAZORKV_INT8GEMM_VNNI

#define RAZORKV_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
// GCC 12's _mm512_cvtepi32_ps passes _mm512_undefined_ps() (a self-initialized variable) as its unused source,
// which -Wmaybe-uninitialized reports at every inlined call; nothing here reads an uninitialized value.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/** Writes lane `lane` of p: the scales, group weights, d and dmin of one row's block (k), or zeros (k null). */
void packScales(PackedK& p, int lane, const KBlockScales* k) {
  for (int s = 0; s < 16; s++) p.scales[s][lane] = k && s < k->subBlocks ? k->scales[s] : 0;
  for (int g = 0; g < 8; g++) {
    p.groupWeights[g][lane][0] = k ? k->groupWeights[2 * g] : 0;
    p.groupWeights[g][lane][1] = k ? k->groupWeights[2 * g + 1] : 0;
  }
  p.d[lane] = k ? k->d : 0;
  p.dmin[lane] = k ? k->dmin : 0;
}

RAZORKV_VNNI512 inline __m512i broadcastDword(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/** Stores R rows × the first `cols` (≤ 32) of a tile's sums. */
template <int R>
RAZORKV_VNNI512 inline void storeTile(const __m512 (&sum)[R][kPanelGroups], float* out, size_t outStride, int cols) {
  const __mmask16 lo = static_cast<__mmask16>(cols >= kLanes ? 0xffff : (1u << cols) - 1);
  const __mmask16 hi = static_cast<__mmask16>(cols >= kPanelRows ? 0xffff : cols <= kLanes ? 0 : (1u << (cols - kLanes)) - 1);
  for (int r = 0; r < R; r++) {
    _mm512_mask_storeu_ps(out + r * outStride, lo, sum[r][0]);
    _mm512_mask_storeu_ps(out + r * outStride + kLanes, hi, sum[r][1]);
  }
}

RAZORKV_VNNI512 inline __m512i shiftBytesRight(__m512i v, int n) { return _mm512_srl_epi16(v, _mm_cvtsi32_si128(n)); }
RAZORKV_VNNI512 inline __m256i shiftBytesRight(__m256i v, int n) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n)); }
RAZORKV_VNNI512 inline __m512i concat(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/**
 * Elements 64t … 64t + 63 of one row's block as unsigned q (q4kValue, q5kValue, q6kValue in qdot.cc): the 16 dwords of
 * k-groups 16t … 16t + 15. 16-bit shifts move bits between a lane's two bytes; the masks keep each byte's own.
 */
template <GgmlType T>
RAZORKV_VNNI512 inline __m512i rowQuarter(const uint8_t* block, int t) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    // qs[32t …]: elements 64t + l in the low nibbles, 64t + 32 + l in the high ones
    using Block = std::conditional_t<T == GgmlType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block& b = *reinterpret_cast<const Block*>(block);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * t));
    __m512i q = _mm512_and_si512(concat(v, shiftBytesRight(v, 4)), low4);
    if constexpr (T == GgmlType::Q5_K) {  // bit j of qh[l] is bit 4 of element 32j + l: j = 2t, 2t + 1
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ5_K*>(block)->qh));
      const __m512i bit = _mm512_and_si512(concat(shiftBytesRight(h, 2 * t), shiftBytesRight(h, 2 * t + 1)), _mm512_set1_epi8(1));
      q = _mm512_or_si512(q, _mm512_slli_epi16(bit, 4));
    }
    return q;
  } else {
    // Q6_K, t = 2h + u: element 128h + 64u + m has low bits (ql[64h + m] >> 4u) & 15 and high bits
    // (qh[32h + m % 32] >> (4u + 2·(m / 32))) & 3 (q6kValue)
    const BlockQ6_K& b = *reinterpret_cast<const BlockQ6_K*>(block);
    const int h = t / 2, u = t % 2;
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
    const __m512i low = _mm512_and_si512(shiftBytesRight(ql, 4 * u), low4);
    const __m512i high = _mm512_and_si512(concat(shiftBytesRight(qh, 4 * u), shiftBytesRight(qh, 4 * u + 2)), _mm512_set1_epi8(3));
    return _mm512_or_si512(low, _mm512_slli_epi16(high, 4));
  }
}

/** Transposes 16 × 16 dwords in place: r[i] dword j ↔ r[j] dword i. */
RAZORKV_VNNI512 inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);      // per 128-bit lane k: r_i[4k], r_i+1[4k], r_i[4k+1], r_i+1[4k+1]
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);  // … [4k+2], [4k+3]
  }
  for (int i = 0; i < 16; i += 4) {  // u[i + e], lane k: rows i … i + 3 of dword 4k + e
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int e = 0; e < 4; e++) {  // gather lane k of u[e], u[4 + e], u[8 + e], u[12 + e] into r[4k + e]
    const __m512i v = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), w = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd);
    const __m512i x = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88), y = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_i32x4(v, x, 0x88);
    r[8 + e] = _mm512_shuffle_i32x4(v, x, 0xdd);
    r[4 + e] = _mm512_shuffle_i32x4(w, y, 0x88);
    r[12 + e] = _mm512_shuffle_i32x4(w, y, 0xdd);
  }
}

/**
 * Packs W rows [n0, n0 + 32) × nb blocks into panel[2b + group] (rows at or past N as zero weights): per 16 rows
 * and block, the scales lane by lane, and q a quarter of the block at a time (16 rows × 16 dwords, transposed so
 * that each vector holds one k-group of the 16 rows). Block by block: the two PackedK being filled stay in L1.
 */
template <GgmlType T>
RAZORKV_VNNI512 void packPanelVnniT(const uint8_t* w, size_t rowBytes, int N, int n0, int nb, PackedK* panel) {
  const size_t blockBytes = ggmlTypeInfo(T).blockBytes;
  KBlockScales k;
  for (int b = 0; b < nb; b++) {
    for (int group = 0; group < kPanelGroups; group++) {
      PackedK& p = panel[kPanelGroups * b + group];
      const int first = n0 + kLanes * group, rows = std::max(0, std::min(kLanes, N - first));
      for (int lane = 0; lane < kLanes; lane++) {
        if (lane < rows) {
          decodeKBlockScales(T, w + (first + lane) * rowBytes + b * blockBytes, k);
          packScales(p, lane, &k);
        } else {
          packScales(p, lane, nullptr);
        }
      }
      for (int t = 0; t < 4; t++) {
        __m512i r[16];
        for (int lane = 0; lane < kLanes; lane++) {
          r[lane] = lane < rows ? rowQuarter<T>(w + (first + lane) * rowBytes + b * blockBytes, t) : _mm512_setzero_si512();
        }
        transpose16(r);
        for (int g = 0; g < 16; g++) _mm512_store_si512(p.q[16 * t + g], r[g]);
      }
    }
  }
}

void packPanelVnni(GgmlType type, const uint8_t* w, size_t rowBytes, int N, int n0, int nb, PackedK* panel) {
  switch (type) {
    case GgmlType::Q4_K: return packPanelVnniT<GgmlType::Q4_K>(w, rowBytes, N, n0, nb, panel);
    case GgmlType::Q5_K: return packPanelVnniT<GgmlType::Q5_K>(w, rowBytes, N, n0, nb, panel);
    default: return packPanelVnniT<GgmlType::Q6_K>(w, rowBytes, N, n0, nb, panel);
  }
}

/**
 * Elements 0 … 31 of one row's 32-element block as unsigned q: 8 dwords, k-groups 0 … 7. Q8_0 is shifted to
 * q + 128 (its kernel subtracts 128·Σqx); the others are unsigned already, offsets in their epilogues.
 */
template <GgmlType T>
RAZORKV_VNNI512 inline __m256i rowBlock32(const uint8_t* block) {
  if constexpr (T == GgmlType::Q8_0) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ8_0*>(block)->qs)), _mm256_set1_epi8(-128));
  } else {
    constexpr bool five = T == GgmlType::Q5_0 || T == GgmlType::Q5_1;
    const uint8_t* qs = T == GgmlType::Q4_0 ? reinterpret_cast<const BlockQ4_0*>(block)->qs
                        : T == GgmlType::Q4_1 ? reinterpret_cast<const BlockQ4_1*>(block)->qs
                        : T == GgmlType::Q5_0 ? reinterpret_cast<const BlockQ5_0*>(block)->qs
                                              : reinterpret_cast<const BlockQ5_1*>(block)->qs;
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));  // element i < 16: low nibble of qs[i]; i ≥ 16: high of qs[i − 16]
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, low4)), _mm_and_si128(_mm_srli_epi16(v, 4), low4), 1);
    if constexpr (five) {  // bit i of qh: bit 4 of element i
      uint32_t qh;
      std::memcpy(&qh, T == GgmlType::Q5_0 ? reinterpret_cast<const BlockQ5_0*>(block)->qh : reinterpret_cast<const BlockQ5_1*>(block)->qh, 4);
      q = _mm256_mask_blend_epi8(static_cast<__mmask32>(qh), q, _mm256_or_si256(q, _mm256_set1_epi8(16)));
    }
    return q;
  }
}

/** Packs W rows [n0, n0 + 32) × nb 32-element blocks into panel[2b + group] (rows past N zero), two blocks per transpose. */
template <GgmlType T>
RAZORKV_VNNI512 void packPanel32T(const uint8_t* w, size_t rowBytes, int N, int n0, int nb, PackedB32* panel) {
  const size_t blockBytes = ggmlTypeInfo(T).blockBytes;
  for (int group = 0; group < kPanelGroups; group++) {
    const int first = n0 + kLanes * group, rows = std::max(0, std::min(kLanes, N - first));
    for (int b = 0; b < nb; b += 2) {
      __m512i r[16];
      for (int lane = 0; lane < kLanes; lane++) {
        if (lane >= rows) {
          r[lane] = _mm512_setzero_si512();
          continue;
        }
        const uint8_t* row = w + (first + lane) * rowBytes;
        const __m256i hi = b + 1 < nb ? rowBlock32<T>(row + (b + 1) * blockBytes) : _mm256_setzero_si256();
        r[lane] = concat(rowBlock32<T>(row + b * blockBytes), hi);
      }
      transpose16(r);  // r[g]: k-group g of block b (g < 8) or of block b + 1 (g − 8)
      for (int h = 0; h < 2 && b + h < nb; h++) {
        PackedB32& p = panel[kPanelGroups * (b + h) + group];
        for (int g = 0; g < 8; g++) _mm512_store_si512(p.q[g], r[8 * h + g]);
        for (int lane = 0; lane < kLanes; lane++) {
          p.d[lane] = p.m[lane] = 0;
          if (lane >= rows) continue;
          const uint8_t* block = w + (first + lane) * rowBytes + (b + h) * blockBytes;
          uint16_t half;
          std::memcpy(&half, block, 2);  // every one of these layouts starts with f16 d
          p.d[lane] = f16ToF32(half);
          if constexpr (T == GgmlType::Q4_1 || T == GgmlType::Q5_1) {
            std::memcpy(&half, block + 2, 2);  // then f16 m
            p.m[lane] = f16ToF32(half);
          }
        }
      }
    }
  }
}

/**
 * part[r][c] = Σ over k-groups [g0, g1) of group c's q (one W row per lane) × row r's 4 activation bytes there
 * (xq[r]: the row's block of int8 qs): two loads of W and 2R vpdpbusd per k-group.
 */
template <int R>
RAZORKV_VNNI512 inline void dotGroups(__m512i (&part)[R][kPanelGroups], const uint8_t (*q0)[kLanes][4], const uint8_t (*q1)[kLanes][4],
                                      const int8_t* const (&xq)[R], int g0, int g1) {
  for (int r = 0; r < R; r++) part[r][0] = part[r][1] = _mm512_setzero_si512();
  for (int g = g0; g < g1; g++) {
    const __m512i w0 = _mm512_load_si512(q0[g]);
    const __m512i w1 = _mm512_load_si512(q1[g]);
    for (int r = 0; r < R; r++) {
      const __m512i a = broadcastDword(xq[r] + 4 * g);
      part[r][0] = _mm512_dpbusd_epi32(part[r][0], w0, a);
      part[r][1] = _mm512_dpbusd_epi32(part[r][1], w1, a);
    }
  }
}

/**
 * tileVnni for the 32-element types: per block of 32 k and (row, group), the integer sum of 8 vpdpbusd and the
 * scalar kernel's epilogue (dotQ8_0Scalar …), fused as there —
 *   Q8_0        sum = fma(d·dx, isum − 128·Σqx, sum)            (asum: Σqx per row and block)
 *   Q4_0, Q5_0  sum = fma(d, fma(dx, isum, −(8 or 16)·sx), sum)
 *   Q4_1, Q5_1  sum = sum + fma(d·dx, isum, m·sx)
 */
template <int R, GgmlType T>
RAZORKV_VNNI512 void tileVnni32(const PackedB32* panel, int nb, const uint8_t* act, size_t actStride, const int32_t* asum, float* out, size_t outStride, int cols) {
  const BlockQ8x32* x[R];
  for (int r = 0; r < R; r++) x[r] = reinterpret_cast<const BlockQ8x32*>(act + r * actStride);
  __m512 sum[R][kPanelGroups];
  for (int r = 0; r < R; r++) sum[r][0] = sum[r][1] = _mm512_setzero_ps();
  for (int b = 0; b < nb; b++) {
    const PackedB32& w0 = panel[kPanelGroups * b];
    const PackedB32& w1 = panel[kPanelGroups * b + 1];
    const int8_t* xq[R];
    for (int r = 0; r < R; r++) xq[r] = x[r][b].qs;
    __m512i part[R][kPanelGroups];
    dotGroups<R>(part, w0.q, w1.q, xq, 0, 8);
    const __m512 d[2] = {_mm512_load_ps(w0.d), _mm512_load_ps(w1.d)};
    for (int r = 0; r < R; r++) {
      const __m512 dx = _mm512_set1_ps(x[r][b].d);
      for (int c = 0; c < kPanelGroups; c++) {
        if constexpr (T == GgmlType::Q8_0) {
          const __m512i isum = _mm512_sub_epi32(part[r][c], _mm512_set1_epi32(128 * asum[static_cast<size_t>(r) * nb + b]));
          sum[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(d[c], dx), _mm512_cvtepi32_ps(isum), sum[r][c]);
        } else if constexpr (T == GgmlType::Q4_0 || T == GgmlType::Q5_0) {
          const float offset = (T == GgmlType::Q4_0 ? 8.0f : 16.0f) * x[r][b].s;
          const __m512 u = _mm512_fmsub_ps(dx, _mm512_cvtepi32_ps(part[r][c]), _mm512_set1_ps(offset));
          sum[r][c] = _mm512_fmadd_ps(d[c], u, sum[r][c]);
        } else {
          const __m512 m = _mm512_load_ps(c == 0 ? w0.m : w1.m);
          const __m512 v = _mm512_fmadd_ps(_mm512_mul_ps(d[c], dx), _mm512_cvtepi32_ps(part[r][c]), _mm512_mul_ps(m, _mm512_set1_ps(x[r][b].s)));
          sum[r][c] = _mm512_add_ps(sum[r][c], v);
        }
      }
    }
  }
  storeTile<R>(sum, out, outStride, cols);
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
    const int8_t* xq[R];
    for (int r = 0; r < R; r++) xq[r] = x[r][b].qs;
    for (int s = 0; s < subs; s++) {
      __m512i part[R][kPanelGroups];
      dotGroups<R>(part, w0.q, w1.q, xq, s * groupsPerSub, (s + 1) * groupsPerSub);
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
  storeTile<R>(sum, out, outStride, cols);
}

/** f(std::integral_constant<int, rows>) for rows = 1 … kTileRows: the micro-kernels take their row count as a template. */
template <typename F>
void withRows(int rows, F f) {
  static_assert(kTileRows == 4, "withRows dispatches 1 … 4 rows");
  switch (rows) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    default: return f(std::integral_constant<int, 4>());
  }
}

thread_local Scratch t_packed;  // a thread's packed panel

/**
 * The driver both families share: threads take panels of 32 rows of W; each packs its panel into its scratch
 * (pack(n0, panel)) and sweeps all M rows of x over it, kTileRows at a time (tile(R, panel, m, cols), R a
 * std::integral_constant). Packed is PackedK or PackedB32, nb its blocks per row.
 */
template <typename Packed, typename Pack, typename Tile>
void runPanels(int M, int N, int nb, int threads, Pack pack, Tile tile) {
  const int panels = (N + kPanelRows - 1) / kPanelRows;
  parallelFor(panels, threads, [&](int c, int) {
    const int n0 = c * kPanelRows, cols = std::min(kPanelRows, N - n0);
    Packed* panel = static_cast<Packed*>(t_packed.get(sizeof(Packed) * kPanelGroups * static_cast<size_t>(nb)));
    pack(n0, panel);
    for (int m = 0; m < M; m += kTileRows) {
      withRows(std::min(kTileRows, M - m), [&](auto R) { tile(R, panel, m, n0, cols); });
    }
  });
}

/** The VNNI path for the K-quants (x: BlockQ8_K rows). */
void gemmK(GgmlType type, const uint8_t* w, size_t rowBytes, const uint8_t* act, size_t actStride, float* out, int M, int N, int nb, int threads) {
  runPanels<PackedK>(
      M, N, nb, threads, [&](int n0, PackedK* panel) { packPanelVnni(type, w, rowBytes, N, n0, nb, panel); },
      [&](auto R, const PackedK* panel, int m, int n0, int cols) {
        float* o = out + static_cast<size_t>(m) * N + n0;
        if (type == GgmlType::Q6_K) tileVnni<decltype(R)::value, true>(panel, nb, act + m * actStride, actStride, o, N, cols);
        else tileVnni<decltype(R)::value, false>(panel, nb, act + m * actStride, actStride, o, N, cols);
      });
}

/** The VNNI path for one 32-element type (x: BlockQ8x32 rows); Q8_0 first sums each row's qx per block. */
template <GgmlType T>
void gemm32(const uint8_t* w, size_t rowBytes, const uint8_t* act, size_t actStride, float* out, int M, int N, int nb, int threads) {
  std::vector<int32_t> asum;
  if constexpr (T == GgmlType::Q8_0) {
    asum.resize(static_cast<size_t>(M) * nb);
    for (int m = 0; m < M; m++) {
      const BlockQ8x32* x = reinterpret_cast<const BlockQ8x32*>(act + m * actStride);
      for (int b = 0; b < nb; b++) {
        int sum = 0;
        for (int i = 0; i < QK; i++) sum += x[b].qs[i];
        asum[static_cast<size_t>(m) * nb + b] = sum;
      }
    }
  }
  runPanels<PackedB32>(
      M, N, nb, threads, [&](int n0, PackedB32* panel) { packPanel32T<T>(w, rowBytes, N, n0, nb, panel); },
      [&](auto R, const PackedB32* panel, int m, int n0, int cols) {
        const int32_t* s = asum.empty() ? nullptr : asum.data() + static_cast<size_t>(m) * nb;
        tileVnni32<decltype(R)::value, T>(panel, nb, act + m * actStride, actStride, s, out + static_cast<size_t>(m) * N + n0, N, cols);
      });
}

#pragma GCC diagnostic pop

#endif  // RAZORKV_INT8GEMM_VNNI

}  // namespace

bool int8GemmSupports(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

bool int8GemmVnni() {
#ifdef RAZORKV_INT8GEMM_VNNI
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

void int8Gemm(GgmlType type, const uint8_t* w, size_t rowBytes, const uint8_t* act, size_t actStride, float* out, int M, int N, int K,
              int threads) {
  if (!int8GemmVnni()) throw std::logic_error("int8Gemm: this CPU has no AVX-512 VNNI (callers check int8GemmVnni() first)");
  if (M <= 0 || N <= 0) return;
#ifdef RAZORKV_INT8GEMM_VNNI
  const int nb = K / ggmlTypeInfo(type).blockSize;
  switch (type) {
    case GgmlType::Q8_0: return gemm32<GgmlType::Q8_0>(w, rowBytes, act, actStride, out, M, N, nb, threads);
    case GgmlType::Q4_0: return gemm32<GgmlType::Q4_0>(w, rowBytes, act, actStride, out, M, N, nb, threads);
    case GgmlType::Q4_1: return gemm32<GgmlType::Q4_1>(w, rowBytes, act, actStride, out, M, N, nb, threads);
    case GgmlType::Q5_0: return gemm32<GgmlType::Q5_0>(w, rowBytes, act, actStride, out, M, N, nb, threads);
    case GgmlType::Q5_1: return gemm32<GgmlType::Q5_1>(w, rowBytes, act, actStride, out, M, N, nb, threads);
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return gemmK(type, w, rowBytes, act, actStride, out, M, N, nb, threads);
    default: throw std::invalid_argument(std::string("int8Gemm: no 8-bit GEMM for ") + ggmlTypeInfo(type).name);
  }
#endif
}

}  // namespace razorkv
