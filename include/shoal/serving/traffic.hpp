// traffic: which snapshots this node's clients ask for that other nodes hold, and the rule that
// decides when this node takes a copy of one (a traffic-following replica) and when it lets the
// copy go again.
//
// Why: with replication_factor R, a request reaching one of N nodes finds no copy there (N-R)/N
// of the time and costs a forward. Placement keeps R copies where rendezvous hashing puts them;
// traffic decides the rest: a model whose requests keep arriving at a node that does not hold it
// gets a copy there (verified against its sha256 like every copy) and is served locally; when its
// requests stop (none answered for idle_ms), the extra copy is released. Cold models stay on R
// nodes; hot ones end up wherever their clients send them.
//
// Thread-safety: traffic_meter may be called from any thread (each front-end thread adds its
// counts about once a second, under a mutex: never per request). traffic_follower is a plain
// value with one owner (the catalog actor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "shoal/serving/serving_view.hpp"

namespace shoal {

/// Forwarded requests per snapshot, added up from every front-end thread until taken.
class traffic_meter {
 public:
  /// Adds one thread's counts.
  void add(const std::map<snapshot_key, uint64_t>& counts);
  /// Returns the counts added since the last take, and starts again from zero.
  std::map<snapshot_key, uint64_t> take();

 private:
  std::mutex mutex_;
  std::map<snapshot_key, uint64_t> counts_;
};

/// When to follow traffic (node_config has the keys and their documentation).
struct follow_settings {
  bool enabled = true;
  double min_rps = 20;        // forwards per second, sustained over `window_ms`, that earn a copy
  int64_t window_ms = 3000;   // how long the rate is measured before a copy is taken
  int64_t idle_ms = 300000;   // a copy that answered nothing for this long is released
  size_t max_copies = 1000;   // extra copies held at most (each costs disk and, when used, memory)
};

/// The decision (pure; time comes in as now_ms). The owner feeds it the forward counts each
/// tick, asks which snapshots to copy, tells it which copies it holds, and asks which to drop.
class traffic_follower {
 public:
  explicit traffic_follower(follow_settings s) : s_(s) {}

  /// Records forwards counted since the last call, at `now_ms`.
  void observe(const std::map<snapshot_key, uint64_t>& forwards, int64_t now_ms);

  /// Returns the snapshots whose forward rate over the last window reached min_rps and that are
  /// not held here for traffic yet, busiest first, so that at most max_copies are held. Each is
  /// returned once until it is held or forgotten (the owner starts its copy).
  std::vector<snapshot_key> to_copy(int64_t now_ms);

  /// Records that a copy of `key` is held here for traffic, used last at `now_ms`.
  void held(const snapshot_key& key, int64_t now_ms);
  /// Forgets a copy attempt of `key` that failed (it may be asked for again).
  void failed(const snapshot_key& key);
  /// Records that the held copy of `key` answered at `last_used_ms` (the model cache's stamp).
  void used(const snapshot_key& key, int64_t last_used_ms);

  /// Returns the held copies idle for idle_ms, and forgets them (the owner releases them).
  std::vector<snapshot_key> to_drop(int64_t now_ms);

  /// Returns whether `key` is held here for traffic.
  bool holds(const snapshot_key& key) const { return copies_.count(key) > 0; }
  /// Returns the copies held for traffic.
  size_t copies() const { return copies_.size(); }
  /// Returns the keys of the copies held for traffic.
  std::set<snapshot_key> held_keys() const {
    std::set<snapshot_key> out;
    for (const auto& [key, last] : copies_) out.insert(out.end(), key);
    return out;
  }
  const follow_settings& settings() const { return s_; }

 private:
  struct rate {
    int64_t window_start_ms = 0;
    uint64_t count = 0;       // forwards since window_start_ms
    bool asked = false;       // returned by to_copy, not yet held or failed
  };
  follow_settings s_;
  std::map<snapshot_key, rate> rates_;
  std::map<snapshot_key, int64_t> copies_;  // held for traffic -> last use (ms)
};

}  // namespace shoal
