// catalog_dump: a whole catalog as text (see catalog_dump.hpp).
#include "support/catalog_dump.hpp"

namespace shoal::testing {

std::string dump(const catalog& c) {
  std::string out;
  for (const model_entry* m : c.models()) {
    out += m->id.str() + "\n";
    for (const auto& s : m->snapshots) {
      out += " v" + std::to_string(s.version) + " " + s.sha256 + " " +
             std::to_string(s.created_ms) + " " + std::to_string(s.size_bytes) + " " + s.format +
             " [" + s.note + "]";
      for (const auto& h : s.holders) out += " @" + h;
      out += "\n";
    }
    for (const auto& [name, st] : m->labels) {
      out += " " + name + " stack";
      for (auto v : st.stack) out += " " + std::to_string(v);
      out += " history";
      for (const auto& h : st.history) {
        out += " " + std::to_string(h.from) + ">" + std::to_string(h.to) +
               (h.action == label_action::promote ? "p" : "r") + "@" + std::to_string(h.time_ms);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace shoal::testing
