#include "shoal/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace shoal {
namespace {

// Shared across threads on purpose: one lock so that concurrent events never interleave within a
// line. Logging is per event (not per request), so contention is negligible.
std::mutex log_mutex;

}  // namespace

void log_line(log_level level, const std::string& message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  const char* name = level == log_level::info ? "info " : level == log_level::warn ? "warn " : "error";
  std::lock_guard<std::mutex> guard(log_mutex);
  std::fprintf(stderr, "%s.%03dZ %s %s\n", stamp, static_cast<int>(ms % 1000), name, message.c_str());
  std::fflush(stderr);
}

}  // namespace shoal
