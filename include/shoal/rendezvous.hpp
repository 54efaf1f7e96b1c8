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
#include <string>
#include <string_view>
#include <vector>

namespace shoal {

/// Returns the weight of `node_id` for `key`; higher comes first.
uint64_t rendezvous_score(std::string_view key, std::string_view node_id);

/// Returns `node_ids` ordered by rendezvous score for `key`, highest first (ties, which need a
/// 64-bit collision, by id).
std::vector<std::string> rendezvous_order(std::string_view key, std::vector<std::string> node_ids);

}  // namespace shoal
