// Softmax attention of new queries over a (possibly compressed) KV cache, with the statistics policies need.
// Semantics are those of core's attendReference (packages/core/src/attention.ts); the tests compare against it.
//
// Layout (row-major f32):
//   queries [C × H × d]   C new tokens, already rotated (RoPE), token c at position queryPositions[c]
//   out     [C × H × d]
//   KV head kv: slot s has its key at keys + s·stride and its value at values + s·stride (d floats each), and the
//     position positions[s] (increasing in s), or s itself when positions is null (an uncompressed prefix).
//     stride = d for a core HeadCache ([length × d]); stride = Hkv·d for a projection output ([T × Hkv × d]).
//   Query head h reads KV head h / (H / Hkv) (GQA).
//
// Query c sees every slot whose position ≤ queryPositions[c], plus the head's compensation slot (k̂, v̂, n) when it
// has one, always, with the logit q·k̂·scale + ln n: the mass of n copies of (k̂, v̂) (DESIGN §3).
// With a sliding window W > 0 (Mistral, Gemma 2/3 local layers) it sees only the positions in (queryPositions[c] − W,
// queryPositions[c]]: each row's first visible slot moves up, the rest is unchanged. With a soft cap (Gemma 2) each
// logit x, the compensation slot's before its + ln n, becomes cap · tanh(x / cap).
#pragma once

#include <cstdint>
#include <vector>

namespace razorkv {

struct KvHeadView {
  const float* keys = nullptr;
  const float* values = nullptr;
  int stride = 0;
  const int32_t* positions = nullptr;  // null: slot s holds position s
  int length = 0;
  const float* compKey = nullptr;  // null: no compensation slot
  const float* compValue = nullptr;
  double compCount = 0;
};

/** Statistics to collect; a null pointer means "not wanted". */
struct AttentionStatsOut {
  // Per query head h, an array of heads[h / group].length floats: the sum over all C queries of each slot's
  // softmax weight (H2O) ...
  std::vector<float*> accumulated;
  // ... and the sum over the last windowQueries queries (SnapKV).
  std::vector<float*> windowed;
  int windowQueries = 0;
  // RazorAttention calibration (core AttentionStatsRequest.repeatedSequence): per query head, the mean over the
  // queries at positions i ≥ firstPosition + period of Σ_m A[i, i − m·period] (echo) and Σ_m A[i, i − m·period + 1]
  // (induction), m ≥ 1, i − m·period ≥ firstPosition. Needs slot = position (no compression).
  double* echo = nullptr;
  double* induction = nullptr;
  int period = 0;
  int firstPosition = 0;
};

struct AttentionProblem {
  int numQueries = 0;  // C
  int numHeads = 0;    // H
  int headDim = 0;     // d
  const float* queries = nullptr;
  const int32_t* queryPositions = nullptr;
  float* out = nullptr;
  float scale = 0;
  int window = 0;       // 0: full attention; W > 0: a query at p sees positions (p − W, p]
  float softcap = 0;    // 0: none; else logits x → softcap · tanh(x / softcap)
  std::vector<KvHeadView> kvHeads;  // Hkv views
  AttentionStatsOut stats;
};

/** Fills problem.out and the requested statistics. Throws std::invalid_argument on inconsistent input. */
void attend(const AttentionProblem& problem);

/**
 * attend() for several independent problems in one call (a decode step: one problem per sequence, each with its
 * own cache), their work items — (problem, KV head, block of tokens, part of the GQA group) — shared by the kernel
 * threads, so that both threads are busy even with one sequence of few KV heads. Each output row and statistic is
 * computed exactly as attend() computes it for its problem alone: the same bits.
 */
void attendBatch(const std::vector<const AttentionProblem*>& problems);

}  // namespace razorkv
