// serving_view: what a front end needs to answer an inference at once, on its own I/O thread,
// without a trip through the actors: the newest catalog (to resolve labels) and the snapshots
// that are loaded in memory.
//
// Why a shared view and not only messages: a short text predicts in about a microsecond, while
// handing a request to the router and the model host and the answer back costs several thread
// wake-ups; on a busy node that hand-off, not the model, bounded throughput. The actors still own
// every change (the catalog actor publishes catalogs, the router publishes which snapshots are
// loaded); front ends only read immutable views. Whatever a view cannot answer (a snapshot not yet
// loaded, a large batch) goes to the actors as before.
//
// Thread-safety: serving_board's members may be called from any thread. A serving_view is
// immutable once published.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/cluster/peer_directory.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/serving/model.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// A snapshot's key: (model, version).
using snapshot_key = std::pair<model_id, uint32_t>;

/// Returns milliseconds on the steady clock (the cache's notion of "recently used").
int64_t steady_now_ms();

/// A snapshot in memory as front ends and the router see it: the model, what it costs, and when it
/// last answered (the node's model cache evicts the least recently used).
struct resident_model {
  // What holding a loaded model costs the node beyond its own arrays: its host actor and
  // mailbox, its board entries, and its arrays rounded up to whole pages (each large array
  // is its own mapping, see run_node). Measured with bench/density.py: 128 KB resident per
  // loaded 113 KB model.
  static constexpr uint64_t overhead_bytes = 16 << 10;

  std::shared_ptr<const model> m;  // never null
  uint64_t bytes = 0;              // m->memory_bytes() + overhead_bytes, read once
  // Steady-clock milliseconds of the last answer. Shared mutable state on purpose: every
  // front-end thread stamps it (one relaxed load, and a store only when the millisecond changed)
  // and the router reads it when it chooses what to evict; a message per request would cost
  // far more than the answer itself.
  mutable std::atomic<int64_t> last_used_ms{0};

  resident_model(std::shared_ptr<const model> model, int64_t now_ms)
      : m(std::move(model)), bytes(m->memory_bytes() + overhead_bytes), last_used_ms(now_ms) {}
  /// Records a use at `now_ms`.
  void touch(int64_t now_ms) const {
    if (last_used_ms.load(std::memory_order_relaxed) != now_ms) {
      last_used_ms.store(now_ms, std::memory_order_relaxed);
    }
  }
};

/// The snapshots loaded in memory, by (model, version): an immutable value. with() and
/// without() return a changed copy that shares all but one shard with the original, so the
/// router can publish after every load or eviction without copying thousands of entries.
class loaded_models {
 public:
  using entry = std::shared_ptr<const resident_model>;

  loaded_models();

  /// Returns the snapshot's entry, or null when it is not loaded.
  const resident_model* find(const snapshot_key& key) const;
  /// Returns a copy with `key` set to `value` (replacing any entry it had). @pre value != null
  loaded_models with(const snapshot_key& key, entry value) const;
  /// Returns a copy without `key`.
  loaded_models without(const snapshot_key& key) const;
  /// Returns the number of loaded snapshots.
  size_t size() const { return size_; }
  /// Returns the sum of their bytes.
  uint64_t bytes() const { return bytes_; }
  /// Calls f(key, entry) for each loaded snapshot (in no particular order).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& shard : shards_) {
      for (const auto& [key, value] : *shard) f(key, value);
    }
  }

 private:
  static constexpr size_t shard_count = 64;
  using shard = std::map<snapshot_key, entry>;
  static size_t shard_of(const snapshot_key& key);

  std::vector<std::shared_ptr<const shard>> shards_;  // shard_count, never null
  size_t size_ = 0;
  uint64_t bytes_ = 0;
};

/// One published state. Every member is always set.
struct serving_view {
  std::shared_ptr<const catalog> catalog_copy;
  std::shared_ptr<const loaded_models> loaded;
  std::shared_ptr<const peer_directory> peers;  // where to forward what is held elsewhere
};

/// Holds the current serving_view. Writers publish a part; readers keep a per-thread cache that
/// is refreshed only when something was published since (one atomic load per read otherwise).
class serving_board {
 public:
  /// A reader's cached view. Owned by one thread; never shared.
  struct cache {
    const serving_board* board = nullptr;
    uint64_t generation = 0;
    std::shared_ptr<const serving_view> view;
  };

  /// Starts with an empty catalog, nothing loaded and no peers.
  serving_board();
  serving_board(const serving_board&) = delete;
  serving_board& operator=(const serving_board&) = delete;

  /// Publishes a new catalog; readers see it on their next read.
  void publish_catalog(std::shared_ptr<const catalog> next);
  /// Publishes a new set of loaded snapshots; readers see it on their next read.
  void publish_loaded(std::shared_ptr<const loaded_models> next);
  /// Publishes the live peers (the membership actor, when they change).
  void publish_peers(std::shared_ptr<const peer_directory> next);

  /// Returns the current view, refreshing `c` if anything was published since its last read.
  /// The reference stays valid until the next read through `c`.
  const serving_view& read(cache& c) const;

 private:
  void publish(std::shared_ptr<const catalog> cat, std::shared_ptr<const loaded_models> loaded,
               std::shared_ptr<const peer_directory> peers);

  mutable std::mutex mutex_;                  // guards view_; held only to copy or swap a pointer
  std::shared_ptr<const serving_view> view_;  // never null
  std::atomic<uint64_t> generation_;          // unique across boards (see publish)
};

/// Inference requests a node is answering right now, across all front-end threads; the
/// membership actor samples it each gossip interval and gossips it as the node's load, and the
/// front door holds it to max_in_flight. Shared mutable state on purpose (a message per request
/// would cost far more), kept per thread (see below) so that it is not shared per request.
class in_flight_counter {
  // One count per thread (by a thread index, modulo shard_count), each on a cache line of its
  // own: a single count that every front-end thread added to and took from twice per request
  // moved between their cores on every request. A request is counted on the shard of the
  // thread that took it and taken off the same shard wherever it ends.
  struct alignas(64) shard {
    std::atomic<int64_t> n{0};
  };
  static constexpr size_t shard_count = 64;

 public:
  /// Counts one request for as long as the returned guard lives.
  class guard {
   public:
    explicit guard(std::atomic<int64_t>* n) : n_(n) { n_->fetch_add(1, std::memory_order_relaxed); }
    ~guard() {
      if (n_ != nullptr) n_->fetch_sub(1, std::memory_order_relaxed);
    }
    guard(guard&& other) noexcept : n_(std::exchange(other.n_, nullptr)) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    guard& operator=(guard&&) = delete;

   private:
    std::atomic<int64_t>* n_;
  };

  /// Returns a guard that counts one request until it is destroyed.
  guard track() { return guard(&shards_[this_shard()].n); }
  /// Returns the number of requests being answered now (every shard read: for gauges and
  /// status, not per request).
  uint32_t now() const {
    int64_t sum = 0;
    for (const auto& s : shards_) sum += s.n.load(std::memory_order_relaxed);
    return sum > 0 ? static_cast<uint32_t>(sum) : 0;
  }
  /// now() as this thread read it at most `max_age` before `t` (per request: the admission
  /// check reads the other threads' counts once a millisecond, not on every request), plus
  /// this thread's own count of now.
  uint32_t now_recent(std::chrono::steady_clock::time_point t,
                      std::chrono::steady_clock::duration max_age) const {
    struct cache {
      const in_flight_counter* counter = nullptr;
      std::chrono::steady_clock::time_point at;
      int64_t others = 0;
    };
    thread_local cache here;
    const int64_t mine = shards_[this_shard()].n.load(std::memory_order_relaxed);
    if (here.counter != this || t - here.at > max_age) {
      here.counter = this;
      here.at = t;
      here.others = static_cast<int64_t>(now()) - mine;
    }
    const int64_t sum = here.others + mine;
    return sum > 0 ? static_cast<uint32_t>(sum) : 0;
  }

 private:
  static size_t this_shard() {
    static std::atomic<size_t> next{0};
    thread_local const size_t index = next.fetch_add(1, std::memory_order_relaxed) % shard_count;
    return index;
  }
  std::array<shard, shard_count> shards_{};
};

/// What a front end can do with a request on its own thread.
struct inline_target {
  /// Set when the request fails as the actors would fail it too (unknown model, version, label).
  std::optional<status> error;
  /// When no error: the version the request resolves to.
  uint32_t version = 0;
  /// When no error: the loaded model to answer from (its last use stamped), or null when the
  /// request must go elsewhere with `version` (not loaded, or more than `max_texts` texts).
  std::shared_ptr<const model> m;
  /// When no error and no `m`: the nodes recorded as holding `version` (catalog holders), valid
  /// while the view is.
  const std::set<std::string>* holders = nullptr;
  /// `version` is production under a watch: count its answers and failures (trials.hpp).
  bool on_trial = false;
  /// Sampled for a shadow or watch comparison: the loaded trial version to predict this request
  /// too, after answering it (null: not sampled, or that version is not loaded here).
  std::shared_ptr<const model> shadow;
  uint32_t shadow_version = 0;
};

/// Resolves `req` against `view` and finds its loaded snapshot (see inline_target). Applies the
/// model's trial: a request for production is answered by a canary's version with the canary's
/// share; one answered by production under a shadow (or a watch not yet over: the clock is read
/// only then) is sampled with the trial's share for `shadow`.
inline_target find_inline(const serving_view& view, const infer_request& req, size_t max_texts);

/// Returns true with probability `ppm` / 1,000,000 (a per-thread generator: no shared state).
bool sample_share(uint32_t ppm);

}  // namespace shoal
