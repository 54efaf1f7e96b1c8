#include "shoal/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <set>

#include "shoal/json_string.hpp"

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

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

}  // namespace

void set_log_format(log_format format) { current_format.store(format); }

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "human") return log_format::human;
  if (name == "json") return log_format::json;
  return std::nullopt;
}

std::string format_log_line(log_format format, const std::string& stamp, log_level level,
                            const std::string& message) {
  std::string out;
  if (format == log_format::human) {
    out = stamp;
    out += ' ';
    std::string name = level_name(level);
    name.resize(5, ' ');
    out += name;
    out += ' ';
    out += message;
    return out;
  }
  out = "{\"time\":";
  append_json_string(out, stamp);
  out += ",\"level\":";
  append_json_string(out, level_name(level));
  out += ",\"msg\":";
  append_json_string(out, message);
  // Each word `key=value` (key: [a-z0-9_]+ starting with a letter, not one of the fields above)
  // becomes a field; a trailing ':' or ',' is punctuation of the sentence, not of the value. The
  // first occurrence of a key wins (JSON objects should not repeat names).
  std::set<std::string_view> seen = {"time", "level", "msg"};
  size_t i = 0;
  while (i < message.size()) {
    while (i < message.size() && message[i] == ' ') ++i;
    const size_t start = i;
    while (i < message.size() && message[i] != ' ') ++i;
    std::string_view word(message.data() + start, i - start);
    const size_t eq = word.find('=');
    if (eq == 0 || eq == std::string_view::npos || !(word[0] >= 'a' && word[0] <= 'z')) continue;
    std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
    bool plain = true;
    for (char c : key) plain = plain && is_key_char(c);
    if (!plain) continue;
    while (!value.empty() && (value.back() == ':' || value.back() == ',')) value.remove_suffix(1);
    if (!seen.insert(key).second) continue;
    out += ',';
    append_json_string(out, key);
    out += ':';
    append_json_string(out, value);
  }
  out += '}';
  return out;
}

void log_line(log_level level, const std::string& message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", static_cast<int>(ms % 1000));
  const std::string line = format_log_line(current_format.load(), stamp, level, message) + "\n";
  std::lock_guard<std::mutex> guard(log_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace shoal
