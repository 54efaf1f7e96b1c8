// registry: the checks and limits of what a snapshot says about itself besides its bytes (who
// pushed it, a note, tags, training metrics, its source: catalog.hpp's snapshot_info), and of
// the other free text the catalog keeps (reasons, reports, policies). The node checks a push
// against them before storing anything, and catalog replication refuses a peer's change that
// breaks them, so every node's catalog stays within them.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "shoal/base/status.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

inline constexpr size_t max_user_bytes = 128;
inline constexpr size_t max_note_bytes = 4096;
inline constexpr size_t max_tags = 32;
inline constexpr size_t max_tag_value_bytes = 256;
inline constexpr size_t max_metrics_bytes = 16384;  // the compact JSON
inline constexpr size_t max_source_bytes = 1024;
inline constexpr size_t max_reason_bytes = 1024;
inline constexpr size_t max_report_bytes = 262144;  // a report's JSON (per-label figures)
inline constexpr size_t max_policy_settings = 32;

/// Returns ok, or invalid_argument naming the field and the limit it breaks: user, note and
/// source valid UTF-8 without control characters (note may hold newlines) within their
/// sizes; at most max_tags tags, each key a name like a label's ([a-z0-9][a-z0-9_.-]{0,63})
/// and each value UTF-8 of at most max_tag_value_bytes; metrics_json empty or a JSON object.
status check_snapshot_metadata(const snapshot_info& s);

/// Returns ok if the free text of `c` (a snapshot's metadata, a move's reason and author, a
/// report, a policy, a trial's author) is within the limits above; else invalid_argument.
status check_change_text(const catalog_change& c);

/// Returns who did something, as the records show it: "alice (key ops)" when the client's word
/// (`user`) and the API key's name (`key`) differ, else whichever is set ("" when neither is).
std::string author_text(const std::string& user, const std::string& key);

/// Returns (key, value) of "KEY=VALUE" (--tag), or invalid_argument saying what is wrong.
result<std::pair<std::string, std::string>> parse_tag(std::string_view text);

/// Returns `text` as compact JSON if it is a JSON object of at most max_metrics_bytes (once
/// compact), else invalid_argument ("metrics: not JSON: ...", "metrics: a JSON object, got an
/// array").
result<std::string> compact_metrics_json(std::string_view text);

}  // namespace shoal
