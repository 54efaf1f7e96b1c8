#include "shoal/base/model_id.hpp"

namespace shoal {
namespace {

bool is_lead_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_tail_char(char c) { return is_lead_char(c) || c == '_' || c == '-'; }

// Keeps error messages readable when the input is huge or binary.
std::string quoted_excerpt(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (text.size() > 80) out += "...";
  return out + "'";
}

}  // namespace

bool is_valid_id_part(std::string_view part) {
  if (part.empty() || part.size() > 64 || !is_lead_char(part[0])) return false;
  for (char c : part.substr(1)) {
    if (!is_tail_char(c)) return false;
  }
  return true;
}

result<model_id> parse_model_id(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos) {
    return status::invalid_argument("invalid model id " + quoted_excerpt(text) +
                                    ": expected TENANT/MODEL");
  }
  auto tenant = text.substr(0, slash);
  auto model = text.substr(slash + 1);
  const char* rule = "must match [a-z0-9][a-z0-9_-]{0,63}";
  if (!is_valid_id_part(tenant)) {
    return status::invalid_argument("invalid model id " + quoted_excerpt(text) + ": tenant " + rule);
  }
  if (!is_valid_id_part(model)) {
    return status::invalid_argument("invalid model id " + quoted_excerpt(text) + ": model name " + rule);
  }
  return model_id{std::string(tenant), std::string(model)};
}

}  // namespace shoal
