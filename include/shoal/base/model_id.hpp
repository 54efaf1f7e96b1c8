// model_id: the TENANT/MODEL name every interface uses. Each part is [a-z0-9][a-z0-9_-]{0,63},
// so an id can never be a path ("../x" is rejected) and is safe in file names, URLs and logs.
#pragma once

#include <string>
#include <string_view>

#include "shoal/base/status.hpp"

namespace shoal {

struct model_id {
  std::string tenant;
  std::string model;

  /// Returns "tenant/model".
  std::string str() const { return tenant + "/" + model; }

  friend bool operator==(const model_id& a, const model_id& b) { return a.tenant == b.tenant && a.model == b.model; }
  friend bool operator!=(const model_id& a, const model_id& b) { return !(a == b); }
  friend bool operator<(const model_id& a, const model_id& b) {
    return a.tenant != b.tenant ? a.tenant < b.tenant : a.model < b.model;
  }
};

/// Returns true if `part` matches [a-z0-9][a-z0-9_-]{0,63}.
bool is_valid_id_part(std::string_view part);

/// Parses "tenant/model"; the error message says which rule the text broke.
result<model_id> parse_model_id(std::string_view text);

}  // namespace shoal
