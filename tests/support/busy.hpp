// busy_for: keeps the calling thread working (on the CPU, not blocked) for a while, for tests of
// what tells a thread's own work from time it spent waiting.
#pragma once

#include <chrono>

namespace shoal::testing {

inline void busy_for(std::chrono::milliseconds how_long) {
  const auto until = std::chrono::steady_clock::now() + how_long;
  volatile unsigned spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
}

}  // namespace shoal::testing
