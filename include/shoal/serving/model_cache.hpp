// model_cache: which loaded snapshots a node evicts when its models outgrow the memory budget
// (`model_memory_mb`). Pure policy; the router owns the loaded snapshots and acts on it.
//
// The policy: least recently used first, except that a snapshot a label pointed at until
// recently (the "previous production" a rollback goes back to) is kept warm for a while and
// evicted only when nothing else is left. Eviction goes down to a low-water mark below the
// budget, so that a node under a stream of cold loads evicts in batches rather than on every load.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "shoal/serving/serving_view.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// A loaded snapshot the cache may evict.
struct eviction_candidate {
  snapshot_key key;
  uint64_t bytes = 0;
  int64_t last_used_ms = 0;
  bool pinned = false;  // recently replaced label target: evicted last
};

/// Returns the keys to evict, in order, so that `used` bytes fall to `target` or below: unpinned
/// snapshots least recently used first, then pinned ones the same way. Returns every candidate
/// when even that is not enough.
std::vector<snapshot_key> choose_evictions(std::vector<eviction_candidate> candidates,
                                           uint64_t used, uint64_t target);

/// Returns true if a label of `entry` pointed at `version` and moved away from it (promote or
/// rollback) at most `window_ms` before `now_ms` (wall clock, as label moves are stamped).
bool recently_replaced(const model_entry& entry, uint32_t version, int64_t now_ms,
                       int64_t window_ms);

/// Returns the default model memory budget for a host with `total_bytes` of RAM: half of it.
uint64_t default_model_memory(uint64_t total_bytes);

}  // namespace shoal
