// gpu_check: every CUDA kernel of kernels.cu against its CPU reference (reference.cpp) on random inputs.
//
// Outputs are poisoned before each run (NaN floats, 0xffff halves) so an unwritten element fails; lengths are odd
// and ragged (empty heads, one-entry heads, chunks that end mid-step); split sizes are forced small as well as left
// to the kernel, so partials and their merge are exercised. Error per query head is ‖gpu − ref‖ / ‖ref‖; a shape
// passes when the largest is ≤ 1e-3 for fp16 caches and ≤ 1e-2 for bf16 caches (the tolerances; both
// sides read the same rounded cache, so what is measured is the kernel's f32 arithmetic). Decode is also run twice
// and must give identical bits (a moving result would be a race). Exit status 0 only when everything passes.
#include "razorkv_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

#define CHECK_CUDA(call)                                                                          \
  do {                                                                                            \
    const cudaError_t e_ = (cudaError_t)(call);                                                   \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)

struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  float symmetric(float scale) { return (float)((uniform() * 2 - 1) * scale); }
  int below(int n) { return (int)(uniform() * n); }
};

template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t count = 0;
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : count(n) { CHECK_CUDA(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { if (ptr) cudaFree(ptr); }
  void upload(const std::vector<T>& host) { CHECK_CUDA(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> download() const {
    std::vector<T> host(count);
    CHECK_CUDA(cudaMemcpy(host.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void poison() { CHECK_CUDA(cudaMemset(ptr, 0xff, std::max<size_t>(count, 1) * sizeof(T))); }  // NaN for f32 and f16/bf16
};

uint16_t to_bits(rkv_dtype dtype, float x) { return dtype == RKV_BF16 ? rkv_float_to_bf16(x) : rkv_float_to_half(x); }
const char* dtype_name(rkv_dtype dtype) { return dtype == RKV_BF16 ? "bf16" : "f16"; }
double tolerance(rkv_dtype dtype) { return dtype == RKV_BF16 ? 1e-2 : 1e-3; }

// A packed layer on the host, built from per-pair lengths.
struct HostLayer {
  rkv_dtype dtype;
  int numPairs, numKvHeads, headDim;
  std::vector<int32_t> headOffset, positions, compCounts;
  std::vector<uint16_t> keys, values;
  std::vector<float> compKeys, compValues;
};

HostLayer random_layer(Rng& rng, rkv_dtype dtype, int numKvHeads, int batch, int headDim, const std::vector<int>& lengths,
                       const std::vector<int>& compCounts) {
  HostLayer L;
  L.dtype = dtype;
  L.numKvHeads = numKvHeads;
  L.numPairs = numKvHeads * batch;
  L.headDim = headDim;
  L.headOffset.push_back(0);
  for (int p = 0; p < L.numPairs; p++) L.headOffset.push_back(L.headOffset.back() + lengths[p]);
  const int total = L.headOffset.back();
  L.keys.resize((size_t)total * headDim);
  L.values.resize((size_t)total * headDim);
  for (auto& k : L.keys) k = to_bits(dtype, rng.symmetric(1.0f));
  for (auto& v : L.values) v = to_bits(dtype, rng.symmetric(1.0f));
  L.positions.resize(total);
  for (int p = 0; p < L.numPairs; p++) {
    // strictly increasing positions with gaps, as a compressed head keeps them
    int position = rng.below(3);
    for (int e = L.headOffset[p]; e < L.headOffset[p + 1]; e++) {
      L.positions[e] = position;
      position += 1 + (rng.uniform() < 0.2 ? rng.below(40) : 0);
    }
  }
  L.compCounts = compCounts;
  L.compKeys.resize((size_t)L.numPairs * headDim);
  L.compValues.resize((size_t)L.numPairs * headDim);
  for (auto& k : L.compKeys) k = rng.symmetric(0.5f);
  for (auto& v : L.compValues) v = rng.symmetric(1.0f);
  return L;
}

struct DeviceLayer {
  DeviceArray<int32_t> headOffset, positions, compCounts;
  DeviceArray<uint16_t> keys, values;
  DeviceArray<float> compKeys, compValues;
  explicit DeviceLayer(const HostLayer& h)
      : headOffset(h.headOffset), positions(h.positions), compCounts(h.compCounts), keys(h.keys), values(h.values),
        compKeys(h.compKeys), compValues(h.compValues) {}
  DeviceLayer(int numPairs, int total, int headDim)
      : headOffset(numPairs + 1), positions(total), compCounts(numPairs), keys((size_t)total * headDim),
        values((size_t)total * headDim), compKeys((size_t)numPairs * headDim), compValues((size_t)numPairs * headDim) {}
};

rkv_layer host_view(const HostLayer& h) {
  rkv_layer v;
  v.dtype = h.dtype;
  v.numPairs = h.numPairs;
  v.numKvHeads = h.numKvHeads;
  v.headDim = h.headDim;
  v.totalEntries = h.headOffset.back();
  v.headOffset = h.headOffset.data();
  v.keys = h.keys.data();
  v.values = h.values.data();
  v.positions = h.positions.data();
  v.compKeys = h.compKeys.data();
  v.compValues = h.compValues.data();
  v.compCounts = h.compCounts.data();
  return v;
}

rkv_layer device_view(const DeviceLayer& d, const HostLayer& h) {
  rkv_layer v = host_view(h);
  v.headOffset = d.headOffset.ptr;
  v.keys = d.keys.ptr;
  v.values = d.values.ptr;
  v.positions = d.positions.ptr;
  v.compKeys = d.compKeys.ptr;
  v.compValues = d.compValues.ptr;
  v.compCounts = d.compCounts.ptr;
  return v;
}

int failures = 0;
int checks = 0;
bool quick = false;  // --quick: skip the long-context shapes (for compute-sanitizer runs)

void report(const std::string& name, double maxRel, double tol, bool extraOk, const char* extra) {
  const bool ok = maxRel <= tol && extraOk;  // NaN fails the comparison
  checks++;
  if (!ok) failures++;
  std::printf("%-4s %-68s max rel err %.3e (tol %.0e)%s%s\n", ok ? "ok" : "FAIL", name.c_str(), maxRel, tol,
              extra[0] ? "  " : "", extra);
  std::fflush(stdout);
}

// Largest per-query-head ‖a − b‖ / ‖b‖; a head whose reference is all zeros must match exactly.
double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref, int headDim) {
  double worst = 0;
  for (size_t base = 0; base < ref.size(); base += headDim) {
    double diff = 0, norm = 0;
    for (int i = 0; i < headDim; i++) {
      const double g = got[base + i], r = ref[base + i];
      if (!std::isfinite(g)) return NAN;
      diff += (g - r) * (g - r);
      norm += r * r;
    }
    const double rel = norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? INFINITY : 0.0);
    worst = std::max(worst, rel);
  }
  return worst;
}

struct DecodeCase {
  std::string name;
  rkv_dtype dtype;
  int headDim, numKvHeads, group, batch;
  std::vector<int> lengths;      // per pair
  std::vector<int> compCounts;   // per pair, 0 = none
  bool maskByPosition;           // queryPositions that hide the newest entries of some heads
  int chunk;                     // 0 = the kernel's choice
};

void run_decode_case(Rng& rng, const DecodeCase& c) {
  HostLayer h = random_layer(rng, c.dtype, c.numKvHeads, c.batch, c.headDim, c.lengths, c.compCounts);
  const int numHeads = c.numKvHeads * c.group;
  std::vector<float> queries((size_t)c.batch * numHeads * c.headDim);
  for (auto& q : queries) q = rng.symmetric(3.0f);
  std::vector<int32_t> queryPositions(c.batch);
  for (int b = 0; b < c.batch; b++) {
    int last = 0;
    for (int kv = 0; kv < c.numKvHeads; kv++) {
      const int p = b * c.numKvHeads + kv;
      if (h.headOffset[p + 1] > h.headOffset[p]) last = std::max(last, h.positions[h.headOffset[p + 1] - 1]);
    }
    queryPositions[b] = c.maskByPosition ? last * 3 / 4 : last;
  }
  std::vector<float> ref(queries.size());
  rkv_decode_args args;
  args.layer = host_view(h);
  args.group = c.group;
  args.scale = 0;
  args.queries = queries.data();
  args.queryPositions = queryPositions.data();
  args.out = ref.data();
  char err[256];
  if (rkv_decode_reference(&args, err, sizeof err) != 0) {
    std::fprintf(stderr, "%s: %s\n", c.name.c_str(), err);
    std::exit(2);
  }

  DeviceLayer d(h);
  DeviceArray<float> dq(queries), dout(queries.size());
  DeviceArray<int32_t> dpos(queryPositions);
  rkv_decode_args dargs = args;
  dargs.layer = device_view(d, h);
  dargs.queries = dq.ptr;
  dargs.queryPositions = dpos.ptr;
  dargs.out = dout.ptr;
  const int total = h.headOffset.back();
  const int chunk = c.chunk > 0 ? c.chunk : rkv_decode_chunk(total, h.numPairs, c.group, c.headDim);
  DeviceArray<char> ws(rkv_decode_workspace_bytes(total, h.numPairs, c.group, c.headDim, chunk));
  ws.poison();
  dout.poison();
  CHECK_CUDA(rkv_decode(&dargs, chunk, ws.ptr, ws.count, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  const std::vector<float> first = dout.download();
  dout.poison();
  CHECK_CUDA(rkv_decode(&dargs, chunk, ws.ptr, ws.count, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  const std::vector<float> second = dout.download();
  const bool same = std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0;
  char extra[96];
  std::snprintf(extra, sizeof extra, "entries %d, chunk %d%s", total, chunk, same ? "" : ", NOT DETERMINISTIC");
  report("decode " + c.name, max_rel_error(first, ref, c.headDim), tolerance(c.dtype), same, extra);
}

std::vector<int> razor_lengths(Rng& rng, int pairs, int fullLength, int window, double fullFraction, std::vector<int>* comp) {
  std::vector<int> lengths(pairs);
  comp->assign(pairs, 0);
  for (int p = 0; p < pairs; p++) {
    if (rng.uniform() < fullFraction) {
      lengths[p] = fullLength;
    } else {
      lengths[p] = std::min(fullLength, 4 + window);
      (*comp)[p] = fullLength - lengths[p];
    }
  }
  return lengths;
}

void decode_checks(Rng& rng) {
  std::vector<int> comp;
  // Llama-3-8B layer shape, Razor layout: a few full heads of odd length, the others 4 sinks + window + comp slot
  for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
    std::vector<int> lengths = razor_lengths(rng, 8, 4097, 301, 0.25, &comp);
    lengths[3] = 4097;
    comp[3] = 0;
    run_decode_case(rng, {"llama3 razor N=4097 d128 G4", dt, 128, 8, 4, 1, lengths, comp, false, 0});
    run_decode_case(rng, {"llama3 razor N=4097 d128 G4 chunk 32", dt, 128, 8, 4, 1, lengths, comp, false, 32});
  }
  // full caches, one long context
  for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
    if (quick) break;
    run_decode_case(rng, {"llama3 full N=32771 d128 G4", dt, 128, 8, 4, 1, std::vector<int>(8, 32771),
                          std::vector<int>(8, 0), false, 0});
  }
  // a batch of 3 sequences with ragged heads: empty, one entry, odd lengths; masking by query position
  for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
    std::vector<int> lengths(24), counts(24);
    for (int p = 0; p < 24; p++) {
      lengths[p] = p % 7 == 0 ? 0 : p % 5 == 0 ? 1 : 1 + rng.below(3000);
      counts[p] = rng.uniform() < 0.5 ? 1 + rng.below(100000) : 0;
    }
    counts[7] = 0;  // empty head without a compensation slot: output zero
    counts[14] = 5; // empty head with one: output v̂
    run_decode_case(rng, {"batch 3 ragged d128 G4 masked chunk 32", dt, 128, 8, 4, 3, lengths, counts, true, 32});
    run_decode_case(rng, {"batch 3 ragged d128 G4 masked", dt, 128, 8, 4, 3, lengths, counts, true, 0});
    run_decode_case(rng, {"batch 3 ragged d128 G4 chunk 100", dt, 128, 8, 4, 3, lengths, counts, false, 100});
  }
  // SmolLM2-135M shape: 9 query heads, 3 KV heads (group 3), d 64
  for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
    std::vector<int> lengths = razor_lengths(rng, 6, 2049, 77, 0.3, &comp);
    run_decode_case(rng, {"smollm2 batch 2 razor N=2049 d64 G3", dt, 64, 3, 3, 2, lengths, comp, false, 0});
    run_decode_case(rng, {"smollm2 batch 2 razor N=2049 d64 G3 masked chunk 100", dt, 64, 3, 3, 2, lengths, comp, true, 100});
  }
  // other group sizes: 1 (MHA), 2, 5 (MAXG 8 with idle heads), 8
  const int groups[] = {1, 2, 5, 8};
  for (int g : groups) {
    for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
      for (int d : {64, 128}) {
        std::vector<int> lengths(4), counts(4);
        for (int p = 0; p < 4; p++) {
          lengths[p] = 1 + rng.below(p == 0 ? 20000 : 700);
          counts[p] = p % 2 ? 1 + rng.below(5000) : 0;
        }
        run_decode_case(rng, {"group " + std::to_string(g) + " d" + std::to_string(d) + " 4 heads ragged", dt, d, 4, g, 1,
                              lengths, counts, false, 0});
      }
    }
  }
}

struct CompactCase {
  std::string name;
  rkv_dtype dtype;
  int headDim, numPairs, fullLength;
  bool withPositions;
  std::vector<std::vector<int>> kept;  // per pair
};

void run_compact_case(Rng& rng, const CompactCase& c) {
  const int N = c.fullLength, d = c.headDim, P = c.numPairs;
  std::vector<uint16_t> fullKeys((size_t)P * N * d), fullValues((size_t)P * N * d);
  for (auto& k : fullKeys) k = to_bits(c.dtype, rng.symmetric(1.0f));
  for (auto& v : fullValues) v = to_bits(c.dtype, rng.symmetric(1.0f));
  std::vector<int32_t> fullPositions((size_t)P * N);
  for (int p = 0; p < P; p++)
    for (int s = 0; s < N; s++) fullPositions[(size_t)p * N + s] = 3 * s + p;
  std::vector<int32_t> keptOffset{0}, keptSlots;
  for (const auto& k : c.kept) {
    keptSlots.insert(keptSlots.end(), k.begin(), k.end());
    keptOffset.push_back((int32_t)keptSlots.size());
  }
  const int total = (int)keptSlots.size();

  // CPU reference
  HostLayer ref;
  ref.dtype = c.dtype;
  ref.numPairs = P;
  ref.numKvHeads = P;
  ref.headDim = d;
  ref.headOffset = keptOffset;
  ref.keys.resize((size_t)total * d);
  ref.values.resize((size_t)total * d);
  ref.positions.resize(total);
  ref.compKeys.resize((size_t)P * d);
  ref.compValues.resize((size_t)P * d);
  ref.compCounts.resize(P);
  rkv_compact_args a;
  a.dtype = c.dtype;
  a.numPairs = P;
  a.headDim = d;
  a.fullLength = N;
  a.fullKeys = fullKeys.data();
  a.fullValues = fullValues.data();
  a.fullPositions = c.withPositions ? fullPositions.data() : nullptr;
  a.keptOffset = keptOffset.data();
  a.keptSlots = keptSlots.data();
  a.totalKept = total;
  a.keys = ref.keys.data();
  a.values = ref.values.data();
  a.positions = ref.positions.data();
  a.compKeys = ref.compKeys.data();
  a.compValues = ref.compValues.data();
  a.compCounts = ref.compCounts.data();
  char err[256];
  if (rkv_compact_reference(&a, err, sizeof err) != 0) {
    std::fprintf(stderr, "%s: %s\n", c.name.c_str(), err);
    std::exit(2);
  }

  // GPU
  DeviceArray<uint16_t> dFullKeys(fullKeys), dFullValues(fullValues);
  DeviceArray<int32_t> dFullPositions(fullPositions), dKeptOffset(keptOffset), dKeptSlots(keptSlots);
  DeviceLayer out(P, total, d);
  out.keys.poison();
  out.values.poison();
  out.positions.poison();
  out.compKeys.poison();
  out.compValues.poison();
  out.compCounts.poison();
  out.headOffset.upload(keptOffset);
  rkv_compact_args g = a;
  g.fullKeys = dFullKeys.ptr;
  g.fullValues = dFullValues.ptr;
  g.fullPositions = c.withPositions ? dFullPositions.ptr : nullptr;
  g.keptOffset = dKeptOffset.ptr;
  g.keptSlots = dKeptSlots.ptr;
  g.keys = out.keys.ptr;
  g.values = out.values.ptr;
  g.positions = out.positions.ptr;
  g.compKeys = out.compKeys.ptr;
  g.compValues = out.compValues.ptr;
  g.compCounts = out.compCounts.ptr;
  DeviceArray<char> ws(rkv_compact_workspace_bytes(P, N, d));
  ws.poison();
  CHECK_CUDA(rkv_compact(&g, ws.ptr, ws.count, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  const bool gathered = out.keys.download() == ref.keys && out.values.download() == ref.values &&
                        out.positions.download() == ref.positions && out.compCounts.download() == ref.compCounts;
  // the compensation means: f32 sums on the GPU against double on the CPU, far inside any cache tolerance
  const double relKey = max_rel_error(out.compKeys.download(), ref.compKeys, d);
  const double relValue = max_rel_error(out.compValues.download(), ref.compValues, d);
  char extra[96];
  std::snprintf(extra, sizeof extra, "kept %d of %d%s", total, P * N, gathered ? ", gather exact" : ", GATHER MISMATCH");
  report("compact " + c.name, std::max(relKey, relValue), 1e-5, gathered, extra);

  // decode over the device-compacted layout against the reference decode over the reference compaction
  std::vector<float> queries((size_t)P * 4 * d);
  for (auto& q : queries) q = rng.symmetric(3.0f);
  std::vector<float> expected(queries.size());
  rkv_decode_args da;
  da.layer = host_view(ref);
  da.group = 4;
  da.scale = 0;
  da.queries = queries.data();
  da.queryPositions = nullptr;
  da.out = expected.data();
  if (rkv_decode_reference(&da, err, sizeof err) != 0) {
    std::fprintf(stderr, "%s: %s\n", c.name.c_str(), err);
    std::exit(2);
  }
  DeviceArray<float> dq(queries), dout(queries.size());
  dout.poison();
  rkv_decode_args dd = da;
  dd.layer = device_view(out, ref);
  dd.queries = dq.ptr;
  dd.out = dout.ptr;
  const int chunk = rkv_decode_chunk(total, P, 4, d);
  DeviceArray<char> dws(rkv_decode_workspace_bytes(total, P, 4, d, chunk));
  CHECK_CUDA(rkv_decode(&dd, chunk, dws.ptr, dws.count, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  report("compact+decode " + c.name, max_rel_error(dout.download(), expected, d), tolerance(c.dtype), true, "");
}

std::vector<int> sinks_and_window(int N, int sinks, int window) {
  std::vector<int> kept;
  for (int s = 0; s < N; s++)
    if (s < sinks || s >= N - window) kept.push_back(s);
  return kept;
}

void compact_checks(Rng& rng) {
  for (rkv_dtype dt : {RKV_F16, RKV_BF16}) {
    // Razor layout over one Llama-3-8B layer: full heads, sinks + window heads, one head dropping everything
    {
      const int N = 4097;
      std::vector<std::vector<int>> kept;
      for (int p = 0; p < 8; p++) {
        if (p == 2 || p == 5) kept.push_back(sinks_and_window(N, N, 0));   // retrieval head: everything
        else if (p == 6) kept.push_back({});                                // everything folded
        else kept.push_back(sinks_and_window(N, 4, 300 + p));
      }
      run_compact_case(rng, {std::string("razor N=4097 d128 ") + dtype_name(dt), dt, 128, 8, N, false, kept});
    }
    // random subsets with original positions, SmolLM2 head dim
    {
      const int N = 1001;
      std::vector<std::vector<int>> kept(6);
      for (int p = 0; p < 6; p++)
        for (int s = 0; s < N; s++)
          if (rng.uniform() < 0.1 + 0.15 * p) kept[p].push_back(s);
      run_compact_case(rng, {std::string("random subsets N=1001 d64 positions ") + dtype_name(dt), dt, 64, 6, N, true, kept});
    }
    // tiny cache
    {
      const int N = 33;
      std::vector<std::vector<int>> kept{{0, 1, 2, 3, 31, 32}, {}, {5}, sinks_and_window(N, N, 0)};
      run_compact_case(rng, {std::string("tiny N=33 d128 ") + dtype_name(dt), dt, 128, 4, N, false, kept});
    }
  }
  // long context: many slices in the fold
  if (!quick) {
    const int N = 70001;
    std::vector<std::vector<int>> kept;
    for (int p = 0; p < 8; p++) kept.push_back(p == 1 ? sinks_and_window(N, N, 0) : sinks_and_window(N, 4, 9000 + p));
    run_compact_case(rng, {"razor N=70001 d128 bf16", RKV_BF16, 128, 8, N, false, kept});
  }
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 20261123;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else seed = std::strtoull(argv[i], nullptr, 10);
  }
  int deviceCount = 0;
  if (cudaGetDeviceCount(&deviceCount) != cudaSuccess || deviceCount == 0) {
    std::fprintf(stderr, "gpu_check: no CUDA device\n");
    return 2;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("gpu_check on %s (sm_%d%d, %d SMs), seed %llu\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, (unsigned long long)seed);
  Rng rng(seed);
  decode_checks(rng);
  compact_checks(rng);
  std::printf("gpu_check: %d of %d checks passed\n", checks - failures, checks);
  return failures == 0 ? 0 : 1;
}
