// log: one line per event on stderr. An event is a message and its fields, given apart:
//   log_info("snapshot stored", {{"model", id.str()}, {"version", 2}});
// Human-readable by default, the fields as key=value after the message (a value holding a space,
// a quote, '=' or a control character, or an empty one, is written as a JSON string):
//   2026-11-22T15:30:00.123Z info  snapshot stored model=acme/bot version=2
// or, with --log-format json (for log collectors), one JSON object per line, each field a member:
//   {"time":"2026-11-22T15:30:00.123Z","level":"info","msg":"snapshot stored","model":"acme/bot",
//    "version":"2"}
// Field values are strings in JSON. A field named time, level or msg, or a key given twice, is
// written once (the first), so the object never repeats a name. Safe to call from any thread;
// lines never interleave.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace shoal {

enum class log_level { info, warn, error };
enum class log_format { human, json };

/// One key=value of a log line. The key is a literal ([a-z0-9_]); the value is copied.
struct log_field {
  log_field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  log_field(std::string_view k, std::string_view v) : key(k), value(v) {}
  log_field(std::string_view k, const char* v) : key(k), value(v) {}
  template <class Int, std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>,
                                        int> = 0>
  log_field(std::string_view k, Int v) : key(k), value(std::to_string(v)) {}

  std::string_view key;
  std::string value;
};

using log_fields = std::initializer_list<log_field>;

/// Writes one line: UTC timestamp, level, message, fields.
void log_line(log_level level, std::string_view message, log_fields fields = {});

inline void log_info(std::string_view m, log_fields f = {}) { log_line(log_level::info, m, f); }
inline void log_warn(std::string_view m, log_fields f = {}) { log_line(log_level::warn, m, f); }
inline void log_error(std::string_view m, log_fields f = {}) { log_line(log_level::error, m, f); }

/// How every later line is written (human until set). Set at start, before other threads log.
void set_log_format(log_format format);

/// "human" or "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);

/// One line (without its newline) as log_line writes it in `format`, at time `stamp`
/// (ISO 8601 UTC with milliseconds).
std::string format_log_line(log_format format, const std::string& stamp, log_level level,
                            std::string_view message, log_fields fields = {});

}  // namespace shoal
