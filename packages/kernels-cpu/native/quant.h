// GEMV over weights stored in ggml's quantized blocks, read directly (no dequantized copy).
//
// Layout: W [N × K], row-major; each row is K/32 consecutive blocks of 32 weights:
//   Q8_0: { f16 d; int8 q[32]; }             34 bytes   w[j] = q[j]·d
//   Q4_1: { f16 d; f16 m; uint8 q[16]; }     20 bytes   w[j] = (q[j] & 15)·d + m,  w[j + 16] = (q[j] >> 4)·d + m
// (f16: IEEE binary16, little-endian, as in GGUF files.)
#pragma once

#include <cstddef>
#include <cstdint>

namespace razorkv {

constexpr int kQuantBlock = 32;

enum class QuantFormat { Q8_0, Q4_1 };

struct BlockQ8_0 {
  uint16_t d;
  int8_t q[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t q[16];
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

size_t quantizedRowBytes(QuantFormat format, int K);

/** out[n] = Σ_k W[n, k] · x[k], n < N; K a multiple of 32. */
void gemvQuantized(QuantFormat format, const uint8_t* blocks, const float* x, float* out, int N, int K);

}  // namespace razorkv
