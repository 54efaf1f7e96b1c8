// log: one line per event on stderr. Human-readable by default,
//   2026-11-22T15:30:00.123Z info  snapshot stored model=acme/bot version=2
// or, with --log-format json (for log collectors), one JSON object per line:
//   {"time":"2026-11-22T15:30:00.123Z","level":"info","msg":"snapshot stored model=acme/bot
//   version=2","model":"acme/bot","version":"2"}
// (msg is always the whole message; each `key=value` word in it becomes a field too, so a
// collector can filter on model= without parsing text). Safe to call from any thread; lines never
// interleave.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace shoal {

enum class log_level { info, warn, error };
enum class log_format { human, json };

/// Writes one line: UTC timestamp, level, message.
void log_line(log_level level, const std::string& message);

inline void log_info(const std::string& m) { log_line(log_level::info, m); }
inline void log_warn(const std::string& m) { log_line(log_level::warn, m); }
inline void log_error(const std::string& m) { log_line(log_level::error, m); }

/// How every later line is written (human until set). Set at start, before other threads log.
void set_log_format(log_format format);

/// "human" or "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);

/// One line (without its newline) as log_line writes it in `format`, at time `stamp`
/// (ISO 8601 UTC with milliseconds).
std::string format_log_line(log_format format, const std::string& stamp, log_level level,
                            const std::string& message);

}  // namespace shoal
