// Quantized GEMV (layouts in quant.h). Per block the scale factors out of the sum:
//   Q8_0: Σ_j q_j·d·x_j = d · Σ_j q_j·x_j
//   Q4_1: Σ_j (q_j·d + m)·x_j = d · Σ_j q_j·x_j + m · Σ_j x_j, with Σ_j x_j computed once per block of x.
#include "quant.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "simd.h"
#include "threadpool.h"

namespace razorkv {
namespace {

float f16ToF32(uint16_t h) {
#ifdef RAZORKV_AVX2
  return _cvtsh_ss(h);
#else
  // IEEE binary16 → binary32: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals renormalised
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
#endif
}

#ifdef RAZORKV_AVX2
/** Lane-wise partial sums of q_j·x_j over one block of 32 int8 weights (their total is the block's dot product). */
inline __m256 blockQ8(const int8_t* q, const float* x) {
  __m256 acc = _mm256_setzero_ps();
  for (int j = 0; j < 32; j += 8) {
    __m256i qi = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + j)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qi), _mm256_loadu_ps(x + j), acc);
  }
  return acc;
}

/** The same for 32 4-bit weights: low nibbles are elements 0–15, high nibbles 16–31. */
inline __m256 blockQ4(const uint8_t* q, const float* x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f));
  __m256 acc = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), _mm256_loadu_ps(x));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(x + 8), acc);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), _mm256_loadu_ps(x + 16), acc);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(x + 24), acc);
  return acc;
}
#endif

/** Σ_k W[row, k]·x[k] for one Q8_0 row of nb blocks: Σ_blocks d · Σ_j q_j·x_j. */
float rowDotQ8(const BlockQ8_0* b, const float* x, int nb) {
#ifdef RAZORKV_AVX2
  __m256 acc = _mm256_setzero_ps();  // the block scale multiplies lane-wise partial sums: one reduction per row
  for (int i = 0; i < nb; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(f16ToF32(b[i].d)), blockQ8(b[i].q, x + i * kQuantBlock), acc);
  return hsum(acc);
#else
  float sum = 0;
  for (int i = 0; i < nb; i++) {
    float block = 0;
    for (int j = 0; j < 32; j++) block += b[i].q[j] * x[i * kQuantBlock + j];
    sum += f16ToF32(b[i].d) * block;
  }
  return sum;
#endif
}

/** The same for a Q4_1 row: Σ_blocks (d · Σ_j q_j·x_j + m · Σ_j x_j), the x block sums precomputed. */
float rowDotQ4(const BlockQ4_1* b, const float* x, const float* xBlockSums, int nb) {
  float sum = 0;
#ifdef RAZORKV_AVX2
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < nb; i++) {
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16ToF32(b[i].d)), blockQ4(b[i].q, x + i * kQuantBlock), acc);
    sum += f16ToF32(b[i].m) * xBlockSums[i];
  }
  return sum + hsum(acc);
#else
  for (int i = 0; i < nb; i++) {
    const float* xb = x + i * kQuantBlock;
    float block = 0;
    for (int j = 0; j < 16; j++) block += (b[i].q[j] & 15) * xb[j] + (b[i].q[j] >> 4) * xb[j + 16];
    sum += f16ToF32(b[i].d) * block + f16ToF32(b[i].m) * xBlockSums[i];
  }
  return sum;
#endif
}

void gemvRange(QuantFormat format, const uint8_t* blocks, const float* x, const float* xBlockSums, float* out, int K, int n0, int n1) {
  const int nb = K / kQuantBlock;
  const size_t rowBytes = quantizedRowBytes(format, K);
  for (int n = n0; n < n1; n++) {
    const uint8_t* row = blocks + static_cast<size_t>(n) * rowBytes;
    out[n] = format == QuantFormat::Q8_0 ? rowDotQ8(reinterpret_cast<const BlockQ8_0*>(row), x, nb)
                                         : rowDotQ4(reinterpret_cast<const BlockQ4_1*>(row), x, xBlockSums, nb);
  }
}

}  // namespace

size_t quantizedRowBytes(QuantFormat format, int K) {
  size_t blocks = static_cast<size_t>(K) / kQuantBlock;
  return blocks * (format == QuantFormat::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_1));
}

void gemvQuantized(QuantFormat format, const uint8_t* blocks, const float* x, float* out, int N, int K) {
  const int nb = K / kQuantBlock;
  std::vector<float> xBlockSums(nb);
  for (int i = 0; i < nb; i++) {
    float s = 0;
    for (int j = 0; j < kQuantBlock; j++) s += x[i * kQuantBlock + j];
    xBlockSums[i] = s;
  }
  const int threads = static_cast<double>(N) * K < (1 << 17) ? 1 : kernelThreads();
  // rows in chunks of at least 64, about four per thread (threadpool.h)
  const int chunk = std::max(64, (N + 4 * threads - 1) / (4 * threads));
  parallelFor((N + chunk - 1) / chunk, threads, [&](int c, int) {
    gemvRange(format, blocks, x, xBlockSums.data(), out, K, c * chunk, std::min(N, (c + 1) * chunk));
  });
}

}  // namespace razorkv
