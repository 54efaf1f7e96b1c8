// access: who may call what, for the node's front ends (HTTP and ZeroMQ).
//
// With a keys file (keys_file / --keys-file), every call but the health endpoints needs a key:
// none, or one the file does not hold, is unauthenticated (HTTP 401). A tenant's key reaches
// only that tenant's models; another tenant's model answers exactly what a missing model
// answers (not_found, "no model globex/bot"), on inference, metadata, list and every snapshot
// command, so a tenant cannot even learn which models others have. `shoal models` lists only
// the caller's own. Admin keys reach everything. Node and cluster status (names, addresses,
// counts; no tenant's data) need a valid key of any kind.
// Without a keys file every call is open (the embedded default; the node says so at start).
//
// Thread-safety: key_board may be used from any thread; the functions are pure.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/serving/api.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// The keys in force, swapped whole on reload (SIGHUP). Shared by the front-end threads: each
/// keeps its own reference to the keys it last read (current_here) and reads them again only
/// when a reload changed the generation, so a request takes no lock and touches no reference
/// count another core writes (a mutex and a shared count per request cost 8 front-end threads
/// more than their models did); a reload never pauses serving.
class key_board {
 public:
  /// `keys` null: open (no keys file).
  explicit key_board(std::shared_ptr<const key_table> keys)
      : id_(next_id().fetch_add(1, std::memory_order_relaxed)), keys_(std::move(keys)) {}
  std::shared_ptr<const key_table> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_;
  }
  /// The keys in force as this thread last read them (null: open); valid until this thread
  /// calls again. A reload is seen by the next call after it.
  const key_table* current_here() const {
    struct cache {
      uint64_t board = 0, generation = 0;
      std::shared_ptr<const key_table> keys;
    };
    thread_local cache here;
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    if (here.board != id_ || here.generation != generation) {
      here.keys = current();
      here.board = id_;
      here.generation = generation;
    }
    return here.keys.get();
  }
  void replace(std::shared_ptr<const key_table> keys) {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_ = std::move(keys);
    generation_.fetch_add(1, std::memory_order_release);
  }

 private:
  static std::atomic<uint64_t>& next_id() {
    static std::atomic<uint64_t> n{1};
    return n;
  }
  const uint64_t id_;  // unique in the process (a board made at a freed one's address is new)
  mutable std::mutex mutex_;  // guards keys_ (a pointer copy or swap)
  std::shared_ptr<const key_table> keys_;
  // Bumped by replace(); read by every request, written once per reload (no bouncing).
  std::atomic<uint64_t> generation_{1};
};

/// Returns who presents `key` (nullopt: none was sent) under `keys` (null: open, everyone is
/// admin), or unauthenticated saying how to send one (`how`: "Authorization: Bearer KEY" for
/// HTTP, "--key KEY or SHOAL_KEY" for the CLI).
result<principal> authenticate(const key_table* keys, std::optional<std::string_view> key,
                               const std::string& how);

/// Returns ok when `who` may make `call`, else the error to answer (see the file comment).
status authorize(const principal& who, const api_call& call);

/// Returns the models of `all` that `who` may see.
std::vector<model_entry> visible_models(const principal& who, std::vector<model_entry> all);

}  // namespace shoal
