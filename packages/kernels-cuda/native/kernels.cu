// razorkv CUDA kernels: decode attention over per-head ragged KV caches, and cache compaction.
//
// Data layout (packed ragged, one model layer; full field list in razorkv_cuda.h):
//   pair p = (sequence b, KV head h) = b * numKvHeads + h; its entries are rows headOffset[p] … headOffset[p+1]-1 of
//   keys/values [totalEntries × d] (fp16 or bf16, 16-byte aligned rows), positions [totalEntries] int32,
//   compensation slot compKeys/compValues [numPairs × d] f32 with compCounts[p] = n (0 = none, logit + ln n).
//   queries [numPairs × group × d] f32, out [numPairs × group × d] f32.
//
// Decode attention, split-K (FlashDecoding):
//   1. decode_split_kernel: every pair's entries are cut into chunks of `chunk` entries; one block per
//      (pair, chunk), so a long head (a retrieval head keeps everything) spreads over many blocks while a short one
//      (sinks + window) takes one. A block reads each key and value row once for all `group` query heads of its KV
//      head (GQA), with an online softmax in f32, and writes a partial (max, sum, acc[d]) per query head to the
//      workspace. Which (pair, chunk) a block runs is found from headOffset alone (a scan of the pairs' chunk
//      counts), so no host-side plan is needed and the layout can live only on the device.
//   2. decode_combine_kernel: one block per query head merges the partials of its pair and the compensation slot
//      (logit q·k̂·scale + ln n) into the output.
//   Logits are kept in base 2 (scaled by log2 e) so that exp2 is one instruction; softmax is invariant to it.
//
//   Two versions of each kernel, chosen at compile time. The defaults (RKV_DECODE_SPLIT=0, RKV_DECODE_COMBINE=0) are
//   the ones checked and timed on an H100 (BENCHMARKS-cuda.md). The alternatives were written after that
//   measurement to remove the bottlenecks it showed and have NOT yet run on a GPU; bench/tune.sh builds them, runs
//   gpu_check on them and times them, so that a GPU session can adopt them by flipping the defaults below.
//     RKV_DECODE_SPLIT=1:   rows stream through a cp.async pipeline in shared memory (RKV_DECODE_STAGES tiles deep),
//                           so loads stay in flight while a tile is computed (the default issues 2·UNROLL loads per
//                           thread, then computes with none in flight: ~50–62% of copy bandwidth measured).
//     RKV_DECODE_COMBINE=1: the partials of a query head are read by 256 threads at once instead of one thread per
//                           output element looping over them (a chain of dependent L2 round trips measured at about
//                           18 µs per layer), and on sm_90 the kernel is a programmatic dependent launch.
//
// Compaction (full per-pair cache → packed layout + compensation slots):
//   1. compact_gather_kernel copies the kept rows and marks them in a byte mask;
//   2. compact_fold_partial_kernel sums the unmarked (dropped) rows of one slice of one pair in f32;
//   3. compact_fold_finish_kernel adds the slices in a fixed order and divides by the dropped count, so the result
//      is deterministic (no atomics).
#include "razorkv_cuda.h"

#include <climits>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

// Variant and tuning knobs (see above); bench/tune.sh overrides them.
#ifndef RKV_DECODE_SPLIT
#define RKV_DECODE_SPLIT 0
#endif
#ifndef RKV_DECODE_COMBINE
#define RKV_DECODE_COMBINE 0
#endif
#ifndef RKV_DECODE_UNROLL  // split 0: rows each lane group loads before it uses any
#define RKV_DECODE_UNROLL 4
#endif
#ifndef RKV_DECODE_MIN_BLOCKS  // split 0: __launch_bounds__ minimum blocks per SM (4 caps registers at 128)
#define RKV_DECODE_MIN_BLOCKS 1
#endif
#ifndef RKV_DECODE_STAGES  // split 1: pipeline depth
#define RKV_DECODE_STAGES 4
#endif
#ifndef RKV_DECODE_TILE_BYTES  // split 1: bytes of keys (and of values) per stage
#define RKV_DECODE_TILE_BYTES 8192
#endif

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

struct DecodeParams {
  rkv_layer layer;
  const float* queries;
  const int32_t* queryPositions;
  int group;
  float scaleLog2;  // softmax scale × log2 e
  int chunk;
  float2* wsMaxSum;  // [splits × group] (running max, sum of exp2) of each partial
  float* wsAcc;      // [splits × group × d] unnormalized output of each partial
  float* out;
};

struct CompactParams {
  rkv_compact_args args;
  unsigned char* kept;  // [numPairs × N] 1 where the slot is kept
  float* partial;       // [numPairs × slices × 2 × d] sums of dropped keys (0) and values (1) per slice
  int slices;
};

// Entries of one 16-byte load, converted to f32.
template <bool BF16>
__device__ __forceinline__ void to_float8(const uint4& raw, float (&x)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    if (BF16) {
      x[2 * i] = __uint_as_float(w[i] << 16);
      x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    } else {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      x[2 * i] = f.x;
      x[2 * i + 1] = f.y;
    }
  }
}

__device__ __forceinline__ int chunks_of(const int32_t* headOffset, int pair, int chunk) {
  return (headOffset[pair + 1] - headOffset[pair] + chunk - 1) / chunk;
}

// Called by one whole warp. Finds the pair whose run of chunks holds global chunk index `block` (pairs in order, each
// with chunks_of(pair) chunks). Returns false when `block` is past the last chunk (the grid is an upper bound).
__device__ bool locate_chunk(const int32_t* headOffset, int numPairs, int chunk, int block, int* pair, int* first) {
  const int lane = threadIdx.x & 31;
  int running = 0;
  for (int base = 0; base < numPairs; base += 32) {
    const int p = base + lane;
    const int n = p < numPairs ? chunks_of(headOffset, p, chunk) : 0;
    int inclusive = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int t = __shfl_up_sync(kFullMask, inclusive, o);
      if (lane >= o) inclusive += t;
    }
    const int exclusive = inclusive - n;
    const unsigned hit = __ballot_sync(kFullMask, block >= running + exclusive && block < running + inclusive);
    if (hit) {
      const int src = __ffs(hit) - 1;
      *pair = base + src;
      *first = running + __shfl_sync(kFullMask, exclusive, src);
      return true;
    }
    running += __shfl_sync(kFullMask, inclusive, 31);
  }
  return false;
}

// Called by one whole warp: the global index of the first chunk of `pair`.
__device__ int first_chunk(const int32_t* headOffset, int pair, int chunk) {
  int sum = 0;
  for (int p = threadIdx.x & 31; p < pair; p += 32) sum += chunks_of(headOffset, p, chunk);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(kFullMask, sum, o);
  return sum;
}

#if RKV_DECODE_SPLIT == 1 || RKV_DECODE_COMBINE == 1
// Programmatic dependent launch (sm_90): the combine kernel may start while the split kernel drains, and waits
// here before it reads the partials; the split kernel allows that from its first instruction.
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::);
#endif
}
#endif

#if RKV_DECODE_SPLIT == 0

// 2·kUnroll 16-byte loads per thread are issued before the first use.
constexpr int kUnroll = RKV_DECODE_UNROLL;

// One block per (pair, chunk). D/8 lanes share an entry (one 16-byte load each); a warp handles 32/(D/8) entries side
// by side and kUnroll of those groups per step. MAXG ≥ group: query heads per KV head, unrolled.
template <bool BF16, int D, int MAXG>
__global__ void __launch_bounds__(kThreads, RKV_DECODE_MIN_BLOCKS) decode_split_kernel(DecodeParams P) {
  constexpr int LANES = D / 8;
  constexpr int PER_WARP = 32 / LANES;
  constexpr int SLOTS = kWarps * PER_WARP;  // entry groups per block, each with its own online softmax
  constexpr int STEP = SLOTS * kUnroll;
  __shared__ int sPair, sFirst;
  __shared__ float sMax[SLOTS][MAXG], sSum[SLOTS][MAXG];
  __shared__ __align__(16) float sAcc[SLOTS][MAXG][D];

#if RKV_DECODE_COMBINE == 1
  allow_next_kernel();
#endif
  const rkv_layer& L = P.layer;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (warp == 0) {
    int pair = -1, first = 0;
    const bool found = locate_chunk(L.headOffset, L.numPairs, P.chunk, blockIdx.x, &pair, &first);
    if (lane == 0) {
      sPair = found ? pair : -1;
      sFirst = first;
    }
  }
  __syncthreads();
  const int pair = sPair;
  if (pair < 0) return;  // past the last chunk: the grid is sized by an upper bound
  const int chunkIndex = blockIdx.x - sFirst;
  const int begin = L.headOffset[pair] + chunkIndex * P.chunk;
  const int end = min(begin + P.chunk, L.headOffset[pair + 1]);
  const int queryPosition = P.queryPositions ? P.queryPositions[pair / L.numKvHeads] : INT_MAX;
  const int group = P.group;
  const int sub = lane % LANES;                      // which 16 bytes of the row this lane reads
  const int slot = warp * PER_WARP + lane / LANES;   // entry group within the block

  float q[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    if (g < group) {
      const float4* src = reinterpret_cast<const float4*>(P.queries + ((size_t)pair * group + g) * D + sub * 8);
      const float4 a = src[0], b = src[1];
      q[g][0] = a.x * P.scaleLog2; q[g][1] = a.y * P.scaleLog2; q[g][2] = a.z * P.scaleLog2; q[g][3] = a.w * P.scaleLog2;
      q[g][4] = b.x * P.scaleLog2; q[g][5] = b.y * P.scaleLog2; q[g][6] = b.z * P.scaleLog2; q[g][7] = b.w * P.scaleLog2;
    } else {
#pragma unroll
      for (int i = 0; i < 8; i++) q[g][i] = 0.f;
    }
  }
  float runMax[MAXG], runSum[MAXG], acc[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    runMax[g] = -INFINITY;
    runSum[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; i++) acc[g][i] = 0.f;
  }

  const uint4* keys = reinterpret_cast<const uint4*>(L.keys);
  const uint4* values = reinterpret_cast<const uint4*>(L.values);
  for (int step = begin; step < end; step += STEP) {
    // issue every load of this step before the first use
    uint4 kRaw[kUnroll], vRaw[kUnroll];
    bool visible[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const int row = step + (warp * kUnroll + u) * PER_WARP + lane / LANES;
      visible[u] = row < end;
      if (visible[u]) {
        kRaw[u] = __ldg(keys + (size_t)row * LANES + sub);
        vRaw[u] = __ldg(values + (size_t)row * LANES + sub);
        if (P.queryPositions) visible[u] = __ldg(L.positions + row) <= queryPosition;
      } else {
        kRaw[u] = make_uint4(0, 0, 0, 0);
        vRaw[u] = make_uint4(0, 0, 0, 0);
      }
    }
    float logit[MAXG][kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      float k[8];
      to_float8<BF16>(kRaw[u], k);
#pragma unroll
      for (int g = 0; g < MAXG; g++) {
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) dot = fmaf(q[g][i], k[i], dot);
#pragma unroll
        for (int o = LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(kFullMask, dot, o);
        logit[g][u] = visible[u] ? dot : -INFINITY;
      }
    }
    float v[kUnroll][8];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) to_float8<BF16>(vRaw[u], v[u]);
#pragma unroll
    for (int g = 0; g < MAXG; g++) {
      if (g >= group) continue;
      float newMax = runMax[g];
#pragma unroll
      for (int u = 0; u < kUnroll; u++) newMax = fmaxf(newMax, logit[g][u]);
      if (newMax == -INFINITY) continue;  // nothing visible yet
      const float correction = exp2f(runMax[g] - newMax);  // 0 while runMax is -inf
      float p[kUnroll];
      float stepSum = 0.f;
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        p[u] = exp2f(logit[g][u] - newMax);
        stepSum += p[u];
      }
      runSum[g] = runSum[g] * correction + stepSum;
#pragma unroll
      for (int i = 0; i < 8; i++) {
        float a = acc[g][i] * correction;
#pragma unroll
        for (int u = 0; u < kUnroll; u++) a = fmaf(p[u], v[u][i], a);
        acc[g][i] = a;
      }
      runMax[g] = newMax;
    }
  }

  // merge the block's entry groups, then write one partial per query head
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    if (g >= group) continue;
    if (sub == 0) {
      sMax[slot][g] = runMax[g];
      sSum[slot][g] = runSum[g];
    }
    float4* dst = reinterpret_cast<float4*>(&sAcc[slot][g][sub * 8]);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  const int split = sFirst + chunkIndex;
  for (int idx = threadIdx.x; idx < group * D; idx += kThreads) {
    const int g = idx / D;
    const int i = idx % D;
    float blockMax = -INFINITY;
#pragma unroll
    for (int s = 0; s < SLOTS; s++) blockMax = fmaxf(blockMax, sMax[s][g]);
    float a = 0.f, sum = 0.f;
    if (blockMax != -INFINITY) {
#pragma unroll
      for (int s = 0; s < SLOTS; s++) {
        const float w = exp2f(sMax[s][g] - blockMax);
        a = fmaf(w, sAcc[s][g][i], a);
        sum = fmaf(w, sSum[s][g], sum);
      }
    }
    P.wsAcc[((size_t)split * group + g) * D + i] = a;
    if (i == 0) P.wsMaxSum[(size_t)split * group + g] = make_float2(blockMax, sum);
  }
}

#else  // RKV_DECODE_SPLIT == 1

// With 3 blocks per SM, up to 3 · (kStages − 1) · 2 · kTileBytes = 144 KB per SM in flight.
constexpr int kStages = RKV_DECODE_STAGES;
constexpr int kTileBytes = RKV_DECODE_TILE_BYTES;

// cp.async (sm_80+): 16 or 4 bytes global → shared without passing through registers; `valid` false writes zeros.
__device__ __forceinline__ void copy_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void copy_async4(void* smem, const void* gmem, bool valid) {
  const unsigned dst = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int PENDING>
__device__ __forceinline__ void copy_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING)); }

// Shapes of the split kernel for head dim D: a tile of TILE rows (8 KB of keys + 8 KB of values) per pipeline stage.
template <int D>
struct SplitShape {
  static constexpr int LANES = D / 8;                      // lanes sharing one row, 16 bytes each
  static constexpr int PER_WARP = 32 / LANES;              // rows a warp handles side by side
  static constexpr int SLOTS = kWarps * PER_WARP;          // row groups per block, each with its own online softmax
  static constexpr int TILE = kTileBytes / (D * 2);        // rows per stage
  static constexpr int UNROLL = TILE / SLOTS;              // rows per row group per tile
  static constexpr int STAGE_BYTES = 2 * kTileBytes + TILE * 4;  // keys, values, positions
  static constexpr int SMEM_BYTES = kStages * STAGE_BYTES;
};

// One block per (pair, chunk): streams the chunk's key and value rows through a kStages-deep cp.async pipeline in
// shared memory and runs an online softmax in f32 for the `group` query heads of the pair's KV head (each row is read
// once for all of them). Writes one partial (max, sum, acc[D]) per query head.
template <bool BF16, int D, int MAXG>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(DecodeParams P) {
  using S = SplitShape<D>;
  static_assert(S::UNROLL * S::SLOTS == S::TILE, "tile must split evenly over the row groups");
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int sPair, sFirst;
  __shared__ float sMax[S::SLOTS][MAXG], sSum[S::SLOTS][MAXG];

  allow_next_kernel();
  const rkv_layer& L = P.layer;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (warp == 0) {
    int pair = -1, first = 0;
    const bool found = locate_chunk(L.headOffset, L.numPairs, P.chunk, blockIdx.x, &pair, &first);
    if (lane == 0) {
      sPair = found ? pair : -1;
      sFirst = first;
    }
  }
  __syncthreads();
  const int pair = sPair;
  if (pair < 0) return;  // past the last chunk: the grid is sized by an upper bound
  const int chunkIndex = blockIdx.x - sFirst;
  const int begin = L.headOffset[pair] + chunkIndex * P.chunk;
  const int end = min(begin + P.chunk, L.headOffset[pair + 1]);
  const int tiles = (end - begin + S::TILE - 1) / S::TILE;
  const bool masked = P.queryPositions != nullptr;
  const int queryPosition = masked ? P.queryPositions[pair / L.numKvHeads] : INT_MAX;
  const uint4* keys = reinterpret_cast<const uint4*>(L.keys);
  const uint4* values = reinterpret_cast<const uint4*>(L.values);

  // stage s: keys [TILE × LANES] uint4, values the same, positions [TILE] int
  auto stageKeys = [&](int s) { return reinterpret_cast<uint4*>(smem + s * S::STAGE_BYTES); };
  auto stageValues = [&](int s) { return reinterpret_cast<uint4*>(smem + s * S::STAGE_BYTES + kTileBytes); };
  auto stagePositions = [&](int s) { return reinterpret_cast<int*>(smem + s * S::STAGE_BYTES + 2 * kTileBytes); };
  auto loadTile = [&](int tile) {
    const int s = tile % kStages;
    const int row0 = begin + tile * S::TILE;
    for (int j = threadIdx.x; j < S::TILE * S::LANES; j += kThreads) {
      const int row = row0 + j / S::LANES;
      const bool valid = row < end;
      const size_t src = (size_t)(valid ? row : begin) * S::LANES + j % S::LANES;
      copy_async16(stageKeys(s) + j, keys + src, valid);
      copy_async16(stageValues(s) + j, values + src, valid);
    }
    if (masked) {
      for (int j = threadIdx.x; j < S::TILE; j += kThreads) {
        const int row = row0 + j;
        copy_async4(stagePositions(s) + j, L.positions + (row < end ? row : begin), row < end);
      }
    }
  };

  // prologue: the first kStages − 1 tiles in flight (one commit group per tile, empty groups past the end)
#pragma unroll
  for (int t = 0; t < kStages - 1; t++) {
    if (t < tiles) loadTile(t);
    copy_async_commit();
  }

  const int group = P.group;
  const int sub = lane % S::LANES;                      // which 16 bytes of a row this lane reads
  const int slot = warp * S::PER_WARP + lane / S::LANES;  // row group within the block
  float q[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    if (g < group) {
      const float4* src = reinterpret_cast<const float4*>(P.queries + ((size_t)pair * group + g) * D + sub * 8);
      const float4 a = src[0], b = src[1];
      q[g][0] = a.x * P.scaleLog2; q[g][1] = a.y * P.scaleLog2; q[g][2] = a.z * P.scaleLog2; q[g][3] = a.w * P.scaleLog2;
      q[g][4] = b.x * P.scaleLog2; q[g][5] = b.y * P.scaleLog2; q[g][6] = b.z * P.scaleLog2; q[g][7] = b.w * P.scaleLog2;
    } else {
#pragma unroll
      for (int i = 0; i < 8; i++) q[g][i] = 0.f;
    }
  }
  float runMax[MAXG], runSum[MAXG], acc[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    runMax[g] = -INFINITY;
    runSum[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; i++) acc[g][i] = 0.f;
  }

  for (int t = 0; t < tiles; t++) {
    copy_async_wait<kStages - 2>();  // this thread's copies of tile t have landed
    __syncthreads();                 // everyone's have, and everyone is done with tile t − 1, whose stage is refilled next
    if (t + kStages - 1 < tiles) loadTile(t + kStages - 1);
    copy_async_commit();

    const int s = t % kStages;
    const int row0 = begin + t * S::TILE;
    const uint4* tileKeys = stageKeys(s);
    const uint4* tileValues = stageValues(s);
    float logit[MAXG][S::UNROLL];
    bool visible[S::UNROLL];
#pragma unroll
    for (int u = 0; u < S::UNROLL; u++) {
      const int r = (warp * S::UNROLL + u) * S::PER_WARP + lane / S::LANES;
      visible[u] = row0 + r < end && (!masked || stagePositions(s)[r] <= queryPosition);
      float k[8];
      to_float8<BF16>(tileKeys[r * S::LANES + sub], k);
#pragma unroll
      for (int g = 0; g < MAXG; g++) {
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) dot = fmaf(q[g][i], k[i], dot);
#pragma unroll
        for (int o = S::LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(kFullMask, dot, o);
        logit[g][u] = visible[u] ? dot : -INFINITY;
      }
    }
    // online softmax: rescale once per tile, then accumulate p·v row by row
    float p[MAXG][S::UNROLL];
#pragma unroll
    for (int g = 0; g < MAXG; g++) {
      float newMax = runMax[g];
#pragma unroll
      for (int u = 0; u < S::UNROLL; u++) newMax = fmaxf(newMax, logit[g][u]);
      // nothing visible yet: keep the state (and avoid −inf − −inf)
      const float correction = newMax == -INFINITY ? 1.f : exp2f(runMax[g] - newMax);
      float tileSum = 0.f;
#pragma unroll
      for (int u = 0; u < S::UNROLL; u++) {
        p[g][u] = newMax == -INFINITY ? 0.f : exp2f(logit[g][u] - newMax);
        tileSum += p[g][u];
      }
      runSum[g] = runSum[g] * correction + tileSum;
      runMax[g] = newMax;
#pragma unroll
      for (int i = 0; i < 8; i++) acc[g][i] *= correction;
    }
#pragma unroll
    for (int u = 0; u < S::UNROLL; u++) {
      const int r = (warp * S::UNROLL + u) * S::PER_WARP + lane / S::LANES;
      float v[8];
      to_float8<BF16>(tileValues[r * S::LANES + sub], v);
#pragma unroll
      for (int g = 0; g < MAXG; g++) {
#pragma unroll
        for (int i = 0; i < 8; i++) acc[g][i] = fmaf(p[g][u], v[i], acc[g][i]);
      }
    }
  }
  copy_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory is reused below

  // merge the block's row groups, then write one partial per query head
  float* sAcc = reinterpret_cast<float*>(smem);  // [SLOTS][MAXG][D]
#pragma unroll
  for (int g = 0; g < MAXG; g++) {
    if (g >= group) continue;
    if (sub == 0) {
      sMax[slot][g] = runMax[g];
      sSum[slot][g] = runSum[g];
    }
    float4* dst = reinterpret_cast<float4*>(sAcc + ((size_t)slot * MAXG + g) * D + sub * 8);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  const int split = sFirst + chunkIndex;
  for (int idx = threadIdx.x; idx < group * D; idx += kThreads) {
    const int g = idx / D;
    const int i = idx % D;
    float blockMax = -INFINITY;
#pragma unroll
    for (int r = 0; r < S::SLOTS; r++) blockMax = fmaxf(blockMax, sMax[r][g]);
    float a = 0.f, sum = 0.f;
    if (blockMax != -INFINITY) {
#pragma unroll
      for (int r = 0; r < S::SLOTS; r++) {
        const float w = exp2f(sMax[r][g] - blockMax);
        a = fmaf(w, sAcc[((size_t)r * MAXG + g) * D + i], a);
        sum = fmaf(w, sSum[r][g], sum);
      }
    }
    P.wsAcc[((size_t)split * group + g) * D + i] = a;
    if (i == 0) P.wsMaxSum[(size_t)split * group + g] = make_float2(blockMax, sum);
  }
}

#endif  // RKV_DECODE_SPLIT

#if RKV_DECODE_COMBINE == 0

// Sum over a block of D threads (D a multiple of 32); every thread gets the result.
template <int D>
__device__ float block_sum(float x, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFullMask, x, o);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = x;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < D / 32; w++) total += scratch[w];
  return total;
}

// One block of D threads per query head: merges its pair's partials and the compensation slot.
template <int D>
__global__ void __launch_bounds__(D) decode_combine_kernel(DecodeParams P) {
  __shared__ float scratch[D / 32];
  __shared__ int sFirst;
  const rkv_layer& L = P.layer;
  const int query = blockIdx.x;
  const int pair = query / P.group;
  const int g = query % P.group;
  const int i = threadIdx.x;
  if (threadIdx.x < 32) {
    const int first = first_chunk(L.headOffset, pair, P.chunk);
    if (threadIdx.x == 0) sFirst = first;
  }
  __syncthreads();
  const int first = sFirst;
  const int chunks = chunks_of(L.headOffset, pair, P.chunk);
  const int count = L.compCounts ? L.compCounts[pair] : 0;
  // compensation slot: logit q·k̂·scale + ln n, i.e. the mass of n copies of (k̂, v̂); in base 2 like the partials
  float compLogit = -INFINITY;
  if (count > 0) {
    const float dot = block_sum<D>(P.queries[(size_t)query * D + i] * L.compKeys[(size_t)pair * D + i], scratch);
    compLogit = dot * P.scaleLog2 + log2f((float)count);
  }
  float maxLogit = compLogit;
  for (int c = 0; c < chunks; c++) maxLogit = fmaxf(maxLogit, P.wsMaxSum[(size_t)(first + c) * P.group + g].x);
  float a = 0.f, sum = 0.f;
  if (maxLogit != -INFINITY) {
    for (int c = 0; c < chunks; c++) {
      const size_t partial = (size_t)(first + c) * P.group + g;
      const float2 ms = P.wsMaxSum[partial];
      const float w = exp2f(ms.x - maxLogit);
      sum = fmaf(w, ms.y, sum);
      a = fmaf(w, P.wsAcc[partial * D + i], a);
    }
    if (count > 0) {
      const float w = exp2f(compLogit - maxLogit);
      sum += w;
      a = fmaf(w, L.compValues[(size_t)pair * D + i], a);
    }
  }
  // nothing visible and no compensation slot: attendReference leaves the output at zero
  P.out[(size_t)query * D + i] = sum > 0.f ? a / sum : 0.f;
}

#else  // RKV_DECODE_COMBINE == 1

constexpr int kCombineThreads = 256;

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
// One block per query head: merges the partials of its pair and the compensation slot. Each row group of lanes
// (D/4 lanes, a float4 each) sums a strided subset of the partials, so the loads of all partials are in flight at
// once; the row groups are then added in a fixed order (deterministic).
template <int D>
__global__ void __launch_bounds__(kCombineThreads) decode_combine_kernel(DecodeParams P) {
  constexpr int WARPS = kCombineThreads / 32;
  constexpr int LANES = D / 4;
  constexpr int PER_WARP = 32 / LANES;
  constexpr int SLOTS = WARPS * PER_WARP;
  __shared__ __align__(16) float sRow[SLOTS][D];
  __shared__ float sSum[SLOTS];
  __shared__ float sMaxWarp[WARPS];
  __shared__ int sFirst;
  __shared__ float sCompLogit;
  const rkv_layer& L = P.layer;
  const int query = blockIdx.x;
  const int pair = query / P.group;
  const int g = query % P.group;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int count = L.compCounts ? L.compCounts[pair] : 0;
  // inputs only (written before the split kernel started), so this runs while the split kernel drains
  if (warp == 0) {
    const int first = first_chunk(L.headOffset, pair, P.chunk);
    if (lane == 0) sFirst = first;
  } else if (warp == 1) {
    // compensation slot: logit q·k̂·scale + ln n, the mass of n copies of (k̂, v̂); base 2 like the partials
    float dot = 0.f;
    if (count > 0) {
      for (int i = lane; i < D; i += 32) dot += P.queries[(size_t)query * D + i] * L.compKeys[(size_t)pair * D + i];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(kFullMask, dot, o);
    }
    if (lane == 0) sCompLogit = count > 0 ? dot * P.scaleLog2 + log2f((float)count) : -INFINITY;
  }
  __syncthreads();
  const int first = sFirst;
  const int chunks = chunks_of(L.headOffset, pair, P.chunk);
  const float compLogit = sCompLogit;
  wait_for_previous_kernel();

  float m = -INFINITY;
  for (int c = threadIdx.x; c < chunks; c += kCombineThreads) m = fmaxf(m, P.wsMaxSum[(size_t)(first + c) * P.group + g].x);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(kFullMask, m, o));
  if (lane == 0) sMaxWarp[warp] = m;
  __syncthreads();
  float maxLogit = compLogit;
#pragma unroll
  for (int w = 0; w < WARPS; w++) maxLogit = fmaxf(maxLogit, sMaxWarp[w]);

  const int slot = warp * PER_WARP + lane / LANES;
  const int sub = lane % LANES;
  float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
  float sum = 0.f;
  if (maxLogit != -INFINITY) {
#pragma unroll 4
    for (int c = slot; c < chunks; c += SLOTS) {
      const size_t partial = (size_t)(first + c) * P.group + g;
      const float2 ms = P.wsMaxSum[partial];
      const float4 x = reinterpret_cast<const float4*>(P.wsAcc + partial * D)[sub];
      const float w = exp2f(ms.x - maxLogit);
      sum = fmaf(w, ms.y, sum);
      a.x = fmaf(w, x.x, a.x);
      a.y = fmaf(w, x.y, a.y);
      a.z = fmaf(w, x.z, a.z);
      a.w = fmaf(w, x.w, a.w);
    }
  }
  reinterpret_cast<float4*>(sRow[slot])[sub] = a;
  if (sub == 0) sSum[slot] = sum;
  __syncthreads();
  const float compWeight = count > 0 && maxLogit != -INFINITY ? exp2f(compLogit - maxLogit) : 0.f;
  float total = compWeight;
#pragma unroll
  for (int r = 0; r < SLOTS; r++) total += sSum[r];
  for (int i = threadIdx.x; i < D; i += kCombineThreads) {
    float o = compWeight > 0.f ? compWeight * L.compValues[(size_t)pair * D + i] : 0.f;
#pragma unroll
    for (int r = 0; r < SLOTS; r++) o += sRow[r][i];
    // nothing visible and no compensation slot: attendReference leaves the output at zero
    P.out[(size_t)query * D + i] = total > 0.f ? o / total : 0.f;
  }
}

#endif  // RKV_DECODE_COMBINE

__global__ void compact_gather_kernel(CompactParams P) {
  const rkv_compact_args& A = P.args;
  const int pair = blockIdx.y;
  const int lanes = A.headDim / 8;
  const int begin = A.keptOffset[pair];
  const int n = (A.keptOffset[pair + 1] - begin) * lanes;
  const uint4* fullKeys = reinterpret_cast<const uint4*>(A.fullKeys);
  const uint4* fullValues = reinterpret_cast<const uint4*>(A.fullValues);
  uint4* keys = reinterpret_cast<uint4*>(A.keys);
  uint4* values = reinterpret_cast<uint4*>(A.values);
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += gridDim.x * blockDim.x) {
    const int entry = begin + idx / lanes;
    const int sub = idx % lanes;
    const int slot = A.keptSlots[entry];
    const size_t src = (size_t)pair * A.fullLength + slot;
    keys[(size_t)entry * lanes + sub] = fullKeys[src * lanes + sub];
    values[(size_t)entry * lanes + sub] = fullValues[src * lanes + sub];
    if (sub == 0) {
      A.positions[entry] = A.fullPositions ? A.fullPositions[src] : slot;
      P.kept[src] = 1;
    }
  }
}

// One block per (slice, pair): f32 sums of the dropped keys and values in rows [slice·per, (slice+1)·per).
template <bool BF16, int D>
__global__ void __launch_bounds__(kThreads) compact_fold_partial_kernel(CompactParams P) {
  constexpr int LANES = D / 8;
  constexpr int ROWS = kThreads / LANES;  // rows summed side by side
  __shared__ float sKey[ROWS][D], sValue[ROWS][D];
  const rkv_compact_args& A = P.args;
  const int pair = blockIdx.y;
  const int slice = blockIdx.x;
  const int N = A.fullLength;
  const int per = (N + P.slices - 1) / P.slices;
  const int r0 = slice * per;
  const int r1 = min(N, r0 + per);
  const int sub = threadIdx.x % LANES;
  const int lane = threadIdx.x / LANES;
  const uint4* fullKeys = reinterpret_cast<const uint4*>(A.fullKeys);
  const uint4* fullValues = reinterpret_cast<const uint4*>(A.fullValues);
  float k[8] = {0, 0, 0, 0, 0, 0, 0, 0}, v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int r = r0 + lane; r < r1; r += ROWS) {
    const size_t row = (size_t)pair * N + r;
    if (P.kept[row]) continue;
    float x[8];
    to_float8<BF16>(fullKeys[row * LANES + sub], x);
#pragma unroll
    for (int i = 0; i < 8; i++) k[i] += x[i];
    to_float8<BF16>(fullValues[row * LANES + sub], x);
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] += x[i];
  }
#pragma unroll
  for (int i = 0; i < 8; i++) {
    sKey[lane][sub * 8 + i] = k[i];
    sValue[lane][sub * 8 + i] = v[i];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < D; i += kThreads) {
    float sk = 0.f, sv = 0.f;
    for (int r = 0; r < ROWS; r++) {
      sk += sKey[r][i];
      sv += sValue[r][i];
    }
    float* dst = P.partial + ((size_t)pair * P.slices + slice) * 2 * D;
    dst[i] = sk;
    dst[D + i] = sv;
  }
}

__global__ void compact_fold_finish_kernel(CompactParams P) {
  const rkv_compact_args& A = P.args;
  const int pair = blockIdx.x;
  const int D = A.headDim;
  const int count = A.fullLength - (A.keptOffset[pair + 1] - A.keptOffset[pair]);
  for (int i = threadIdx.x; i < D; i += blockDim.x) {
    float sk = 0.f, sv = 0.f;
    for (int s = 0; s < P.slices; s++) {
      const float* src = P.partial + ((size_t)pair * P.slices + s) * 2 * D;
      sk += src[i];
      sv += src[D + i];
    }
    A.compKeys[(size_t)pair * D + i] = count > 0 ? sk / count : 0.f;
    A.compValues[(size_t)pair * D + i] = count > 0 ? sv / count : 0.f;
  }
  if (threadIdx.x == 0) A.compCounts[pair] = count;
}

// ---- host side

using Kernel = void (*)(DecodeParams);

struct DecodeKernels {
  Kernel split = nullptr;
  Kernel combine = nullptr;
  int step = 0;  // entries a split block handles per iteration (chunks are rounded to it)
  int smem = 0;  // dynamic shared memory of the split kernel
};

template <bool BF16, int D, int MAXG>
DecodeKernels decode_kernels_for() {
#if RKV_DECODE_SPLIT == 0
  return {decode_split_kernel<BF16, D, MAXG>, decode_combine_kernel<D>, kWarps * (32 / (D / 8)) * kUnroll, 0};
#else
  using S = SplitShape<D>;
  static_assert(S::SLOTS * MAXG * D * 4 <= S::SMEM_BYTES, "the block merge reuses the pipeline's shared memory");
  return {decode_split_kernel<BF16, D, MAXG>, decode_combine_kernel<D>, S::TILE, S::SMEM_BYTES};
#endif
}

template <bool BF16, int D>
DecodeKernels decode_kernels_for_group(int group) {
  if (group <= 1) return decode_kernels_for<BF16, D, 1>();
  if (group <= 2) return decode_kernels_for<BF16, D, 2>();
  if (group <= 4) return decode_kernels_for<BF16, D, 4>();
  return decode_kernels_for<BF16, D, 8>();
}

// Instantiated head dims: 64 (SmolLM2) and 128 (Llama 2/3, Mistral, Qwen2); groups up to 8.
DecodeKernels decode_kernels(rkv_dtype dtype, int headDim, int group) {
  if (group < 1 || group > 8) return {};
  const bool bf16 = dtype == RKV_BF16;
  switch (headDim) {
    case 64: return bf16 ? decode_kernels_for_group<true, 64>(group) : decode_kernels_for_group<false, 64>(group);
    case 128: return bf16 ? decode_kernels_for_group<true, 128>(group) : decode_kernels_for_group<false, 128>(group);
    default: return {};
  }
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Shared memory above 48 KB must be asked for per kernel.
cudaError_t allow_shared_memory(const DecodeKernels& k) {
  return k.smem > 0 ? cudaFuncSetAttribute(k.split, cudaFuncAttributeMaxDynamicSharedMemorySize, k.smem) : cudaSuccess;
}

int max_chunks(int totalEntries, int numPairs, int chunk) {
  // Σ ceil(len_p / chunk) ≤ ceil(total / chunk) + numPairs
  return (totalEntries + chunk - 1) / chunk + numPairs;
}

}  // namespace

extern "C" int rkv_decode_chunk(int totalEntries, int numPairs, int group, int headDim) {
  const DecodeKernels k = decode_kernels(RKV_F16, headDim, group);  // both dtypes have the same occupancy
  if (!k.split) return 0;
  int device = 0, sms = 0, perSm = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) e = allow_shared_memory(k);
  if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, k.split, kThreads, k.smem);
  if (e != cudaSuccess || sms <= 0 || perSm <= 0) {
    cudaGetLastError();
    sms = 132;
    perSm = 2;
  }
  // One wave of equal blocks: every resident block slot gets one chunk. numPairs slots are held back because every
  // pair's last chunk may be partial, which makes up to numPairs chunks more than total / chunk.
  const int capacity = sms * perSm;
  const int blocks = capacity - numPairs > capacity / 2 ? capacity - numPairs : capacity / 2;
  int chunk = (totalEntries + blocks - 1) / blocks;
  chunk = (chunk + k.step - 1) / k.step * k.step;
  return chunk < k.step ? k.step : chunk;
}

extern "C" size_t rkv_decode_workspace_bytes(int totalEntries, int numPairs, int group, int headDim, int chunk) {
  if (chunk <= 0) return 0;
  const size_t partials = (size_t)max_chunks(totalEntries, numPairs, chunk) * group;
  return align_up(partials * sizeof(float2), 256) + partials * headDim * sizeof(float);
}

extern "C" int rkv_decode(const rkv_decode_args* a, int chunk, void* workspace, size_t workspaceBytes, void* stream) {
  const rkv_layer& L = a->layer;
  const DecodeKernels k = decode_kernels(L.dtype, L.headDim, a->group);
  if (!k.split || L.numPairs < 0 || L.numKvHeads <= 0 || L.numPairs % L.numKvHeads != 0 || L.totalEntries < 0) {
    return cudaErrorInvalidValue;
  }
  if (a->queryPositions && !L.positions) return cudaErrorInvalidValue;
  if ((uintptr_t)L.keys % 16 || (uintptr_t)L.values % 16 || (uintptr_t)a->queries % 16) return cudaErrorMisalignedAddress;
  if (L.numPairs == 0) return cudaSuccess;
  if (chunk <= 0) chunk = rkv_decode_chunk(L.totalEntries, L.numPairs, a->group, L.headDim);
  if (chunk <= 0) return cudaErrorInvalidValue;
  if (workspaceBytes < rkv_decode_workspace_bytes(L.totalEntries, L.numPairs, a->group, L.headDim, chunk)) {
    return cudaErrorInvalidValue;
  }
  const int grid = max_chunks(L.totalEntries, L.numPairs, chunk);
  const size_t partials = (size_t)grid * a->group;
  DecodeParams P;
  P.layer = L;
  P.queries = a->queries;
  P.queryPositions = a->queryPositions;
  P.group = a->group;
  const float scale = a->scale > 0 ? a->scale : 1.0f / sqrtf((float)L.headDim);
  P.scaleLog2 = scale * kLog2e;
  P.chunk = chunk;
  P.wsMaxSum = static_cast<float2*>(workspace);
  P.wsAcc = reinterpret_cast<float*>(static_cast<char*>(workspace) + align_up(partials * sizeof(float2), 256));
  P.out = a->out;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  cudaError_t e = cudaSuccess;
  if (L.totalEntries > 0) {
    if ((e = allow_shared_memory(k)) != cudaSuccess) return e;
    k.split<<<grid, kThreads, k.smem, s>>>(P);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
#if RKV_DECODE_COMBINE == 0
  k.combine<<<L.numPairs * a->group, L.headDim, 0, s>>>(P);
  return cudaGetLastError();
#else
  // On sm_90 the combine kernel is a programmatic dependent of the split kernel: its blocks start while the last
  // split blocks drain and wait (griddepcontrol.wait) only before they read the partials.
  int device = 0, major = 0;
  if ((e = cudaGetDevice(&device)) != cudaSuccess) return e;
  if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device)) != cudaSuccess) return e;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(L.numPairs * a->group);
  config.blockDim = dim3(kCombineThreads);
  config.dynamicSmemBytes = 0;
  config.stream = s;
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = major >= 9 && L.totalEntries > 0 ? 1 : 0;
  return cudaLaunchKernelEx(&config, k.combine, P);
#endif
}

namespace {

int compact_slices(int fullLength) {
  const int slices = (fullLength + 1023) / 1024;
  return slices < 1 ? 1 : slices > 64 ? 64 : slices;
}

}  // namespace

extern "C" size_t rkv_compact_workspace_bytes(int numPairs, int fullLength, int headDim) {
  return align_up((size_t)numPairs * fullLength, 256) +
         (size_t)numPairs * compact_slices(fullLength) * 2 * headDim * sizeof(float);
}

extern "C" int rkv_compact(const rkv_compact_args* a, void* workspace, size_t workspaceBytes, void* stream) {
  if (a->numPairs < 0 || a->fullLength < 0 || a->totalKept < 0 || a->numPairs > 65535) return cudaErrorInvalidValue;
  if (a->headDim != 64 && a->headDim != 128) return cudaErrorInvalidValue;
  if (workspaceBytes < rkv_compact_workspace_bytes(a->numPairs, a->fullLength, a->headDim)) return cudaErrorInvalidValue;
  if ((uintptr_t)a->fullKeys % 16 || (uintptr_t)a->fullValues % 16 || (uintptr_t)a->keys % 16 || (uintptr_t)a->values % 16) {
    return cudaErrorMisalignedAddress;
  }
  if (a->numPairs == 0) return cudaSuccess;
  CompactParams P;
  P.args = *a;
  P.kept = static_cast<unsigned char*>(workspace);
  P.partial = reinterpret_cast<float*>(static_cast<char*>(workspace) + align_up((size_t)a->numPairs * a->fullLength, 256));
  P.slices = compact_slices(a->fullLength);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  cudaError_t e = cudaMemsetAsync(P.kept, 0, (size_t)a->numPairs * a->fullLength, s);
  if (e != cudaSuccess) return e;
  const int lanes = a->headDim / 8;
  int gatherBlocks = (a->fullLength * lanes + kThreads - 1) / kThreads;
  gatherBlocks = gatherBlocks < 1 ? 1 : gatherBlocks > 1024 ? 1024 : gatherBlocks;
  compact_gather_kernel<<<dim3(gatherBlocks, a->numPairs), kThreads, 0, s>>>(P);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  const dim3 foldGrid(P.slices, a->numPairs);
  const bool bf16 = a->dtype == RKV_BF16;
  if (a->headDim == 64) {
    if (bf16) compact_fold_partial_kernel<true, 64><<<foldGrid, kThreads, 0, s>>>(P);
    else compact_fold_partial_kernel<false, 64><<<foldGrid, kThreads, 0, s>>>(P);
  } else {
    if (bf16) compact_fold_partial_kernel<true, 128><<<foldGrid, kThreads, 0, s>>>(P);
    else compact_fold_partial_kernel<false, 128><<<foldGrid, kThreads, 0, s>>>(P);
  }
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  compact_fold_finish_kernel<<<a->numPairs, 128, 0, s>>>(P);
  return cudaGetLastError();
}
