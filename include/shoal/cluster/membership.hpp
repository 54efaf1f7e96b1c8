// membership: who is in the cluster, as one node sees it. SWIM-style gossip of a member table
// with a phi-accrual failure detector per peer, indirect probes before suspicion, refutation by
// incarnation, and graceful leave. The member table's merge is a join: deterministic,
// commutative and idempotent, so nodes that have seen the same entries agree whatever the order.
//
// How it runs: an owner (the membership actor, or the simulation bench) calls tick() every
// gossip_interval_ms and receive() for every message that arrives, and sends what they return to
// the cluster addresses they name; unreachable() tells it that a send could not be delivered.
// Time and randomness come in from outside (now_ms arguments, config.random_seed).
//
// Failure detection, step by step:
//   1. Every node bumps its own heartbeat counter each tick and sends its entry straight to the
//      members that monitor it: its monitored_peers predecessors on a ring ordered by node id
//      (everyone, in a cluster of up to monitored_peers + 1). Entries also travel piggybacked on
//      pings and acks. Each time we see a peer's counter rise, its phi-accrual detector records
//      an arrival. (Monitoring a few ring neighbours, as Akka does, keeps the work per node flat
//      as the cluster grows; everyone else learns a death from the monitors' gossip.)
//   2. When a monitored peer's phi passes phi_threshold (or a send to any peer failed), we ping it directly;
//      no ack within probe_timeout_ms: we ask indirect_probes other members to ping it for us
//      (ping_req); no ack through them within indirect_probe_timeout_ms: the peer is suspect.
//   3. A suspect that does not refute (by gossiping a higher incarnation) within
//      suspicion_timeout_ms is dead; dead and left members are removed after dead_retention_ms.
//   4. A node that hears it is suspected or dead refutes at once with incarnation + 1. A
//      restarted node starts with a higher incarnation (the wall-clock start time).
//
// Message size stays bounded as the cluster grows: a message carries the sender's own entry plus
// at most max_updates_per_message - 1 others: first recent changes (each piggybacked about
// retransmit_mult * log2(N+1) times, as SWIM disseminates), then a rotating slice of the whole
// table (anti-entropy, so every entry and heartbeat keeps flowing).
//
// Push-pull (whole tables, as memberlist does over TCP): a node that knows no live peer (joining,
// restarted, cut off) asks the first node it hears from for its whole table, so a newcomer knows
// the cluster after one round trip instead of learning it 15 entries at a time; and every
// sync_interval_ms each node swaps whole tables with one random live peer, which repairs
// whatever piggybacking missed. A table travels as several messages under the same cap.
//
// Thread-safety: a plain value; one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shoal/cluster/phi_accrual.hpp"

namespace shoal {

enum class member_status : uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };

/// Returns "alive", "suspect", "dead" or "left".
const char* to_string(member_status s);

/// What a node reports about its own load (gossiped with its entry).
struct member_load {
  uint32_t in_flight = 0;           // inference requests being answered now
  uint32_t loaded_models = 0;       // snapshots in memory
  uint64_t free_model_memory = 0;   // bytes left for models: the rest of the model memory budget
                                    // (never above the host's MemAvailable)
  // Since the node started: inferences its clients sent it that it answered itself, that it
  // forwarded to a holder, and that peers forwarded to it; and the extra copies it holds now
  // because its clients ask for those models (traffic-following replicas).
  uint64_t served_local = 0;
  uint64_t forwarded = 0;
  uint64_t served_for_peers = 0;
  uint32_t traffic_copies = 0;
  friend bool operator==(const member_load& a, const member_load& b) {
    return a.in_flight == b.in_flight && a.loaded_models == b.loaded_models &&
           a.free_model_memory == b.free_model_memory && a.served_local == b.served_local &&
           a.forwarded == b.forwarded && a.served_for_peers == b.served_for_peers &&
           a.traffic_copies == b.traffic_copies;
  }
};

/// One row of the member table.
struct member {
  std::string id;               // stable node id, kept in the data dir across restarts
  std::string name;             // for people: logs and `shoal cluster status`
  std::string cluster_address;  // HOST:PORT of the node-to-node port (where gossip goes)
  std::string http_address;     // HOST:PORT
  std::string zmq_address;      // HOST:PORT
  std::string data_address;     // HOST:PORT of the data plane (forwarded inference); may be empty
  uint64_t incarnation = 0;     // only the node itself raises it (start time, refutations)
  member_status status = member_status::alive;
  uint64_t heartbeat = 0;       // only the node itself raises it, once per tick
  member_load load;
  friend bool operator==(const member& a, const member& b);
};

/// Orders two entries about the same node: higher incarnation first, then the stronger status
/// (left > dead > suspect > alive), then the higher heartbeat, then the other fields (so the
/// order is total and merge is deterministic). Returns <0, 0 or >0 like strcmp.
int compare_entries(const member& a, const member& b);

/// The member table: at most one entry per node id; merging keeps the greater entry.
class member_table {
 public:
  /// Merges `m` in; returns true if the table changed (a new id or a greater entry).
  bool merge(const member& m);
  /// Merges every entry of `other` in.
  void merge(const member_table& other);
  /// Returns the entry for `id`, or nullptr.
  const member* find(const std::string& id) const;
  /// Removes the entry for `id` (if any).
  void erase(const std::string& id);
  /// Returns every entry, ordered by id.
  const std::map<std::string, member>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  friend bool operator==(const member_table& a, const member_table& b) {
    return a.entries_ == b.entries_;
  }

 private:
  std::map<std::string, member> entries_;
};

enum class gossip_kind : uint8_t {
  ping = 0,      // "are you there?"; answered with ack
  ack = 1,       // answers a ping (seq), or relays one for a ping_req
  ping_req = 2,  // "ping target for me and relay its ack"
  leave = 3,     // the sender is leaving now; its entry (status left) is in updates
  heartbeat = 4, // the sender's entry only, to the members that monitor it; no reply
  sync_req = 5,  // push-pull: the first slice of the sender's whole table; answer with yours
  sync = 6,      // one more slice of the sender's whole table; no reply
};

/// One gossip message. Every message carries the sender's own entry first in `updates`.
struct gossip_msg {
  gossip_kind kind = gossip_kind::ping;
  uint64_t seq = 0;              // ping/ack: pairs an ack with its ping; ping_req: the asker's
  std::string from_address;      // the sender's cluster address: where replies go
  std::string target_id;         // ping_req: the node to probe; ack: the node that answered
  std::string target_address;    // ping_req: its cluster address
  std::vector<member> updates;   // at most max_updates_per_message entries
  friend bool operator==(const gossip_msg& a, const gossip_msg& b);
};

/// The seq bit of a round-robin gossip ping: its ack gives a round-trip sample and nothing else.
/// A ping with a seq without it is a probe of a silent member (its ack is evidence of life).
inline constexpr uint64_t gossip_ping_bit = uint64_t{1} << 63;

/// True for a probe: a ping sent because a member went silent (not a round-robin gossip ping).
inline bool is_probe(const gossip_msg& m) {
  return m.kind == gossip_kind::ping && m.seq != 0 && (m.seq & gossip_ping_bit) == 0;
}

/// A message to send to a cluster address.
struct outgoing {
  std::string address;
  gossip_msg msg;
};

/// Something worth a log line: a member joined, changed status or was removed, or we refuted.
struct membership_event {
  enum class kind : uint8_t { joined, status_changed, removed, refuted, resumed };
  kind what = kind::joined;
  member entry;                   // the entry after the change
  member_status from = member_status::alive;  // status_changed: the status before
  double phi = 0;                 // our phi for the member when it changed (0 if not ours)
  std::string reason;             // why, for people: "no ack to direct or 3 indirect probes"
};

/// Returns one log line for `e` ("member n2 (127.0.0.1:7520) alive -> suspect phi=9.1: ...").
std::string describe(const membership_event& e);

/// Timings and limits. Defaults suit a LAN (and loopback): a dead node is suspect within about
/// a second and dead about 3 s later. Every field is a config key of `shoal node`.
struct membership_config {
  // Who we are.
  std::string id;
  std::string name;
  std::string cluster_address;
  std::string http_address;
  std::string zmq_address;
  std::string data_address;
  uint64_t incarnation = 1;            // the node uses its start time in ms: restarts go higher
  std::vector<std::string> seeds;      // cluster addresses to join through

  int64_t gossip_interval_ms = 200;    // one heartbeat and one gossip ping per interval
  double phi_threshold = 8;            // probe a peer once its phi passes this
  phi_accrual_config detector{100, 100, 200, 500};
  int64_t probe_timeout_ms = 300;      // wait for a direct ack
  int64_t indirect_probe_timeout_ms = 500;  // then wait this long for an ack through others
  size_t indirect_probes = 3;          // members asked to ping for us (ping_req)
  int64_t suspicion_timeout_ms = 3000; // suspect -> dead without a refutation
  int64_t dead_retention_ms = 30000;   // dead or left -> removed from the table
  int64_t seed_interval_ms = 5000;     // ping a seed this often even when not alone (heals
                                       // partitions)
  int64_t sync_interval_ms = 30000;    // swap whole tables with one random peer this often
                                       // (0: only when joining)
  size_t max_updates_per_message = 16; // the cap that bounds a message as the cluster grows
  size_t monitored_peers = 8;          // ring successors whose phi we watch (see step 1 above)
  size_t retransmit_mult = 3;          // a change rides on ~ this * log2(N+1) messages
  uint64_t random_seed = 0;            // peer choice
};

/// A member as shown by `shoal cluster status`.
struct member_view {
  member entry;
  bool is_self = false;
  double phi = 0;
  std::optional<int64_t> since_heard_ms;  // since its heartbeat last rose; none if never
  uint32_t snapshots_held = 0;            // versions whose bytes it holds (from the catalog;
                                          // filled in by the gateway)
  std::optional<double> rtt_ms;           // smoothed ping->ack round trip; none before the first
};

class membership {
 public:
  /// Starts as a one-member cluster of `cfg` (alive), knowing only the seeds' addresses.
  explicit membership(membership_config cfg);

  /// Runs one gossip period at `now_ms`: heartbeat, probes and their timeouts, suspicion and
  /// removal timers, one gossip ping. Returns the messages to send.
  std::vector<outgoing> tick(int64_t now_ms);

  /// Handles a message that arrived at `now_ms`; returns the replies and relays to send.
  std::vector<outgoing> receive(const gossip_msg& msg, int64_t now_ms);

  /// The transport could not deliver to `address` (connection refused or lost): a hint that
  /// starts or hurries the probe of whoever lives there. Returns messages to send.
  std::vector<outgoing> unreachable(const std::string& address, int64_t now_ms);

  /// Marks us as leaving and returns a leave message for every live member. After this, tick()
  /// sends nothing.
  std::vector<outgoing> leave(int64_t now_ms);

  /// Sets the load gossiped with our entry.
  void set_load(const member_load& load);

  /// Returns (and clears) what happened since the last call, oldest first.
  std::vector<membership_event> take_events();

  /// Returns every member we know (ourselves included), ordered by name then id.
  std::vector<member_view> view(int64_t now_ms) const;

  /// Returns our own entry.
  const member& self() const;
  /// Returns the member table.
  const member_table& table() const { return table_; }
  /// True when `id`'s heartbeat rose here within the last probe round (probe_timeout_ms + two
  /// gossip intervals): we hear it ourselves, whatever others say of it.
  bool hears(const std::string& id, int64_t now_ms) const;
  /// Returns our phi for `id` at `now_ms` (0 for ourselves or an unknown id).
  double phi(const std::string& id, int64_t now_ms) const;
  const membership_config& config() const { return cfg_; }

 private:
  struct probe {
    uint64_t seq = 0;
    int64_t started_ms = 0;
    bool indirect = false;  // the direct ping timed out; ping_reqs are out
    size_t asked = 0;       // members asked to ping for us
  };
  struct relay {
    std::string asker_address;
    uint64_t asker_seq = 0;
    std::string target_id;
    int64_t started_ms = 0;
  };
  struct peer_state {
    phi_accrual detector;
    uint64_t max_heartbeat_seen = 0;
    uint64_t incarnation_seen = 0;
    int64_t status_since_ms = 0;  // when the current status was set here
    double rtt_ms = -1;           // smoothed round trip of our pings to it; -1: none answered yet
  };
  struct sent_ping {
    std::string id;
    int64_t sent_ms = 0;
  };

  gossip_msg make(gossip_kind kind, uint64_t seq);
  void piggyback(gossip_msg& msg);
  void apply(const member& m, int64_t now_ms, const std::string& reason, bool news_if_new = true);
  void observe(const member& m, int64_t now_ms);
  bool heard_lately(const member& known, const member& rumor, int64_t now_ms) const;
  void set_status(const std::string& id, member_status to, int64_t now_ms, double phi,
                  const std::string& reason);
  void enqueue(const std::string& id);
  void start_probe(const std::string& id, int64_t now_ms, std::vector<outgoing>& out);
  void send_table(const std::string& address, bool request, std::vector<outgoing>& out);
  std::vector<std::string> live_peers() const;
  bool has_live_peer() const;
  std::vector<std::string> ring_neighbours(bool successors) const;
  peer_state& peer(const std::string& id);
  size_t retransmit_limit() const;

  membership_config cfg_;
  member_table table_;
  std::map<std::string, peer_state> peers_;
  std::map<std::string, probe> probes_;            // by member id
  std::map<uint64_t, relay> relays_;               // by the seq of our ping to the target
  std::map<uint64_t, sent_ping> pings_;            // our direct pings by seq, for round trips
  void ping(const std::string& id, const std::string& address, uint64_t seq, int64_t now_ms,
            std::vector<outgoing>& out);
  // Recent changes to piggyback, best first: most transmissions left, then newest. Kept
  // ordered so building a message costs O(cap log N), not a sort of the whole queue (after a
  // mass join the queue holds every member).
  struct queued_change {
    size_t left = 0;   // transmissions left
    uint64_t seq = 0;  // enqueue order: newer changes go first among equals
    std::string id;
    bool operator<(const queued_change& o) const {
      if (left != o.left) return left > o.left;
      if (seq != o.seq) return seq > o.seq;
      return id < o.id;
    }
  };
  std::set<queued_change> dissemination_;
  std::map<std::string, queued_change> queued_by_id_;
  uint64_t next_change_seq_ = 1;
  void dequeue(const std::string& id);
  struct tombstone {
    member entry;  // as it was removed (dead or left)
    int64_t when_ms = 0;
  };
  std::map<std::string, tombstone> tombstones_;    // removed members, to refuse stale gossip
  std::vector<membership_event> events_;
  std::vector<std::string> probe_order_;           // shuffled round-robin of gossip targets
  size_t probe_cursor_ = 0;
  std::string fill_cursor_;                        // anti-entropy: next id to carry
  std::mt19937_64 rng_;
  uint64_t next_seq_ = 1;
  int64_t last_tick_ms_ = -1;
  int64_t last_seed_ping_ms_ = -1;
  int64_t next_sync_ms_ = -1;         // the next periodic push-pull
  int64_t last_sync_req_ms_ = -1;     // the last sync_req we sent
  bool leaving_ = false;
};

}  // namespace shoal
