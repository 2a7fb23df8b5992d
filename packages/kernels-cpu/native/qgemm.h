// The 8-bit GEMM: out[M × N] = x[M × K] · Wᵀ for W in Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K, with x
// quantized to the type's 8-bit activation blocks (qdot.h: BlockQ8x32 or BlockQ8_K, the dot path's activations,
// llama.cpp's scheme) — the products of a quantized prefill without a single f32 weight.
//
// What it computes: each out[m, n] is the scalar dot kernel's value (dotQ4_KScalar …, qdot.cc) for x row m and W
// row n, bit for bit: per block the integer sums (Σ_s sc_s·Σ q·qx and Σ_g w_g·bsum_g for the K-quants, Σ q·qx for
// the others) are exact, and the float epilogue is that kernel's operations, fused as there, blocks summed in
// order. Only the speed differs from calling it M·N times.
//
// How (AVX-512 VNNI, chosen at run time; the addon itself is an AVX2 build): W is packed, 16 rows at a time, into
// the layout vpdpbusd reads — per 256-block, 64 groups of 4 consecutive k × 16 rows as unsigned bytes, beside the
// rows' sub-block scales (int32), their per-16 bsum weights (int16 pairs, for vpdpwssd) and the f32 d, dmin. A
// micro-kernel takes 4 rows of x × 32 rows of W: per group of 4 k, two loads of W and eight vpdpbusd with x's 4
// bytes broadcast; per sub-block a vpmulld by the scales. W is decoded once per call (not once per 4 rows of x as
// on the dot path), into 5.6 KB per 16 rows and 256 k instead of the 16 KB of f32 the dequant path writes. The
// 32-element types pack 8 groups, d and m per 16 rows and block, and their epilogue runs once per 32 k.
// Without AVX-512 VNNI there is no 8-bit GEMM: quantMatmul's int8 path then takes the dot path. Idea from llama.cpp's repacked K-quant GEMMs (weights
// interleaved across rows so one vector holds one k-group of many rows); the kernel here is written for VNNI.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ggml_types.h"

namespace razorkv {

/** True for the weight types int8Gemm takes: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. */
bool int8GemmSupports(GgmlType type);

/** True when this CPU (and OS) has AVX-512 VNNI (checked at run time): int8Gemm needs it. */
bool int8GemmVnni();

/**
 * out[m · N + n] = Σ_k W[n, k] · x_m[k] for W [N × K] as blocks of `type` (int8GemmSupports; rowBytes per row) and
 * act: M rows of x in activationFormat(type), row m at act + m · actStride. K must be a positive multiple of the
 * type's block (checked by the caller). Up to `threads` threads split N (the caller's threadsFor the call's work).
 * Throws std::logic_error unless int8GemmVnni().
 */
void int8Gemm(GgmlType type, const uint8_t* w, size_t rowBytes, const uint8_t* act, size_t actStride, float* out, int M, int N, int K,
              int threads);

}  // namespace razorkv
