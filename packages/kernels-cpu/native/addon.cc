// N-API surface of razorkv_cpu.node. Thin: reads typed arrays without copying, checks that every buffer is large
// enough for the sizes given (the TypeScript wrapper in src/index.ts gives the friendly errors; these checks only
// keep a wrong call from writing out of bounds), and calls the kernels synchronously on the JS thread, which the
// kernels' worker threads join for the duration of the call.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "attention.h"
#include "elementwise.h"
#include "gemm.h"
#include "qgemm.h"
#include "qmatmul.h"
#include "simd.h"
#include "threadpool.h"

namespace {

using razorkv::GemmBackend;

[[noreturn]] void throwRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayTraits<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct TypedArrayTraits<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedArrayTraits<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};

/** The data of typed array `value` (argument `name`), which must hold at least `minLength` elements. */
template <typename T>
T* arrayData(Napi::Env env, const Napi::Value& value, const std::string& name, size_t minLength) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTraits<T>::type) {
    throw Napi::TypeError::New(env, name + ": expected a " + TypedArrayTraits<T>::name);
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  if (array.ElementLength() < minLength) {
    throwRange(env, name + ": expected at least " + std::to_string(minLength) + " elements, got " + std::to_string(array.ElementLength()));
  }
  return array.Data();
}

template <typename T>
T* optionalArrayData(Napi::Env env, const Napi::Value& value, const std::string& name, size_t minLength) {
  if (value.IsNull() || value.IsUndefined()) return nullptr;
  return arrayData<T>(env, value, name, minLength);
}

int intArg(Napi::Env env, const Napi::Value& value, const std::string& name, int min) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, name + ": expected an integer");
  double v = value.As<Napi::Number>().DoubleValue();
  if (v != std::floor(v) || v < min || v > 2147483647.0) {
    throwRange(env, name + ": expected an integer ≥ " + std::to_string(min) + ", got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

Napi::Array arrayArg(Napi::Env env, const Napi::Value& value, const std::string& name, uint32_t length) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, name + ": expected an array");
  auto array = value.As<Napi::Array>();
  if (array.Length() != length) {
    throwRange(env, name + ": expected " + std::to_string(length) + " entries, got " + std::to_string(array.Length()));
  }
  return array;
}

GemmBackend parseBackend(Napi::Env env, const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return razorkv::defaultGemmBackend();
  std::string name = value.As<Napi::String>().Utf8Value();
  for (GemmBackend b : {GemmBackend::OpenBlas, GemmBackend::Avx2, GemmBackend::Scalar}) {
    if (name == razorkv::gemmBackendName(b)) {
      if (!razorkv::gemmBackendAvailable(b)) throwRange(env, "backend: " + name + " is not compiled into this build");
      return b;
    }
  }
  throwRange(env, "backend: expected openblas, avx2 or scalar, got " + name);
}

// ---------------------------------------------------------------------------------------------------------------

Napi::Value GemmBackendName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), razorkv::gemmBackendName(razorkv::defaultGemmBackend()));
}

Napi::Value GemmBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (GemmBackend b : {GemmBackend::OpenBlas, GemmBackend::Avx2, GemmBackend::Scalar}) {
    if (razorkv::gemmBackendAvailable(b)) out.Set(i++, Napi::String::New(env, razorkv::gemmBackendName(b)));
  }
  return out;
}

Napi::Value Simd(const Napi::CallbackInfo& info) {
#ifdef RAZORKV_AVX2
  return Napi::String::New(info.Env(), "avx2");
#else
  return Napi::String::New(info.Env(), "none");
#endif
}

Napi::Value Int8GemmVnni(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), razorkv::int8GemmVnni()); }

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), razorkv::kernelThreads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = intArg(info.Env(), info[0], "threads", 1);
  razorkv::setKernelThreads(n);
  return info.Env().Undefined();
}

/** matmulTransposed(x, w, out, M, N, K, backend?) */
Napi::Value MatmulTransposed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int M = intArg(env, info[3], "M", 0), N = intArg(env, info[4], "N", 0), K = intArg(env, info[5], "K", 0);
  const float* x = arrayData<float>(env, info[0], "x", static_cast<size_t>(M) * K);
  const float* w = arrayData<float>(env, info[1], "w", static_cast<size_t>(N) * K);
  float* out = arrayData<float>(env, info[2], "out", static_cast<size_t>(M) * N);
  razorkv::matmulTransposed(x, w, out, M, N, K, parseBackend(env, info[6]));
  return env.Undefined();
}

/** Reads the optional stats object { accumulated?: Float32Array[], windowed?, windowQueries, echo?, induction?, period, firstPosition }. */
void readStats(Napi::Env env, const Napi::Value& value, int H, const std::vector<int>& lengthPerQueryHead, razorkv::AttentionStatsOut& stats) {
  if (value.IsUndefined() || value.IsNull()) return;
  if (!value.IsObject()) throw Napi::TypeError::New(env, "stats: expected an object");
  Napi::Object o = value.As<Napi::Object>();
  Napi::Value acc = o.Get("accumulated");
  if (!acc.IsUndefined() && !acc.IsNull()) {
    Napi::Array a = arrayArg(env, acc, "stats.accumulated", H);
    for (int h = 0; h < H; h++) {
      stats.accumulated.push_back(arrayData<float>(env, a.Get(h), "stats.accumulated[" + std::to_string(h) + "]", lengthPerQueryHead[h]));
    }
  }
  Napi::Value win = o.Get("windowed");
  if (!win.IsUndefined() && !win.IsNull()) {
    stats.windowQueries = intArg(env, o.Get("windowQueries"), "stats.windowQueries", 0);
    Napi::Array a = arrayArg(env, win, "stats.windowed", H);
    for (int h = 0; h < H; h++) {
      stats.windowed.push_back(arrayData<float>(env, a.Get(h), "stats.windowed[" + std::to_string(h) + "]", lengthPerQueryHead[h]));
    }
  }
  stats.echo = optionalArrayData<double>(env, o.Get("echo"), "stats.echo", H);
  stats.induction = optionalArrayData<double>(env, o.Get("induction"), "stats.induction", H);
  if (stats.echo || stats.induction) {
    if (!stats.echo || !stats.induction) throw Napi::TypeError::New(env, "stats: echo and induction come together");
    stats.period = intArg(env, o.Get("period"), "stats.period", 1);
    stats.firstPosition = intArg(env, o.Get("firstPosition"), "stats.firstPosition", 0);
  }
}

/** The optional trailing window (0 or undefined: full attention) and soft cap (0 or undefined: none) of both calls. */
void readWindowAndCap(Napi::Env env, const Napi::Value& window, const Napi::Value& softcap, razorkv::AttentionProblem& p) {
  p.window = window.IsUndefined() || window.IsNull() ? 0 : intArg(env, window, "window", 0);
  if (softcap.IsUndefined() || softcap.IsNull()) return;
  if (!softcap.IsNumber()) throw Napi::TypeError::New(env, "softcap: expected a number");
  double cap = softcap.As<Napi::Number>().DoubleValue();
  if (!(cap >= 0) || std::isinf(cap)) throwRange(env, "softcap: expected a finite number ≥ 0, got " + std::to_string(cap));
  p.softcap = static_cast<float>(cap);
}

/**
 * Fills p from one sequence's arguments: queries [C × H × d], queryPositions (Int32Array, C), out [C × H × d],
 * heads (per KV head { keys, values, positions, length, compKey?, compValue?, compCount? }), stats?; `name`
 * prefixes the errors. numHeads, headDim, scale, window and softcap must already be set.
 */
void readCacheProblem(Napi::Env env, const std::string& name, const Napi::Value& queries, const Napi::Value& queryPositions,
                      const Napi::Value& out, const Napi::Value& headsValue, const Napi::Value& stats, razorkv::AttentionProblem& p) {
  const int d = p.headDim;
  if (!queryPositions.IsTypedArray()) throw Napi::TypeError::New(env, name + "queryPositions: expected an Int32Array");
  p.numQueries = static_cast<int>(queryPositions.As<Napi::TypedArray>().ElementLength());
  p.queryPositions = arrayData<int32_t>(env, queryPositions, name + "queryPositions", p.numQueries);
  const size_t qSize = static_cast<size_t>(p.numQueries) * p.numHeads * d;
  p.queries = arrayData<float>(env, queries, name + "queries", qSize);
  p.out = arrayData<float>(env, out, name + "out", qSize);

  if (!headsValue.IsArray()) throw Napi::TypeError::New(env, name + "heads: expected an array of KV-head views");
  Napi::Array heads = headsValue.As<Napi::Array>();
  const int Hkv = static_cast<int>(heads.Length());
  if (Hkv == 0 || p.numHeads % Hkv != 0) {
    throwRange(env, name + "heads: numHeads " + std::to_string(p.numHeads) + " is not a multiple of the " + std::to_string(Hkv) + " KV heads given");
  }
  for (int kv = 0; kv < Hkv; kv++) {
    const std::string headName = name + "heads[" + std::to_string(kv) + "]";
    Napi::Value hv = heads.Get(kv);
    if (!hv.IsObject()) throw Napi::TypeError::New(env, headName + ": expected an object");
    Napi::Object h = hv.As<Napi::Object>();
    razorkv::KvHeadView view;
    view.length = intArg(env, h.Get("length"), headName + ".length", 0);
    view.stride = d;
    view.keys = arrayData<float>(env, h.Get("keys"), headName + ".keys", static_cast<size_t>(view.length) * d);
    view.values = arrayData<float>(env, h.Get("values"), headName + ".values", static_cast<size_t>(view.length) * d);
    view.positions = arrayData<int32_t>(env, h.Get("positions"), headName + ".positions", view.length);
    view.compKey = optionalArrayData<float>(env, h.Get("compKey"), headName + ".compKey", d);
    if (view.compKey) {
      view.compValue = arrayData<float>(env, h.Get("compValue"), headName + ".compValue", d);
      view.compCount = h.Get("compCount").As<Napi::Number>().DoubleValue();
    }
    p.kvHeads.push_back(view);
  }
  std::vector<int> lengthPerQueryHead(p.numHeads);
  for (int h = 0; h < p.numHeads; h++) lengthPerQueryHead[h] = p.kvHeads[h / (p.numHeads / Hkv)].length;
  readStats(env, stats, p.numHeads, lengthPerQueryHead, p.stats);
}

/**
 * attendCache(queries, queryPositions, out, numHeads, headDim, scale, heads, stats?, window?, softcap?)
 *   heads: per KV head { keys: Float32Array, values: Float32Array, positions: Int32Array, length,
 *                        compKey?: Float32Array, compValue?: Float32Array, compCount? }
 * The arrays are a core HeadCache's own (slot-major [capacity × d]); only the first `length` slots are read.
 * window: a sliding window W (a query at p sees positions (p − W, p]); softcap: Gemma 2's attention logit cap.
 */
Napi::Value AttendCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  razorkv::AttentionProblem p;
  p.numHeads = intArg(env, info[3], "numHeads", 1);
  p.headDim = intArg(env, info[4], "headDim", 1);
  p.scale = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  readWindowAndCap(env, info[8], info[9], p);
  readCacheProblem(env, "", info[0], info[1], info[2], info[6], info[7], p);
  razorkv::attend(p);
  return env.Undefined();
}

/**
 * attendStep(sequences, numHeads, headDim, scale, window?, softcap?): one layer of a decode step over several
 * sequences, each with its own cache, in one call (attention.h attendBatch).
 *   sequences: [{ queries, queryPositions, out, heads, stats? }], each as attendCache's arguments of those names.
 */
Napi::Value AttendStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "sequences: expected an array");
  Napi::Array sequences = info[0].As<Napi::Array>();
  const int numHeads = intArg(env, info[1], "numHeads", 1);
  const int headDim = intArg(env, info[2], "headDim", 1);
  const float scale = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  std::vector<razorkv::AttentionProblem> problems(sequences.Length());
  std::vector<const razorkv::AttentionProblem*> pointers;
  for (uint32_t i = 0; i < sequences.Length(); i++) {
    const std::string name = "sequences[" + std::to_string(i) + "].";
    Napi::Value sv = sequences.Get(i);
    if (!sv.IsObject()) throw Napi::TypeError::New(env, name + ": expected an object");
    Napi::Object seq = sv.As<Napi::Object>();
    razorkv::AttentionProblem& p = problems[i];
    p.numHeads = numHeads;
    p.headDim = headDim;
    p.scale = scale;
    readWindowAndCap(env, info[4], info[5], p);
    readCacheProblem(env, name, seq.Get("queries"), seq.Get("queryPositions"), seq.Get("out"), seq.Get("heads"), seq.Get("stats"), p);
    pointers.push_back(&p);
  }
  razorkv::attendBatch(pointers);
  return env.Undefined();
}

/**
 * attendPrefill(queries, keys, values, out, numQueries, kvLength, numHeads, numKvHeads, headDim, scale, stats?, window?, softcap?)
 *   queries [numQueries × numHeads × d] at positions kvLength − numQueries …; keys, values [kvLength × numKvHeads × d]
 *   at positions 0 … kvLength − 1 (the projection output, RoPE applied).
 */
Napi::Value AttendPrefill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  razorkv::AttentionProblem p;
  p.numQueries = intArg(env, info[4], "numQueries", 0);
  const int kvLength = intArg(env, info[5], "kvLength", p.numQueries);
  p.numHeads = intArg(env, info[6], "numHeads", 1);
  const int Hkv = intArg(env, info[7], "numKvHeads", 1);
  p.headDim = intArg(env, info[8], "headDim", 1);
  p.scale = static_cast<float>(info[9].As<Napi::Number>().DoubleValue());
  const int d = p.headDim;
  if (p.numHeads % Hkv != 0) throwRange(env, "numHeads " + std::to_string(p.numHeads) + " is not a multiple of numKvHeads " + std::to_string(Hkv));
  const size_t qSize = static_cast<size_t>(p.numQueries) * p.numHeads * d;
  const size_t kvSize = static_cast<size_t>(kvLength) * Hkv * d;
  p.queries = arrayData<float>(env, info[0], "queries", qSize);
  const float* keys = arrayData<float>(env, info[1], "keys", kvSize);
  const float* values = arrayData<float>(env, info[2], "values", kvSize);
  p.out = arrayData<float>(env, info[3], "out", qSize);
  std::vector<int32_t> positions(p.numQueries);
  for (int c = 0; c < p.numQueries; c++) positions[c] = kvLength - p.numQueries + c;
  p.queryPositions = positions.data();
  for (int kv = 0; kv < Hkv; kv++) {
    razorkv::KvHeadView view;
    view.keys = keys + static_cast<size_t>(kv) * d;
    view.values = values + static_cast<size_t>(kv) * d;
    view.stride = Hkv * d;
    view.length = kvLength;
    p.kvHeads.push_back(view);
  }
  readStats(env, info[10], p.numHeads, std::vector<int>(p.numHeads, kvLength), p.stats);
  readWindowAndCap(env, info[11], info[12], p);
  razorkv::attend(p);
  return env.Undefined();
}

/** The ggml type id argument `value`, which must be one the kernels read (ggml_types.h). */
razorkv::GgmlType ggmlTypeArg(Napi::Env env, const Napi::Value& value) {
  int id = intArg(env, value, "type", 0);
  if (!razorkv::ggmlTypeSupported(id)) throwRange(env, "type: ggml type " + std::to_string(id) + " has no kernel");
  return static_cast<razorkv::GgmlType>(id);
}

/** The blocks of W [N × K] of `type`: a Uint8Array of at least N rows of ggmlRowBytes(type, K). */
const uint8_t* weightBlocks(Napi::Env env, const Napi::Value& value, razorkv::GgmlType type, int N, int K) {
  const razorkv::GgmlTypeInfo info = razorkv::ggmlTypeInfo(type);
  if (K % info.blockSize != 0) {
    throwRange(env, "K: expected a multiple of " + std::string(info.name) + "'s block of " + std::to_string(info.blockSize) + ", got " + std::to_string(K));
  }
  return arrayData<uint8_t>(env, value, "blocks", razorkv::ggmlRowBytes(type, K) * static_cast<size_t>(N));
}

/** quantMatmul(type, blocks, x, out, M, N, K, path?, backend?): out[M × N] = x[M × K] · Wᵀ, W in ggml blocks (qmatmul.h). */
Napi::Value QuantMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const razorkv::GgmlType type = ggmlTypeArg(env, info[0]);
  const int M = intArg(env, info[4], "M", 0), N = intArg(env, info[5], "N", 0), K = intArg(env, info[6], "K", 0);
  const uint8_t* blocks = weightBlocks(env, info[1], type, N, K);
  const float* x = arrayData<float>(env, info[2], "x", static_cast<size_t>(M) * K);
  float* out = arrayData<float>(env, info[3], "out", static_cast<size_t>(M) * N);
  razorkv::QuantPath path = razorkv::QuantPath::Auto;
  if (!info[7].IsUndefined() && !info[7].IsNull()) {
    const std::string name = info[7].As<Napi::String>().Utf8Value();
    if (name == "dot") path = razorkv::QuantPath::Dot;
    else if (name == "dequant") path = razorkv::QuantPath::Dequant;
    else if (name == "int8") path = razorkv::QuantPath::Int8;
    else if (name != "auto") throwRange(env, "path: expected auto, dot, dequant or int8, got " + name);
  }
  razorkv::quantMatmul(type, blocks, x, out, M, N, K, path, parseBackend(env, info[8]));
  return env.Undefined();
}

/**
 * quantMatmulDotMany(operands, x, M, K, backend): operands an array of { type, blocks, out, N }; each
 * out[M × N] = x[M × K] · Wᵀ on the Dot path, in one dispatch (qmatmul.h).
 */
Napi::Value QuantMatmulDotMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "operands: expected an array");
  const Napi::Array list = info[0].As<Napi::Array>();
  const int M = intArg(env, info[2], "M", 0), K = intArg(env, info[3], "K", 0);
  const float* x = arrayData<float>(env, info[1], "x", static_cast<size_t>(M) * K);
  std::vector<razorkv::QuantMatmulOperand> operands;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const Napi::Value item = list.Get(i);
    if (!item.IsObject()) throw Napi::TypeError::New(env, "operands[" + std::to_string(i) + "]: expected an object");
    const Napi::Object o = item.As<Napi::Object>();
    const razorkv::GgmlType type = ggmlTypeArg(env, o.Get("type"));
    const int N = intArg(env, o.Get("N"), "N", 0);
    const uint8_t* blocks = weightBlocks(env, o.Get("blocks"), type, N, K);
    float* out = arrayData<float>(env, o.Get("out"), "out", static_cast<size_t>(M) * N);
    operands.push_back({type, blocks, out, N});
  }
  razorkv::quantMatmulDotMany(operands.data(), static_cast<int>(operands.size()), x, M, K, parseBackend(env, info[4]));
  return env.Undefined();
}

/** dequantizeRows(type, blocks, out, rows, K): out[rows × K] = W decoded to f32. */
Napi::Value DequantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const razorkv::GgmlType type = ggmlTypeArg(env, info[0]);
  const int rows = intArg(env, info[3], "rows", 0), K = intArg(env, info[4], "K", 0);
  const uint8_t* blocks = weightBlocks(env, info[1], type, rows, K);
  float* out = arrayData<float>(env, info[2], "out", static_cast<size_t>(rows) * K);
  razorkv::dequantizeRows(type, blocks, out, rows, K);
  return env.Undefined();
}

/**
 * adviseHugePages(bytes): asks Linux to back the 2 MiB-aligned interior of `bytes` with transparent huge pages
 * (madvise MADV_HUGEPAGE), for weight buffers that GEMV streams from memory; returns the bytes advised (0 where
 * there is no such call). Call it before the buffer is first written: pages already in place stay small.
 */
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "bytes: expected a Uint8Array");
  const size_t length = info[0].As<Napi::TypedArray>().ByteLength();
  uint8_t* data = arrayData<uint8_t>(env, info[0], "bytes", length);
  size_t advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = 2u << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + huge - 1) / huge * huge;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + length) / huge * huge;
  if (end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0) advised = end - begin;
#endif
  return Napi::Number::New(env, static_cast<double>(advised));
}

/** rmsNorm(x, weight, out, rows, n, eps): out[rows × n] = RMSNorm of each row of x, scaled by weight[n]. */
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int rows = intArg(env, info[3], "rows", 0), n = intArg(env, info[4], "n", 1);
  if (!info[5].IsNumber()) throw Napi::TypeError::New(env, "eps: expected a number");
  const double eps = info[5].As<Napi::Number>().DoubleValue();
  const size_t size = static_cast<size_t>(rows) * n;
  const float* x = arrayData<float>(env, info[0], "x", size);
  const float* weight = arrayData<float>(env, info[1], "weight", n);
  float* out = arrayData<float>(env, info[2], "out", size);
  razorkv::rmsNorm(x, weight, out, rows, n, eps);
  return env.Undefined();
}

/** swiglu(gate, up): gate ← silu(gate) ⊙ up over gate's length. */
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "gate: expected a Float32Array");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  float* gate = arrayData<float>(env, info[0], "gate", n);
  const float* up = arrayData<float>(env, info[1], "up", n);
  razorkv::swiglu(gate, up, n);
  return env.Undefined();
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // every kernel, OpenBLAS's included, runs on the one pool of threadpool.h (RAZORKV_THREADS), none on OpenBLAS's own
  razorkv::useSingleThreadedBlas();
  exports.Set("gemmBackend", Napi::Function::New(env, guarded<GemmBackendName>, "gemmBackend"));
  exports.Set("gemmBackends", Napi::Function::New(env, guarded<GemmBackends>, "gemmBackends"));
  exports.Set("simd", Napi::Function::New(env, guarded<Simd>, "simd"));
  exports.Set("int8GemmVnni", Napi::Function::New(env, guarded<Int8GemmVnni>, "int8GemmVnni"));
  exports.Set("threads", Napi::Function::New(env, guarded<Threads>, "threads"));
  exports.Set("setThreads", Napi::Function::New(env, guarded<SetThreads>, "setThreads"));
  exports.Set("matmulTransposed", Napi::Function::New(env, guarded<MatmulTransposed>, "matmulTransposed"));
  exports.Set("attendCache", Napi::Function::New(env, guarded<AttendCache>, "attendCache"));
  exports.Set("attendStep", Napi::Function::New(env, guarded<AttendStep>, "attendStep"));
  exports.Set("attendPrefill", Napi::Function::New(env, guarded<AttendPrefill>, "attendPrefill"));
  exports.Set("rmsNorm", Napi::Function::New(env, guarded<RmsNorm>, "rmsNorm"));
  exports.Set("swiglu", Napi::Function::New(env, guarded<Swiglu>, "swiglu"));
  exports.Set("quantMatmul", Napi::Function::New(env, guarded<QuantMatmul>, "quantMatmul"));
  exports.Set("quantMatmulDotMany", Napi::Function::New(env, guarded<QuantMatmulDotMany>, "quantMatmulDotMany"));
  exports.Set("adviseHugePages", Napi::Function::New(env, guarded<AdviseHugePages>, "adviseHugePages"));
  exports.Set("dequantizeRows", Napi::Function::New(env, guarded<DequantizeRows>, "dequantizeRows"));
  return exports;
}

}  // namespace

NODE_API_MODULE(razorkv_cpu, Init)
