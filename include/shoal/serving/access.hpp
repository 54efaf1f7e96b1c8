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

/// The keys in force, swapped whole on reload (SIGHUP). Shared by the front-end threads:
/// a reader copies the pointer under a mutex held for that copy only (once per request, far
/// below the cost of the request), so a reload never pauses serving.
class key_board {
 public:
  /// `keys` null: open (no keys file).
  explicit key_board(std::shared_ptr<const key_table> keys) : keys_(std::move(keys)) {}
  std::shared_ptr<const key_table> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_;
  }
  void replace(std::shared_ptr<const key_table> keys) {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_ = std::move(keys);
  }

 private:
  mutable std::mutex mutex_;  // guards keys_ (a pointer copy or swap)
  std::shared_ptr<const key_table> keys_;
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
