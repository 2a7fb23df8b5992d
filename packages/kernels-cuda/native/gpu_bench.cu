// gpu_bench: decode attention (kernels.cu) over a Llama-3-8B-shaped layer stack — 32 layers, 32 query heads,
// 8 KV heads, head dim 128 — at several contexts and kvBudgets, plus the device's copy bandwidth.
//
// Layout at kvBudget b (RazorAttention, DESIGN §4 budget mode): round(0.15 · layers · kvHeads) KV heads, drawn
// once with a fixed seed over the whole stack, keep the full context; every other head keeps 4 sinks + a window +
// the compensation slot, the window solving p·N + (1 − p)(4 + window + 1) = b·N. b = 1 keeps everything.
//
// Method (METHOD.md): random caches (never zeros), every layer its own buffers (the stack is far larger than L2,
// so nothing is served from cache), one CUDA graph that runs decode attention for all 32 layers one after the other
// as a model does, warm-up replays, then the median of `iters` replays timed with CUDA events. Bytes = the key and
// value bytes of the kept entries (the issue's count); the kernel also reads positions (4 B per 256 B row) and the
// compensation slots, which are not counted. Copy bandwidth = a 2 GiB device-to-device cudaMemcpy, bytes read +
// written, median of 20.
//
// Output: one CSV row per (context, budget) on stdout after a header; progress on stderr.
#include "razorkv_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
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

__device__ __forceinline__ uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform values in [-1, 1) as fp16 or bf16 bits.
__global__ void fill_random_kernel(uint16_t* dst, size_t n, uint64_t seed, bool bf16) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float u = (float)(mix(seed + 0x9e3779b97f4a7c15ull * (i + 1)) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    dst[i] = bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(u)) : __half_as_ushort(__float2half_rn(u));
  }
}

__global__ void fill_random_f32_kernel(float* dst, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    dst[i] = ((float)(mix(seed + 0x9e3779b97f4a7c15ull * (i + 1)) >> 40) * (2.0f / 16777216.0f) - 1.0f) * scale;
  }
}

}  // namespace

namespace {

struct Options {
  std::vector<int> contexts{4096, 8192, 16384, 32768, 65536, 131072};
  std::vector<double> budgets{1.0, 0.5, 0.3, 0.15};
  int layers = 32, kvHeads = 8, group = 4, headDim = 128;
  rkv_dtype dtype = RKV_F16;
  int iters = 50;
  bool sweep = false;      // also time other chunk sizes and the no-positions variant at a few points
  double fullFraction = 0.15;
};

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (; *s; s++) {
    if (*s == ',') { out.push_back(cur); cur.clear(); } else cur += *s;
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct Layer {
  rkv_layer layer;
  int entries = 0;
  int compHeads = 0;
  float* queries = nullptr;
  int32_t* queryPosition = nullptr;
  float* out = nullptr;
  void* workspace = nullptr;
  size_t workspaceBytes = 0;
  int chunk = 0;
};

struct Stack {
  std::vector<Layer> layers;
  std::vector<void*> allocations;
  double kvBytes = 0;
  long long entries = 0;
  int window = 0;
  ~Stack() {
    for (void* p : allocations) cudaFree(p);
  }
  template <typename T>
  T* alloc(size_t count) {
    void* p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)));
    allocations.push_back(p);
    return static_cast<T*>(p);
  }
};

void fill(uint16_t* dst, size_t n, uint64_t seed, bool bf16) {
  fill_random_kernel<<<1024, 256>>>(dst, n, seed, bf16);
  CHECK_CUDA(cudaGetLastError());
}
void fill(float* dst, size_t n, uint64_t seed, float scale) {
  fill_random_f32_kernel<<<256, 256>>>(dst, n, seed, scale);
  CHECK_CUDA(cudaGetLastError());
}

// Which (layer, kv head) keep everything: the same draw for every context and budget.
std::vector<char> retrieval_heads(const Options& o) {
  const int n = o.layers * o.kvHeads;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  uint64_t state = 42;
  for (int i = n - 1; i > 0; i--) {  // Fisher–Yates with splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::swap(order[i], order[z % (uint64_t)(i + 1)]);
  }
  std::vector<char> full(n, 0);
  const int count = (int)std::lround(o.fullFraction * n);
  for (int i = 0; i < count; i++) full[order[i]] = 1;
  return full;
}

// Builds the stack's caches for one (context, budget); returns false when the budget is infeasible.
bool build_stack(const Options& o, int context, double budget, const std::vector<char>& retrieval, Stack& s) {
  const int sinks = 4;
  const int heads = o.layers * o.kvHeads;
  const int fullHeads = budget >= 1.0 ? heads : (int)std::count(retrieval.begin(), retrieval.end(), 1);
  const double p = (double)fullHeads / heads;
  int window = 0;
  if (budget < 1.0) {
    if (budget < p) return false;
    // p·N + (1 − p)(sinks + window + 1) = b·N
    window = (int)std::lround((budget - p) * context / (1 - p)) - sinks - 1;
    window = std::max(0, std::min(window, context - sinks));
  }
  s.window = window;
  const bool bf16 = o.dtype == RKV_BF16;
  const int d = o.headDim;
  const int numHeads = o.kvHeads * o.group;
  for (int l = 0; l < o.layers; l++) {
    Layer L;
    std::vector<int32_t> offset{0}, positions, compCounts(o.kvHeads, 0);
    for (int h = 0; h < o.kvHeads; h++) {
      const bool full = budget >= 1.0 || retrieval[l * o.kvHeads + h];
      if (full) {
        for (int t = 0; t < context; t++) positions.push_back(t);
      } else {
        for (int t = 0; t < sinks; t++) positions.push_back(t);
        for (int t = context - window; t < context; t++) positions.push_back(t);
        compCounts[h] = context - sinks - window;
        if (compCounts[h] > 0) L.compHeads++;
      }
      offset.push_back((int32_t)positions.size());
    }
    const int total = (int)positions.size();
    int32_t* dOffset = s.alloc<int32_t>(offset.size());
    int32_t* dPositions = s.alloc<int32_t>(total);
    int32_t* dComp = s.alloc<int32_t>(o.kvHeads);
    CHECK_CUDA(cudaMemcpy(dOffset, offset.data(), offset.size() * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dPositions, positions.data(), (size_t)total * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dComp, compCounts.data(), compCounts.size() * 4, cudaMemcpyHostToDevice));
    uint16_t* keys = s.alloc<uint16_t>((size_t)total * d);
    uint16_t* values = s.alloc<uint16_t>((size_t)total * d);
    fill(keys, (size_t)total * d, 1000 + 2 * l, bf16);
    fill(values, (size_t)total * d, 1001 + 2 * l, bf16);
    float* compKeys = s.alloc<float>((size_t)o.kvHeads * d);
    float* compValues = s.alloc<float>((size_t)o.kvHeads * d);
    fill(compKeys, (size_t)o.kvHeads * d, 5000 + l, 0.3f);
    fill(compValues, (size_t)o.kvHeads * d, 6000 + l, 1.0f);
    L.queries = s.alloc<float>((size_t)numHeads * d);
    fill(L.queries, (size_t)numHeads * d, 7000 + l, 2.0f);
    L.out = s.alloc<float>((size_t)numHeads * d);
    L.queryPosition = s.alloc<int32_t>(1);
    const int32_t last = context - 1;
    CHECK_CUDA(cudaMemcpy(L.queryPosition, &last, 4, cudaMemcpyHostToDevice));
    L.layer = rkv_layer{o.dtype, o.kvHeads, o.kvHeads, d, total, dOffset, keys, values, dPositions, compKeys, compValues, dComp};
    L.entries = total;
    s.kvBytes += (double)total * d * 2 * 2;
    s.entries += total;
    s.layers.push_back(L);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  return true;
}

// Sets each layer's chunk (scale × the kernel's choice, or the choice itself for scale 0) and its workspace.
void prepare(const Options& o, Stack& s, double chunkScale) {
  for (Layer& L : s.layers) {
    const int automatic = rkv_decode_chunk(L.entries, L.layer.numPairs, o.group, o.headDim);
    L.chunk = chunkScale > 0 ? std::max(32, (int)std::lround(automatic * chunkScale / 32) * 32) : automatic;
    const size_t bytes = rkv_decode_workspace_bytes(L.entries, L.layer.numPairs, o.group, o.headDim, L.chunk);
    if (bytes > L.workspaceBytes) {
      L.workspace = s.alloc<char>(bytes);
      L.workspaceBytes = bytes;
    }
  }
}

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median µs of one replay of a graph that runs decode attention over every layer of the stack.
double time_stack(const Options& o, Stack& s, bool withPositions) {
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (Layer& L : s.layers) {
    rkv_decode_args a;
    a.layer = L.layer;
    if (!withPositions) a.layer.positions = nullptr;
    a.group = o.group;
    a.scale = 0;
    a.queries = L.queries;
    a.queryPositions = withPositions ? L.queryPosition : nullptr;
    a.out = L.out;
    CHECK_CUDA(rkv_decode(&a, L.chunk, L.workspace, L.workspaceBytes, stream));
  }
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 5; i++) CHECK_CUDA(cudaGraphLaunch(exec, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < o.iters; i++) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  // every output must be finite (the graph really ran over real data)
  for (const Layer& L : s.layers) {
    std::vector<float> out((size_t)o.kvHeads * o.group * o.headDim);
    CHECK_CUDA(cudaMemcpy(out.data(), L.out, out.size() * 4, cudaMemcpyDeviceToHost));
    for (float x : out) {
      if (!std::isfinite(x)) {
        std::fprintf(stderr, "gpu_bench: non-finite output\n");
        std::exit(2);
      }
    }
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  CHECK_CUDA(cudaGraphDestroy(graph));
  CHECK_CUDA(cudaStreamDestroy(stream));
  return median(ms) * 1000.0;
}

double copy_bandwidth() {
  const size_t bytes = (size_t)2 << 30;
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  fill(static_cast<uint16_t*>(a), bytes / 2, 1, false);
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 3; i++) CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  std::vector<float> ms;
  for (int i = 0; i < 20; i++) {
    CHECK_CUDA(cudaEventRecord(start));
    CHECK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaFree(b));
  return 2.0 * bytes / (median(ms) * 1e-3) / 1e9;  // GB/s, read + written
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--contexts") { o.contexts.clear(); for (auto& s : split(value)) o.contexts.push_back(std::atoi(s.c_str())); i++; }
    else if (arg == "--budgets") { o.budgets.clear(); for (auto& s : split(value)) o.budgets.push_back(std::atof(s.c_str())); i++; }
    else if (arg == "--layers") { o.layers = std::atoi(value); i++; }
    else if (arg == "--iters") { o.iters = std::atoi(value); i++; }
    else if (arg == "--dtype") { o.dtype = std::string(value) == "bf16" ? RKV_BF16 : RKV_F16; i++; }
    else if (arg == "--sweep") { o.sweep = true; }
    else {
      std::fprintf(stderr, "usage: gpu_bench [--contexts 4096,...] [--budgets 1,0.5,...] [--layers 32] [--iters 50] [--dtype f16|bf16] [--sweep]\n");
      return 2;
    }
  }
  int deviceCount = 0;
  if (cudaGetDeviceCount(&deviceCount) != cudaSuccess || deviceCount == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device\n");
    return 2;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double copyGBs = copy_bandwidth();
  std::fprintf(stderr, "gpu_bench on %s: %d SMs, L2 %d MB, copy bandwidth %.0f GB/s (read + write)\n", prop.name,
               prop.multiProcessorCount, prop.l2CacheSize >> 20, copyGBs);
  std::string deviceName = prop.name;
  std::replace(deviceName.begin(), deviceName.end(), ' ', '_');
  std::printf("# device=%s sms=%d copy_gbps=%.1f layers=%d kv_heads=%d group=%d head_dim=%d dtype=%s iters=%d\n",
              deviceName.c_str(), prop.multiProcessorCount, copyGBs, o.layers, o.kvHeads, o.group, o.headDim,
              o.dtype == RKV_BF16 ? "bf16" : "f16", o.iters);
  std::printf("variant,context,budget,realized_budget,window,entries,kv_bytes,chunk_layer0,stack_us,layer_us,gbps,pct_copy\n");
  const std::vector<char> retrieval = retrieval_heads(o);
  for (int context : o.contexts) {
    for (double budget : o.budgets) {
      Stack s;
      if (!build_stack(o, context, budget, retrieval, s)) {
        std::fprintf(stderr, "context %d budget %.2f: infeasible (below the retrieval heads' share)\n", context, budget);
        continue;
      }
      const double fullEntries = (double)context * o.layers * o.kvHeads;
      long long compHeads = 0;
      for (const Layer& L : s.layers) compHeads += L.compHeads;
      const double realized = (s.entries + compHeads) / fullEntries;
      struct Variant { const char* name; double chunkScale; bool positions; };
      std::vector<Variant> variants{{"razorkv", 0, true}};
      if (o.sweep && (context == 32768 || context == 131072)) {
        variants.push_back({"chunk_x0.5", 0.5, true});
        variants.push_back({"chunk_x0.25", 0.25, true});
        variants.push_back({"chunk_x2", 2.0, true});
        variants.push_back({"no_positions", 0, false});
      }
      for (const Variant& v : variants) {
        prepare(o, s, v.chunkScale);
        const double us = time_stack(o, s, v.positions);
        const double gbps = s.kvBytes / (us * 1e-6) / 1e9;
        std::printf("%s,%d,%.2f,%.4f,%d,%lld,%.0f,%d,%.1f,%.2f,%.0f,%.1f\n", v.name, context, budget, realized, s.window,
                    s.entries, s.kvBytes, s.layers[0].chunk, us, us / o.layers, gbps, 100.0 * gbps / copyGBs);
        std::fflush(stdout);
        std::fprintf(stderr, "%-12s context %6d budget %.2f: %9.1f us per %d layers, %6.0f GB/s (%.0f%% of copy)\n", v.name,
                     context, budget, us, o.layers, gbps, 100.0 * gbps / copyGBs);
      }
    }
  }
  return 0;
}
