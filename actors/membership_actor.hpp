// membership_actor: runs the membership core (include/shoal/cluster/membership.hpp) on CAF's
// middleman.
//
// It ticks every gossip interval, turns the core's outgoing messages into (gossip, bytes) sends
// to the peers' published membership actors, and feeds what arrives back into the core. Peers are
// known by cluster address; a handle per address is obtained with an asynchronous connect
// request to the middleman actor (never the blocking remote_actor), at most one in flight per
// address, with the messages for it queued meanwhile (a few, then dropped: gossip tolerates loss).
// A failed connect or a lost connection (down_msg) is reported to the core as unreachable(): a
// hint only, since CAF 0.17 sees neither a paused peer nor one cut off without a reset; the
// core's phi-accrual detector and probes decide who is alive.
//
// Authentication: every message is an envelope with an HMAC of its payload under the cluster
// secret (gossip_codec). A message that fails it is dropped, logged, and answered with a refusal
// the sender logs too.
//
// Catalog replication rides the same links: the catalog actor asks it to send sync payloads
// (replicate), and the catalog-channel envelopes that arrive go, once authenticated, to the
// catalog actor (cfg.catalog).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/protocol.hpp"
#include "shoal/cluster/membership.hpp"
#include "shoal/cluster/peer_directory.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/serving_view.hpp"

namespace shoal {

struct membership_actor_config {
  membership_config core;
  std::string secret;                    // empty: messages carry no MAC and none is required
  peer_connector connector;              // the middleman actor (plain or TLS): connects go here
  std::shared_ptr<serving_board> board;  // for the loaded models we gossip; may be null
  uint64_t model_memory_budget = 0;      // 0: gossip the host's available memory as free
  std::shared_ptr<const in_flight_counter> in_flight;  // requests being answered; may be null
  catalog_sync_sink catalog;             // gets peers' catalog sync payloads; may be unset
  peer_request_sink router;              // answers peers' inference requests; may be unset
  // Told the live peers (their data-plane addresses and load) whenever they change, at once:
  // the front ends forward by it, and the data plane drops connections to the dead. May be unset.
  std::function<void(std::shared_ptr<const peer_directory>)> on_peers;
  std::shared_ptr<const node_metrics> metrics;  // where requests were served (gossiped); may be null
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds call_timeout{30000};  // a peer request (snapshot bytes) end to end
  size_t max_queued_per_peer = 8;
};

struct membership_actor_state {
  struct peer_link {
    std::optional<membership_actor> handle;
    bool connecting = false;
    std::deque<std::string> queued;  // encoded envelopes waiting for the connect
    // Requests waiting for the connect: called with the handle, or with an error.
    std::deque<std::function<void(const membership_actor*, const caf::error&)>> calls;
  };
  std::unique_ptr<membership> core;
  membership_actor_config cfg;
  std::map<std::string, peer_link> links;               // by cluster address
  std::map<std::string, int64_t> last_refusal_log_ms;   // rate-limits refusal logs per address
  serving_board::cache board_cache;
  int64_t memory_read_ms = -1;   // when free_memory was last read
  uint64_t free_memory = 0;      // the host's MemAvailable, caps free_model_memory
  bool leaving = false;
  std::shared_ptr<const peer_directory> peers;  // as last told to cfg.on_peers
  int64_t peers_published_ms = 0;
  static inline const char* name = "membership";
};

membership_actor::behavior_type membership_behavior(
    membership_actor::stateful_pointer<membership_actor_state> self, membership_actor_config cfg);

}  // namespace shoal
