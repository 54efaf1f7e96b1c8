// sample_member: one member entry with every field set, for the codec tests of the two
// boundaries that carry members (gossip between nodes, cluster status to clients).
#pragma once

#include <string>

#include "shoal/cluster/membership.hpp"

namespace shoal::testing {

/// Returns a suspect member `id` with addresses, incarnation, heartbeat and load all set.
inline member sample_member(const std::string& id) {
  member m;
  m.id = id;
  m.name = "node " + id;
  m.cluster_address = "127.0.0.1:7420";
  m.http_address = "127.0.0.1:7422";
  m.zmq_address = "[::1]:7421";
  m.incarnation = 1795385625011;
  m.status = member_status::suspect;
  m.heartbeat = 42;
  m.load = {3, 17, 1u << 30};
  return m;
}

}  // namespace shoal::testing
