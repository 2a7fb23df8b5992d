// A fixed set of worker threads for the kernels' parallel loops.
//
// parallelFor(numChunks, maxThreads, fn) calls fn(chunk, participant) once for every chunk in 0 … numChunks−1 and
// returns when all calls have returned. The calling thread works too (participant 0); a worker joins only if it is
// awake before the chunks run out, so a worker the OS has descheduled (2 cores shared with other processes) delays
// nothing: the caller takes its share. `participant` (< maxThreads) names the thread, for per-thread scratch.
// Which thread runs a chunk is therefore not fixed: kernels make each output depend on its chunk alone, and sum
// cross-chunk statistics in integers (attention.cc), so results stay bit-for-bit reproducible (DESIGN §3).
//
// Workers spin briefly after a job before they sleep: the forward pass issues a kernel call every few tens of
// microseconds during decode, and waking a sleeping thread costs about as much as a small GEMV.
#pragma once

#include <functional>

namespace razorkv {

/** Threads the kernels use: RAZORKV_THREADS if set, else the number of hardware threads (at most 64). */
int kernelThreads();
/** Sets the thread count for later calls (1 … 64). */
void setKernelThreads(int n);

void parallelFor(int numChunks, int maxThreads, const std::function<void(int chunk, int participant)>& fn);

}  // namespace razorkv
