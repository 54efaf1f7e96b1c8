#include "actors/router.hpp"

#include "actors/model_host.hpp"

namespace shoal {
namespace {

void publish_loaded(router_actor::stateful_pointer<router_state> self) {
  if (self->state.board) {
    self->state.board->publish_loaded(std::make_shared<const loaded_models>(self->state.loaded));
  }
}

}  // namespace

router_actor::behavior_type router(router_actor::stateful_pointer<router_state> self,
                                   catalog_actor catalog, catalog_ptr initial,
                                   caf::timespan load_timeout,
                                   std::shared_ptr<serving_board> board) {
  self->state.current = std::move(initial);
  self->state.board = std::move(board);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& hosts = self->state.hosts;
    for (auto it = hosts.begin(); it != hosts.end(); ++it) {
      if (it->second.address() == msg.source) {
        if (self->state.loaded.erase(it->first) > 0) publish_loaded(self);
        hosts.erase(it);
        return;
      }
    }
  });
  return {
      [=](infer_atom, infer_request& req) -> caf::result<infer_result> {
        auto version = self->state.current->resolve(req.id, req.version, req.label);
        if (!version) return to_error(version.error());
        auto key = std::make_pair(req.id, *version);
        auto it = self->state.hosts.find(key);
        if (it == self->state.hosts.end()) {
          // Linked: hosts end with the router (node shutdown); monitored: the router forgets a
          // host that quit after a failed load, so the next request loads afresh.
          auto host = self->spawn<caf::linked>(model_host, catalog, req.id, *version, load_timeout,
                                               caf::actor_cast<router_actor>(self));
          self->monitor(host);
          it = self->state.hosts.emplace(key, host).first;
        }
        req.version = *version;
        return self->delegate(it->second, infer_atom_v, std::move(req));
      },
      [=](catalog_atom, catalog_ptr& next) { self->state.current = std::move(next); },
      [=](loaded_atom, model_id& id, uint32_t version, model_ptr& m) {
        auto key = std::make_pair(std::move(id), version);
        // Only a host the router still knows: one that died since has been forgotten.
        if (self->state.hosts.count(key) == 0) return;
        self->state.loaded[key] = std::move(m);
        publish_loaded(self);
      },
  };
}

}  // namespace shoal
