#include "actors/router.hpp"

#include "actors/model_host.hpp"

namespace shoal {

router_actor::behavior_type router(router_actor::stateful_pointer<router_state> self,
                                   catalog_actor catalog, catalog_ptr initial,
                                   caf::timespan load_timeout) {
  self->state.current = std::move(initial);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& hosts = self->state.hosts;
    for (auto it = hosts.begin(); it != hosts.end(); ++it) {
      if (it->second.address() == msg.source) {
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
          auto host = self->spawn<caf::linked>(model_host, catalog, req.id, *version, load_timeout);
          self->monitor(host);
          it = self->state.hosts.emplace(key, host).first;
        }
        req.version = *version;
        return self->delegate(it->second, infer_atom_v, std::move(req));
      },
      [=](catalog_atom, catalog_ptr& next) { self->state.current = std::move(next); },
  };
}

}  // namespace shoal
