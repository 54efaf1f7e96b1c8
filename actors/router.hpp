// router: the first stop of every inference the front ends could not answer from the serving
// board. Resolves TENANT/MODEL + label/version to a version on its catalog copy, then hands the
// request to that snapshot's model host (spawned on first use) by delegation, so the host answers
// the requester directly. When a host has its snapshot in memory, the router publishes the set of
// loaded snapshots to the serving board, so front ends answer the next requests themselves.
//
// In a cluster, a version whose bytes this node does not hold goes to a live holder (the
// catalog says who holds what): in rendezvous order, the less loaded of the first two first,
// as a request through the membership actor's links with a timeout; on a timeout or a failure
// the next holder is tried, so a holder's death costs latency, not errors. A peer's routed
// request is answered here from local hosts.
//
// The router is also the node's model cache: when the loaded snapshots outgrow the memory
// budget, it unloads the least recently used (model_cache.hpp) by taking them off the board and
// telling their hosts to leave. Nothing in flight fails: a front end answering from the board
// holds the model until it is done, and a host answers what is already in its mailbox first.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <memory>
#include <utility>
#include <vector>

#include "actors/protocol.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/serving_view.hpp"

namespace shoal {

struct router_state {
  catalog_ptr current;
  std::vector<model_loader_actor> loaders;  // hosts load through one of them (by snapshot)
  caf::timespan load_timeout{};
  // Routing to peers, once the node sends (cluster, membership, our node id).
  membership_actor members;
  std::string self_id;
  std::map<std::string, std::pair<std::string, uint32_t>> live;  // id -> (address, in flight)
  caf::timespan attempt_timeout{std::chrono::seconds(2)};       // one replica's answer
  std::map<std::pair<model_id, uint32_t>, model_host_actor> hosts;
  loaded_models loaded;                  // what the board shows; a subset of `hosts`
  std::shared_ptr<serving_board> board;  // may be null (then nothing is published)
  uint64_t memory_budget = 0;            // bytes of loaded models before evicting
  size_t micro_batch_texts = 64;         // passed to each host
  int64_t keep_replaced_warm_ms = 0;     // see node_config::keep_replaced_warm_s
  std::shared_ptr<node_metrics> metrics;  // may be null
  // Unloads since the last log line (logged at most every 10 s, not once per unload).
  uint64_t unloaded_since_log = 0;
  int64_t last_unload_log_ms = 0;
  static inline const char* name = "router";
};

/// The router's settings: the model cache's, and how many texts its hosts predict together.
struct router_settings {
  uint64_t budget_bytes = UINT64_MAX;
  int64_t keep_replaced_warm_ms = 600000;
  size_t micro_batch_texts = 64;  // see node_config::micro_batch_texts (0: each request alone)
  std::shared_ptr<node_metrics> metrics;  // cache and member figures for /metrics (may be null)
};

/// @pre `initial` is not null, `loaders` is not empty
router_actor::behavior_type router(router_actor::stateful_pointer<router_state> self,
                                   std::vector<model_loader_actor> loaders, catalog_ptr initial,
                                   caf::timespan load_timeout,
                                   std::shared_ptr<serving_board> board,
                                   router_settings memory = {});

}  // namespace shoal
