#include "shoal/store/registry.hpp"

#include <nlohmann/json.hpp>

#include "shoal/base/utf8.hpp"

namespace shoal {
namespace {

// Valid UTF-8 without control characters (newlines and tabs allowed where `multi_line`).
bool is_clean_text(std::string_view text, bool multi_line) {
  if (!utf8::is_valid_utf8(text)) return false;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == 0x7f) return false;
    if (c < 0x20 && !(multi_line && (c == '\n' || c == '\t'))) return false;
  }
  return true;
}

status check_text(const char* field, std::string_view text, size_t max, bool multi_line) {
  if (text.size() > max) {
    return status::invalid_argument(std::string(field) + " is " + std::to_string(text.size()) +
                                    " bytes; the limit is " + std::to_string(max));
  }
  if (!is_clean_text(text, multi_line)) {
    return status::invalid_argument(std::string(field) +
                                    " must be UTF-8 text without control characters");
  }
  return status::ok();
}

}  // namespace

status check_snapshot_metadata(const snapshot_info& s) {
  SHOAL_RETURN_IF_ERROR(check_text("user", s.user, max_user_bytes, false));
  SHOAL_RETURN_IF_ERROR(check_text("the key name", s.pushed_with, max_user_bytes, false));
  SHOAL_RETURN_IF_ERROR(check_text("note", s.note, max_note_bytes, true));
  SHOAL_RETURN_IF_ERROR(check_text("source", s.source, max_source_bytes, false));
  if (s.tags.size() > max_tags) {
    return status::invalid_argument(std::to_string(s.tags.size()) + " tags; the limit is " +
                                    std::to_string(max_tags));
  }
  for (const auto& [key, value] : s.tags) {
    if (!is_valid_label(key)) {
      return status::invalid_argument("tag key '" + utf8::to_valid_utf8(key.substr(0, 80)) +
                                      "' must match [a-z0-9][a-z0-9_.-]{0,63}");
    }
    SHOAL_RETURN_IF_ERROR(check_text(("tag " + key).c_str(), value, max_tag_value_bytes, false));
  }
  if (!s.metrics_json.empty()) {
    auto compact = compact_metrics_json(s.metrics_json);
    if (!compact) return compact.error();
  }
  return status::ok();
}

status check_change_text(const catalog_change& c) {
  using k = catalog_change::kind;
  switch (c.what) {
    case k::add_snapshot:
      return check_snapshot_metadata(c.snapshot);
    case k::move_label:
      SHOAL_RETURN_IF_ERROR(check_text("reason", c.reason, max_reason_bytes, false));
      return check_text("by", c.by, max_user_bytes, false);
    case k::validation_set:
      return check_text("user", c.validation_set.user, max_user_bytes, false);
    case k::validation_report:
      SHOAL_RETURN_IF_ERROR(check_text("by", c.report.by, max_user_bytes, false));
      SHOAL_RETURN_IF_ERROR(check_text("ran_on", c.report.ran_on, max_user_bytes, false));
      SHOAL_RETURN_IF_ERROR(check_text("verdict", c.report.verdict, max_reason_bytes, true));
      return check_text("report", c.report.report_json, max_report_bytes, true);
    case k::policy:
      if (c.policy.size() > max_policy_settings) {
        return status::invalid_argument("a policy of " + std::to_string(c.policy.size()) +
                                        " settings; the limit is " +
                                        std::to_string(max_policy_settings));
      }
      for (const auto& [key, value] : c.policy) {
        SHOAL_RETURN_IF_ERROR(check_text("policy key", key, 64, false));
        SHOAL_RETURN_IF_ERROR(check_text("policy value", value, 64, false));
      }
      return status::ok();
    case k::trial:
      return check_text("by", c.trial.by, max_user_bytes, false);
    default:
      return status::ok();
  }
}

std::string author_text(const std::string& user, const std::string& key) {
  if (!user.empty() && !key.empty() && user != key) return user + " (key " + key + ")";
  return !user.empty() ? user : key;
}

result<std::pair<std::string, std::string>> parse_tag(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos) {
    return status::invalid_argument("a tag is KEY=VALUE, got '" +
                                    utf8::to_valid_utf8(text.substr(0, 80)) + "'");
  }
  std::string key(text.substr(0, eq));
  std::string value(text.substr(eq + 1));
  if (!is_valid_label(key)) {
    return status::invalid_argument("tag key '" + utf8::to_valid_utf8(key.substr(0, 80)) +
                                    "' must match [a-z0-9][a-z0-9_.-]{0,63}");
  }
  SHOAL_RETURN_IF_ERROR(check_text(("tag " + key).c_str(), value, max_tag_value_bytes, false));
  return std::make_pair(std::move(key), std::move(value));
}

result<std::string> compact_metrics_json(std::string_view text) {
  if (!utf8::is_valid_utf8(text)) return status::invalid_argument("metrics: not UTF-8");
  // Parsed with a depth limit: a metrics file is a flat or shallow object.
  int depth = 0;
  bool too_deep = false;
  auto limit = [&](int, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if (event == nlohmann::json::parse_event_t::object_start ||
        event == nlohmann::json::parse_event_t::array_start) {
      if (++depth > 16) too_deep = true;
    } else if (event == nlohmann::json::parse_event_t::object_end ||
               event == nlohmann::json::parse_event_t::array_end) {
      --depth;
    }
    return !too_deep;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), limit);
  } catch (const nlohmann::json::exception& e) {
    if (too_deep) return status::invalid_argument("metrics: JSON nested deeper than 16 levels");
    return status::invalid_argument(std::string("metrics: not JSON: ") + e.what());
  }
  if (too_deep) return status::invalid_argument("metrics: JSON nested deeper than 16 levels");
  if (!j.is_object()) {
    return status::invalid_argument(std::string("metrics: must be a JSON object, got ") +
                                    j.type_name());
  }
  std::string out = j.dump();
  if (out.size() > max_metrics_bytes) {
    return status::invalid_argument("metrics: " + std::to_string(out.size()) +
                                    " bytes of JSON; the limit is " +
                                    std::to_string(max_metrics_bytes));
  }
  return out;
}

}  // namespace shoal
