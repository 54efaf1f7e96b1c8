// rendezvous: highest-random-weight hashing (Thaler & Ravishankar, 1998). Every node computes the
// same order of nodes for a key (TENANT/MODEL) from the node ids alone: a snapshot lives on the
// first R live nodes of that order, and requests try its holders in that order. When a node
// joins or leaves, only the keys whose first R change move; nothing else does.
//
// The score is a fixed 64-bit hash (FNV-1a over key and node id, then the MurmurHash3 finalizer),
// the same on every platform and build: never std::hash, which may differ between nodes.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace shoal {

/// Returns the weight of `node_id` for `key`; higher comes first.
uint64_t rendezvous_score(std::string_view key, std::string_view node_id);

/// Returns `node_ids` ordered by rendezvous score for `key`, highest first (ties, which need a
/// 64-bit collision, by id).
std::vector<std::string> rendezvous_order(std::string_view key, std::vector<std::string> node_ids);

/// Returns the order in which a router tries the holders of a snapshot of `key`: the holders
/// that are live (in `live_load`: node id -> requests in flight there), in rendezvous order,
/// except that the less loaded of the first two goes first ("power of two choices"; a tie keeps
/// the rendezvous order, so an idle cluster sends each model to one replica and keeps it warm).
/// With round trips (`rtt_ms`: node id -> ms, where measured), far holders go after near ones:
/// a holder is far when its round trip exceeds twice the nearest holder's plus far_margin_ms
/// (a slow link between two sites or racks); an unmeasured one counts as near.
std::vector<std::string> replica_attempts(std::string_view key,
                                          const std::vector<std::string>& holders,
                                          const std::map<std::string, uint32_t>& live_load,
                                          const std::map<std::string, double>& rtt_ms = {});

/// The round trip a holder may exceed the nearest one's double by and still count as near.
inline constexpr double far_margin_ms = 20;

}  // namespace shoal
