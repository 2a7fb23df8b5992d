// Matrix multiplication against PyTorch-layout weights: out = x · wᵀ.
//
// Layout (row-major f32, no padding):
//   x   [M × K]   M activations (tokens) of K features
//   w   [N × K]   a linear layer as PyTorch stores it: [out_features × in_features]
//   out [M × N]   out[m·N + n] = Σ_k x[m·K + k] · w[n·K + k]
#pragma once

namespace razorkv {

enum class GemmBackend { OpenBlas, Avx2, Scalar };

const char* gemmBackendName(GemmBackend backend);
bool gemmBackendAvailable(GemmBackend backend);
/** OpenBLAS when the addon was built against it, else AVX2 when compiled in, else scalar. */
GemmBackend defaultGemmBackend();

void matmulTransposed(const float* x, const float* w, float* out, int M, int N, int K, GemmBackend backend);

/**
 * out[m·ldc + j] = x_m · w_j for m < M, j < n, on the calling thread only (no pool): one column panel of a larger
 * product, for callers that split the columns themselves (qmatmul.cc's dequantized panels).
 */
void matmulTransposedPanel(const float* x, const float* w, float* out, int M, int n, int K, int ldc, GemmBackend backend);

/** Makes OpenBLAS compute on the calling thread only: matmulTransposed parallelizes it over kernelThreads(). */
void useSingleThreadedBlas();

}  // namespace razorkv
