// router: the first stop of every inference. Resolves TENANT/MODEL + label/version to a version
// on its catalog copy, then hands the request to that snapshot's model host (spawned on first
// use) by delegation, so the host answers the requester directly.
#pragma once

#include <map>
#include <utility>

#include "actors/protocol.hpp"

namespace shoal {

struct router_state {
  catalog_ptr current;
  std::map<std::pair<model_id, uint32_t>, model_host_actor> hosts;
  static inline const char* name = "router";
};

router_actor::behavior_type router(router_actor::stateful_pointer<router_state> self,
                                   catalog_actor catalog, catalog_ptr initial,
                                   caf::timespan load_timeout);

}  // namespace shoal
