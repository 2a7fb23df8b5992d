// out[M × N] = x[M × K] · Wᵀ with W [N × K] held as the raw blocks of one GGUF type (ggml_types.h).
//
// Layout: W row n is K / blockSize consecutive blocks at w + n · rowBytes (rowBytes = K / blockSize · blockBytes);
// x and out are row-major f32 (x [M × K], out [M × N]): the matmulTransposed layout of gemm.h, weights in the
// file's own bytes.
//
// Two ways to compute (QuantPath):
//   Dot       quantize each row of x once to 8-bit blocks (qdot.h), then integer dot products with the per-type
//             kernel, each weight block decoded once for up to 4 rows of x; threads split N. GEMV (M = 1) and a
//             batched decode step (small M). Each out[m, n] depends only on x row m and W row n (same bits whatever
//             rows share its group): a sequence gets the same bits in a batch as alone.
//   Dequant   decode a panel of weight rows to f32 (two panels per thread, at most 32 MiB each), then the f32 SGEMM
//             of gemm.h (OpenBLAS or the own kernel) on x and the panel; threads split N into panels. Prefill: the
//             decode is paid once per M rows of x. Up to 4 rows of x (a prefill's last-row logits) W is instead
//             decoded row by row into an L1 buffer and dotted in f32 with each row of x: no f32 copy of W is written.
//   Int8      the Dot path's 8-bit activations for a prefill: for a W of int8GemmSupports, on a CPU with AVX-512
//             VNNI, the 8-bit GEMM of qgemm.h at every M (W decoded once per call; each out[m, n] the scalar dot
//             kernel's bits, so a row's result does not depend on M: a chunked prefill is bit for bit one run);
//             otherwise (IQ4_NL, Q2_K, Q3_K, IQ4_XS; no VNNI; the Scalar backend) the Dot path. F32, F16 and
//             BF16, which have no 8-bit arithmetic, take the Dequant path.
//             Opt-in: a prefill's outputs then move within the 8-bit bound of the activations, not by f32
//             rounding. Never chosen by Auto.
// Auto takes Dot up to kQuantDotMaxRows rows and Dequant above (figures at the constant in qmatmul.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gemm.h"
#include "ggml_types.h"

namespace razorkv {

enum class QuantPath { Auto, Dot, Dequant, Int8 };

/** Bytes of one weight row of K elements of `type` (K a multiple of its block size). */
size_t ggmlRowBytes(GgmlType type, int K);

/**
 * out = x · Wᵀ (see above). `backend` picks the kernels: Scalar runs the scalar dot kernels and the scalar SGEMM,
 * Avx2 the AVX2 ones and the own SGEMM, OpenBlas the AVX2 dot kernels and OpenBLAS's SGEMM.
 * K must be a multiple of the type's block size (checked by the caller).
 */
void quantMatmul(GgmlType type, const uint8_t* w, const float* x, float* out, int M, int N, int K, QuantPath path, GemmBackend backend);

/** One weight matrix of a fused Dot call: W [N × K] as blocks of `type`, out [M × N] row-major. */
struct QuantMatmulOperand {
  GgmlType type;
  const uint8_t* w;
  float* out;
  int N;
};

/**
 * The Dot path for several weight matrices that multiply the same x [M × K] (a layer's Q, K and V projections, or
 * its gate and up): x is quantized once per activation format, and the rows of all the matrices are one list of
 * chunks for the threads — one dispatch instead of one per matrix, and a 192-row K or V projection no longer a
 * call of its own (SmolLM2-135M decode: the separate K and V calls cost twice their share of the weights). Every
 * out[m, n] has the bits quantMatmul's Dot path gives it. Types and K are checked as quantMatmul checks them.
 */
void quantMatmulDotMany(const QuantMatmulOperand* operands, int count, const float* x, int M, int K, GemmBackend backend);

/** Decodes rows [0, rows) of W (K elements each) to f32 out [rows × K], on the kernel threads. */
void dequantizeRows(GgmlType type, const uint8_t* w, float* out, int rows, int K);

}  // namespace razorkv
