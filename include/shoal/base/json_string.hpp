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

/// Returns how deep arrays and objects nest in JSON `text` (strings skipped), scanning no further
/// once it passes `limit`: a check before parsing, since a parser builds every level (4 MB of '['
/// cost nlohmann 270 MB and a second of a front-end thread). Garbage gives some number; the
/// parser refuses it after.
size_t json_nesting(std::string_view text, size_t limit);

/// The deepest nesting a request body of Shoal's may have: a V2 infer body is 3 levels around
/// its data ({"inputs":[{"data":...}]}), and data nests at most max_tensor_rank (8) levels.
inline constexpr size_t max_json_nesting = 32;

}  // namespace shoal
