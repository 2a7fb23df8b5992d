// razorkv_cuda.node: the N-API face of kernels.cu and reference.cpp.
//
// DeviceBuffer owns one cudaMalloc allocation; TypeScript holds it and frees it (explicitly, or when the object is
// collected). decode / compact take DeviceBuffers and enqueue on the default stream; download() copies back and
// waits, and synchronize() waits and reports errors of the queued work. decodeReference / compactReference run the
// CPU references on host typed arrays. Built without nvcc (RKV_NO_CUDA), the CPU references and the conversions
// work and every device entry point throws.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <string>

#include "razorkv_cuda.h"

#ifndef RKV_NO_CUDA
#include <cuda_runtime.h>
#endif

namespace {

[[noreturn]] void throw_error(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, "kernels-cuda: " + message);
}

#ifdef RKV_NO_CUDA
[[noreturn]] void no_cuda(Napi::Env env) {
  throw_error(env, "built without CUDA (nvcc was not found when the package was built)");
}
#else
void check_cuda(Napi::Env env, int code, const char* what) {
  if (code != 0) throw_error(env, std::string(what) + ": " + cudaGetErrorString(static_cast<cudaError_t>(code)));
}
#endif

rkv_dtype parse_dtype(Napi::Env env, const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "f16") return RKV_F16;
  if (s == "bf16") return RKV_BF16;
  throw_error(env, "dtype must be \"f16\" or \"bf16\", got \"" + s + "\"");
}

int get_int(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_error(o.Env(), std::string("argument field ") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < 0 || d > 2147483647.0) {
    throw_error(o.Env(), std::string("argument field ") + key + " must be a non-negative 32-bit integer");
  }
  return static_cast<int>(d);
}

int get_int_or(const Napi::Object& o, const char* key, int fallback) {
  return o.Has(key) && !o.Get(key).IsUndefined() ? get_int(o, key) : fallback;
}

double get_number_or(const Napi::Object& o, const char* key, double fallback) {
  const Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

// A host typed array field, checked for its element size and at least `count` elements (null when optional and absent).
template <typename T>
T* host_array(const Napi::Object& o, const char* key, size_t count, bool optional = false) {
  const Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  if (!v.IsTypedArray()) throw_error(o.Env(), std::string("argument field ") + key + " must be a typed array");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.ElementSize() != sizeof(T)) {
    throw_error(o.Env(), std::string(key) + ": expected " + std::to_string(sizeof(T)) + "-byte elements, got " +
                             std::to_string(t.ElementSize()));
  }
  if (t.ElementLength() < count) {
    throw_error(o.Env(), std::string(key) + ": expected at least " + std::to_string(count) + " elements, got " +
                             std::to_string(t.ElementLength()));
  }
  return reinterpret_cast<T*>(static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
}

// ---- DeviceBuffer

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::FunctionReference* constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "DeviceBuffer",
                                   {InstanceAccessor<&DeviceBuffer::ByteLength>("byteLength"),
                                    InstanceAccessor<&DeviceBuffer::Freed>("freed"),
                                    InstanceMethod<&DeviceBuffer::Upload>("upload"),
                                    InstanceMethod<&DeviceBuffer::Download>("download"),
                                    InstanceMethod<&DeviceBuffer::Fill>("fill"),
                                    InstanceMethod<&DeviceBuffer::Free>("free")});
    constructor = new Napi::FunctionReference(Napi::Persistent(f));
    return f;
  }

  explicit DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    Napi::Env env = info.Env();
#ifdef RKV_NO_CUDA
    no_cuda(env);
#else
    if (info.Length() < 1 || !info[0].IsNumber()) throw_error(env, "new DeviceBuffer(byteLength): byteLength must be a number");
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (n < 0 || n != std::floor(n) || n > 1e15) throw_error(env, "DeviceBuffer: byteLength must be a non-negative integer");
    bytes_ = static_cast<size_t>(n);
    check_cuda(env, cudaMalloc(&ptr_, bytes_ > 0 ? bytes_ : 1), "cudaMalloc");
#endif
  }

  ~DeviceBuffer() override { release(); }

  void* ptr(Napi::Env env, const char* what, size_t needed) const {
    if (!ptr_) throw_error(env, std::string(what) + ": the DeviceBuffer was freed");
    if (bytes_ < needed) {
      throw_error(env, std::string(what) + ": DeviceBuffer of " + std::to_string(bytes_) + " bytes, expected at least " +
                           std::to_string(needed));
    }
    return ptr_;
  }

 private:
  void release() {
#ifndef RKV_NO_CUDA
    if (ptr_) cudaFree(ptr_);
#endif
    ptr_ = nullptr;
  }

  Napi::Value ByteLength(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)bytes_); }
  Napi::Value Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ptr_ == nullptr); }

  // upload(view, byteOffset = 0): copies the typed array's bytes into the buffer at byteOffset.
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [src, n] = view(info, "upload");
    const size_t offset = info.Length() > 1 && info[1].IsNumber() ? (size_t)info[1].As<Napi::Number>().DoubleValue() : 0;
    void* dst = ptr(env, "upload", offset + n);
#ifndef RKV_NO_CUDA
    check_cuda(env, cudaMemcpy(static_cast<char*>(dst) + offset, src, n, cudaMemcpyHostToDevice), "upload");
#endif
    return info.This();
  }

  // download(view, byteOffset = 0): fills the typed array from the buffer at byteOffset; waits for queued work.
  Napi::Value Download(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [dst, n] = view(info, "download");
    const size_t offset = info.Length() > 1 && info[1].IsNumber() ? (size_t)info[1].As<Napi::Number>().DoubleValue() : 0;
    const void* src = ptr(env, "download", offset + n);
#ifndef RKV_NO_CUDA
    check_cuda(env, cudaMemcpy(dst, static_cast<const char*>(src) + offset, n, cudaMemcpyDeviceToHost), "download");
#endif
    return info[0];
  }

  // fill(byte): every byte of the buffer set to `byte` (0xff poisons f32 and f16/bf16 as NaN).
  Napi::Value Fill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int value = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    void* p = ptr(env, "fill", 0);
#ifndef RKV_NO_CUDA
    check_cuda(env, cudaMemset(p, value & 0xff, bytes_), "fill");
#endif
    return info.This();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  std::pair<void*, size_t> view(const Napi::CallbackInfo& info, const char* what) {
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw_error(info.Env(), std::string(what) + ": expected a typed array");
    Napi::TypedArray t = info[0].As<Napi::TypedArray>();
    return {static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), t.ByteLength()};
  }

  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

Napi::FunctionReference* DeviceBuffer::constructor = nullptr;

// A DeviceBuffer field of the argument object, holding at least `needed` bytes (null when optional and absent).
template <typename T>
T* device_field(const Napi::Object& o, const char* key, size_t needed, bool optional = false) {
  const Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(DeviceBuffer::constructor->Value())) {
    throw_error(o.Env(), std::string("argument field ") + key + " must be a DeviceBuffer");
  }
  return static_cast<T*>(DeviceBuffer::Unwrap(v.As<Napi::Object>())->ptr(o.Env(), key, needed));
}

// ---- decode attention

struct DecodeShape {
  rkv_dtype dtype;
  int numPairs, numKvHeads, headDim, totalEntries, group;
  float scale;
};

DecodeShape decode_shape(const Napi::Object& o) {
  DecodeShape s;
  s.dtype = parse_dtype(o.Env(), o.Get("dtype"));
  s.numPairs = get_int(o, "numPairs");
  s.numKvHeads = get_int(o, "numKvHeads");
  s.headDim = get_int(o, "headDim");
  s.totalEntries = get_int(o, "totalEntries");
  s.group = get_int(o, "group");
  s.scale = (float)get_number_or(o, "scale", 0);
  if (s.numKvHeads == 0 || s.numPairs % s.numKvHeads != 0) {
    throw_error(o.Env(), "numPairs (" + std::to_string(s.numPairs) + ") must be a multiple of numKvHeads (" +
                             std::to_string(s.numKvHeads) + ")");
  }
  if (s.headDim == 0 || s.headDim % 8 != 0) throw_error(o.Env(), "headDim must be a positive multiple of 8");
  if (s.group == 0) throw_error(o.Env(), "group must be ≥ 1");
  return s;
}

// decodeReference({dtype, numPairs, numKvHeads, headDim, totalEntries, group, scale?, headOffset: Int32Array,
//   keys: Uint16Array, values: Uint16Array, positions?: Int32Array, compKeys?, compValues?: Float32Array,
//   compCounts?: Int32Array, queries: Float32Array, queryPositions?: Int32Array, out: Float32Array})
Napi::Value DecodeReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_error(env, "decodeReference(args): args must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  const DecodeShape s = decode_shape(o);
  const size_t rows = (size_t)s.totalEntries * s.headDim;
  const size_t queries = (size_t)s.numPairs * s.group * s.headDim;
  rkv_decode_args a;
  a.layer.dtype = s.dtype;
  a.layer.numPairs = s.numPairs;
  a.layer.numKvHeads = s.numKvHeads;
  a.layer.headDim = s.headDim;
  a.layer.totalEntries = s.totalEntries;
  a.layer.headOffset = host_array<int32_t>(o, "headOffset", s.numPairs + 1);
  a.layer.keys = host_array<uint16_t>(o, "keys", rows);
  a.layer.values = host_array<uint16_t>(o, "values", rows);
  a.layer.positions = host_array<int32_t>(o, "positions", s.totalEntries, true);
  a.layer.compCounts = host_array<int32_t>(o, "compCounts", s.numPairs, true);
  a.layer.compKeys = host_array<float>(o, "compKeys", a.layer.compCounts ? (size_t)s.numPairs * s.headDim : 0, !a.layer.compCounts);
  a.layer.compValues = host_array<float>(o, "compValues", a.layer.compCounts ? (size_t)s.numPairs * s.headDim : 0, !a.layer.compCounts);
  a.group = s.group;
  a.scale = s.scale;
  a.queries = host_array<float>(o, "queries", queries);
  a.queryPositions = host_array<int32_t>(o, "queryPositions", s.numPairs / s.numKvHeads, true);
  a.out = host_array<float>(o, "out", queries);
  char err[256];
  if (rkv_decode_reference(&a, err, sizeof err) != 0) throw_error(env, err);
  return env.Undefined();
}

#ifndef RKV_NO_CUDA
// decode({...the same fields as DeviceBuffers..., chunk?, workspace?: DeviceBuffer}): enqueues decode attention.
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_error(env, "decode(args): args must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  const DecodeShape s = decode_shape(o);
  const size_t rowBytes = (size_t)s.totalEntries * s.headDim * 2;
  const size_t queryBytes = (size_t)s.numPairs * s.group * s.headDim * 4;
  rkv_decode_args a;
  a.layer.dtype = s.dtype;
  a.layer.numPairs = s.numPairs;
  a.layer.numKvHeads = s.numKvHeads;
  a.layer.headDim = s.headDim;
  a.layer.totalEntries = s.totalEntries;
  a.layer.headOffset = device_field<int32_t>(o, "headOffset", (size_t)(s.numPairs + 1) * 4);
  a.layer.keys = device_field<uint16_t>(o, "keys", rowBytes);
  a.layer.values = device_field<uint16_t>(o, "values", rowBytes);
  a.layer.positions = device_field<int32_t>(o, "positions", (size_t)s.totalEntries * 4, true);
  a.layer.compCounts = device_field<int32_t>(o, "compCounts", (size_t)s.numPairs * 4, true);
  a.layer.compKeys = device_field<float>(o, "compKeys", (size_t)s.numPairs * s.headDim * 4, !a.layer.compCounts);
  a.layer.compValues = device_field<float>(o, "compValues", (size_t)s.numPairs * s.headDim * 4, !a.layer.compCounts);
  a.group = s.group;
  a.scale = s.scale;
  a.queries = device_field<float>(o, "queries", queryBytes);
  a.queryPositions = device_field<int32_t>(o, "queryPositions", (size_t)(s.numPairs / s.numKvHeads) * 4, true);
  a.out = device_field<float>(o, "out", queryBytes);
  int chunk = get_int_or(o, "chunk", 0);
  if (chunk == 0) chunk = rkv_decode_chunk(s.totalEntries, s.numPairs, s.group, s.headDim);
  if (chunk == 0) {
    throw_error(env, "decode: no kernel for headDim " + std::to_string(s.headDim) + " and group " + std::to_string(s.group) +
                         " (instantiated: headDim 64 or 128, group 1 to 8)");
  }
  const size_t wsBytes = rkv_decode_workspace_bytes(s.totalEntries, s.numPairs, s.group, s.headDim, chunk);
  void* ws = device_field<void>(o, "workspace", wsBytes, true);
  void* scratch = nullptr;
  if (!ws) {
    check_cuda(env, cudaMalloc(&scratch, wsBytes > 0 ? wsBytes : 1), "decode workspace");
    ws = scratch;
  }
  const int code = rkv_decode(&a, chunk, ws, wsBytes, nullptr);
  if (scratch) cudaFree(scratch);  // cudaFree waits for the queued kernels that use it
  check_cuda(env, code, "decode");
  return env.Undefined();
}

Napi::Value Compact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_error(env, "compact(args): args must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  rkv_compact_args a;
  a.dtype = parse_dtype(env, o.Get("dtype"));
  a.numPairs = get_int(o, "numPairs");
  a.headDim = get_int(o, "headDim");
  a.fullLength = get_int(o, "fullLength");
  a.totalKept = get_int(o, "totalKept");
  const size_t full = (size_t)a.numPairs * a.fullLength;
  a.fullKeys = device_field<uint16_t>(o, "fullKeys", full * a.headDim * 2);
  a.fullValues = device_field<uint16_t>(o, "fullValues", full * a.headDim * 2);
  a.fullPositions = device_field<int32_t>(o, "fullPositions", full * 4, true);
  a.keptOffset = device_field<int32_t>(o, "keptOffset", (size_t)(a.numPairs + 1) * 4);
  a.keptSlots = device_field<int32_t>(o, "keptSlots", (size_t)a.totalKept * 4);
  a.keys = device_field<uint16_t>(o, "keys", (size_t)a.totalKept * a.headDim * 2);
  a.values = device_field<uint16_t>(o, "values", (size_t)a.totalKept * a.headDim * 2);
  a.positions = device_field<int32_t>(o, "positions", (size_t)a.totalKept * 4);
  a.compKeys = device_field<float>(o, "compKeys", (size_t)a.numPairs * a.headDim * 4);
  a.compValues = device_field<float>(o, "compValues", (size_t)a.numPairs * a.headDim * 4);
  a.compCounts = device_field<int32_t>(o, "compCounts", (size_t)a.numPairs * 4);
  const size_t wsBytes = rkv_compact_workspace_bytes(a.numPairs, a.fullLength, a.headDim);
  void* ws = device_field<void>(o, "workspace", wsBytes, true);
  void* scratch = nullptr;
  if (!ws) {
    check_cuda(env, cudaMalloc(&scratch, wsBytes > 0 ? wsBytes : 1), "compact workspace");
    ws = scratch;
  }
  const int code = rkv_compact(&a, ws, wsBytes, nullptr);
  if (scratch) cudaFree(scratch);
  check_cuda(env, code, "compact");
  return env.Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  check_cuda(info.Env(), cudaDeviceSynchronize(), "synchronize");
  return info.Env().Undefined();
}

Napi::Value DecodeWorkspaceBytes(const Napi::CallbackInfo& info) {
  const Napi::Object o = info[0].As<Napi::Object>();
  const int total = get_int(o, "totalEntries"), pairs = get_int(o, "numPairs"), group = get_int(o, "group"),
            d = get_int(o, "headDim");
  int chunk = get_int_or(o, "chunk", 0);
  if (chunk == 0) chunk = rkv_decode_chunk(total, pairs, group, d);
  return Napi::Number::New(info.Env(), (double)rkv_decode_workspace_bytes(total, pairs, group, d, chunk));
}
#endif

// compactReference({dtype, numPairs, headDim, fullLength, totalKept, fullKeys, fullValues: Uint16Array,
//   fullPositions?: Int32Array, keptOffset, keptSlots: Int32Array, keys, values: Uint16Array, positions: Int32Array,
//   compKeys, compValues: Float32Array, compCounts: Int32Array})
Napi::Value CompactReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_error(env, "compactReference(args): args must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  rkv_compact_args a;
  a.dtype = parse_dtype(env, o.Get("dtype"));
  a.numPairs = get_int(o, "numPairs");
  a.headDim = get_int(o, "headDim");
  a.fullLength = get_int(o, "fullLength");
  a.totalKept = get_int(o, "totalKept");
  const size_t full = (size_t)a.numPairs * a.fullLength;
  a.fullKeys = host_array<uint16_t>(o, "fullKeys", full * a.headDim);
  a.fullValues = host_array<uint16_t>(o, "fullValues", full * a.headDim);
  a.fullPositions = host_array<int32_t>(o, "fullPositions", full, true);
  a.keptOffset = host_array<int32_t>(o, "keptOffset", a.numPairs + 1);
  a.keptSlots = host_array<int32_t>(o, "keptSlots", a.totalKept);
  a.keys = host_array<uint16_t>(o, "keys", (size_t)a.totalKept * a.headDim);
  a.values = host_array<uint16_t>(o, "values", (size_t)a.totalKept * a.headDim);
  a.positions = host_array<int32_t>(o, "positions", a.totalKept);
  a.compKeys = host_array<float>(o, "compKeys", (size_t)a.numPairs * a.headDim);
  a.compValues = host_array<float>(o, "compValues", (size_t)a.numPairs * a.headDim);
  a.compCounts = host_array<int32_t>(o, "compCounts", a.numPairs);
  char err[256];
  if (rkv_compact_reference(&a, err, sizeof err) != 0) throw_error(env, err);
  return env.Undefined();
}

// toBits(Float32Array, dtype) → Uint16Array (round to nearest even); fromBits(Uint16Array, dtype) → Float32Array.
Napi::Value ToBits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray()) throw_error(env, "toBits(Float32Array, dtype)");
  Napi::Float32Array src = info[0].As<Napi::Float32Array>();
  const rkv_dtype dtype = parse_dtype(env, info[1]);
  Napi::Uint16Array out = Napi::Uint16Array::New(env, src.ElementLength());
  for (size_t i = 0; i < src.ElementLength(); i++) {
    out[i] = dtype == RKV_BF16 ? rkv_float_to_bf16(src[i]) : rkv_float_to_half(src[i]);
  }
  return out;
}

Napi::Value FromBits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray()) throw_error(env, "fromBits(Uint16Array, dtype)");
  Napi::Uint16Array src = info[0].As<Napi::Uint16Array>();
  const rkv_dtype dtype = parse_dtype(env, info[1]);
  Napi::Float32Array out = Napi::Float32Array::New(env, src.ElementLength());
  for (size_t i = 0; i < src.ElementLength(); i++) {
    out[i] = dtype == RKV_BF16 ? rkv_bf16_to_float(src[i]) : rkv_half_to_float(src[i]);
  }
  return out;
}

// deviceInfo() → {built, available, name?, computeCapability?, multiProcessors?, memoryBytes?, reason?}
Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
#ifdef RKV_NO_CUDA
  r.Set("built", false);
  r.Set("available", false);
  r.Set("reason", "built without CUDA (nvcc was not found when the package was built)");
#else
  r.Set("built", true);
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    r.Set("available", false);
    r.Set("reason", e != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(e) : "no CUDA device");
    return r;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    r.Set("available", false);
    r.Set("reason", "cudaGetDeviceProperties failed");
    return r;
  }
  r.Set("available", true);
  r.Set("name", prop.name);
  r.Set("computeCapability", std::to_string(prop.major) + "." + std::to_string(prop.minor));
  r.Set("multiProcessors", prop.multiProcessorCount);
  r.Set("memoryBytes", (double)prop.totalGlobalMem);
#endif
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("DeviceBuffer", DeviceBuffer::Init(env));
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfo));
  exports.Set("decodeReference", Napi::Function::New(env, DecodeReference));
  exports.Set("compactReference", Napi::Function::New(env, CompactReference));
  exports.Set("toBits", Napi::Function::New(env, ToBits));
  exports.Set("fromBits", Napi::Function::New(env, FromBits));
#ifndef RKV_NO_CUDA
  exports.Set("decode", Napi::Function::New(env, Decode));
  exports.Set("compact", Napi::Function::New(env, Compact));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("decodeWorkspaceBytes", Napi::Function::New(env, DecodeWorkspaceBytes));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(razorkv_cuda, Init)
