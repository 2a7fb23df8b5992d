// Per-type dot products and decoders over GGUF weight rows (layouts in ggml_types.h, design in qdot.h).
//
// Every quantized kernel computes, per block, the exact integer Σ q_w·q_x and applies the float scales once:
//   32-element types against BlockQ8x32 (x ≈ dx·qx, sx = dx·Σqx):
//     Q8_0    dw·dx·Σ qw·qx
//     Q4_0    dw·(dx·Σ q·qx − 8·sx)              (q − 8 folded into the activation sum)
//     Q4_1    dw·dx·Σ q·qx + m·sx
//     Q5_0    dw·(dx·Σ q·qx − 16·sx)
//     Q5_1    dw·dx·Σ q·qx + m·sx
//     IQ4_NL  dw·dx·Σ L[q]·qx
//   256-element types against BlockQ8_K (bsums: Σqx per 16 elements):
//     Q2_K    d·dx·Σ_s sc_s·Σ q·qx − dmin·dx·Σ_s mn_s·bsum_s
//     Q3_K    d·dx·Σ_s sc_s·(Σ q'·qx − 4·bsum_s)     q' = q + 4 ∈ 0..7
//     Q4_K    d·dx·Σ_j sc_j·Σ q·qx − dmin·dx·Σ_j mn_j·(bsum_2j + bsum_2j+1)
//     Q5_K    as Q4_K
//     Q6_K    d·dx·Σ_s sc_s·(Σ q·qx − 32·bsum_s)
//     IQ4_XS  d·dx·Σ_k (ls_k − 32)·Σ L[q]·qx
// The AVX2 kernels get the integer sums with maddubs (unsigned 8-bit weights × signed 8-bit activations, pairs
// summed to int16) and madd (int16 pairs × the sub-block scale, summed to int32): no int16 sum can saturate, since
// every unsigned weight is ≤ 63 (≤ 128 for |int8| in the sign trick) and |qx| ≤ 127.
#include "qdot.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "simd.h"

namespace razorkv {

const int8_t kIq4nlLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

GgmlTypeInfo ggmlTypeInfo(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return {1, 4, "F32"};
    case GgmlType::F16: return {1, 2, "F16"};
    case GgmlType::BF16: return {1, 2, "BF16"};
    case GgmlType::Q8_0: return {QK, sizeof(BlockQ8_0), "Q8_0"};
    case GgmlType::Q4_0: return {QK, sizeof(BlockQ4_0), "Q4_0"};
    case GgmlType::Q4_1: return {QK, sizeof(BlockQ4_1), "Q4_1"};
    case GgmlType::Q5_0: return {QK, sizeof(BlockQ5_0), "Q5_0"};
    case GgmlType::Q5_1: return {QK, sizeof(BlockQ5_1), "Q5_1"};
    case GgmlType::IQ4_NL: return {QK, sizeof(BlockIQ4_NL), "IQ4_NL"};
    case GgmlType::Q2_K: return {QK_K, sizeof(BlockQ2_K), "Q2_K"};
    case GgmlType::Q3_K: return {QK_K, sizeof(BlockQ3_K), "Q3_K"};
    case GgmlType::Q4_K: return {QK_K, sizeof(BlockQ4_K), "Q4_K"};
    case GgmlType::Q5_K: return {QK_K, sizeof(BlockQ5_K), "Q5_K"};
    case GgmlType::Q6_K: return {QK_K, sizeof(BlockQ6_K), "Q6_K"};
    case GgmlType::IQ4_XS: return {QK_K, sizeof(BlockIQ4_XS), "IQ4_XS"};
  }
  return {0, 0, "unsupported"};
}

bool ggmlTypeSupported(int type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::IQ4_NL: case GgmlType::Q2_K:
    case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_XS:
      return true;
  }
  return false;
}

float f16ToF32Portable(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    int shift = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      shift++;
    }
    bits = sign | ((113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

namespace {

float bf16ToF32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t readU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint16_t readU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/** 4-bit element i (< 32) of a 32-element block's 16 bytes: low nibbles are 0–15, high nibbles 16–31. */
int nibble(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 0x0f : qs[i - 16] >> 4; }

/** Sub-block j's 6-bit scale and min of a Q4_K / Q5_K block (get_scale_min_k4). */
void scaleMinK4(const uint8_t* scales, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = scales[j] & 63;
    mn = scales[j + 4] & 63;
  } else {
    sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

/** Sub-block s's 6-bit signed scale (−32 … 31) of a Q3_K block. */
int scaleQ3K(const uint8_t* scales, int s) {
  int low = s < 8 ? scales[s] & 0x0f : scales[s - 8] >> 4;
  int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}

/** Sub-block k's scale ls − 32 (−32 … 31) of an IQ4_XS block. */
int scaleIQ4XS(const BlockIQ4_XS& b, int k) {
  int low = (b.scales_l[k / 2] >> (4 * (k % 2))) & 0x0f;
  int high = (b.scales_h >> (2 * k)) & 3;
  return (low | (high << 4)) - 32;
}

// Element accessors of the 256-element types, straight from the layouts (ggml_types.h).
int q2kValue(const BlockQ2_K& b, int i) { return (b.qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3; }
int q3kValue(const BlockQ3_K& b, int i) {
  int low = (b.qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3;
  int high = (b.hmask[i % 32] >> (i / 32)) & 1;
  return low - (high ? 0 : 4);
}
int q4kValue(const BlockQ4_K& b, int i) { return (b.qs[32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 0x0f; }
int q5kValue(const BlockQ5_K& b, int i) {
  int low = (b.qs[32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 0x0f;
  return low | (((b.qh[i % 32] >> (i / 32)) & 1) << 4);
}
int q6kValue(const BlockQ6_K& b, int i) {
  int h = i / 128, r = i % 128;
  int low = (b.ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
  int high = (b.qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
  return low | (high << 4);
}
int q5Value(const uint8_t* qs, uint32_t qh, int i) { return nibble(qs, i) | (((qh >> i) & 1) << 4); }

// ---------------------------------------------------------------------------------------------------------------
// activation quantization

/** d = amax/127 and its inverse (0 for an all-zero block). */
void blockScale(const float* x, int n, float& d, float& id) {
  float amax = 0;
  for (int i = 0; i < n; i++) amax = std::max(amax, std::fabs(x[i]));
  d = amax / 127;
  id = d > 0 ? 1 / d : 0;
}

/** round-to-nearest-even of x·id, the rounding _mm256_round_ps does too. */
int8_t quantize8(float x, float id) { return static_cast<int8_t>(std::nearbyint(x * id)); }

void quantizeQ8x32Scalar(const float* x, BlockQ8x32* y, int K) {
  for (int b = 0; b < K / QK; b++, x += QK) {
    float d, id;
    blockScale(x, QK, d, id);
    int sum = 0;
    for (int i = 0; i < QK; i++) {
      y[b].qs[i] = quantize8(x[i], id);
      sum += y[b].qs[i];
    }
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum);
  }
}

void quantizeQ8KScalar(const float* x, BlockQ8_K* y, int K) {
  for (int b = 0; b < K / QK_K; b++, x += QK_K) {
    float d, id;
    blockScale(x, QK_K, d, id);
    for (int i = 0; i < QK_K; i++) y[b].qs[i] = quantize8(x[i], id);
    for (int g = 0; g < QK_K / 16; g++) {
      int sum = 0;
      for (int i = 0; i < 16; i++) sum += y[b].qs[16 * g + i];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = d;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// scalar kernels: one per type, the formula of the header comment with plain loops
//
// The kernels the 8-bit GEMM (qgemm.cc) reproduces — Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K — write their
// float epilogue as explicit std::fma: that is what GCC's default contraction made of them, and the GEMM performs
// these exact operations, so they must not depend on the compiler's choice.

float dotF32Scalar(const uint8_t* row, const void* act, int K) {
  const float* x = static_cast<const float*>(act);
  float sum = 0;
  for (int k = 0; k < K; k++) {
    float w;
    std::memcpy(&w, row + 4 * k, sizeof w);
    sum += w * x[k];
  }
  return sum;
}

float dotF16Scalar(const uint8_t* row, const void* act, int K) {
  const float* x = static_cast<const float*>(act);
  float sum = 0;
  for (int k = 0; k < K; k++) sum += f16ToF32(readU16(row + 2 * k)) * x[k];
  return sum;
}

float dotBF16Scalar(const uint8_t* row, const void* act, int K) {
  const float* x = static_cast<const float*>(act);
  float sum = 0;
  for (int k = 0; k < K; k++) sum += bf16ToF32(readU16(row + 2 * k)) * x[k];
  return sum;
}

float dotQ8_0Scalar(const uint8_t* row, const void* act, int K) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += w[b].qs[i] * a[b].qs[i];
    sum = std::fma(f16ToF32(w[b].d) * a[b].d, static_cast<float>(isum), sum);
  }
  return sum;
}

float dotQ4_0Scalar(const uint8_t* row, const void* act, int K) {
  const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += nibble(w[b].qs, i) * a[b].qs[i];
    sum = std::fma(f16ToF32(w[b].d), std::fma(a[b].d, static_cast<float>(isum), -(8 * a[b].s)), sum);
  }
  return sum;
}

float dotQ4_1Scalar(const uint8_t* row, const void* act, int K) {
  const BlockQ4_1* w = reinterpret_cast<const BlockQ4_1*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += nibble(w[b].qs, i) * a[b].qs[i];
    sum += std::fma(f16ToF32(w[b].d) * a[b].d, static_cast<float>(isum), f16ToF32(w[b].m) * a[b].s);
  }
  return sum;
}

float dotQ5_0Scalar(const uint8_t* row, const void* act, int K) {
  const BlockQ5_0* w = reinterpret_cast<const BlockQ5_0*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    const uint32_t qh = readU32(w[b].qh);
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += q5Value(w[b].qs, qh, i) * a[b].qs[i];
    sum = std::fma(f16ToF32(w[b].d), std::fma(a[b].d, static_cast<float>(isum), -(16 * a[b].s)), sum);
  }
  return sum;
}

float dotQ5_1Scalar(const uint8_t* row, const void* act, int K) {
  const BlockQ5_1* w = reinterpret_cast<const BlockQ5_1*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    const uint32_t qh = readU32(w[b].qh);
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += q5Value(w[b].qs, qh, i) * a[b].qs[i];
    sum += std::fma(f16ToF32(w[b].d) * a[b].d, static_cast<float>(isum), f16ToF32(w[b].m) * a[b].s);
  }
  return sum;
}

float dotIQ4_NLScalar(const uint8_t* row, const void* act, int K) {
  const BlockIQ4_NL* w = reinterpret_cast<const BlockIQ4_NL*>(row);
  const BlockQ8x32* a = static_cast<const BlockQ8x32*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK; b++) {
    int isum = 0;
    for (int i = 0; i < QK; i++) isum += kIq4nlLevels[nibble(w[b].qs, i)] * a[b].qs[i];
    sum += f16ToF32(w[b].d) * a[b].d * static_cast<float>(isum);
  }
  return sum;
}

float dotQ2_KScalar(const uint8_t* row, const void* act, int K) {
  const BlockQ2_K* w = reinterpret_cast<const BlockQ2_K*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0, msum = 0;
    for (int s = 0; s < 16; s++) {
      int sub = 0;
      for (int i = 16 * s; i < 16 * s + 16; i++) sub += q2kValue(w[b], i) * a[b].qs[i];
      isum += (w[b].scales[s] & 0x0f) * sub;
      msum += (w[b].scales[s] >> 4) * a[b].bsums[s];
    }
    sum = std::fma(a[b].d, std::fma(f16ToF32(w[b].d), static_cast<float>(isum), -(f16ToF32(w[b].dmin) * static_cast<float>(msum))), sum);
  }
  return sum;
}

float dotQ3_KScalar(const uint8_t* row, const void* act, int K) {
  const BlockQ3_K* w = reinterpret_cast<const BlockQ3_K*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0;
    for (int s = 0; s < 16; s++) {
      int sub = 0;
      for (int i = 16 * s; i < 16 * s + 16; i++) sub += q3kValue(w[b], i) * a[b].qs[i];
      isum += scaleQ3K(w[b].scales, s) * sub;
    }
    sum += a[b].d * f16ToF32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float dotQ4_KScalar(const uint8_t* row, const void* act, int K) {
  const BlockQ4_K* w = reinterpret_cast<const BlockQ4_K*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
      int sc, mn;
      scaleMinK4(w[b].scales, j, sc, mn);
      int sub = 0;
      for (int i = 32 * j; i < 32 * j + 32; i++) sub += q4kValue(w[b], i) * a[b].qs[i];
      isum += sc * sub;
      msum += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    sum = std::fma(a[b].d, std::fma(f16ToF32(w[b].d), static_cast<float>(isum), -(f16ToF32(w[b].dmin) * static_cast<float>(msum))), sum);
  }
  return sum;
}

float dotQ5_KScalar(const uint8_t* row, const void* act, int K) {
  const BlockQ5_K* w = reinterpret_cast<const BlockQ5_K*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
      int sc, mn;
      scaleMinK4(w[b].scales, j, sc, mn);
      int sub = 0;
      for (int i = 32 * j; i < 32 * j + 32; i++) sub += q5kValue(w[b], i) * a[b].qs[i];
      isum += sc * sub;
      msum += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    sum = std::fma(a[b].d, std::fma(f16ToF32(w[b].d), static_cast<float>(isum), -(f16ToF32(w[b].dmin) * static_cast<float>(msum))), sum);
  }
  return sum;
}

float dotQ6_KScalar(const uint8_t* row, const void* act, int K) {
  const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0;
    for (int s = 0; s < 16; s++) {
      int sub = 0;
      for (int i = 16 * s; i < 16 * s + 16; i++) sub += (q6kValue(w[b], i) - 32) * a[b].qs[i];
      isum += w[b].scales[s] * sub;
    }
    sum = std::fma(a[b].d * f16ToF32(w[b].d), static_cast<float>(isum), sum);
  }
  return sum;
}

float dotIQ4_XSScalar(const uint8_t* row, const void* act, int K) {
  const BlockIQ4_XS* w = reinterpret_cast<const BlockIQ4_XS*>(row);
  const BlockQ8_K* a = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int b = 0; b < K / QK_K; b++) {
    int isum = 0;
    for (int k = 0; k < 8; k++) {
      int sub = 0;
      for (int i = 0; i < 32; i++) sub += kIq4nlLevels[nibble(w[b].qs + 16 * k, i)] * a[b].qs[32 * k + i];
      isum += scaleIQ4XS(w[b], k) * sub;
    }
    sum += a[b].d * f16ToF32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------------------
// AVX2 kernels

#ifdef RAZORKV_AVX2

/**
 * Σ over groups of four of unsigned a × signed b, as eight int32 lanes. AVX-VNNI does it in one instruction; without
 * it maddubs sums pairs to int16 (no saturation for our operands, see the top) and madd sums those: the same ints.
 */
inline __m256i dotU8S8(__m256i a, __m256i b) {
#ifdef __AVXVNNI__
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}
/** Pairs of unsigned a × signed b summed to int16, times the int16 scales, summed to int32 lanes. */
inline __m256i dotU8S8Scaled(__m256i a, __m256i b, __m256i scales16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), scales16);
}
/** 16 bytes of nibbles → 32 bytes: the low nibbles (elements 0–15), then the high ones (16–31). */
inline __m256i unpackNibbles(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
}
/** Byte i = 0xff where bit i of `bits` is set, else 0. */
inline __m256i bitsToBytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
}
inline __m256i loadBytes(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
/** Scales for the two 16-element halves of a 32-element run: lanes 0–7 get lo, 8–15 hi (int16). */
inline __m256i halfScales(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

// Every AVX2 kernel takes a group of R ≤ kMaxDotRows activation rows (a batched decode step, or a prefill tile) and
// decodes each weight block once for all of them: the unpacking (nibbles, high bits, scales) is the part of a
// block's work that does not depend on x. Each row keeps its own accumulators and sees the same operations in the
// same order whatever R is, so a row's result has the same bits alone (R = 1) as in a group. Scalar multiply-adds
// are written as std::fma: left to the compiler (-ffp-contract=fast), a product and sum may be fused in one
// instantiation and not in another.

template <int R>
struct Rows {
  const uint8_t* act;
  size_t stride;
  template <typename T>
  const T* get(int r) const { return reinterpret_cast<const T*>(act + r * stride); }
};

/** Float weights: w(k) gives 8 weights at k as floats; two accumulators per row, alternating by 8. */
template <int R, typename Load8, typename Scalar>
inline void dotFloatRows(Rows<R> x, int K, float* out, size_t outStride, Load8 load8, Scalar scalar) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m256 w0 = load8(k), w1 = load8(k + 8);
    for (int r = 0; r < R; r++) {
      acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x.template get<float>(r) + k), acc0[r]);
      acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x.template get<float>(r) + k + 8), acc1[r]);
    }
  }
  for (int r = 0; r < R; r++) {
    float sum = hsum(_mm256_add_ps(acc0[r], acc1[r]));
    for (int t = k; t < K; t++) sum = std::fma(scalar(t), x.template get<float>(r)[t], sum);
    out[r * outStride] = sum;
  }
}

template <int R>
void dotF32Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const float* w = reinterpret_cast<const float*>(row);
  dotFloatRows(x, K, out, outStride, [w](int k) { return _mm256_loadu_ps(w + k); }, [w](int t) { return w[t]; });
}

template <int R>
void dotF16Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  dotFloatRows(x, K, out, outStride,
               [row](int k) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k))); },
               [row](int t) { return f16ToF32(readU16(row + 2 * t)); });
}

template <int R>
void dotBF16Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  dotFloatRows(x, K, out, outStride,
               [row](int k) {
                 const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
                 return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
               },
               [row](int t) { return bf16ToF32(readU16(row + 2 * t)); });
}

/** A 32-element block decoded: w[i] = d·q[i] + m (q unsigned 0 … 31; or, for the signed types, int8 with m = 0). */
struct Block32 {
  __m256i q;
  float d;
  float m;
};

/**
 * Σ_blocks d·dx·Σ q·qx + m·sx for R activation rows (BlockQ8x32 each); decode(b) gives weight block b. Two
 * accumulators per row, blocks alternating between them: each FMA then waits on the block before last, which halves
 * the loop-carried latency that bounds a GEMV whose weights sit in cache.
 */
template <int R, bool Signed, typename Decode>
inline void dot32Rows(Rows<R> x, int nb, float* out, size_t outStride, Decode decode) {
  __m256 acc[2][R];
  float scalar[2][R];
  for (int r = 0; r < R; r++) {
    acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    scalar[0][r] = scalar[1][r] = 0;
  }
  auto step = [&](int b, __m256* a, float* s) {
    const Block32 w = decode(b);
    const __m256i q = Signed ? _mm256_sign_epi8(w.q, w.q) : w.q;  // |q| for the sign trick
    for (int r = 0; r < R; r++) {
      const BlockQ8x32& y = x.template get<BlockQ8x32>(r)[b];
      const __m256i qx = Signed ? _mm256_sign_epi8(loadBytes(y.qs), w.q) : loadBytes(y.qs);
      a[r] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * y.d), _mm256_cvtepi32_ps(dotU8S8(q, qx)), a[r]);
      if (!Signed) s[r] = std::fma(w.m, y.s, s[r]);
    }
  };
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, acc[0], scalar[0]);
    step(b + 1, acc[1], scalar[1]);
  }
  if (b < nb) step(b, acc[0], scalar[0]);
  for (int r = 0; r < R; r++) out[r * outStride] = hsum(_mm256_add_ps(acc[0][r], acc[1][r])) + (scalar[0][r] + scalar[1][r]);
}

/** The 32 five-bit values of a Q5_0 / Q5_1 block. */
inline __m256i unpackQ5(const uint8_t* qs, const uint8_t* qh) {
  const __m256i high = _mm256_and_si256(bitsToBytes(readU32(qh)), _mm256_set1_epi8(0x10));
  return _mm256_or_si256(unpackNibbles(qs), high);
}

inline __m256i iq4Levels() {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlLevels)));
}

template <int R>
void dotQ8_0Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(row);
  dot32Rows<R, true>(x, K / QK, out, outStride, [w](int b) { return Block32{loadBytes(w[b].qs), f16ToF32(w[b].d), 0}; });
}

template <int R>
void dotQ4_0Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(row);
  dot32Rows<R, false>(x, K / QK, out, outStride, [w](int b) {
    const float d = f16ToF32(w[b].d);
    return Block32{unpackNibbles(w[b].qs), d, -8 * d};  // d·(q − 8) = d·q − 8d
  });
}

template <int R>
void dotQ4_1Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ4_1* w = reinterpret_cast<const BlockQ4_1*>(row);
  dot32Rows<R, false>(x, K / QK, out, outStride, [w](int b) { return Block32{unpackNibbles(w[b].qs), f16ToF32(w[b].d), f16ToF32(w[b].m)}; });
}

template <int R>
void dotQ5_0Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ5_0* w = reinterpret_cast<const BlockQ5_0*>(row);
  dot32Rows<R, false>(x, K / QK, out, outStride, [w](int b) {
    const float d = f16ToF32(w[b].d);
    return Block32{unpackQ5(w[b].qs, w[b].qh), d, -16 * d};  // d·(q − 16)
  });
}

template <int R>
void dotQ5_1Avx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ5_1* w = reinterpret_cast<const BlockQ5_1*>(row);
  dot32Rows<R, false>(x, K / QK, out, outStride, [w](int b) { return Block32{unpackQ5(w[b].qs, w[b].qh), f16ToF32(w[b].d), f16ToF32(w[b].m)}; });
}

template <int R>
void dotIQ4_NLAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockIQ4_NL* w = reinterpret_cast<const BlockIQ4_NL*>(row);
  const __m256i levels = iq4Levels();
  dot32Rows<R, true>(x, K / QK, out, outStride, [w, levels](int b) {
    return Block32{_mm256_shuffle_epi8(levels, unpackNibbles(w[b].qs)), f16ToF32(w[b].d), 0};
  });
}

/** The two bits at `shift` of every byte of v (0 … 3). */
inline __m256i twoBits(__m256i v, int shift) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(3));
}

/**
 * A 256-element block decoded: eight runs of 32 values q (unsigned; int8 for the signed types) with their int16
 * scales (per 16 elements: lanes 0–7 of a run's scale vector for its first half, 8–15 for the second), and the
 * int16 weights of the activation's 16 bsums (sums of 16 qx): the mins (times dmin; a per-32 min on both of its
 * groups) and the offset (Q3_K: q − 4, Q6_K: q − 32) times each group's scale.
 */
struct Block256 {
  __m256i q[8];
  __m256i scales[8];
  __m256i minWeights;     // Mins: Σ_g minWeights[g]·bsums[g] is multiplied by dmin
  __m256i offsetWeights;  // Offset: Σ_g offsetWeights[g]·bsums[g] is subtracted from the integer sum
  float d;
  float dmin;
};

/** Σ of the eight int32 lanes. */
inline int hsumInt(__m256i v) {
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
  return _mm_cvtsi128_si32(t);
}

/**
 * Σ_blocks d·dx·(Σ_runs scale·q·qx − Σ_g offsetWeights·bsum) − dmin·dx·Σ_g minWeights·bsum for R activation rows
 * (BlockQ8_K); the bsum terms in one madd each (no int16 overflow: |weights| ≤ 4096, |bsum| ≤ 2032).
 */
template <int R, bool Signed, bool Mins, bool Offset, typename Decode>
inline void dot256Rows(Rows<R> x, int nb, float* out, size_t outStride, Decode decode) {
  __m256 acc[R];
  float mins[R];
  for (int r = 0; r < R; r++) {
    acc[r] = _mm256_setzero_ps();
    mins[r] = 0;
  }
  Block256 w;
  for (int b = 0; b < nb; b++) {
    decode(b, w);
    for (int r = 0; r < R; r++) {
      const BlockQ8_K& y = x.template get<BlockQ8_K>(r)[b];
      __m256i isum = _mm256_setzero_si256();
      for (int run = 0; run < 8; run++) {
        const __m256i qx = loadBytes(y.qs + 32 * run);
        const __m256i pairs = Signed ? _mm256_maddubs_epi16(_mm256_sign_epi8(w.q[run], w.q[run]), _mm256_sign_epi8(qx, w.q[run]))
                                     : _mm256_maddubs_epi16(w.q[run], qx);
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, w.scales[run]));
      }
      const __m256i bsums = loadBytes(y.bsums);
      if constexpr (Offset) isum = _mm256_sub_epi32(isum, _mm256_setr_epi32(hsumInt(_mm256_madd_epi16(w.offsetWeights, bsums)), 0, 0, 0, 0, 0, 0, 0));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * y.d), _mm256_cvtepi32_ps(isum), acc[r]);
      if constexpr (Mins) {
        const int msum = hsumInt(_mm256_madd_epi16(w.minWeights, bsums));
        mins[r] = std::fma(w.dmin * y.d, static_cast<float>(msum), mins[r]);
      }
    }
  }
  for (int r = 0; r < R; r++) out[r * outStride] = hsum(acc[r]) - mins[r];
}

template <int R>
void dotQ2_KAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ2_K* w = reinterpret_cast<const BlockQ2_K*>(row);
  dot256Rows<R, false, true, false>(x, K / QK_K, out, outStride, [w](int b, Block256& d) {
    const uint8_t* sc = w[b].scales;  // scale in the low nibble, min in the high one, per 16 elements
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
    d.minWeights = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
    for (int h = 0; h < 2; h++) {
      const __m256i q = loadBytes(w[b].qs + 32 * h);
      for (int k = 0; k < 4; k++) {
        const int run = 4 * h + k;  // elements 32·run …: bits 2k, 2k + 1 of qs[32h + l]; sub-blocks 2·run, 2·run + 1
        d.q[run] = twoBits(q, 2 * k);
        d.scales[run] = halfScales(sc[2 * run] & 0x0f, sc[2 * run + 1] & 0x0f);
      }
    }
    d.d = f16ToF32(w[b].d);
    d.dmin = f16ToF32(w[b].dmin);
  });
}

template <int R>
void dotQ3_KAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ3_K* w = reinterpret_cast<const BlockQ3_K*>(row);
  const __m256i one = _mm256_set1_epi8(1);
  dot256Rows<R, false, false, true>(x, K / QK_K, out, outStride, [w, one](int b, Block256& d) {
    alignas(32) int16_t sc[16];
    for (int s = 0; s < 16; s++) sc[s] = static_cast<int16_t>(scaleQ3K(w[b].scales, s));
    d.offsetWeights = _mm256_slli_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(sc)), 2);  // q = q' − 4
    const __m256i hmask = loadBytes(w[b].hmask);
    for (int h = 0; h < 2; h++) {
      const __m256i q = loadBytes(w[b].qs + 32 * h);
      for (int k = 0; k < 4; k++) {
        const int run = 4 * h + k;  // high bits: bit `run` of hmask[l]; q' = low | high << 2 = q + 4
        const __m256i high = _mm256_and_si256(_mm256_srl_epi16(hmask, _mm_cvtsi32_si128(run)), one);
        d.q[run] = _mm256_or_si256(twoBits(q, 2 * k), _mm256_slli_epi16(high, 2));
        d.scales[run] = halfScales(sc[2 * run], sc[2 * run + 1]);
      }
    }
    d.d = f16ToF32(w[b].d);
    d.dmin = 0;
  });
}

/**
 * The eight 6-bit scales and mins of a Q4_K / Q5_K block as bytes (sc[j] in byte j of *scales, mn[j] of *mins):
 * scaleMinK4 for all j at once on 32-bit words of the 12 bytes b: j < 4 take b[j] & 63 and b[j + 4] & 63; j ≥ 4 the
 * low and high nibbles of b[j + 4] with bits 6–7 of b[j − 4] and b[j] on top.
 */
inline void scalesMinsK4(const uint8_t* b, uint64_t* scales, uint64_t* mins) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, b, 4);
  std::memcpy(&w1, b + 4, 4);
  std::memcpy(&w2, b + 8, 4);
  const uint32_t scLow = w0 & 0x3f3f3f3f, mnLow = w1 & 0x3f3f3f3f;
  const uint32_t scHigh = (w2 & 0x0f0f0f0f) | ((w0 >> 2) & 0x30303030);  // bits 6–7 of each byte → bits 4–5
  const uint32_t mnHigh = ((w2 >> 4) & 0x0f0f0f0f) | ((w1 >> 2) & 0x30303030);
  *scales = scLow | static_cast<uint64_t>(scHigh) << 32;
  *mins = mnLow | static_cast<uint64_t>(mnHigh) << 32;
}

/** Q4_K and Q5_K (Five: the fifth bit from qh). */
template <int R, bool Five, typename Block>
void dotQ45_KAvx2(const Block* w, Rows<R> x, int K, float* out, size_t outStride) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i one = _mm256_set1_epi8(1);
  dot256Rows<R, false, true, false>(x, K / QK_K, out, outStride, [w, low4, one](int b, Block256& d) {
    uint64_t scales, mins;
    scalesMinsK4(w[b].scales, &scales, &mins);
    for (int j = 0; j < 8; j++) d.scales[j] = _mm256_set1_epi16(static_cast<int16_t>((scales >> (8 * j)) & 0xff));
    const __m128i m = _mm_cvtsi64_si128(static_cast<long long>(mins));
    d.minWeights = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));  // min j on bsums 2j and 2j + 1
    for (int p = 0; p < 4; p++) {  // qs[32p …] holds sub-blocks 2p (low nibbles) and 2p + 1 (high)
      const __m256i q = loadBytes(w[b].qs + 32 * p);
      d.q[2 * p] = _mm256_and_si256(q, low4);
      d.q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    }
    if constexpr (Five) {
      // bit j of qh[l] is bit 4 of element 32·j + l
      const __m256i qh = loadBytes(w[b].qh);
      for (int j = 0; j < 8; j++) {
        d.q[j] = _mm256_or_si256(d.q[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), one), 4));
      }
    }
    d.d = f16ToF32(w[b].d);
    d.dmin = f16ToF32(w[b].dmin);
  });
}

template <int R>
void dotQ4_KAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  dotQ45_KAvx2<R, false>(reinterpret_cast<const BlockQ4_K*>(row), x, K, out, outStride);
}

template <int R>
void dotQ5_KAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  dotQ45_KAvx2<R, true>(reinterpret_cast<const BlockQ5_K*>(row), x, K, out, outStride);
}

/**
 * Byte shuffles that spread int16 scales 2k (low 128-bit lane) and 2k + 1 (high lane) of eight over their lanes,
 * k = 0 … 3: a run of 32 elements takes two sub-blocks of 16.
 */
const __m256i kRunScaleShuffle[4] = {
    _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
    _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
    _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11),
    _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15),
};

template <int R>
void dotQ6_KAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  dot256Rows<R, false, false, true>(x, K / QK_K, out, outStride, [w, low4](int b, Block256& d) {
    // q − 32 for every element: 32 · sc_g on each bsum
    d.offsetWeights = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales))), 5);
    for (int h = 0; h < 2; h++) {
      const __m256i ql0 = loadBytes(w[b].ql + 64 * h);
      const __m256i ql1 = loadBytes(w[b].ql + 64 * h + 32);
      const __m256i qh = loadBytes(w[b].qh + 32 * h);
      // the four runs of this half: r = 0–31, 32–63 take the low nibbles of ql0, ql1; 64–95, 96–127 the high ones
      d.q[4 * h] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(twoBits(qh, 0), 4));
      d.q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_slli_epi16(twoBits(qh, 2), 4));
      d.q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_slli_epi16(twoBits(qh, 4), 4));
      d.q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), _mm256_slli_epi16(twoBits(qh, 6), 4));
    }
    // run r's scale vector [sc_2r × 8 | sc_2r+1 × 8] by one byte shuffle of its half's eight scales (int16, in
    // both 128-bit lanes)
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales)));
    const __m256i halves[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00), _mm256_permute2x128_si256(sc16, sc16, 0x11)};
    for (int run = 0; run < 8; run++) d.scales[run] = _mm256_shuffle_epi8(halves[run / 4], kRunScaleShuffle[run % 4]);
    d.d = f16ToF32(w[b].d);
    d.dmin = 0;
  });
}

template <int R>
void dotIQ4_XSAvx2(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) {
  const BlockIQ4_XS* w = reinterpret_cast<const BlockIQ4_XS*>(row);
  const __m256i levels = iq4Levels();
  dot256Rows<R, true, false, false>(x, K / QK_K, out, outStride, [w, levels](int b, Block256& d) {
    for (int k = 0; k < 8; k++) {
      d.q[k] = _mm256_shuffle_epi8(levels, unpackNibbles(w[b].qs + 16 * k));
      d.scales[k] = _mm256_set1_epi16(static_cast<int16_t>(scaleIQ4XS(w[b], k)));
    }
    d.d = f16ToF32(w[b].d);
    d.dmin = 0;
  });
}

/** The kernel F for `rows` (1 … kMaxDotRows) rows: one instantiation per group size. */
template <template <int> class Kernel>
void dispatchRows(const uint8_t* row, const uint8_t* act, size_t actStride, int rows, int K, float* out, size_t outStride) {
  switch (rows) {
    case 1: return Kernel<1>::run(row, Rows<1>{act, actStride}, K, out, outStride);
    case 2: return Kernel<2>::run(row, Rows<2>{act, actStride}, K, out, outStride);
    case 3: return Kernel<3>::run(row, Rows<3>{act, actStride}, K, out, outStride);
    default: return Kernel<4>::run(row, Rows<4>{act, actStride}, K, out, outStride);
  }
}

#define RAZORKV_ROWS_KERNEL(name)                                                                       \
  template <int R>                                                                                      \
  struct name##Rows {                                                                                   \
    static void run(const uint8_t* row, Rows<R> x, int K, float* out, size_t outStride) { name<R>(row, x, K, out, outStride); } \
  };
RAZORKV_ROWS_KERNEL(dotF32Avx2)
RAZORKV_ROWS_KERNEL(dotF16Avx2)
RAZORKV_ROWS_KERNEL(dotBF16Avx2)
RAZORKV_ROWS_KERNEL(dotQ8_0Avx2)
RAZORKV_ROWS_KERNEL(dotQ4_0Avx2)
RAZORKV_ROWS_KERNEL(dotQ4_1Avx2)
RAZORKV_ROWS_KERNEL(dotQ5_0Avx2)
RAZORKV_ROWS_KERNEL(dotQ5_1Avx2)
RAZORKV_ROWS_KERNEL(dotIQ4_NLAvx2)
RAZORKV_ROWS_KERNEL(dotQ2_KAvx2)
RAZORKV_ROWS_KERNEL(dotQ3_KAvx2)
RAZORKV_ROWS_KERNEL(dotQ4_KAvx2)
RAZORKV_ROWS_KERNEL(dotQ5_KAvx2)
RAZORKV_ROWS_KERNEL(dotQ6_KAvx2)
RAZORKV_ROWS_KERNEL(dotIQ4_XSAvx2)
#undef RAZORKV_ROWS_KERNEL

// activation quantization: the scalar loops' results exactly (same amax, same d, same rounding)

inline float amax8(const float* x, int n) {
  const __m256 signBit = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(signBit, _mm256_loadu_ps(x + i)));
  return hmax(m);
}

/** Rounds x[0 … 32)·id to int8 (nearest even) into q; returns the 32-bit lane sums of q as a vector of four. */
inline void quantize32(const float* x, float id, int8_t* q) {
  const __m256 scale = _mm256_set1_ps(id);
  __m256i v[4];
  for (int j = 0; j < 4; j++) {
    v[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // int32 → int8: packs interleave the 128-bit lanes, the permute puts the 32 values back in order
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p);
}

inline int sum32(const int8_t* q) {
  __m256i s = dotU8S8(_mm256_set1_epi8(1), loadBytes(q));  // 1 · q summed in pairs, then in fours
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
  return _mm_cvtsi128_si32(t);
}

void quantizeQ8x32Avx2(const float* x, BlockQ8x32* y, int K) {
  for (int b = 0; b < K / QK; b++, x += QK) {
    const float d = amax8(x, QK) / 127;
    const float id = d > 0 ? 1 / d : 0;
    quantize32(x, id, y[b].qs);
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum32(y[b].qs));
  }
}

void quantizeQ8KAvx2(const float* x, BlockQ8_K* y, int K) {
  for (int b = 0; b < K / QK_K; b++, x += QK_K) {
    const float d = amax8(x, QK_K) / 127;
    const float id = d > 0 ? 1 / d : 0;
    for (int j = 0; j < QK_K; j += 32) quantize32(x + j, id, y[b].qs + j);
    for (int g = 0; g < QK_K / 16; g++) {
      int sum = 0;
      for (int i = 0; i < 16; i++) sum += y[b].qs[16 * g + i];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = d;
  }
}

#endif  // RAZORKV_AVX2

}  // namespace

bool quantSimdCompiled() {
#ifdef RAZORKV_AVX2
  return true;
#else
  return false;
#endif
}

ActivationFormat activationFormat(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
      return ActivationFormat::F32;
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::IQ4_NL:
      return ActivationFormat::Q8x32;
    default:
      return ActivationFormat::Q8_K;
  }
}

size_t activationRowBytes(ActivationFormat format, int K) {
  switch (format) {
    case ActivationFormat::F32: return sizeof(float) * static_cast<size_t>(K);
    case ActivationFormat::Q8x32: return sizeof(BlockQ8x32) * static_cast<size_t>(K / QK);
    case ActivationFormat::Q8_K: return sizeof(BlockQ8_K) * static_cast<size_t>(K / QK_K);
  }
  return 0;
}

void quantizeActivationRow(ActivationFormat format, const float* x, void* out, int K, bool simd) {
  switch (format) {
    case ActivationFormat::F32:
      std::memcpy(out, x, sizeof(float) * static_cast<size_t>(K));
      return;
    case ActivationFormat::Q8x32:
#ifdef RAZORKV_AVX2
      if (simd) return quantizeQ8x32Avx2(x, static_cast<BlockQ8x32*>(out), K);
#endif
      return quantizeQ8x32Scalar(x, static_cast<BlockQ8x32*>(out), K);
    case ActivationFormat::Q8_K:
#ifdef RAZORKV_AVX2
      if (simd) return quantizeQ8KAvx2(x, static_cast<BlockQ8_K*>(out), K);
#endif
      return quantizeQ8KScalar(x, static_cast<BlockQ8_K*>(out), K);
  }
}

namespace {

/** A scalar per-pair kernel over a group of rows. */
template <float (*F)(const uint8_t*, const void*, int)>
void scalarRows(const uint8_t* row, const uint8_t* act, size_t actStride, int rows, int K, float* out, size_t outStride) {
  for (int r = 0; r < rows; r++) out[r * outStride] = F(row, act + r * actStride, K);
}

}  // namespace

void decodeKBlockScales(GgmlType type, const uint8_t* block, KBlockScales& out) {
  if (type == GgmlType::Q4_K || type == GgmlType::Q5_K) {
    const bool q4 = type == GgmlType::Q4_K;
    const uint8_t* scales = q4 ? reinterpret_cast<const BlockQ4_K*>(block)->scales : reinterpret_cast<const BlockQ5_K*>(block)->scales;
    for (int j = 0; j < 8; j++) {
      int sc, mn;
      scaleMinK4(scales, j, sc, mn);
      out.scales[j] = sc;
      out.groupWeights[2 * j] = out.groupWeights[2 * j + 1] = static_cast<int16_t>(mn);
    }
    for (int j = 8; j < 16; j++) out.scales[j] = 0;
    out.d = f16ToF32(q4 ? reinterpret_cast<const BlockQ4_K*>(block)->d : reinterpret_cast<const BlockQ5_K*>(block)->d);
    out.dmin = f16ToF32(q4 ? reinterpret_cast<const BlockQ4_K*>(block)->dmin : reinterpret_cast<const BlockQ5_K*>(block)->dmin);
    out.subBlocks = 8;
  } else if (type == GgmlType::Q6_K) {
    const BlockQ6_K& b = *reinterpret_cast<const BlockQ6_K*>(block);
    for (int s = 0; s < 16; s++) {
      out.scales[s] = b.scales[s];
      out.groupWeights[s] = static_cast<int16_t>(32 * b.scales[s]);
    }
    out.d = out.dmin = f16ToF32(b.d);
    out.subBlocks = 16;
  } else {
    throw std::invalid_argument(std::string("decodeKBlockScales: ") + ggmlTypeInfo(type).name + " is not Q4_K, Q5_K or Q6_K");
  }
}

RowsDotFn rowsDotKernel(GgmlType type, bool simd) {
#ifdef RAZORKV_AVX2
  if (simd) {
    switch (type) {
      case GgmlType::F32: return dispatchRows<dotF32Avx2Rows>;
      case GgmlType::F16: return dispatchRows<dotF16Avx2Rows>;
      case GgmlType::BF16: return dispatchRows<dotBF16Avx2Rows>;
      case GgmlType::Q8_0: return dispatchRows<dotQ8_0Avx2Rows>;
      case GgmlType::Q4_0: return dispatchRows<dotQ4_0Avx2Rows>;
      case GgmlType::Q4_1: return dispatchRows<dotQ4_1Avx2Rows>;
      case GgmlType::Q5_0: return dispatchRows<dotQ5_0Avx2Rows>;
      case GgmlType::Q5_1: return dispatchRows<dotQ5_1Avx2Rows>;
      case GgmlType::IQ4_NL: return dispatchRows<dotIQ4_NLAvx2Rows>;
      case GgmlType::Q2_K: return dispatchRows<dotQ2_KAvx2Rows>;
      case GgmlType::Q3_K: return dispatchRows<dotQ3_KAvx2Rows>;
      case GgmlType::Q4_K: return dispatchRows<dotQ4_KAvx2Rows>;
      case GgmlType::Q5_K: return dispatchRows<dotQ5_KAvx2Rows>;
      case GgmlType::Q6_K: return dispatchRows<dotQ6_KAvx2Rows>;
      case GgmlType::IQ4_XS: return dispatchRows<dotIQ4_XSAvx2Rows>;
    }
  }
#endif
  switch (type) {
    case GgmlType::F32: return scalarRows<dotF32Scalar>;
    case GgmlType::F16: return scalarRows<dotF16Scalar>;
    case GgmlType::BF16: return scalarRows<dotBF16Scalar>;
    case GgmlType::Q8_0: return scalarRows<dotQ8_0Scalar>;
    case GgmlType::Q4_0: return scalarRows<dotQ4_0Scalar>;
    case GgmlType::Q4_1: return scalarRows<dotQ4_1Scalar>;
    case GgmlType::Q5_0: return scalarRows<dotQ5_0Scalar>;
    case GgmlType::Q5_1: return scalarRows<dotQ5_1Scalar>;
    case GgmlType::IQ4_NL: return scalarRows<dotIQ4_NLScalar>;
    case GgmlType::Q2_K: return scalarRows<dotQ2_KScalar>;
    case GgmlType::Q3_K: return scalarRows<dotQ3_KScalar>;
    case GgmlType::Q4_K: return scalarRows<dotQ4_KScalar>;
    case GgmlType::Q5_K: return scalarRows<dotQ5_KScalar>;
    case GgmlType::Q6_K: return scalarRows<dotQ6_KScalar>;
    case GgmlType::IQ4_XS: return scalarRows<dotIQ4_XSScalar>;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------------------
// decoders: dequant.ts's, product by product: each product is rounded to float before the next operation, as
// gguf-py's numpy does, so the floats are the same bits. GCC would otherwise fuse a product and the sum after it
// into one FMA (its C++ default is -ffp-contract=fast), which rounds once; contraction is off for these functions
// only. Inner loops run over 16 or 32 consecutive elements with one shift each, so the compiler vectorizes them.

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

/** out[0 … 32) = q(i) · d, q(i) the block's 4-bit codes minus `offset`. */
inline void decodeNibbles(const uint8_t* qs, float d, int offset, float* out) {
  for (int i = 0; i < 16; i++) out[i] = static_cast<float>((qs[i] & 0x0f) - offset) * d;
  for (int i = 0; i < 16; i++) out[16 + i] = static_cast<float>((qs[i] >> 4) - offset) * d;
}

/** out[0 … 32) = q(i) · d + m for 4-bit codes (qh = 0) or 5-bit ones (bit i of qh on top). */
inline void decodeWithMin(const uint8_t* qs, uint32_t qh, float d, float m, float* out) {
  for (int i = 0; i < 16; i++) {
    const float scaled = static_cast<float>((qs[i] & 0x0f) | (((qh >> i) & 1) << 4)) * d;
    out[i] = scaled + m;
  }
  for (int i = 0; i < 16; i++) {
    const float scaled = static_cast<float>((qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4)) * d;
    out[16 + i] = scaled + m;
  }
}

}  // namespace

void dequantizeRow(GgmlType type, const uint8_t* row, float* out, int K) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out, row, sizeof(float) * static_cast<size_t>(K));
      return;
    case GgmlType::F16:
      for (int k = 0; k < K; k++) out[k] = f16ToF32(readU16(row + 2 * k));
      return;
    case GgmlType::BF16:
      for (int k = 0; k < K; k++) out[k] = bf16ToF32(readU16(row + 2 * k));
      return;
    case GgmlType::Q8_0: {
      const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(row);
      for (int b = 0; b < K / QK; b++) {
        const float d = f16ToF32(w[b].d);
        for (int i = 0; i < QK; i++) out[QK * b + i] = d * w[b].qs[i];
      }
      return;
    }
    case GgmlType::Q4_0: {
      const BlockQ4_0* w = reinterpret_cast<const BlockQ4_0*>(row);
      for (int b = 0; b < K / QK; b++) decodeNibbles(w[b].qs, f16ToF32(w[b].d), 8, out + QK * b);
      return;
    }
    case GgmlType::Q4_1: {
      const BlockQ4_1* w = reinterpret_cast<const BlockQ4_1*>(row);
      for (int b = 0; b < K / QK; b++) decodeWithMin(w[b].qs, 0, f16ToF32(w[b].d), f16ToF32(w[b].m), out + QK * b);
      return;
    }
    case GgmlType::Q5_0: {
      const BlockQ5_0* w = reinterpret_cast<const BlockQ5_0*>(row);
      for (int b = 0; b < K / QK; b++) {
        const float d = f16ToF32(w[b].d);
        const uint32_t qh = readU32(w[b].qh);
        for (int i = 0; i < QK; i++) out[QK * b + i] = static_cast<float>(q5Value(w[b].qs, qh, i) - 16) * d;
      }
      return;
    }
    case GgmlType::Q5_1: {
      const BlockQ5_1* w = reinterpret_cast<const BlockQ5_1*>(row);
      for (int b = 0; b < K / QK; b++) decodeWithMin(w[b].qs, readU32(w[b].qh), f16ToF32(w[b].d), f16ToF32(w[b].m), out + QK * b);
      return;
    }
    case GgmlType::IQ4_NL: {
      const BlockIQ4_NL* w = reinterpret_cast<const BlockIQ4_NL*>(row);
      for (int b = 0; b < K / QK; b++) {
        const float d = f16ToF32(w[b].d);
        for (int i = 0; i < QK; i++) out[QK * b + i] = d * kIq4nlLevels[nibble(w[b].qs, i)];
      }
      return;
    }
    case GgmlType::Q2_K: {
      const BlockQ2_K* w = reinterpret_cast<const BlockQ2_K*>(row);
      for (int b = 0; b < K / QK_K; b++, out += QK_K) {
        const float d = f16ToF32(w[b].d), dmin = f16ToF32(w[b].dmin);
        for (int run = 0; run < 8; run++) {  // elements 32·run …: bits 2·(run % 4) of qs[32·(run / 4) + l]
          const uint8_t* qs = w[b].qs + 32 * (run / 4);
          const int shift = 2 * (run % 4);
          for (int half = 0; half < 2; half++) {
            const int s = 2 * run + half;
            const float dl = d * static_cast<float>(w[b].scales[s] & 0x0f);
            const float ml = dmin * static_cast<float>(w[b].scales[s] >> 4);
            for (int l = 16 * half; l < 16 * half + 16; l++) {
              const float scaled = dl * static_cast<float>((qs[l] >> shift) & 3);
              out[32 * run + l] = scaled - ml;
            }
          }
        }
      }
      return;
    }
    case GgmlType::Q3_K: {
      const BlockQ3_K* w = reinterpret_cast<const BlockQ3_K*>(row);
      for (int b = 0; b < K / QK_K; b++, out += QK_K) {
        const float d = f16ToF32(w[b].d);
        for (int run = 0; run < 8; run++) {  // low bits as Q2_K's, high bit = bit `run` of hmask[l]
          const uint8_t* qs = w[b].qs + 32 * (run / 4);
          const int shift = 2 * (run % 4);
          for (int half = 0; half < 2; half++) {
            const float dl = d * static_cast<float>(scaleQ3K(w[b].scales, 2 * run + half));
            for (int l = 16 * half; l < 16 * half + 16; l++) {
              const int q = ((qs[l] >> shift) & 3) - (((w[b].hmask[l] >> run) & 1) ? 0 : 4);
              out[32 * run + l] = dl * static_cast<float>(q);
            }
          }
        }
      }
      return;
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      // identical but for the qs offset and Q5_K's fifth bit
      const bool five = type == GgmlType::Q5_K;
      const size_t blockBytes = five ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
      for (int b = 0; b < K / QK_K; b++, out += QK_K) {
        const uint8_t* block = row + b * blockBytes;
        const float d = f16ToF32(readU16(block)), dmin = f16ToF32(readU16(block + 2));
        const uint8_t* scales = block + 4;
        const uint8_t* qh = block + 16;  // Q5_K only
        const uint8_t* qs = block + (five ? 48 : 16);
        for (int j = 0; j < 8; j++) {
          int sc, mn;
          scaleMinK4(scales, j, sc, mn);
          const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(mn);
          const uint8_t* q = qs + 32 * (j / 2);
          const int shift = 4 * (j % 2);
          for (int l = 0; l < 32; l++) {
            const int value = ((q[l] >> shift) & 0x0f) | (five ? ((qh[l] >> j) & 1) << 4 : 0);
            const float scaled = dl * static_cast<float>(value);
            out[32 * j + l] = scaled - ml;
          }
        }
      }
      return;
    }
    case GgmlType::Q6_K: {
      const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
      for (int b = 0; b < K / QK_K; b++, out += QK_K) {
        const float d = f16ToF32(w[b].d);
        for (int run = 0; run < 8; run++) {  // elements 128·h + 32·k + l, run = 4h + k
          const int h = run / 4, k = run % 4;
          const uint8_t* ql = w[b].ql + 64 * h + 32 * (k % 2);
          const uint8_t* qh = w[b].qh + 32 * h;
          for (int half = 0; half < 2; half++) {
            const float dl = d * static_cast<float>(w[b].scales[2 * run + half]);
            for (int l = 16 * half; l < 16 * half + 16; l++) {
              const int q = ((ql[l] >> (4 * (k / 2))) & 0x0f) | (((qh[l] >> (2 * k)) & 3) << 4);
              out[32 * run + l] = dl * static_cast<float>(q - 32);
            }
          }
        }
      }
      return;
    }
    case GgmlType::IQ4_XS: {
      const BlockIQ4_XS* w = reinterpret_cast<const BlockIQ4_XS*>(row);
      for (int b = 0; b < K / QK_K; b++, out += QK_K) {
        const float d = f16ToF32(w[b].d);
        for (int k = 0; k < 8; k++) {
          const float dl = d * static_cast<float>(scaleIQ4XS(w[b], k));
          for (int i = 0; i < 32; i++) out[32 * k + i] = dl * kIq4nlLevels[nibble(w[b].qs + 16 * k, i)];
        }
      }
      return;
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

}  // namespace razorkv
