// ggml's weight types as they sit in a GGUF file, and the 8-bit activation blocks the quantized dot products take.
//
// Layout (ggml-common.h; the same structs, field names and byte offsets as model-zoo's
// packages/model-zoo/src/formats/dequant.ts, whose decoders are bit-identical to gguf-py's): a weight matrix
// W [N × K] is N rows, each K/blockSize consecutive blocks; element i of block b is column blockSize·b + i. Scales
// are IEEE half floats (f16), little-endian like everything in GGUF. QK_K = 256 for the K-quants and IQ4_XS.
//
//   type     elems bytes  w[i] =
//   F32          1     4  the float
//   F16          1     2  the half
//   BF16         1     2  the top 16 bits of a float
//   Q8_0        32    34  d · qs[i]
//   Q4_0        32    18  d · (q − 8)           q: low nibble of qs[i] for i < 16, high nibble of qs[i − 16] after
//   Q4_1        32    20  d · q + m             q as Q4_0
//   Q5_0        32    22  d · (q − 16)          q = Q4_0's nibble | bit i of qh (little-endian uint32) << 4
//   Q5_1        32    24  d · q + m             q as Q5_0
//   IQ4_NL      32    18  d · kIq4nlLevels[q]   q as Q4_0
//   Q2_K       256    84  d·sc·q − dmin·mn      16 sub-blocks of 16; see BlockQ2_K
//   Q3_K       256   110  d·sc·q                16 sub-blocks of 16, sc 6-bit signed; see BlockQ3_K
//   Q4_K       256   144  d·sc·q − dmin·mn      8 sub-blocks of 32, sc and mn 6-bit; see BlockQ4_K
//   Q5_K       256   176  d·sc·q − dmin·mn      as Q4_K with a fifth bit; see BlockQ5_K
//   Q6_K       256   210  d·sc·(q − 32)         16 sub-blocks of 16, sc int8; see BlockQ6_K
//   IQ4_XS     256   136  d·(ls − 32)·kIq4nlLevels[q]   8 sub-blocks of 32; see BlockIQ4_XS
#pragma once

#include <cstddef>
#include <cstdint>

#include "simd.h"

namespace razorkv {

/** ggml type ids (ggml.h enum ggml_type, as GGUF stores them); only the ones the kernels read. */
enum class GgmlType : int {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
  IQ4_XS = 23,
  BF16 = 30,
};

constexpr int QK = 32;    // elements per block of the 32-element types
constexpr int QK_K = 256; // elements per super-block of the K-quants and IQ4_XS

/** block_q8_0  { f16 d @0; int8 qs[32] @2; } */
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK];
};
/** block_q4_0  { f16 d @0; uint8 qs[16] @2; } */
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[QK / 2];
};
/** block_q4_1  { f16 d @0; f16 m @2; uint8 qs[16] @4; } */
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[QK / 2];
};
/** block_q5_0  { f16 d @0; uint8 qh[4] @2; uint8 qs[16] @6; } */
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
/** block_q5_1  { f16 d @0; f16 m @2; uint8 qh[4] @4; uint8 qs[16] @8; } */
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
/** block_iq4_nl  { f16 d @0; uint8 qs[16] @2; } */
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[QK / 2];
};
/**
 * block_q2_K  { uint8 scales[16] @0; uint8 qs[64] @16; f16 d @80; f16 dmin @82; }
 * scales[s]: sub-block s's scale (low nibble) and min (high nibble). Element i = 128·h + 32·k + l (h < 2, k < 4,
 * l < 32) is bits 2k, 2k+1 of qs[32h + l]; it is in sub-block i / 16.
 */
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
/**
 * block_q3_K  { uint8 hmask[32] @0; uint8 qs[64] @32; uint8 scales[12] @96; f16 d @108; }
 * Element i = 128·h + 32·k + l: low two bits as Q2_K's, high bit = bit i / 32 of hmask[l]; q = low − (high ? 0 : 4).
 * Scale s (6 bits, minus 32): low nibble from scales[s] (s < 8) or scales[s − 8] >> 4, top two bits from bits
 * 2·(s / 4), +1 of scales[8 + s % 4].
 */
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
/**
 * block_q4_K  { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qs[128] @16; }
 * Sub-block j (32 elements) has 6-bit scale and min (ggml's get_scale_min_k4: for j < 4, scales[j] & 63 and
 * scales[j + 4] & 63; for j ≥ 4, the low nibbles of scales[j + 4] (scale) and its high nibble (min), topped by bits
 * 6, 7 of scales[j − 4] and scales[j]). Element 32·j + l is the low nibble of qs[32·(j / 2) + l] for even j, the high
 * nibble for odd j.
 */
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];
};
/** block_q5_K  { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qh[32] @16; uint8 qs[128] @48; } — Q4_K plus bit 4 of element 32·j + l in bit j of qh[l]. */
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
/**
 * block_q6_K  { uint8 ql[128] @0; uint8 qh[64] @128; int8 scales[16] @192; f16 d @208; }
 * Element i = 128·h + r (h < 2, r < 128): low nibble of ql[64h + r % 64] (low half for r < 64, high otherwise),
 * top two bits = bits 2·(r / 32), +1 of qh[32h + r % 32]; sub-block i / 16.
 */
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
/**
 * block_iq4_xs  { f16 d @0; uint16 scales_h @2; uint8 scales_l[4] @4; uint8 qs[128] @8; }
 * Sub-block k (32 elements): ls = nibble k % 2 of scales_l[k / 2] | bits 2k, 2k+1 of scales_h << 4; its nibbles
 * are qs[16k … 16k + 15] in Q4_0's order.
 */
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20, "ggml block sizes");
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24 && sizeof(BlockIQ4_NL) == 18, "ggml block sizes");
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144, "ggml block sizes");
static_assert(sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockIQ4_XS) == 136, "ggml block sizes");

/** The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml-common.h kvalues_iq4nl). */
extern const int8_t kIq4nlLevels[16];

// ---------------------------------------------------------------------------------------------------------------
// Activations, quantized once per row for the integer dot products (llama.cpp's scheme: the weights' partner type
// is Q8_0/Q8_1 for the 32-element types and Q8_K for the 256-element ones). Ours keep d as a float (ggml's Q8_0
// rounds it to f16), so an element's error is at most d/2 = amax/254 of its block: the whole error budget the
// tests allow.

/** 32 activations: x[i] ≈ d · qs[i], d = max|x| / 127; s = d · Σ qs (the sum Q4_1/Q5_1's minimum multiplies). */
struct BlockQ8x32 {
  float d;
  float s;
  int8_t qs[QK];
};
/** 256 activations (ggml's block_q8_K): x[i] ≈ d · qs[i], d = max|x| / 127; bsums[g] = Σ qs[16g … 16g + 15]. */
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

/** Elements per block, bytes per block; 0, 0 for a type the kernels do not read. */
struct GgmlTypeInfo {
  int blockSize;
  int blockBytes;
  const char* name;
};
GgmlTypeInfo ggmlTypeInfo(GgmlType type);
bool ggmlTypeSupported(int type);

/** IEEE binary16 → float, portable: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals renormalised. */
float f16ToF32Portable(uint16_t h);

/** IEEE binary16 → float (one F16C instruction when compiled with AVX2; inline: every block reads one or two). */
inline float f16ToF32(uint16_t h) {
#ifdef RAZORKV_AVX2
  return _cvtsh_ss(h);
#else
  return f16ToF32Portable(h);
#endif
}

}  // namespace razorkv
