#include "shoal/serving/model_cache.hpp"

#include <algorithm>

namespace shoal {

std::vector<snapshot_key> choose_evictions(std::vector<eviction_candidate> candidates,
                                           uint64_t used, uint64_t target) {
  std::sort(candidates.begin(), candidates.end(),
            [](const eviction_candidate& a, const eviction_candidate& b) {
              if (a.pinned != b.pinned) return !a.pinned;
              if (a.last_used_ms != b.last_used_ms) return a.last_used_ms < b.last_used_ms;
              return a.key < b.key;  // deterministic among equals
            });
  std::vector<snapshot_key> out;
  for (const auto& c : candidates) {
    if (used <= target) break;
    out.push_back(c.key);
    used -= std::min(used, c.bytes);
  }
  return out;
}

bool recently_replaced(const model_entry& entry, uint32_t version, int64_t now_ms,
                       int64_t window_ms) {
  for (const auto& [name, state] : entry.labels) {
    // Walk back through this label's recent moves: any that left `version` counts.
    for (auto it = state.history.rbegin(); it != state.history.rend(); ++it) {
      if (now_ms - it->time_ms > window_ms) break;
      if (it->from == version && it->to != version) return true;
    }
  }
  return false;
}

uint64_t default_model_memory(uint64_t total_bytes) { return total_bytes / 2; }

}  // namespace shoal
