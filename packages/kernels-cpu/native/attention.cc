// Attention kernel (semantics and layout in attention.h).
//
// Work is cut into items of one KV head × a block of query tokens; an item handles every query head of the GQA
// group for those tokens ("rows": token-major, then head), so the keys and values it streams serve the whole
// group. Threads take items as they come (threadpool.h); an output row depends only on its item. Per item, an exact
// two-pass softmax over a block of score rows (flash-attention's blocking, without its online rescaling):
//   1. scores[r][s] = scale · q_r · k_s for every slot any row of the block sees;
//   2. per row, softmax over its visible slots plus the compensation logit, normalised in place;
//   3. out_r = Σ_s p_r[s] · v_s (+ p_r[comp] · v̂).
// Only one block's score rows exist at a time (rows × visible slots), never T × T for all heads.
// With AVX2, steps 1 and 3 are register-tiled: 3 rows × 4 keys of dot products in 12 accumulators (each key load
// serves three rows, each query load four keys), and 6 rows × 16 output dimensions in 12 accumulators (each value
// load serves six rows), as the micro-kernel of gemm.cc does. Without AVX2, plain loops.
// Statistics go to per-thread partial sums in 2⁻⁴⁰ fixed point: integer addition is associative, so the totals are
// the same bits whichever thread took which item (float partial sums would depend on the schedule).
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "simd.h"
#include "threadpool.h"

namespace razorkv {
namespace {

constexpr int kRowsPerItem = 30;  // query rows (token × head of the group) per work item: 10 tokens for SmolLM2
constexpr int kKeyBlock = 64;     // keys per pass over the rows in step 1: 64 × d floats stay in L1
constexpr int kValueChunk = 256;  // slots per pass over the rows in step 3: 256 × d floats stay in L2
constexpr double kParallelMinWork = 1 << 16;  // multiply-adds below which one thread is faster
// Fixed-point unit of the statistics: resolution 9e-13 per softmax weight; sums stay below 2⁶³ for 8M queries.
constexpr double kFixedOne = 1099511627776.0;  // 2⁴⁰
// Adding 1.5·2⁵² to a double |v| < 2⁵¹ leaves round(v) in the low mantissa bits (round half to even), so
// bits(v + magic) − bits(magic) is round(v) as an int64: a conversion AVX2 can do four at a time.
constexpr double kRoundMagic = 6755399441055744.0;

int64_t toFixed(float p) {
  double v = static_cast<double>(p) * kFixedOne + kRoundMagic;
  double magic = kRoundMagic;
  int64_t bits, magicBits;
  std::memcpy(&bits, &v, sizeof bits);
  std::memcpy(&magicBits, &magic, sizeof magicBits);
  return bits - magicBits;
}

/** acc[s] += toFixed(p[s]) for s < n. */
void accumulateFixed(int64_t* acc, const float* p, int n) {
  int s = 0;
#ifdef RAZORKV_AVX2
  const __m256d scale = _mm256_set1_pd(kFixedOne);
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  const __m256i magicBits = _mm256_castpd_si256(magic);
  for (; s + 4 <= n; s += 4) {
    __m256d v = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + s)), scale, magic);  // p·2⁴⁰ is exact: one rounding
    __m256i fixed = _mm256_sub_epi64(_mm256_castpd_si256(v), magicBits);
    __m256i* a = reinterpret_cast<__m256i*>(acc + s);
    _mm256_storeu_si256(a, _mm256_add_epi64(_mm256_loadu_si256(a), fixed));
  }
#endif
  for (; s < n; s++) acc[s] += toFixed(p[s]);
}

float dot(const float* a, const float* b, int d) {
  int i = 0;
  float sum = 0;
#ifdef RAZORKV_AVX2
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  sum = hsum(acc);
#endif
  for (; i < d; i++) sum += a[i] * b[i];
  return sum;
}

/** Slots of `head` visible to a query at `position`: a prefix, since slots are in increasing position order. */
int visibleSlots(const KvHeadView& head, int32_t position) {
  if (position < 0) return 0;
  if (!head.positions) return static_cast<int>(std::min<int64_t>(head.length, static_cast<int64_t>(position) + 1));
  return static_cast<int>(std::upper_bound(head.positions, head.positions + head.length, position) - head.positions);
}

/** First slot a query at `position` sees through a sliding window of `window` (0: none): position > position − window. */
int firstVisibleSlot(const KvHeadView& head, int32_t position, int window) {
  if (window <= 0) return 0;
  const int64_t below = static_cast<int64_t>(position) - window;  // the newest position outside the window
  if (below < 0) return 0;
  if (!head.positions) return static_cast<int>(std::min<int64_t>(head.length, below + 1));
  return static_cast<int>(std::upper_bound(head.positions, head.positions + head.length, static_cast<int32_t>(below)) - head.positions);
}

/** The rows of one item: query and output pointers, score rows, visible slot counts. */
struct Block {
  int rows = 0;
  int ld = 0;                  // row stride of scores
  int nMax = 0;                // max visible over the rows
  int firstMin = 0;            // min first visible slot over the rows (0 without a window)
  const float* const* q = nullptr;
  float* const* o = nullptr;
  float* scores = nullptr;     // rows × ld, indexed by slot
  const int* visible = nullptr;
  const int* first = nullptr;  // per row, the first slot inside its window
};

#ifdef RAZORKV_AVX2
/** s[r][0 … 4) = scale · q_r · k_j for three rows × four keys: twelve FMA chains, no partial sums in memory. */
inline void scoreTile3x4(const float* const q[3], const float* const k[4], int d, float scale, float* const s[3]) {
  __m256 acc[3][4];
  for (int r = 0; r < 3; r++)
    for (int j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 kv[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) kv[j] = _mm256_loadu_ps(k[j] + i);
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++) {
      __m256 qv = _mm256_loadu_ps(q[r] + i);
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
    }
  }
  const __m128 scaleV = _mm_set1_ps(scale);
  for (int r = 0; r < 3; r++) {
    alignas(16) float sums[4];
    _mm_store_ps(sums, hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
    for (int t = i; t < d; t++)
      for (int j = 0; j < 4; j++) sums[j] += q[r][t] * k[j][t];
    _mm_storeu_ps(s[r], _mm_mul_ps(_mm_load_ps(sums), scaleV));
  }
}

/** o_r[0 … 16) += Σ_{s0 ≤ s < s1} p_r[s] · v_s[0 … 16) for six rows: each value load serves six rows. */
inline void valueTile6x16(const float* const p[6], const float* v, int stride, int s0, int s1, float* const o[6]) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) {
    acc[r][0] = _mm256_loadu_ps(o[r]);
    acc[r][1] = _mm256_loadu_ps(o[r] + 8);
  }
  for (int s = s0; s < s1; s++) {
    const float* vs = v + static_cast<size_t>(s) * stride;
    __m256 v0 = _mm256_loadu_ps(vs);
    __m256 v1 = _mm256_loadu_ps(vs + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
      __m256 pr = _mm256_broadcast_ss(p[r] + s);
      acc[r][0] = _mm256_fmadd_ps(pr, v0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(pr, v1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; r++) {
    _mm256_storeu_ps(o[r], acc[r][0]);
    _mm256_storeu_ps(o[r] + 8, acc[r][1]);
  }
}
#endif

/**
 * Step 1: scores[r][s] = scale · q_r · k_s for first[r] ≤ s < visible[r] (entries outside may be written, in
 * [firstMin, nMax)).
 */
void computeScores(const Block& b, const KvHeadView& head, int d, float scale, float* dummyRow) {
  for (int kb = b.firstMin / kKeyBlock * kKeyBlock; kb < b.nMax; kb += kKeyBlock) {
    for (int r0 = 0; r0 < b.rows; r0 += 3) {
      // three rows at a time; a missing third row repeats a real one and writes to a dummy row
      const float* q[3];
      float* s[3];
      int end = kb;
      int start = b.nMax;
      for (int i = 0; i < 3; i++) {
        int r = std::min(r0 + i, b.rows - 1);
        q[i] = b.q[r];
        s[i] = r0 + i < b.rows ? b.scores + static_cast<size_t>(r) * b.ld : dummyRow;
        end = std::max(end, std::min(kb + kKeyBlock, b.visible[r]));
        start = std::min(start, b.first[r]);
      }
      int j = std::max(kb, start);
#ifdef RAZORKV_AVX2
      // every score through the 3×4 tile, a short last group padded with its last key: a (row, key) score then has
      // the same bits whichever rows and keys share its tile, so an output row does not depend on how rows were
      // grouped into items (attendBatch splits groups differently from a lone attend)
      for (; j < end; j += 4) {
        const float* k[4];
        for (int t = 0; t < 4; t++) k[t] = head.keys + static_cast<size_t>(std::min(j + t, end - 1)) * head.stride;
        alignas(16) float pad[3][4];
        const bool full = j + 4 <= end;
        float* out[3] = {full ? s[0] + j : pad[0], full ? s[1] + j : pad[1], full ? s[2] + j : pad[2]};
        scoreTile3x4(q, k, d, scale, out);
        if (!full)
          for (int i = 0; i < 3; i++)
            for (int t = 0; j + t < end; t++) s[i][j + t] = pad[i][t];
      }
#endif
      for (; j < end; j++) {
        const float* k = head.keys + static_cast<size_t>(j) * head.stride;
        for (int i = 0; i < 3; i++) s[i][j] = scale * dot(q[i], k, d);
      }
    }
  }
}

/** row[0 … n) ← softmax(row[0 … n)), n ≥ 1. */
void softmaxInPlace(float* row, int n) {
  int i = 0;
  float max = -INFINITY;
#ifdef RAZORKV_AVX2
  __m256 maxV = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) maxV = _mm256_max_ps(maxV, _mm256_loadu_ps(row + i));
  max = hmax(maxV);
#endif
  for (; i < n; i++) max = std::max(max, row[i]);

  i = 0;
  float sum = 0;
#ifdef RAZORKV_AVX2
  const __m256 maxB = _mm256_set1_ps(max);
  __m256 sumV = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + i), maxB));
    _mm256_storeu_ps(row + i, e);
    sumV = _mm256_add_ps(sumV, e);
  }
  sum = hsum(sumV);
#endif
  for (; i < n; i++) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }

  const float inv = 1.0f / sum;  // sum ≥ 1: the maximum contributes e^0
  i = 0;
#ifdef RAZORKV_AVX2
  const __m256 invV = _mm256_set1_ps(inv);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), invV));
#endif
  for (; i < n; i++) row[i] *= inv;
}

/** o[0 … w) += Σ_{s0 ≤ s < s1} p[s] · v_s[0 … w), v_s = values + s·stride: one row, any width. */
void accumulateValues(float* o, const float* p, const float* values, int stride, int s0, int s1, int w) {
  int i = 0;
#ifdef RAZORKV_AVX2
  for (; i + 8 <= w; i += 8) {
    __m256 acc = _mm256_loadu_ps(o + i);
    for (int s = s0; s < s1; s++) {
      acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p + s), _mm256_loadu_ps(values + static_cast<size_t>(s) * stride + i), acc);
    }
    _mm256_storeu_ps(o + i, acc);
  }
#endif
  for (; i < w; i++) {
    float acc = o[i];
    for (int s = s0; s < s1; s++) acc += p[s] * values[static_cast<size_t>(s) * stride + i];
    o[i] = acc;
  }
}

/**
 * Step 3: o_r += Σ_s p_r[s] · v_s over each row's visible slots. p_r must be zero on [firstMin, first[r]) and on
 * [visible[r], nMax): a tile of six rows runs from the earliest start to the longest end of them.
 */
void accumulateBlockValues(const Block& b, const KvHeadView& head, int d, const float* zeroRow, float* dummyRow) {
  for (int sc = b.firstMin / kValueChunk * kValueChunk; sc < b.nMax; sc += kValueChunk) {
    int i0 = 0;
#ifdef RAZORKV_AVX2
    for (; i0 + 16 <= d; i0 += 16) {
      for (int r0 = 0; r0 < b.rows; r0 += 6) {
        const float* p[6];
        float* o[6];
        int end = sc;
        int start = sc + kValueChunk;
        for (int i = 0; i < 6; i++) {
          int r = r0 + i;
          bool real = r < b.rows;
          p[i] = real ? b.scores + static_cast<size_t>(r) * b.ld : zeroRow;
          o[i] = real ? b.o[r] + i0 : dummyRow;
          if (real) {
            end = std::max(end, std::min(sc + kValueChunk, b.visible[r]));
            start = std::min(start, std::max(sc, b.first[r]));
          }
        }
        if (end > start) valueTile6x16(p, head.values + i0, head.stride, start, end, o);
      }
    }
#endif
    if (i0 == d) continue;
    for (int r = 0; r < b.rows; r++) {
      int start = std::max(sc, b.first[r]);
      int end = std::min(sc + kValueChunk, b.visible[r]);
      if (end > start) accumulateValues(b.o[r] + i0, b.scores + static_cast<size_t>(r) * b.ld, head.values + i0, head.stride, start, end, d - i0);
    }
  }
}

/** Per-thread partial statistics in fixed point, laid out per query head at offset[h] (accumulated, windowed). */
struct PartialStats {
  std::vector<int64_t> accumulated;
  std::vector<int64_t> windowed;
  std::vector<int64_t> echo, induction;
  std::vector<int64_t> repeatQueries;
};

struct Plan {
  const AttentionProblem* problem;
  int group;
  int headsPerItem;  // query heads of the group per item: the whole group, or a part when items are too few
  int subgroups;     // ⌈group / headsPerItem⌉
  int tokensPerItem;
  int itemsPerKvHead;  // token blocks × subgroups
  std::vector<size_t> statsOffset;  // per query head, into PartialStats::accumulated / windowed
  size_t statsSize;
  bool wantAccumulated, wantWindowed, wantRepeat;
};

struct ThreadScratch {
  std::vector<float> scores;
  std::vector<float> zeroRow, dummyRow;
  std::vector<float> compWeight;
  std::vector<const float*> q;
  std::vector<float*> o;
  std::vector<int> visible;
  std::vector<int> first;
  std::vector<int> token;
  std::vector<int> queryHead;
};

/** Item `item` of a problem: KV head, then token block, then subgroup of the GQA group's query heads. */
void runItem(const Plan& plan, int item, ThreadScratch& scratch, PartialStats& partial) {
  const AttentionProblem& P = *plan.problem;
  const int kv = item / plan.itemsPerKvHead;
  const int blockIndex = item % plan.itemsPerKvHead / plan.subgroups;
  const int h0 = item % plan.subgroups * plan.headsPerItem;  // first query head of the subgroup, within the group
  const int heads = std::min(plan.group - h0, plan.headsPerItem);
  const KvHeadView& head = P.kvHeads[kv];
  const int d = P.headDim;
  const int H = P.numHeads;
  const int c0 = blockIndex * plan.tokensPerItem;
  const int c1 = std::min(P.numQueries, c0 + plan.tokensPerItem);
  const int rows = (c1 - c0) * heads;
  const bool hasComp = head.compKey != nullptr;

  scratch.q.resize(rows);
  scratch.o.resize(rows);
  scratch.visible.resize(rows);
  scratch.first.resize(rows);
  scratch.token.resize(rows);
  scratch.queryHead.resize(rows);
  scratch.compWeight.resize(rows);
  int nMax = 0;
  int firstMin = INT32_MAX;
  for (int r = 0; r < rows; r++) {
    int c = c0 + r / heads;
    int h = kv * plan.group + h0 + r % heads;
    size_t base = (static_cast<size_t>(c) * H + h) * d;
    scratch.q[r] = P.queries + base;
    scratch.o[r] = P.out + base;
    scratch.visible[r] = visibleSlots(head, P.queryPositions[c]);
    scratch.first[r] = std::min(scratch.visible[r], firstVisibleSlot(head, P.queryPositions[c], P.window));
    scratch.token[r] = c;
    scratch.queryHead[r] = h;
    nMax = std::max(nMax, scratch.visible[r]);
    firstMin = std::min(firstMin, scratch.first[r]);
  }
  Block b;
  b.rows = rows;
  b.nMax = nMax;
  b.firstMin = rows > 0 ? firstMin : 0;
  // row stride: room for the compensation logit after the visible slots, rounded to 16 floats, and an odd
  // multiple of 16 so that rows start in different L1 sets (a multiple of 4 KiB would put them all in one)
  b.ld = (nMax + 1 + 15) / 16 * 16;
  if ((b.ld / 16) % 2 == 0) b.ld += 16;
  if (scratch.scores.size() < static_cast<size_t>(rows) * b.ld) scratch.scores.resize(static_cast<size_t>(rows) * b.ld);
  if (scratch.zeroRow.size() < static_cast<size_t>(b.ld)) {
    scratch.zeroRow.assign(b.ld, 0.0f);
    scratch.dummyRow.assign(std::max(b.ld, d), 0.0f);
  }
  b.q = scratch.q.data();
  b.o = scratch.o.data();
  b.scores = scratch.scores.data();
  b.visible = scratch.visible.data();
  b.first = scratch.first.data();

  // 1. logits
  computeScores(b, head, d, P.scale, scratch.dummyRow.data());

  // 2. softmax weights in place over [first, visible) and the compensation slot's aside; zero the rest of
  //    [firstMin, nMax) for step 3
  const float compBias = hasComp ? static_cast<float>(std::log(head.compCount)) : 0.0f;
  const float cap = P.softcap;
  for (int r = 0; r < rows; r++) {
    float* row = b.scores + static_cast<size_t>(r) * b.ld;
    const int n = scratch.visible[r];
    const int f = scratch.first[r];
    if (cap > 0) {
      for (int s = f; s < n; s++) row[s] = cap * std::tanh(row[s] / cap);
    }
    if (hasComp) {
      const float x = P.scale * dot(scratch.q[r], head.compKey, d);
      row[n] = (cap > 0 ? cap * std::tanh(x / cap) : x) + compBias;
    }
    const int count = n - f + (hasComp ? 1 : 0);
    if (count > 0) softmaxInPlace(row + f, count);
    scratch.compWeight[r] = hasComp ? row[n] : 0.0f;
    std::fill(row + b.firstMin, row + f, 0.0f);
    std::fill(row + n, row + nMax, 0.0f);
    std::memset(scratch.o[r], 0, sizeof(float) * d);
  }

  // 3. weighted values
  accumulateBlockValues(b, head, d, scratch.zeroRow.data(), scratch.dummyRow.data());
  if (hasComp) {
    for (int r = 0; r < rows; r++) {
      const float p = scratch.compWeight[r];
      for (int i = 0; i < d; i++) scratch.o[r][i] += p * head.compValue[i];
    }
  }

  // statistics
  if (!plan.wantAccumulated && !plan.wantWindowed && !plan.wantRepeat) return;
  const AttentionStatsOut& S = P.stats;
  for (int r = 0; r < rows; r++) {
    const float* p = b.scores + static_cast<size_t>(r) * b.ld;
    const int n = scratch.visible[r];
    const int f = scratch.first[r];
    const int h = scratch.queryHead[r];
    const int c = scratch.token[r];
    if (plan.wantAccumulated) accumulateFixed(partial.accumulated.data() + plan.statsOffset[h] + f, p + f, n - f);
    if (plan.wantWindowed && c >= P.numQueries - S.windowQueries) accumulateFixed(partial.windowed.data() + plan.statsOffset[h] + f, p + f, n - f);
    const int qPos = P.queryPositions[c];
    if (plan.wantRepeat && qPos >= S.firstPosition + S.period) {
      // slot = position here (checked in attend)
      int64_t echo = 0, induction = 0;
      for (int j = qPos - S.period; j >= S.firstPosition; j -= S.period) {
        if (j >= f && j < n) echo += toFixed(p[j]);
        if (j + 1 >= f && j + 1 < n) induction += toFixed(p[j + 1]);
      }
      partial.echo[h] += echo;
      partial.induction[h] += induction;
      partial.repeatQueries[h]++;
    }
  }
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("attention: " + message); }

}  // namespace

namespace {

/** Checks P and fills its plan, whole GQA groups per item (makePlans may split them later). */
Plan makePlan(const AttentionProblem& P) {
  const int C = P.numQueries, H = P.numHeads, d = P.headDim;
  const int Hkv = static_cast<int>(P.kvHeads.size());
  if (C < 0 || H <= 0 || d <= 0 || Hkv <= 0) fail("need numQueries ≥ 0, numHeads, headDim and KV heads > 0");
  if (H % Hkv != 0) fail("numHeads " + std::to_string(H) + " is not a multiple of numKvHeads " + std::to_string(Hkv));
  if (P.window < 0) fail("window must be ≥ 0 (0: full attention), got " + std::to_string(P.window));
  if (!(P.softcap >= 0)) fail("softcap must be ≥ 0 (0: none)");
  const AttentionStatsOut& S = P.stats;

  Plan plan;
  plan.problem = &P;
  plan.group = H / Hkv;
  plan.wantAccumulated = !S.accumulated.empty();
  plan.wantWindowed = !S.windowed.empty() && S.windowQueries > 0;
  plan.wantRepeat = S.echo != nullptr && S.induction != nullptr;
  if (plan.wantAccumulated && static_cast<int>(S.accumulated.size()) != H) fail("accumulated needs one array per query head");
  if (plan.wantWindowed && static_cast<int>(S.windowed.size()) != H) fail("windowed needs one array per query head");
  if (plan.wantRepeat && S.period <= 0) fail("repeatedSequence.period must be positive");
  plan.statsOffset.resize(H);
  plan.statsSize = 0;
  for (int h = 0; h < H; h++) {
    plan.statsOffset[h] = plan.statsSize;
    plan.statsSize += P.kvHeads[h / plan.group].length;
  }
  for (int kv = 0; kv < Hkv; kv++) {
    const KvHeadView& head = P.kvHeads[kv];
    if (head.compKey && !(head.compCount >= 1)) fail("KV head " + std::to_string(kv) + ": compensation count must be ≥ 1");
    if (plan.wantRepeat) {
      bool identity = !head.positions || head.length == 0 || head.positions[head.length - 1] == head.length - 1;
      if (head.compKey || !identity) fail("repeatedSequence statistics need an uncompressed cache (slot = position)");
    }
  }
  return plan;
}

/** Items of the plan with `headsPerItem` query heads of each group per item. */
void setSubgroups(Plan& plan, int headsPerItem) {
  const AttentionProblem& P = *plan.problem;
  plan.headsPerItem = headsPerItem;
  plan.subgroups = (plan.group + headsPerItem - 1) / headsPerItem;
  plan.tokensPerItem = std::max(1, kRowsPerItem / headsPerItem);
  plan.itemsPerKvHead = (P.numQueries + plan.tokensPerItem - 1) / plan.tokensPerItem * plan.subgroups;
}

int planItems(const Plan& plan) { return static_cast<int>(plan.problem->kvHeads.size()) * plan.itemsPerKvHead; }

/** Multiply-adds of a problem (2 per query row, key and dimension, for QK and PV). */
double problemWork(const AttentionProblem& P) {
  int maxLength = 0;
  for (const KvHeadView& head : P.kvHeads) maxLength = std::max(maxLength, head.length);
  return static_cast<double>(P.numQueries) * P.numHeads * (maxLength + 1) * P.headDim * 2;
}

/** Sums the threads' fixed-point partial statistics of one problem into its outputs. */
void reduceStats(const Plan& plan, const std::vector<PartialStats>& partials) {
  const AttentionProblem& P = *plan.problem;
  const AttentionStatsOut& S = P.stats;
  for (int h = 0; h < P.numHeads; h++) {
    const size_t n = P.kvHeads[h / plan.group].length;
    const size_t offset = plan.statsOffset[h];
    if (plan.wantAccumulated) {
      for (size_t s = 0; s < n; s++) {
        int64_t sum = 0;
        for (const PartialStats& partial : partials) sum += partial.accumulated[offset + s];
        S.accumulated[h][s] = static_cast<float>(sum / kFixedOne);
      }
    }
    if (plan.wantWindowed) {
      for (size_t s = 0; s < n; s++) {
        int64_t sum = 0;
        for (const PartialStats& partial : partials) sum += partial.windowed[offset + s];
        S.windowed[h][s] = static_cast<float>(sum / kFixedOne);
      }
    }
    if (plan.wantRepeat) {
      int64_t echo = 0, induction = 0, count = 0;
      for (const PartialStats& partial : partials) {
        echo += partial.echo[h];
        induction += partial.induction[h];
        count += partial.repeatQueries[h];
      }
      S.echo[h] = count > 0 ? echo / kFixedOne / count : 0.0;
      S.induction[h] = count > 0 ? induction / kFixedOne / count : 0.0;
    }
  }
}

}  // namespace

void attendBatch(const std::vector<const AttentionProblem*>& problems) {
  std::vector<Plan> plans;
  plans.reserve(problems.size());
  double work = 0;
  for (const AttentionProblem* P : problems) {
    plans.push_back(makePlan(*P));
    if (P->numQueries > 0) work += problemWork(*P);
  }
  // whole groups per item; when that leaves fewer than two items per thread (a decode step of one sequence over
  // SmolLM2's 3 KV heads: 3 items for 2 threads), the groups are split into parts of ⌈group / parts⌉ query heads.
  // A part re-reads its KV head's keys and values, from cache: a few hundred KiB at 2K context.
  const int maxThreads = work < kParallelMinWork ? 1 : kernelThreads();
  int items = 0;
  for (Plan& plan : plans) {
    setSubgroups(plan, plan.group);
    items += planItems(plan);
  }
  if (maxThreads > 1 && items < 2 * maxThreads) {
    const int parts = (2 * maxThreads + items - 1) / std::max(1, items);
    items = 0;
    for (Plan& plan : plans) {
      setSubgroups(plan, (plan.group + std::min(parts, plan.group) - 1) / std::min(parts, plan.group));
      items += planItems(plan);
    }
  }
  if (items == 0) return;
  const int threads = std::max(1, std::min(maxThreads, items));

  // per problem, per participant: fixed-point partial statistics (none allocated when none are wanted)
  std::vector<std::vector<PartialStats>> partials(plans.size());
  std::vector<int> firstItem(plans.size() + 1, 0);
  for (size_t i = 0; i < plans.size(); i++) {
    const Plan& plan = plans[i];
    firstItem[i + 1] = firstItem[i] + planItems(plan);
    if (!plan.wantAccumulated && !plan.wantWindowed && !plan.wantRepeat) continue;
    partials[i].resize(threads);
    for (PartialStats& partial : partials[i]) {
      if (plan.wantAccumulated) partial.accumulated.assign(plan.statsSize, 0);
      if (plan.wantWindowed) partial.windowed.assign(plan.statsSize, 0);
      if (plan.wantRepeat) {
        const int H = plan.problem->numHeads;
        partial.echo.assign(H, 0);
        partial.induction.assign(H, 0);
        partial.repeatQueries.assign(H, 0);
      }
    }
  }

  parallelFor(items, threads, [&](int item, int participant) {
    thread_local ThreadScratch scratch;
    thread_local PartialStats none;
    const size_t p = std::upper_bound(firstItem.begin(), firstItem.end(), item) - firstItem.begin() - 1;
    PartialStats& partial = partials[p].empty() ? none : partials[p][participant];
    runItem(plans[p], item - firstItem[p], scratch, partial);
  });

  for (size_t i = 0; i < plans.size(); i++) {
    if (!partials[i].empty()) reduceStats(plans[i], partials[i]);
  }
}

void attend(const AttentionProblem& P) { attendBatch({&P}); }

}  // namespace razorkv
