// busy_for: keeps the calling thread working (on the CPU, not blocked) for a while, for tests of
// what tells a thread's own work from time it spent waiting.
#pragma once

#include <time.h>

#include <chrono>

namespace shoal::testing {

inline void busy_for(std::chrono::milliseconds how_long) {
  const auto until = std::chrono::steady_clock::now() + how_long;
  volatile unsigned spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
}

/// Like busy_for, but for `how_long` of the thread's own CPU time: on a machine busy with other
/// work the thread is kept off the CPU part of the time, and a wall-clock spin would then do
/// less work than it says (the lag probe counts only the thread's own work).
inline void busy_for_cpu(std::chrono::milliseconds how_long) {
  auto cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  };
  const long long until =
      cpu_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(how_long).count();
  volatile unsigned spin = 0;
  while (cpu_ns() < until) spin = spin + 1;
}

}  // namespace shoal::testing
