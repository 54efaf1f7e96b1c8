// catalog_actor: the node's single writer of durable state. Owns the snapshot store, the journal
// and this node's replica of the cluster's catalog (replicated_catalog.hpp: changes stamped with
// origin, seq and hybrid-logical-clock time, made durable before they count). Runs detached (its own thread) because everything it does can
// block on the disk: fsync on push and label moves, reading and verifying snapshots for loads.
// After each change it publishes an immutable catalog copy to the serving board (before it
// replies, so a client that moved a label sees the move in its next request) and to its listeners
// (router, gateway).
//
// Replication: changes made here are pushed at once to every live peer; every sync_interval it
// sends its frontier to one random live peer (anti-entropy); changes from peers are checked,
// journaled (fsync) and only then added. See include/shoal/catalog_sync.hpp for the rules.
#pragma once

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/protocol.hpp"
#include "shoal/catalog.hpp"
#include "shoal/catalog_journal.hpp"
#include "shoal/replicated_catalog.hpp"
#include "shoal/serving_view.hpp"
#include "shoal/snapshot_store.hpp"

namespace shoal {

/// What the node opened before spawning the actor (so start-up errors are reported plainly).
struct catalog_storage {
  std::shared_ptr<snapshot_store> store;
  std::shared_ptr<catalog_journal> journal;
  std::shared_ptr<replicated_catalog> replica;  // as replayed from the journal
  size_t max_push_bytes = 256u << 20;
  std::shared_ptr<serving_board> board;  // may be null (then only the listeners hear of changes)
};

struct catalog_state {
  std::shared_ptr<snapshot_store> store;
  std::shared_ptr<catalog_journal> journal;
  std::shared_ptr<replicated_catalog> replica;
  std::vector<catalog_listener> listeners;
  // Replication (catalog_sync.hpp), once the node sends (cluster, membership, our address).
  membership_actor members;                // unset in a node without a cluster port (tests)
  std::string self_address;                // our cluster address
  std::vector<std::string> peers;          // live peers' cluster addresses, refreshed each tick
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds sync_interval{1000};
  int64_t last_refusal_log_ms = 0;
  size_t max_push_bytes = 0;
  std::shared_ptr<serving_board> board;
  static inline const char* name = "catalog";
};

catalog_actor::behavior_type catalog_behavior(catalog_actor::stateful_pointer<catalog_state> self,
                                              catalog_storage storage);

}  // namespace shoal
