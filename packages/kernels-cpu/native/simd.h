// AVX2/FMA helpers shared by the kernels. Compiled only when the build enables AVX2 (RAZORKV_AVX2); every caller
// has a scalar path for the other case.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define RAZORKV_AVX2 1
#include <immintrin.h>

namespace razorkv {

/** [Σa0, Σa1, Σa2, Σa3]: the lane sums of four vectors. */
static inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/** [Σa[0], …, Σa[7]]: the lane sums of eight vectors, as one vector. */
static inline __m256 hsum8(const __m256 a[8]) {
  __m256 lo = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  __m256 hi = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  // lo = [s0..s3 of the low halves | s0..s3 of the high halves], likewise hi for a[4..7]
  return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}

static inline float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/**
 * e^x for x ≤ 0 (softmax arguments after the max is subtracted), relative error about 2e-7.
 * e^x = 2^i · e^r with i = round(x·log2 e) and |r| ≤ ln2/2; e^r by its degree-6 Taylor polynomial (remainder
 * below r⁷/7! ≈ 4e-7 · 2⁻⁷); 2^i built in the exponent bits. Below −87 the result flushes to 0, which
 * a softmax weight of e^-87 relative to the maximum may well be.
 */
static inline __m256 exp256(__m256 x) {
  const __m256 lowest = _mm256_set1_ps(-87.0f);
  __m256 underflow = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lowest);
  __m256 i = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x − i·ln2, with ln2 split in two so the product is exact enough (Cody–Waite)
  __m256 r = _mm256_fnmadd_ps(i, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(i, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(i), _mm256_set1_epi32(127)), 23);
  __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(underflow, result);
}

}  // namespace razorkv
#endif
