// gateway: the front door's way into the actor system (its cluster_port, in node.cpp). What a
// front-end thread cannot answer itself arrives as (call_atom, api_call, callback), already
// authenticated and authorized by the front door (serving/front_door.hpp); the gateway asks the
// router or the catalog actor and calls the callback with the reply. Reads (list, models, status) come
// from its own catalog copy; cluster status from the membership actor. The gateway never
// touches a socket.
#pragma once

#include <string>

#include "actors/protocol.hpp"

namespace shoal {

struct gateway_config {
  std::string node_name;
  caf::timespan infer_timeout = std::chrono::seconds(5);
  caf::timespan write_timeout = std::chrono::seconds(120);  // push and label moves (fsync)
  caf::timespan status_timeout = std::chrono::seconds(2);   // cluster status from membership
};

struct gateway_state {
  catalog_ptr current;
  static inline const char* name = "gateway";
};

gateway_actor::behavior_type gateway(gateway_actor::stateful_pointer<gateway_state> self,
                                     router_actor router, catalog_actor catalog,
                                     catalog_ptr initial, membership_actor members,
                                     gateway_config cfg);

}  // namespace shoal
