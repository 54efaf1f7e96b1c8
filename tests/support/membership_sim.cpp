#include "support/membership_sim.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "shoal/cluster/gossip_codec.hpp"

namespace shoal::testing {
namespace {

// SplitMix64: turns (sim seed, node, start count) into well-spread per-node seeds, so nodes do
// not draw the same peer order.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string ip_of(size_t i) {
  return "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
}

}  // namespace

size_t message_bytes(const gossip_msg& msg) { return encode_gossip(msg, "").size(); }

membership_sim::membership_sim(sim_config cfg) : cfg_(std::move(cfg)), rng_(mix(cfg_.seed)) {}

std::string membership_sim::id_of(size_t i) { return "node-" + std::to_string(i); }

std::string membership_sim::address_of(size_t i) { return ip_of(i) + ":7420"; }

size_t membership_sim::add_node(const std::vector<size_t>& seeds) {
  size_t i = nodes_.size();
  nodes_.emplace_back();
  nodes_[i].seeds = seeds;
  by_address_[address_of(i)] = i;
  start(i);
  return i;
}

size_t membership_sim::add_nodes(size_t n, const std::vector<size_t>& seeds) {
  size_t first = nodes_.size();
  for (size_t k = 0; k < n; ++k) add_node(seeds);
  return first;
}

void membership_sim::start(size_t i) {
  node& n = nodes_[i];
  membership_config c = cfg_.base;
  c.id = id_of(i);
  c.name = id_of(i);
  c.cluster_address = address_of(i);
  c.http_address = ip_of(i) + ":8000";
  c.zmq_address = ip_of(i) + ":5555";
  // The real node uses its start time in ms; +1 so a node started at 0 is not incarnation 0.
  c.incarnation = static_cast<uint64_t>(now_) + 1;
  c.seeds.clear();
  for (size_t s : n.seeds) c.seeds.push_back(address_of(s));
  c.random_seed = mix(cfg_.seed ^ mix(i * 1000003 + n.starts));
  ++n.starts;
  n.core = std::make_unique<membership>(std::move(c));
  n.state = node_state::running;
  ++n.generation;
  n.held.clear();
  // A random phase: real nodes do not tick in lockstep, and lockstep would hide races.
  std::uniform_int_distribution<int64_t> phase(0, cfg_.base.gossip_interval_ms - 1);
  schedule(now_ + phase(rng_), step{step_kind::tick, i, n.generation, {}, {}});
}

void membership_sim::kill(size_t i) {
  node& n = nodes_.at(i);
  if (n.state == node_state::stopped) throw std::logic_error("kill: node already stopped");
  n.state = node_state::stopped;
  ++n.generation;
  n.held.clear();
}

void membership_sim::pause(size_t i) {
  node& n = nodes_.at(i);
  if (n.state != node_state::running) throw std::logic_error("pause: node not running");
  n.state = node_state::paused;
  ++n.generation;  // its tick timer stops with the process
}

void membership_sim::resume(size_t i) {
  node& n = nodes_.at(i);
  if (n.state != node_state::paused) throw std::logic_error("resume: node not paused");
  n.state = node_state::running;
  ++n.generation;
  // What the kernel buffered is read first; the timer that fell due during the pause fires at
  // once, and the ticks go on from there.
  std::vector<gossip_msg> held;
  held.swap(n.held);
  for (auto& msg : held) process(step{step_kind::deliver, i, 0, std::move(msg), {}});
  schedule(now_, step{step_kind::tick, i, n.generation, {}, {}});
}

void membership_sim::restart(size_t i) {
  if (nodes_.at(i).state != node_state::stopped) throw std::logic_error("restart: not stopped");
  start(i);
}

void membership_sim::leave(size_t i) {
  node& n = nodes_.at(i);
  if (n.state != node_state::running) throw std::logic_error("leave: node not running");
  std::vector<outgoing> out = n.core->leave(now_);
  collect(i);
  send(i, std::move(out));
  n.state = node_state::stopped;
  ++n.generation;
}

void membership_sim::disconnect(size_t i) { nodes_.at(i).cut_off = true; }

void membership_sim::reconnect(size_t i) { nodes_.at(i).cut_off = false; }

void membership_sim::inject(size_t to, const gossip_msg& msg) {
  process(step{step_kind::deliver, to, 0, msg, {}});
}

void membership_sim::schedule(int64_t at, step s) {
  queue_.emplace(std::make_pair(at, scheduled_++), std::move(s));
}

void membership_sim::run_for(int64_t ms) {
  const int64_t end = now_ + ms;
  while (!queue_.empty() && queue_.begin()->first.first <= end) {
    auto handle = queue_.extract(queue_.begin());
    now_ = handle.key().first;
    process(std::move(handle.mapped()));
  }
  now_ = end;
}

std::optional<int64_t> membership_sim::run_until(const std::function<bool()>& done,
                                                 int64_t max_ms, int64_t check_every_ms) {
  const int64_t begin = now_;
  const int64_t end = now_ + max_ms;
  if (done()) return 0;
  int64_t next_check = begin + std::max<int64_t>(check_every_ms, 0);
  while (!queue_.empty() && queue_.begin()->first.first <= end) {
    const int64_t at = queue_.begin()->first.first;
    // Run everything that happens at this instant, then look.
    while (!queue_.empty() && queue_.begin()->first.first == at) {
      auto handle = queue_.extract(queue_.begin());
      now_ = at;
      process(std::move(handle.mapped()));
    }
    if (check_every_ms > 0) {
      if (at < next_check) continue;
      while (next_check <= at) next_check += check_every_ms;
    }
    if (done()) return now_ - begin;
  }
  now_ = end;
  if (done()) return now_ - begin;
  return std::nullopt;
}

void membership_sim::process(step s) {
  node& n = nodes_[s.node];
  switch (s.kind) {
    case step_kind::tick: {
      if (s.generation != n.generation || n.state != node_state::running) return;
      std::vector<outgoing> out = n.core->tick(now_);
      collect(s.node);
      send(s.node, std::move(out));
      schedule(now_ + cfg_.base.gossip_interval_ms,
               step{step_kind::tick, s.node, n.generation, {}, {}});
      return;
    }
    case step_kind::deliver: {
      if (n.state == node_state::stopped) return;  // the process died with it in flight
      if (n.cut_off) return;                       // the partition began while in flight
      if (n.state == node_state::paused) {
        n.held.push_back(std::move(s.msg));
        return;
      }
      std::vector<outgoing> out = n.core->receive(s.msg, now_);
      collect(s.node);
      send(s.node, std::move(out));
      return;
    }
    case step_kind::refused: {
      // A refusal for a process that has since stopped, paused or restarted goes nowhere.
      if (s.generation != n.generation || n.state != node_state::running) return;
      std::vector<outgoing> out = n.core->unreachable(s.address, now_);
      collect(s.node);
      send(s.node, std::move(out));
      return;
    }
  }
}

void membership_sim::send(size_t from, std::vector<outgoing> out) {
  std::uniform_real_distribution<double> coin(0, 1);
  std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(cfg_.jitter_ms, 0));
  for (auto& o : out) {
    count(o.msg);
    std::optional<size_t> to = node_at(o.address);
    if (!to || nodes_[*to].state == node_state::stopped) {
      schedule(now_ + cfg_.refused_ms,
               step{step_kind::refused, from, nodes_[from].generation, {}, o.address});
      continue;
    }
    // Draw both numbers every time, so loss does not shift the jitter sequence.
    bool lost = coin(rng_) < cfg_.loss;
    int64_t delay = cfg_.latency_ms + jitter(rng_);
    if (lost || nodes_[from].cut_off || nodes_[*to].cut_off) continue;
    schedule(now_ + delay, step{step_kind::deliver, *to, 0, std::move(o.msg), {}});
  }
}

void membership_sim::collect(size_t i) {
  for (auto& e : nodes_[i].core->take_events()) {
    sim_event se{now_, i, std::move(e)};
    if (on_event_) on_event_(se);
    if (cfg_.keep_events) events_.push_back(std::move(se));
  }
}

void membership_sim::count(const gossip_msg& msg) {
  size_t bytes = message_bytes(msg);
  traffic_.messages += 1;
  traffic_.bytes += bytes;
  traffic_.max_bytes = std::max(traffic_.max_bytes, bytes);
  traffic_.max_updates = std::max(traffic_.max_updates, msg.updates.size());
  traffic_.by_kind.at(static_cast<size_t>(msg.kind)) += 1;
  traffic_.bytes_by_kind.at(static_cast<size_t>(msg.kind)) += bytes;
  if (is_probe(msg)) traffic_.probe_pings += 1;
  size_t round = static_cast<size_t>(now_ / cfg_.base.gossip_interval_ms);
  if (traffic_.per_round.size() <= round) traffic_.per_round.resize(round + 1, 0);
  traffic_.per_round[round] += 1;
}

std::optional<size_t> membership_sim::node_at(const std::string& address) const {
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

std::vector<size_t> membership_sim::running() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == node_state::running) out.push_back(i);
  }
  return out;
}

const member* membership_sim::seen(size_t observer, size_t subject) const {
  return nodes_.at(observer).core->table().find(id_of(subject));
}

std::optional<member_status> membership_sim::status_seen(size_t observer, size_t subject) const {
  const member* m = seen(observer, subject);
  if (m == nullptr) return std::nullopt;
  return m->status;
}

bool membership_sim::all_others_see(size_t subject,
                                    const std::function<bool(const member*)>& ok) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (i == subject || nodes_[i].state != node_state::running) continue;
    if (!ok(seen(i, subject))) return false;
  }
  return true;
}

bool membership_sim::all_others_see(size_t subject, member_status s) const {
  return all_others_see(subject, [s](const member* m) { return m != nullptr && m->status == s; });
}

bool membership_sim::all_others_see_not_alive(size_t subject) const {
  return all_others_see(
      subject, [](const member* m) { return m != nullptr && m->status != member_status::alive; });
}

bool membership_sim::none_know(size_t subject) const {
  return all_others_see(subject, [](const member* m) { return m == nullptr; });
}

bool membership_sim::all_running_agree_alive() const {
  // One pass over each running node's table (not N^2 lookups): a 1000-node bench checks this.
  std::vector<size_t> up = running();
  for (size_t observer : up) {
    size_t alive_and_running = 0;
    for (const auto& [id, m] : nodes_[observer].core->table().entries()) {
      if (m.status != member_status::alive) continue;
      auto it = by_address_.find(m.cluster_address);
      if (it != by_address_.end() && id == id_of(it->second) &&
          nodes_[it->second].state == node_state::running) {
        ++alive_and_running;
      }
    }
    if (alive_and_running != up.size()) return false;
  }
  return true;
}

}  // namespace shoal::testing
