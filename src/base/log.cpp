#include "shoal/base/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <set>

#include "shoal/base/json_string.hpp"

namespace shoal {
namespace {

// Shared across threads on purpose: one lock so that concurrent events never interleave within a
// line. Logging is per event (not per request), so contention is negligible.
std::mutex log_mutex;

// Set once at start; atomic because every thread reads it.
std::atomic<log_format> current_format{log_format::human};

const char* level_name(log_level level) {
  return level == log_level::info ? "info" : level == log_level::warn ? "warn" : "error";
}

// Whether a human-format value must be quoted to read back as one value.
bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=') return true;
  }
  return false;
}

}  // namespace

void set_log_format(log_format format) { current_format.store(format); }

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "human") return log_format::human;
  if (name == "json") return log_format::json;
  return std::nullopt;
}

std::string format_log_line(log_format format, const std::string& stamp, log_level level,
                            std::string_view message, log_fields fields) {
  std::string out;
  std::set<std::string_view> seen = {"time", "level", "msg"};
  if (format == log_format::human) {
    out = stamp;
    out += ' ';
    std::string name = level_name(level);
    name.resize(5, ' ');
    out += name;
    out += ' ';
    out += message;
    for (const log_field& f : fields) {
      if (!seen.insert(f.key).second) continue;
      out += ' ';
      out += f.key;
      out += '=';
      if (needs_quotes(f.value)) {
        append_json_string(out, f.value);
      } else {
        out += f.value;
      }
    }
    return out;
  }
  out = "{\"time\":";
  append_json_string(out, stamp);
  out += ",\"level\":";
  append_json_string(out, level_name(level));
  out += ",\"msg\":";
  append_json_string(out, message);
  for (const log_field& f : fields) {
    if (!seen.insert(f.key).second) continue;
    out += ',';
    append_json_string(out, f.key);
    out += ':';
    append_json_string(out, f.value);
  }
  out += '}';
  return out;
}

void log_line(log_level level, std::string_view message, log_fields fields) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", static_cast<int>(ms % 1000));
  const std::string line = format_log_line(current_format.load(), stamp, level, message, fields) + "\n";
  std::lock_guard<std::mutex> guard(log_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace shoal
