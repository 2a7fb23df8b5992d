// razorkv CUDA kernels and their CPU references: the C interface shared by kernels.cu, reference.cpp, the N-API
// addon and the gpu_check / gpu_bench executables.
//
// Packed ragged layout (one model layer; DESIGN §3, core's KvCache flattened):
//   A "pair" is one (sequence, KV head): pair p = b * numKvHeads + kvHead for sequence b of a batch.
//   headOffset[numPairs + 1]   int32 prefix sums: pair p holds entries headOffset[p] … headOffset[p+1]-1.
//   keys, values               [totalEntries × headDim] fp16 or bf16, entries of a pair in increasing position.
//   positions                  [totalEntries] int32, original positions (kept tokens keep their positions).
//   compKeys, compValues       [numPairs × headDim] f32: the compensation slot (k̂, v̂) of each pair, the means of
//   compCounts                 [numPairs] int32 n, the dropped entries it stands for; 0 = the pair has none.
//                              Its logit is q·k̂·scale + ln n (RazorAttention, arXiv 2407.15891 §3.3).
//   queries                    [numPairs × group × headDim] f32 = [batch × numHeads × headDim]; query head
//                              h = kvHead * group + j of sequence b reads pair b * numKvHeads + kvHead (GQA).
//   queryPositions             [batch] int32 or null: an entry is visible when its position ≤ the query's position
//                              (null: every entry is visible); the compensation slot is always visible.
//   out                        [numPairs × group × headDim] f32.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { RKV_F16 = 0, RKV_BF16 = 1 } rkv_dtype;

// Host-side description of one packed layer. For the CUDA entry points every pointer is a device pointer, for the
// CPU references a host pointer (keys/values hold raw fp16 or bf16 bits).
typedef struct {
  rkv_dtype dtype;
  int numPairs;
  int numKvHeads;  // pairs per sequence; batch = numPairs / numKvHeads
  int headDim;
  int totalEntries;
  const int32_t* headOffset;
  const uint16_t* keys;
  const uint16_t* values;
  const int32_t* positions;  // may be null when queryPositions is null
  const float* compKeys;     // may be null (no pair has a compensation slot)
  const float* compValues;
  const int32_t* compCounts;
} rkv_layer;

typedef struct {
  rkv_layer layer;
  int group;                      // query heads per KV head
  float scale;                    // softmax scale; ≤ 0 means 1/√headDim
  const float* queries;
  const int32_t* queryPositions;  // may be null
  float* out;
} rkv_decode_args;

// Full (uncompressed) per-pair cache in, packed layer + compensation slots out (cache compaction).
typedef struct {
  rkv_dtype dtype;
  int numPairs;
  int headDim;
  int fullLength;                  // N: entries per pair in the full cache
  const uint16_t* fullKeys;        // [numPairs × N × headDim]
  const uint16_t* fullValues;
  const int32_t* fullPositions;    // [numPairs × N] or null (position = slot)
  const int32_t* keptOffset;       // [numPairs + 1] prefix sums of kept counts (= the output's headOffset)
  const int32_t* keptSlots;        // [totalKept]: per pair, strictly increasing slots in [0, N)
  int totalKept;
  uint16_t* keys;                  // [totalKept × headDim]
  uint16_t* values;
  int32_t* positions;              // [totalKept]
  float* compKeys;                 // [numPairs × headDim]: mean of the dropped keys (zeros when none is dropped)
  float* compValues;
  int32_t* compCounts;             // [numPairs]: number of dropped entries
} rkv_compact_args;

// ---- CPU references (reference.cpp): plain loops in double precision, the semantics of core's attendReference.
// They return 0 on success, or write a message into err (size errLen) and return -1.
int rkv_decode_reference(const rkv_decode_args* args, char* err, size_t errLen);
int rkv_compact_reference(const rkv_compact_args* args, char* err, size_t errLen);
float rkv_half_to_float(uint16_t bits);
float rkv_bf16_to_float(uint16_t bits);
uint16_t rkv_float_to_half(float value);   // round to nearest even
uint16_t rkv_float_to_bf16(float value);   // round to nearest even

// ---- CUDA (kernels.cu). Every function returns a cudaError_t as int (0 = cudaSuccess) and launches on `stream`
// (a cudaStream_t; null = the default stream). Kernels are asynchronous: errors of the work itself surface at the
// next synchronization.
#ifndef RKV_NO_CUDA
// Entries each split-K block of decode attention processes for this layer (0 = let the kernel choose).
int rkv_decode_chunk(int totalEntries, int numPairs, int group, int headDim);
// Workspace bytes decode attention needs for `chunk` (from rkv_decode_chunk, or an explicit value > 0).
size_t rkv_decode_workspace_bytes(int totalEntries, int numPairs, int group, int headDim, int chunk);
int rkv_decode(const rkv_decode_args* args, int chunk, void* workspace, size_t workspaceBytes, void* stream);

size_t rkv_compact_workspace_bytes(int numPairs, int fullLength, int headDim);
int rkv_compact(const rkv_compact_args* args, void* workspace, size_t workspaceBytes, void* stream);
#endif

#ifdef __cplusplus
}
#endif
