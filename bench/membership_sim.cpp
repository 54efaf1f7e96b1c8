// membership_sim: how the membership core scales, measured on the deterministic simulator
// (tests/support/membership_sim.hpp) with the default membership_config timings on a simulated
// LAN (1 ms latency + up to 2 ms jitter, no loss). For each cluster size N it
//   1. starts N nodes joining through node 0 and waits until all agree everyone is alive;
//   2. lets it settle, then counts the steady-state traffic over one push-pull period (30 s);
//   3. adds one node and counts rounds and messages until every node knows every other;
//   4. kills one node and counts rounds and messages until every live node sees it not alive
//      (suspect or dead), then dead.
// Rounds are gossip intervals of simulated time; messages count every send in the cluster in
// that time, background gossip included. Prints a markdown table.
//
// Each N gets a wall-clock budget (--budget, default 1800 s); a phase still running when it is
// spent is reported as not measured, with how far the simulation got, rather than waiting for
// hours: simulating N nodes costs about N times what one node spends, and the core's per-tick
// and per-message work grows with N (see bench/README.md, "Cluster membership (simulation)").
//
// usage: membership_sim [--n N]... [--seed S] [--budget SECONDS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "support/membership_sim.hpp"

namespace {

using shoal::member_status;
using shoal::membership_config;
using shoal::testing::membership_sim;
using shoal::testing::sim_config;
using shoal::testing::sim_traffic;

using wall_clock = std::chrono::steady_clock;

struct span {
  bool reached = false;
  bool out_of_budget = false;  // stopped because the wall-clock budget ran out
  int64_t ms = 0;
  uint64_t messages = 0;
};

struct row {
  size_t n = 0;
  span startup;
  double steady_per_node_round = 0;
  double steady_sync_per_node_round = 0;  // of which push-pull slices
  double steady_probe_share = 0;  // of steady messages: probe and relay pings, ping_reqs, acks
                                  // to them (the failure detector's own traffic)
  span join;
  span not_alive;
  span dead;
  double gossip_bytes = 0;     // mean of ping, ack and ping_req (the piggybacking messages)
  double heartbeat_bytes = 0;  // mean of heartbeats (one entry)
  double sync_bytes = 0;       // mean of sync_req and sync (push-pull slices)
  size_t max_bytes = 0;
  size_t max_updates = 0;
  uint64_t messages = 0;
  int64_t sim_ms = 0;
  double wall_s = 0;
};

// Runs until `done` holds (at most max_ms of simulated time, and not past `deadline` on the
// wall clock) and returns how long it took and what was sent.
template <typename F>
span measure(membership_sim& sim, F done, int64_t max_ms, wall_clock::time_point deadline,
             int64_t check_every_ms = 0) {
  span s;
  uint64_t before = sim.traffic().messages;
  int64_t start = sim.now();
  int64_t next_check = start;
  // The budget is looked at after every simulated instant; `done` (which may scan N^2 entries)
  // only every check_every_ms of simulated time.
  auto took = sim.run_until(
      [&] {
        if (wall_clock::now() > deadline) s.out_of_budget = true;
        if (s.out_of_budget) return true;
        if (sim.now() < next_check) return false;
        next_check = sim.now() + check_every_ms;
        return done();
      },
      max_ms);
  s.reached = took.has_value() && !s.out_of_budget;
  s.ms = s.out_of_budget ? sim.now() - start : took.value_or(max_ms);
  s.messages = sim.traffic().messages - before;
  return s;
}

row run(size_t n, uint64_t seed, double budget_s) {
  const membership_config defaults;
  const int64_t interval = defaults.gossip_interval_ms;
  const auto wall_start = wall_clock::now();
  const auto deadline = wall_start + std::chrono::duration_cast<wall_clock::duration>(
                                         std::chrono::duration<double>(budget_s));
  row r;
  r.n = n;
  sim_config c;
  c.latency_ms = 1;
  c.jitter_ms = 2;
  c.seed = seed;
  c.keep_events = false;  // ~N^2 joined events at N = 1000
  membership_sim sim(c);
  auto finish = [&] {
    const auto& t = sim.traffic();
    r.messages = t.messages;
    auto mean = [&](std::initializer_list<size_t> kinds) {
      uint64_t bytes = 0, messages = 0;
      for (size_t k : kinds) {
        bytes += t.bytes_by_kind[k];
        messages += t.by_kind[k];
      }
      return messages == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(messages);
    };
    r.gossip_bytes = mean({0, 1, 2});
    r.heartbeat_bytes = mean({4});
    r.sync_bytes = mean({5, 6});
    r.max_bytes = t.max_bytes;
    r.max_updates = t.max_updates;
    r.sim_ms = sim.now();
    r.wall_s = std::chrono::duration<double>(wall_clock::now() - wall_start).count();
    return r;
  };
  // Simulated time passing with nothing to measure (still within the budget).
  auto settle = [&](int64_t ms) {
    return !measure(sim, [] { return false; }, ms, deadline, interval).out_of_budget;
  };
  // Progress on stderr: N = 1000 takes minutes.
  auto progress = [&](const char* phase, const span& s) {
    std::fprintf(stderr, "N=%zu %s: %s after %.1f s simulated (%.0f s wall)\n", n, phase,
                 s.reached ? "done" : "stopped", s.ms / 1000.0,
                 std::chrono::duration<double>(wall_clock::now() - wall_start).count());
  };

  sim.add_node();
  sim.add_nodes(n - 1, {0});
  r.startup = measure(sim, [&] { return sim.all_running_agree_alive(); }, 600000, deadline,
                      interval);
  progress("start-up", r.startup);
  if (!r.startup.reached || !settle(10000)) return finish();  // queues drain, detectors learn

  // One push-pull period (at least 50 rounds), so every node's periodic table swap is in it.
  const int64_t window = std::max<int64_t>(50, defaults.sync_interval_ms / interval);
  const sim_traffic before = sim.traffic();
  if (!settle(window * interval)) return finish();
  const sim_traffic& t = sim.traffic();
  uint64_t steady = t.messages - before.messages;
  const double node_rounds = static_cast<double>(n) * static_cast<double>(window);
  r.steady_per_node_round = static_cast<double>(steady) / node_rounds;
  uint64_t syncs = t.by_kind[5] + t.by_kind[6] - before.by_kind[5] - before.by_kind[6];
  r.steady_sync_per_node_round = static_cast<double>(syncs) / node_rounds;
  // Each probe ping is answered by an ack; each ping_req makes a relay ping (already among
  // probe_pings), its ack and the relayed ack.
  uint64_t probes = t.probe_pings - before.probe_pings;
  uint64_t reqs = t.by_kind[2] - before.by_kind[2];
  r.steady_probe_share =
      steady == 0 ? 0 : static_cast<double>(2 * probes + 2 * reqs) / static_cast<double>(steady);

  const size_t newcomer = sim.add_node({0});
  r.join = measure(
      sim,
      [&] {
        const auto& table = sim.core(newcomer).table();
        if (table.size() != n + 1) return false;
        for (const auto& [id, m] : table.entries()) {
          if (m.status != member_status::alive) return false;
        }
        return sim.all_others_see(newcomer, member_status::alive);
      },
      120000, deadline);
  progress("join", r.join);
  if (!r.join.reached || !settle(10000)) return finish();

  const size_t victim = n / 2;
  sim.kill(victim);
  r.not_alive =
      measure(sim, [&] { return sim.all_others_see_not_alive(victim); }, 60000, deadline);
  if (!r.not_alive.reached) return finish();
  span rest = measure(sim, [&] { return sim.all_others_see(victim, member_status::dead); },
                      60000, deadline);
  r.dead = {rest.reached, rest.out_of_budget, r.not_alive.ms + rest.ms,
            r.not_alive.messages + rest.messages};
  progress("kill -> dead", r.dead);
  return finish();
}

std::string rounds(const span& s, int64_t interval) {
  if (s.out_of_budget) return "out of budget";
  if (!s.reached) return s.ms == 0 ? "-" : "not in " + std::to_string(s.ms / 1000) + " s";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld (%.1f s)",
                static_cast<long long>((s.ms + interval - 1) / interval), s.ms / 1000.0);
  return buf;
}

std::string count(const span& s) {
  return s.reached ? std::to_string(s.messages) : "-";
}

int usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--n N]... [--seed S] [--budget SECONDS]\n"
               "  --n N             cluster size to measure (repeatable; default 10, 100, 1000)\n"
               "  --seed S          simulation seed (default 1): phases, jitter, peer choice\n"
               "  --budget SECONDS  wall-clock time allowed per N (default 1800; N = 1000 needs ~600)\n",
               argv0);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes;
  uint64_t seed = 1;
  double budget_s = 1800;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(argv[0], 0);
    if ((a == "--n" || a == "--seed" || a == "--budget") && i + 1 < argc) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || (a == "--n" && v < 2) || (a == "--budget" && v < 1)) {
        std::fprintf(stderr, "%s: bad value '%s' for %s (N >= 2, budget >= 1)\n", argv[0],
                     argv[i], a.c_str());
        return 2;
      }
      if (a == "--n") sizes.push_back(static_cast<size_t>(v));
      if (a == "--seed") seed = v;
      if (a == "--budget") budget_s = static_cast<double>(v);
      continue;
    }
    std::fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], a.c_str());
    return usage(argv[0], 2);
  }
  if (sizes.empty()) sizes = {10, 100, 1000};

  const membership_config d;
  const int64_t interval = d.gossip_interval_ms;
  std::printf("membership simulation, seed %llu: default timings (gossip every %lld ms, phi %.0f, "
              "probe %lld+%lld ms, suspicion %lld ms, %zu updates per message), LAN 1-3 ms\n\n",
              static_cast<unsigned long long>(seed), static_cast<long long>(interval),
              d.phi_threshold, static_cast<long long>(d.probe_timeout_ms),
              static_cast<long long>(d.indirect_probe_timeout_ms),
              static_cast<long long>(d.suspicion_timeout_ms), d.max_updates_per_message);
  std::printf("| N | start-up: all agree, rounds | join: rounds | join: messages | kill -> not "
              "alive: rounds | messages | kill -> dead: rounds | messages | bytes/msg: ping, ack "
              "| heartbeat | sync | max | steady msgs/node/round | of which sync | of which probes "
              "| wall (s) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::string> notes;
  int failed = 0;
  for (size_t n : sizes) {
    row r = run(n, seed, budget_s);
    bool complete = r.dead.reached;
    failed += !complete;
    std::string steady = "-", share = "-", sync = "-";
    if (r.steady_per_node_round > 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", r.steady_per_node_round);
      steady = buf;
      std::snprintf(buf, sizeof buf, "%.2f", r.steady_sync_per_node_round);
      sync = buf;
      std::snprintf(buf, sizeof buf, "%.0f%%", 100 * r.steady_probe_share);
      share = buf;
    }
    std::printf(
        "| %zu | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %.0f | %zu | %s | %s | %s | "
        "%.1f |\n",
        n, rounds(r.startup, interval).c_str(), rounds(r.join, interval).c_str(),
        count(r.join).c_str(), rounds(r.not_alive, interval).c_str(), count(r.not_alive).c_str(),
        rounds(r.dead, interval).c_str(), count(r.dead).c_str(), r.gossip_bytes,
        r.heartbeat_bytes, r.sync_bytes, r.max_bytes, steady.c_str(), sync.c_str(),
        share.c_str(), r.wall_s);
    std::fflush(stdout);
    if (!complete) {
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "N=%zu stopped after %.1f s of simulated time (%.1f s wall): %llu messages, "
                    "%.1f per node per round on average",
                    n, r.sim_ms / 1000.0, r.wall_s, static_cast<unsigned long long>(r.messages),
                    r.sim_ms == 0 ? 0.0
                                  : static_cast<double>(r.messages) / n /
                                        (static_cast<double>(r.sim_ms) / interval));
      notes.push_back(buf);
    }
  }
  if (!notes.empty()) std::printf("\n");
  for (const auto& note : notes) std::printf("- %s\n", note.c_str());
  return failed == 0 ? 0 : 1;
}
