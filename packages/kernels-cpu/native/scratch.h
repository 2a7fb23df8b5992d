// A 64-byte-aligned scratch buffer, grown on demand and kept for its owner's life: the kernels' per-thread
// activations and weight panels (one thread_local each), so a call allocates nothing once the sizes have been seen.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace razorkv {

struct Scratch {
  void* data = nullptr;
  size_t capacity = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(data); }
  /** At least `bytes` bytes, 64-byte aligned; the contents are not kept when it grows. Throws std::bad_alloc. */
  void* get(size_t bytes) {
    if (bytes > capacity) {
      std::free(data);
      capacity = (bytes + 63) / 64 * 64;
      data = std::aligned_alloc(64, capacity);
      if (!data) {
        capacity = 0;
        throw std::bad_alloc();
      }
    }
    return data;
  }
};

}  // namespace razorkv
