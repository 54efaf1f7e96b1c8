// peer_directory: the live peers a front-end thread may forward an inference to, as the membership
// actor last saw them: each one's data-plane address and load. Published through the serving
// board with the catalog and the loaded models (serving_view.hpp), so a front-end thread decides
// where a request goes with the same one read it resolves the request with.
//
// Thread-safety: an immutable value once published.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace shoal {

/// A live peer, as a front end forwards to it.
struct peer_info {
  std::string id;            // node id (what the catalog names holders by)
  std::string name;          // for people: error messages and logs
  std::string data_address;  // HOST:PORT of its data plane; empty: it has none (cannot forward)
  uint32_t in_flight = 0;    // inference requests it reported answering (gossiped load)
  double rtt_ms = -1;        // membership's smoothed round trip to it; -1: not measured yet
  friend bool operator==(const peer_info& a, const peer_info& b) {
    return a.id == b.id && a.name == b.name && a.data_address == b.data_address &&
           a.in_flight == b.in_flight && a.rtt_ms == b.rtt_ms;
  }
};

/// This node's id and its live peers (alive members other than itself) by id.
struct peer_directory {
  std::string self_id;  // empty: no cluster (a node alone never forwards)
  std::map<std::string, peer_info> alive;

  /// Returns the peers to try for a snapshot of `key` held by `holders`, in the order a request
  /// tries them (near ones first, then rendezvous order, the less loaded of the first two first:
  /// replica_attempts); only live peers with a data address, never this node.
  std::vector<peer_info> attempts(std::string_view key, const std::set<std::string>& holders) const;

  /// Returns whether this node should forward a request for a snapshot held by `holders`: it is
  /// in a cluster, the snapshot is recorded as held somewhere, and not here.
  bool held_elsewhere(const std::set<std::string>& holders) const {
    return !self_id.empty() && !holders.empty() && holders.count(self_id) == 0;
  }

  friend bool operator==(const peer_directory& a, const peer_directory& b) {
    return a.self_id == b.self_id && a.alive == b.alive;
  }
};

}  // namespace shoal
