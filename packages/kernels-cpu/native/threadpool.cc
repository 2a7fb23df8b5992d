#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void cpuRelax() { _mm_pause(); }
#else
static inline void cpuRelax() {}
#endif

namespace razorkv {
namespace {

constexpr int kMaxThreads = 64;
// How long an idle worker spins before it sleeps on the condition variable.
constexpr auto kSpinTime = std::chrono::microseconds(200);

// state_ packs [generation: 32 bits][closed: 1 bit][workers inside the job: 31 bits]. A worker enters a job only
// while its generation is current and it is open; the caller closes it once every chunk is taken, then waits for
// the workers inside, and only those, to leave. So no worker can touch a job after run() returns.
constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kInsideMask = kClosed - 1;

class Pool {
 public:
  explicit Pool(int numWorkers) {
    for (int i = 1; i <= numWorkers; i++) workers_.emplace_back([this, i] { workerLoop(i); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
      generation_++;
      state_.store(static_cast<uint64_t>(generation_) << 32 | kClosed);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int numChunks, int maxThreads, const std::function<void(int, int)>& fn) {
    fn_.store(&fn, std::memory_order_relaxed);
    numChunks_.store(numChunks, std::memory_order_relaxed);
    maxThreads_.store(maxThreads, std::memory_order_relaxed);
    nextChunk_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);  // pairs with the sleepers' predicate check: no lost wake-up
      generation_++;
      state_.store(static_cast<uint64_t>(generation_) << 32, std::memory_order_release);
    }
    wake_.notify_all();
    runChunks(0);
    state_.fetch_or(kClosed, std::memory_order_acq_rel);
    while (state_.load(std::memory_order_acquire) & kInsideMask) cpuRelax();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void runChunks(int participant) {
    const auto& fn = *fn_.load(std::memory_order_relaxed);
    const int n = numChunks_.load(std::memory_order_relaxed);
    try {
      for (int c; (c = nextChunk_.fetch_add(1, std::memory_order_relaxed)) < n;) fn(c, participant);
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex_);
      if (!error_) error_ = std::current_exception();
      nextChunk_.store(n, std::memory_order_relaxed);  // stop handing out chunks
    }
  }

  void workerLoop(int index) {
    uint32_t seen = 0;
    for (;;) {
      // wait for a new generation: spin, then sleep
      auto spinStart = std::chrono::steady_clock::now();
      uint64_t s;
      for (int spins = 1; static_cast<uint32_t>((s = state_.load(std::memory_order_acquire)) >> 32) == seen; spins++) {
        cpuRelax();
        if (spins % 256 == 0 && std::chrono::steady_clock::now() - spinStart > kSpinTime) {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32) != seen; });
        }
      }
      seen = static_cast<uint32_t>(s >> 32);
      if (stop_.load()) return;
      // enter the job if it is still open and wants this many threads
      while (static_cast<uint32_t>(s >> 32) == seen && !(s & kClosed) && index < maxThreads_.load(std::memory_order_relaxed)) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
          runChunks(index);
          state_.fetch_sub(1, std::memory_order_release);
          break;
        }
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> state_{0};
  uint32_t generation_ = 0;  // written by the caller only
  std::atomic<bool> stop_{false};
  std::atomic<const std::function<void(int, int)>*> fn_{nullptr};
  std::atomic<int> numChunks_{0};
  std::atomic<int> maxThreads_{0};
  std::atomic<int> nextChunk_{0};
  std::mutex errorMutex_;
  std::exception_ptr error_;
};

int initialThreads() {
  if (const char* env = std::getenv("RAZORKV_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= kMaxThreads) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw < kMaxThreads ? hw : kMaxThreads);
}

std::atomic<int> g_threads{initialThreads()};
std::unique_ptr<Pool> g_pool;
// Held while the pool runs a job. Kernels are normally called from the JS thread only, but a second caller (a
// worker_threads Worker) must not post into a running job: it gets the lock or runs its chunks by itself.
std::mutex g_poolMutex;

}  // namespace

int kernelThreads() { return g_threads.load(); }

void setKernelThreads(int n) {
  if (n < 1 || n > kMaxThreads) throw std::invalid_argument("thread count must be in 1 … 64");
  g_threads.store(n);
}

void parallelFor(int numChunks, int maxThreads, const std::function<void(int, int)>& fn) {
  if (numChunks <= 0) return;
  maxThreads = std::max(1, std::min(maxThreads, numChunks));
  std::unique_lock<std::mutex> lock(g_poolMutex, std::defer_lock);
  if (maxThreads == 1 || !lock.try_lock()) {
    for (int c = 0; c < numChunks; c++) fn(c, 0);
    return;
  }
  if (!g_pool || g_pool->size() < maxThreads) {
    g_pool.reset();
    g_pool = std::make_unique<Pool>(maxThreads - 1);
  }
  g_pool->run(numChunks, maxThreads, fn);
}

}  // namespace razorkv
