// label: what a label move is made of. The catalog applies moves (store/catalog.hpp) and the API
// asks for them (serving/api.hpp); both take these values from here.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shoal/base/model_id.hpp"

namespace shoal {

/// The label served when a request names neither version nor label.
inline constexpr const char* default_label = "production";

enum class label_action : uint8_t { promote, rollback };

struct label_request {
  model_id id;
  std::string label;                // empty: "production"
  label_action action = label_action::promote;
  std::optional<uint32_t> version;  // promote: required; rollback: optional --to
  bool force = false;               // promote: move even if the validation gate refuses
  std::string user{};               // who asks, as the client says
  std::string by{};                 // set by the node from the caller's key
};

}  // namespace shoal
