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
// journaled (fsync) and only then added. See include/shoal/cluster/catalog_sync.hpp for the rules.
//
// Group commit: a push is checked (parsed like a load) and its bytes written to a temp file by a
// pool of writers (detached actors), several at once, while the catalog actor goes on with other
// messages. Its catalog changes (the version's grant, the snapshot, its labels and our hold) wait
// in a queue for the next group commit, which makes every file queued since the last one
// durable and puts it in place (snapshot_store::store_staged: one syncfs for the files, one for
// their names, instead of two fsyncs per push), then writes one journal record with one
// fdatasync, then publishes once to the readers and pushes once to the peers. Each push is
// answered only after the commit that holds it is durable. Changes for a model that still has
// changes in the queue are planned after the queue is committed, so numbers and labels are
// planned on everything before them, as one push at a time would; concurrent pushes count
// against their tenant's limits while they are in the pipeline.
//
// Placement: a snapshot's bytes belong on the first replication_factor live members in
// rendezvous order of TENANT/MODEL (rendezvous.hpp). A push stores the bytes here, sends a copy
// to those members and answers once they hold it (or says how many do). Every other tick each
// node checks the versions it should hold and copies missing ones from a live holder (verified
// by hash), so copies come back when a holder dies or a node joins. Holding is recorded in the
// catalog (hold changes), which is what `snapshot list` shows and routing reads.
//
// Knowing whether a model is good (issue 18): validation sets are stored like snapshot bytes and
// copied to the model's placement members; a promote of production runs the validation gate on
// a live holder of both versions (a detached worker per run) and keeps the report; a promote also
// starts the watch (a catalog trial), which this actor judges every tick against the figures the
// front doors recorded (trial_meter), rolling production back once when a rule stays broken.
//
// Label moves warm first: before a promote or rollback is committed, every live holder of the
// target version loads it (a warm-up inference), so the old version serves until the new one is
// in memory where requests will go: no cold-load spike, no window of errors. A version that
// served before is still loaded (hosts stay until the model cache of a later release evicts
// them), so a rollback right after a promote warms in a round trip.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actors/protocol.hpp"
#include "shoal/cluster/replicated_catalog.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/serving_view.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/serving/traffic.hpp"
#include "shoal/serving/trials.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/store/catalog_journal.hpp"
#include "shoal/store/snapshot_store.hpp"

namespace shoal {

/// What the node opened before spawning the actor (so start-up errors are reported plainly).
struct catalog_storage {
  std::shared_ptr<snapshot_store> store;
  std::shared_ptr<catalog_journal> journal;
  std::shared_ptr<replicated_catalog> replica;  // as replayed from the journal
  size_t max_push_bytes = 256u << 20;
  std::shared_ptr<serving_board> board;  // may be null (then only the listeners hear of changes)
  size_t replication_factor = 2;         // nodes that keep each snapshot's bytes
  bool one_node = false;                 // started without seeds: alone until others join
  limits_config limits;                  // per-tenant models and stored bytes (pushes)
  std::shared_ptr<node_metrics> metrics;  // replication figures for /metrics (may be null)
  // Traffic-following copies: the front doors' forward counts (null: none taken), the rule's
  // settings, and the model memory budget (no copy is taken when loaded models fill it).
  std::shared_ptr<traffic_meter> traffic;
  follow_settings follow;
  uint64_t model_memory_budget = UINT64_MAX;
  // What front ends saw of versions under trial: the watch after a production move judges it
  // (null: no watch, no automatic rollback).
  std::shared_ptr<trial_meter> trials;
  // The push writers run detached (blocking disk work, each its own thread); tests on CAF's
  // deterministic scheduler spawn them scheduled, so that sched.run() runs them too.
  bool detached_writers = true;
  std::string node_name;  // kept with this node's join (shoal cluster forget finds it by name)
};

// Catalog changes waiting for the next group commit, and who waits for them.
struct queued_commit {
  std::vector<catalog_change> changes;  // not stamped yet: stamp order is commit order
  std::function<void(status)> done;     // called once the batch is durable (or failed)
};

// What pushes still in the pipeline (stored or being stored, not committed) add to a tenant's
// usage, so that concurrent pushes cannot together pass its model and byte limits.
struct pending_usage {
  std::map<std::string, size_t> new_models;  // model name -> pushes in flight creating it
  uint64_t bytes = 0;
};

struct catalog_state {
  limits_config limits;
  std::shared_ptr<traffic_meter> traffic;   // null: no traffic-following copies
  std::optional<traffic_follower> follower;
  uint64_t model_memory_budget = UINT64_MAX;
  serving_board::cache board_cache;         // for the loaded models' last use
  int64_t last_budget_log_ms = 0;
  bool one_node = false;  // see catalog_storage
  std::shared_ptr<node_metrics> metrics;  // may be null
  // Copies placement wants here that are not here yet: sha256 -> when first seen missing
  // (steady ms), for the replication lag in /metrics.
  std::map<std::string, int64_t> missing_since;
  std::shared_ptr<snapshot_store> store;
  std::shared_ptr<catalog_journal> journal;
  std::shared_ptr<replicated_catalog> replica;
  std::vector<catalog_listener> listeners;
  // Replication (catalog_sync.hpp), once the node sends (cluster, membership, our address).
  membership_actor members;                // unset in a node without a cluster port (tests)
  peer_request_sink router;                // this node's router: warms versions before a move
  std::string self_address;                // our cluster address
  std::vector<std::string> peers;          // live peers' cluster addresses, refreshed each tick
  std::map<std::string, std::string> live; // live members (us included): id -> cluster address
  std::map<std::string, std::string> names;  // members seen: id -> node name (for reports)
  size_t replication_factor = 2;
  std::set<std::string> fetching;          // sha256s being copied here now
  uint64_t ticks = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds sync_interval{1000};
  int64_t last_refusal_log_ms = 0;
  size_t max_push_bytes = 0;
  std::shared_ptr<serving_board> board;
  // Group commit (see the header).
  std::vector<caf::actor> writers;           // check and store pushed bytes, several at once
  size_t next_writer = 0;
  std::vector<queued_commit> queued;
  std::set<model_id> queued_models;          // models with changes in `queued`
  bool flush_sent = false;                   // a flush_atom is on its way to us
  std::map<std::string, pending_usage> pending;  // by tenant
  std::vector<snapshot_store::staged> staged;  // pushed bytes the next group commit stores
  std::map<std::string, catalog::usage> usage_cache;  // by tenant; cleared by every change
  int64_t view_at_ms = -1;                   // steady ms of the last fresh member view
  std::shared_ptr<trial_meter> trials;       // see catalog_storage
  // Watched models breaking a rule of their policy now, since when (steady ms).
  std::map<model_id, int64_t> watch_broken_since;
  std::string node_name;  // see catalog_storage
  static inline const char* name = "catalog";
};

catalog_actor::behavior_type catalog_behavior(catalog_actor::stateful_pointer<catalog_state> self,
                                              catalog_storage storage);

}  // namespace shoal
