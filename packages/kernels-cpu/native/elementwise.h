// The forward pass's per-element operations: RMSNorm and SwiGLU over rows of a row-major f32 activation matrix.
//
// Both compute in double, in the order model-zoo's TypeScript reference (model/ops.ts) does, so the native and the
// reference path give the same floats: RMSNorm bit for bit (IEEE +, ×, / and sqrt are correctly rounded and the
// build does not contract a·b + c into FMA: -std=c++17 implies -ffp-contract=off), SwiGLU up to exp, which libm and
// V8 may round differently in the last bit of a double (that reaches the float result about once in 10⁸ values).
#pragma once

#include <cstddef>

namespace razorkv {

/** out[r, i] = x[r, i] · w[i] / sqrt(mean_i x[r, i]² + eps) for rows r < rows, i < n. out may equal x. */
void rmsNorm(const float* x, const float* weight, float* out, int rows, int n, double eps);

/** gate[i] ← silu(gate[i]) · up[i] for i < n (SwiGLU, Shazeer 2020). */
void swiglu(float* gate, const float* up, size_t n);

}  // namespace razorkv
