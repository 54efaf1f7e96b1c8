// model_loader: reads a snapshot's bytes from the store, checks them against their SHA-256 and
// parses them into a model, for the model hosts. A node runs a small pool of loaders (detached:
// reading is blocking disk work), so cold loads proceed side by side and never queue behind the
// catalog actor's pushes and replication. A loader finds a version's bytes in its own catalog
// copy (it listens to the catalog actor); a damaged copy is reported to the catalog actor, which
// removes it and releases this node's holds.
#pragma once

#include <memory>

#include "actors/protocol.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/store/snapshot_store.hpp"

namespace shoal {

/// Loads (id, version) as `view` describes it from `store`. Errors: not_found (no such
/// version), unavailable (the catalog knows it but this node does not store its bytes),
/// corruption (the bytes fail their checksum: `damaged` is set; or they do not parse), or the
/// store's error.
result<model_ptr> load_snapshot(const snapshot_store& store, const catalog& view,
                                const model_id& id, uint32_t version, bool& damaged);

struct model_loader_state {
  std::shared_ptr<snapshot_store> store;
  catalog_ptr current;
  catalog_actor catalog;
  static inline const char* name = "model_loader";
};

/// @pre `initial` and `store` are not null
model_loader_actor::behavior_type model_loader(
    model_loader_actor::stateful_pointer<model_loader_state> self,
    std::shared_ptr<snapshot_store> store, catalog_ptr initial, catalog_actor catalog);

}  // namespace shoal
