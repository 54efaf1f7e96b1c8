#include "actors/model_loader.hpp"

#include "shoal/base/log.hpp"

namespace shoal {

result<model_ptr> load_snapshot(const snapshot_store& store, const catalog& view,
                                const model_id& id, uint32_t version, bool& damaged) {
  damaged = false;
  const auto* entry = view.find(id);
  const snapshot_info* snap = entry ? entry->find(version) : nullptr;
  if (snap == nullptr) {
    return status::not_found("model " + id.str() + " has no version " + std::to_string(version));
  }
  auto bytes = store.get(snap->sha256);
  if (!bytes && bytes.error().code() == status_code::not_found) {
    // In the catalog (replicated from the node it was pushed to) but not stored here.
    return status::unavailable("snapshot " + id.str() + " version " + std::to_string(version) +
                               " is not stored on this node: it was pushed through another "
                               "node and its bytes have not been copied here");
  }
  if (!bytes && bytes.error().code() == status_code::corruption) {
    damaged = true;
    return status::corruption("this node's copy of " + id.str() + " version " +
                              std::to_string(version) +
                              " was damaged (removed; a good copy is fetched)");
  }
  if (!bytes) {
    log_error("cannot read snapshot",
              {{"model", id.str()}, {"version", version}, {"error", bytes.error().to_string()}});
    return bytes.error();
  }
  auto loaded = load_model(*bytes);
  if (!loaded) {
    log_error("cannot load snapshot",
              {{"model", id.str()}, {"version", version}, {"error", loaded.error().to_string()}});
    return status::corruption("stored snapshot " + id.str() + " version " +
                              std::to_string(version) +
                              " does not load: " + loaded.error().message());
  }
  return model_ptr(std::move(*loaded));
}

model_loader_actor::behavior_type model_loader(
    model_loader_actor::stateful_pointer<model_loader_state> self,
    std::shared_ptr<snapshot_store> store, catalog_ptr initial, catalog_actor catalog) {
  self->state.store = std::move(store);
  self->state.current = std::move(initial);
  self->state.catalog = std::move(catalog);
  return {
      [=](load_atom, const model_id& id, uint32_t version) -> caf::result<model_ptr> {
        bool damaged = false;
        auto m = load_snapshot(*self->state.store, *self->state.current, id, version, damaged);
        if (damaged) self->send(self->state.catalog, damaged_atom_v, id, version);
        if (!m) return to_error(m.error());
        return std::move(*m);
      },
      [=](catalog_atom, catalog_ptr& next) { self->state.current = std::move(next); },
  };
}

}  // namespace shoal
