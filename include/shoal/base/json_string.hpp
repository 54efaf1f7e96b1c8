// json_string: a JSON string literal from any bytes (for the JSON Shoal writes by hand: V2
// replies, JSON log lines). Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace shoal {

/// Appends `s` as a JSON string literal. Bytes that are not UTF-8 become U+FFFD and control
/// characters are escaped, so the output is always valid JSON whatever a model file, a client or
/// a log message put into it.
void append_json_string(std::string& out, std::string_view s);

}  // namespace shoal
