// log: one line per event on stderr, "2026-11-22T15:30:00.123Z info  snapshot stored model=acme/bot
// version=2". Safe to call from any thread; lines never interleave.
#pragma once

#include <string>

namespace shoal {

enum class log_level { info, warn, error };

/// Writes one line: UTC timestamp, level, message.
void log_line(log_level level, const std::string& message);

inline void log_info(const std::string& m) { log_line(log_level::info, m); }
inline void log_warn(const std::string& m) { log_line(log_level::warn, m); }
inline void log_error(const std::string& m) { log_line(log_level::error, m); }

}  // namespace shoal
