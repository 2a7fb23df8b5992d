// One weight row in its GGUF type (ggml_types.h) against one activation row: the per-type kernels.
//
// Quantized types follow llama.cpp's design: the activation row is quantized once to 8-bit blocks (BlockQ8x32 for
// the 32-element types, BlockQ8_K for the 256-element ones) and each block's dot product is an integer sum (AVX2:
// maddubs/madd), scaled by the two blocks' float scales. Float types (F32, F16, BF16) dot against the f32 row
// as it is. Every type has a plain scalar kernel and, when compiled with AVX2, a SIMD one; both are compiled into
// an AVX2 build, so the tests check both.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ggml_types.h"

namespace razorkv {

/** What a weight type's dot product takes as its activation row. */
enum class ActivationFormat { F32, Q8x32, Q8_K };
ActivationFormat activationFormat(GgmlType type);

/** Bytes of one activation row of K elements in `format`. */
size_t activationRowBytes(ActivationFormat format, int K);

/** Quantizes x[K] into `format` (K a multiple of its block size); F32 copies. `simd` picks the AVX2 loop. */
void quantizeActivationRow(ActivationFormat format, const float* x, void* out, int K, bool simd);

/** Activation rows a kernel call takes at most: each weight block is decoded once for all of them. */
constexpr int kMaxDotRows = 4;

/**
 * out[r · outStride] = Σ_k W[row, k] · x_r[k] for one weight row (`row`: K / blockSize blocks of `type`) and
 * `rows` (1 … kMaxDotRows) activation rows x_r at act + r · actStride (in activationFormat(type)). A row's result
 * has the same bits whatever `rows` is. `simd` picks the AVX2 kernels (ignored when not compiled in).
 */
using RowsDotFn = void (*)(const uint8_t* row, const uint8_t* act, size_t actStride, int rows, int K, float* out, size_t outStride);
RowsDotFn rowsDotKernel(GgmlType type, bool simd);

/**
 * The integer scales of one 256-element block of Q4_K, Q5_K or Q6_K, as its dot kernel applies them (the 8-bit
 * GEMM packs these beside the block's unsigned q: 0 … 15, 31 or 63, q6kValue and kin):
 *   Q4_K, Q5_K  w[i] = d·scales[i / 32]·q[i] − dmin·groupWeights[i / 16]      (8 sub-blocks of 32)
 *   Q6_K        w[i] = d·scales[i / 16]·q[i] − d·groupWeights[i / 16]         (16 of 16; groupWeights = 32·scale)
 * Against a BlockQ8_K the kernels take Σ_s scales_s·Σ q·qx and Σ_g groupWeights_g·bsum_g.
 */
struct KBlockScales {
  int32_t scales[16];  // unused sub-blocks 0
  int16_t groupWeights[16];
  float d;
  float dmin;  // Q6_K: d (its offset term is scaled by d)
  int subBlocks;
};
void decodeKBlockScales(GgmlType type, const uint8_t* block, KBlockScales& out);

/** Dequantizes one row of K elements of `type` into f32 (the decoders of dequant.ts, same floats). */
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, int K);

/** True when this build has the AVX2 kernels. */
bool quantSimdCompiled();

}  // namespace razorkv
