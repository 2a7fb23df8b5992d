// CPU references for the CUDA kernels of kernels.cu: plain loops in double precision over the packed ragged layout
// of razorkv_cuda.h. Decode attention mirrors core's attendReference (packages/core/src/attention.ts) for one
// query token per sequence; compaction mirrors HeadCache.select + HeadCache.foldDropped (packages/core/src/cache.ts).
// Every GPU kernel is tested against these, and these against the TypeScript reference.
#include "razorkv_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace {

float element(rkv_dtype dtype, uint16_t bits) {
  return dtype == RKV_BF16 ? rkv_bf16_to_float(bits) : rkv_half_to_float(bits);
}

int fail(char* err, size_t errLen, const char* message) {
  if (err && errLen > 0) std::snprintf(err, errLen, "%s", message);
  return -1;
}

}  // namespace

extern "C" float rkv_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // subnormal half: value = mantissa · 2^-24, exact in float
    float v = std::ldexp((float)mantissa, -24);
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

extern "C" float rkv_bf16_to_float(uint16_t b) {
  const uint32_t bits = (uint32_t)b << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

extern "C" uint16_t rkv_float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);  // quiet nan
  bits += 0x7fffu + ((bits >> 16) & 1);  // round to nearest even
  return (uint16_t)(bits >> 16);
}

extern "C" uint16_t rkv_float_to_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
  const uint32_t absBits = bits & 0x7fffffffu;
  if (absBits > 0x7f800000u) return sign | 0x7e00;   // nan
  if (absBits >= 0x477ff000u) return sign | 0x7c00;  // rounds to ≥ 65520: inf
  if (absBits < 0x38800000u) {
    // below the smallest normal half (2^-14): a subnormal, value / 2^-24 rounded to nearest even
    float a;
    std::memcpy(&a, &absBits, 4);
    return sign | (uint16_t)std::nearbyint(a * 16777216.0f);
  }
  // normal: drop 13 mantissa bits with round to nearest even, rebias the exponent (127 → 15)
  uint32_t rounded = absBits + 0xfffu + ((absBits >> 13) & 1);
  return sign | (uint16_t)((rounded - (112u << 23)) >> 13);
}

extern "C" int rkv_decode_reference(const rkv_decode_args* a, char* err, size_t errLen) {
  const rkv_layer& L = a->layer;
  const int d = L.headDim;
  if (d <= 0 || L.numPairs < 0 || L.numKvHeads <= 0 || L.numPairs % L.numKvHeads != 0 || a->group <= 0) {
    return fail(err, errLen, "rkv_decode_reference: bad shape (headDim, numPairs, numKvHeads or group)");
  }
  if (a->queryPositions && !L.positions) {
    return fail(err, errLen, "rkv_decode_reference: queryPositions given but the layer has no positions");
  }
  const double scale = a->scale > 0 ? a->scale : 1.0 / std::sqrt((double)d);
  std::vector<double> logits;
  std::vector<double> acc(d);
  for (int p = 0; p < L.numPairs; p++) {
    const int begin = L.headOffset[p];
    const int length = L.headOffset[p + 1] - begin;
    if (length < 0 || L.headOffset[p + 1] > L.totalEntries) {
      return fail(err, errLen, "rkv_decode_reference: headOffset is not a prefix sum within totalEntries");
    }
    // slots are sorted by position: the visible set is a prefix (attendReference's `visible`)
    int visible = length;
    if (a->queryPositions) {
      const int qPos = a->queryPositions[p / L.numKvHeads];
      visible = 0;
      while (visible < length && L.positions[begin + visible] <= qPos) visible++;
    }
    const bool hasComp = L.compCounts && L.compCounts[p] > 0;
    logits.assign(visible + 1, 0.0);
    for (int j = 0; j < a->group; j++) {
      const float* q = a->queries + ((size_t)p * a->group + j) * d;
      float* out = a->out + ((size_t)p * a->group + j) * d;
      double max = -std::numeric_limits<double>::infinity();
      for (int s = 0; s < visible; s++) {
        const uint16_t* k = L.keys + (size_t)(begin + s) * d;
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)q[i] * element(L.dtype, k[i]);
        logits[s] = dot * scale;
        if (logits[s] > max) max = logits[s];
      }
      if (hasComp) {
        const float* k = L.compKeys + (size_t)p * d;
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)q[i] * k[i];
        logits[visible] = dot * scale + std::log((double)L.compCounts[p]);
        if (logits[visible] > max) max = logits[visible];
      }
      const int n = visible + (hasComp ? 1 : 0);
      double sum = 0;
      for (int s = 0; s < n; s++) {
        logits[s] = std::exp(logits[s] - max);
        sum += logits[s];
      }
      for (int i = 0; i < d; i++) acc[i] = 0;
      for (int s = 0; s < visible; s++) {
        const double w = logits[s] / sum;
        const uint16_t* v = L.values + (size_t)(begin + s) * d;
        for (int i = 0; i < d; i++) acc[i] += w * element(L.dtype, v[i]);
      }
      if (hasComp) {
        const double w = logits[visible] / sum;
        const float* v = L.compValues + (size_t)p * d;
        for (int i = 0; i < d; i++) acc[i] += w * v[i];
      }
      for (int i = 0; i < d; i++) out[i] = (float)acc[i];
    }
  }
  return 0;
}

extern "C" int rkv_compact_reference(const rkv_compact_args* a, char* err, size_t errLen) {
  const int d = a->headDim;
  const int N = a->fullLength;
  if (d <= 0 || N < 0 || a->numPairs < 0) return fail(err, errLen, "rkv_compact_reference: bad shape");
  if (a->keptOffset[0] != 0 || a->keptOffset[a->numPairs] != a->totalKept) {
    return fail(err, errLen, "rkv_compact_reference: keptOffset must start at 0 and end at totalKept");
  }
  std::vector<char> kept(N);
  std::vector<double> key(d), value(d);
  for (int p = 0; p < a->numPairs; p++) {
    const int begin = a->keptOffset[p];
    const int end = a->keptOffset[p + 1];
    if (end < begin || end - begin > N) return fail(err, errLen, "rkv_compact_reference: keptOffset is not a prefix sum of counts ≤ fullLength");
    std::fill(kept.begin(), kept.end(), 0);
    int previous = -1;
    for (int e = begin; e < end; e++) {
      const int slot = a->keptSlots[e];
      if (slot <= previous || slot >= N) {
        return fail(err, errLen, "rkv_compact_reference: keptSlots must be strictly increasing within [0, fullLength) per pair");
      }
      previous = slot;
      kept[slot] = 1;
      const size_t src = ((size_t)p * N + slot) * d;
      std::memcpy(a->keys + (size_t)e * d, a->fullKeys + src, d * sizeof(uint16_t));
      std::memcpy(a->values + (size_t)e * d, a->fullValues + src, d * sizeof(uint16_t));
      a->positions[e] = a->fullPositions ? a->fullPositions[(size_t)p * N + slot] : slot;
    }
    std::fill(key.begin(), key.end(), 0.0);
    std::fill(value.begin(), value.end(), 0.0);
    int count = 0;
    for (int s = 0; s < N; s++) {
      if (kept[s]) continue;
      const size_t src = ((size_t)p * N + s) * d;
      for (int i = 0; i < d; i++) {
        key[i] += element(a->dtype, a->fullKeys[src + i]);
        value[i] += element(a->dtype, a->fullValues[src + i]);
      }
      count++;
    }
    for (int i = 0; i < d; i++) {
      a->compKeys[(size_t)p * d + i] = count > 0 ? (float)(key[i] / count) : 0.0f;
      a->compValues[(size_t)p * d + i] = count > 0 ? (float)(value[i] / count) : 0.0f;
    }
    a->compCounts[p] = count;
  }
  return 0;
}
