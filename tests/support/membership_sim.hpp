// membership_sim: a deterministic discrete-event simulation of N membership cores in one
// process, with no sockets, threads or clocks. It plays the owner's part for every node (tick
// every gossip_interval_ms, receive, unreachable, leave) over a fake network with latency,
// jitter and loss, and lets a test kill, pause (SIGSTOP), resume, restart or stop a node
// gracefully. The same seed gives the same run, event for event, so a failure replays exactly.
//
// The network mimics what the real transport (TCP between nodes) tells the owner:
//   - a send to a node that is not running (killed, left, never started) is reported back to
//     the sender through unreachable() after refused_ms, like a refused connection;
//   - a send to a paused node is not reported: the peer's kernel still accepts the bytes, so the
//     message waits and is delivered when the node resumes;
//   - otherwise a message arrives after latency_ms + uniform[0, jitter_ms], or is lost with
//     probability loss (no report: loss models a message that vanished, not a refused one).
//
// Used by tests/unit/cluster/membership_sim_test.cpp and bench/membership_sim.cpp (no gtest
// inside).
// Thread-safety: a plain value; one owner.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shoal/cluster/membership.hpp"

namespace shoal::testing {

struct sim_config {
  membership_config base;     // timings and limits for every node; identity fields are set per
                              // node (id, name, addresses, incarnation, seeds, random_seed)
  int64_t latency_ms = 1;     // one-way delivery time on a LAN
  int64_t jitter_ms = 0;      // plus uniform [0, jitter_ms], so messages can overtake each other
  double loss = 0;            // probability that a delivered message is dropped silently
  int64_t refused_ms = 1;     // how long until a send to a stopped node comes back unreachable
  uint64_t seed = 1;          // phases, jitter, loss and every node's random_seed derive from it
  bool keep_events = true;    // keep every membership event in events(); a 1000-node bench
                              // would hold ~N^2 joined events, so it turns this off
};

enum class node_state : uint8_t { running, paused, stopped };

/// A membership event with where and when it happened.
struct sim_event {
  int64_t at_ms = 0;
  size_t node = 0;  // the node whose core reported it (the observer)
  membership_event event;
};

/// What went over the network (every send counts, including lost and refused ones).
struct sim_traffic {
  uint64_t messages = 0;
  uint64_t bytes = 0;              // encode_gossip(msg, "") sizes: the real wire size, no MAC
  size_t max_bytes = 0;
  size_t max_updates = 0;          // the most member entries one message carried
  std::array<uint64_t, 7> by_kind{};  // messages per gossip_kind (ping, ack, ping_req, leave,
                                      // heartbeat, sync_req, sync)
  std::array<uint64_t, 7> bytes_by_kind{};
  uint64_t probe_pings = 0;        // pings with a seq: failure-detector probes and relays, as
                                   // opposed to the one gossip ping per tick (seq 0)
  std::vector<uint64_t> per_round; // messages sent in each gossip interval since the start
};

class membership_sim {
 public:
  explicit membership_sim(sim_config cfg = {});
  membership_sim(const membership_sim&) = delete;
  membership_sim& operator=(const membership_sim&) = delete;

  /// Returns the node id of node `i` ("node-<i>").
  static std::string id_of(size_t i);
  /// Returns the cluster address of node `i` ("10.0.<i/256>.<i%256>:7420"), started or not.
  static std::string address_of(size_t i);

  /// Starts the next node (index = number of nodes added so far) at now(), joining through the
  /// nodes `seeds` (indices; a seed never added is an address where nothing listens). Its
  /// incarnation is now() + 1; its first tick comes after a random phase in [0, interval).
  /// Returns its index.
  size_t add_node(const std::vector<size_t>& seeds = {});
  /// Starts `n` nodes at now(), all joining through `seeds`. Returns the first index.
  size_t add_nodes(size_t n, const std::vector<size_t>& seeds);

  /// kill -9: the node stops at once; what it sent is still in flight; later sends to it are
  /// refused. @pre state(i) != stopped
  void kill(size_t i);
  /// SIGSTOP: the node neither ticks nor reads; messages to it wait. @pre state(i) == running
  void pause(size_t i);
  /// SIGCONT: the waiting messages are read, then the overdue tick runs. @pre state(i) == paused
  void resume(size_t i);
  /// Starts a stopped node again: same id, address and seeds, a fresh core, incarnation now()+1.
  /// @pre state(i) == stopped
  void restart(size_t i);
  /// Graceful shutdown: calls leave(), sends its messages, then the node stops.
  /// @pre state(i) == running
  void leave(size_t i);
  /// A network partition around node `i`: from now on messages to and from it vanish (no
  /// refusal either: the peer's host is unreachable, not refusing), until reconnect(i).
  void disconnect(size_t i);
  /// Ends disconnect(i); messages already lost stay lost.
  void reconnect(size_t i);
  /// Delivers `msg` to node `to` now, as if it came off the network (for crafted messages).
  void inject(size_t to, const gossip_msg& msg);

  /// Runs the simulation `ms` of simulated time forward.
  void run_for(int64_t ms);
  /// Runs until `done()` holds, checked before starting and then after each instant with events
  /// (or only every `check_every_ms` when that is > 0, for predicates that scan N^2 entries).
  /// Returns the simulated time it took, or nullopt if `done()` still fails after `max_ms`.
  std::optional<int64_t> run_until(const std::function<bool()>& done, int64_t max_ms,
                                   int64_t check_every_ms = 0);

  /// Returns the simulated time in ms.
  int64_t now() const { return now_; }
  /// Returns the number of nodes added.
  size_t size() const { return nodes_.size(); }
  node_state state(size_t i) const { return nodes_.at(i).state; }
  /// Returns node `i`'s core (the last one, if the node was restarted or stopped).
  const membership& core(size_t i) const { return *nodes_.at(i).core; }
  /// Returns the running nodes' indices.
  std::vector<size_t> running() const;

  /// Returns `subject`'s entry in `observer`'s table, or nullptr if the observer has none.
  const member* seen(size_t observer, size_t subject) const;
  /// Returns `subject`'s status as `observer` sees it, or nullopt if it has no entry.
  std::optional<member_status> status_seen(size_t observer, size_t subject) const;
  /// Returns true if every running node other than `subject` has an entry for it that satisfies
  /// `ok` (nullptr when it has none).
  bool all_others_see(size_t subject, const std::function<bool(const member*)>& ok) const;
  /// Returns true if every running node other than `subject` sees it with status `s`.
  bool all_others_see(size_t subject, member_status s) const;
  /// Returns true if every running node other than `subject` sees it neither alive nor absent.
  bool all_others_see_not_alive(size_t subject) const;
  /// Returns true if no running node has an entry for `subject`.
  bool none_know(size_t subject) const;
  /// Returns true if every running node sees every running node (itself included) alive: the
  /// cluster has converged on who is up.
  bool all_running_agree_alive() const;

  /// Returns every membership event so far, in order (empty unless keep_events).
  const std::vector<sim_event>& events() const { return events_; }
  /// Calls `f` for each membership event as it happens (in addition to keeping it).
  void on_event(std::function<void(const sim_event&)> f) { on_event_ = std::move(f); }
  /// Returns the traffic counters.
  const sim_traffic& traffic() const { return traffic_; }

 private:
  struct node {
    std::unique_ptr<membership> core;
    node_state state = node_state::running;
    uint64_t generation = 0;  // bumped whenever the process stops, pauses or starts, so its
                              // stale ticks and refusals are dropped
    uint64_t starts = 0;      // restarts give the core a fresh random_seed
    std::vector<size_t> seeds;
    std::vector<gossip_msg> held;  // arrived while paused
    bool cut_off = false;          // disconnect(): partitioned from everyone
  };
  enum class step_kind : uint8_t { tick, deliver, refused };
  struct step {
    step_kind kind = step_kind::tick;
    size_t node = 0;          // tick, deliver: the node it happens at; refused: the sender
    uint64_t generation = 0;  // tick, refused: the process it belongs to
    gossip_msg msg;           // deliver
    std::string address;      // refused: where the send went
  };

  void start(size_t i);
  void schedule(int64_t at, step s);
  void process(step s);
  void send(size_t from, std::vector<outgoing> out);
  void collect(size_t i);
  void count(const gossip_msg& msg);
  std::optional<size_t> node_at(const std::string& address) const;

  sim_config cfg_;
  std::vector<node> nodes_;
  std::map<std::string, size_t> by_address_;
  // Pending steps by (time, order of scheduling): a total order, so runs are deterministic.
  std::map<std::pair<int64_t, uint64_t>, step> queue_;
  uint64_t scheduled_ = 0;
  int64_t now_ = 0;
  std::mt19937_64 rng_;
  std::vector<sim_event> events_;
  std::function<void(const sim_event&)> on_event_;
  sim_traffic traffic_;
};

/// Returns the bytes `msg` takes on the wire (its gossip envelope without a MAC). The one place
/// that decides how the simulation sizes a message.
size_t message_bytes(const gossip_msg& msg);

}  // namespace shoal::testing
