// Cluster scenarios for the membership core, run on the deterministic simulator
// (support/membership_sim.hpp) with the default membership_config timings: joins, kills,
// SIGSTOP pauses, restarts, graceful leave, refutation, message loss, and the message-size bound.
// Set SHOAL_SIM_SEED to replay the scenarios under another seed (default 1).
#include "support/membership_sim.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shoal::testing {
namespace {

using kind = membership_event::kind;

uint64_t sim_seed() {
  const char* s = std::getenv("SHOAL_SIM_SEED");
  return s == nullptr ? 1 : std::strtoull(s, nullptr, 10);
}

// A LAN: 1 ms one way, up to 2 ms more of jitter, nothing lost.
sim_config lan() {
  sim_config c;
  c.latency_ms = 1;
  c.jitter_ms = 2;
  c.seed = sim_seed();
  return c;
}

const membership_config defaults;

// Starts `n` nodes joining through node 0 and waits until they agree everyone is alive.
void start_cluster(membership_sim& sim, size_t n) {
  sim.add_node();
  sim.add_nodes(n - 1, {0});
  ASSERT_TRUE(sim.run_until([&] { return sim.all_running_agree_alive(); }, 2000))
      << n << " nodes did not converge within 2 s";
}

// Status changes of `subject`, as any node other than `subject` recorded them.
std::vector<sim_event> status_changes_of(const membership_sim& sim, size_t subject) {
  std::vector<sim_event> out;
  for (const auto& e : sim.events()) {
    if (e.node != subject && e.event.what == kind::status_changed &&
        e.event.entry.id == membership_sim::id_of(subject)) {
      out.push_back(e);
    }
  }
  return out;
}

// How many times anyone saw a node other than `except` go to status `to`.
size_t changes_to(const membership_sim& sim, member_status to, std::optional<size_t> except = {}) {
  size_t n = 0;
  for (const auto& e : sim.events()) {
    if (e.event.what != kind::status_changed || e.event.entry.status != to) continue;
    if (except && e.event.entry.id == membership_sim::id_of(*except)) continue;
    ++n;
  }
  return n;
}

std::string dump_events(const membership_sim& sim, size_t last = 40) {
  std::string out;
  const auto& ev = sim.events();
  for (size_t k = ev.size() > last ? ev.size() - last : 0; k < ev.size(); ++k) {
    out += std::to_string(ev[k].at_ms) + " ms " + membership_sim::id_of(ev[k].node) + ": " +
           describe(ev[k].event) + "\n";
  }
  return out;
}

TEST(membership_sim, a_node_without_seeds_is_a_cluster_of_one) {
  membership_sim sim(lan());
  sim.add_node();
  sim.run_for(2000);
  EXPECT_EQ(sim.core(0).table().size(), 1u);
  EXPECT_EQ(sim.core(0).self().status, member_status::alive);
  EXPECT_GE(sim.core(0).self().heartbeat, 9u);  // it ticks
  EXPECT_EQ(sim.traffic().messages, 0u) << "no one to talk to";
}

TEST(membership_sim, three_and_five_nodes_join_through_a_seed_within_two_seconds) {
  for (size_t n : {3u, 5u}) {
    membership_sim sim(lan());
    start_cluster(sim, n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(sim.core(i).table().size(), n) << "node " << i;
    EXPECT_EQ(changes_to(sim, member_status::suspect), 0u) << dump_events(sim);
  }
}

TEST(membership_sim, a_seed_that_is_down_does_not_stop_a_join_through_another) {
  membership_sim sim(lan());
  const size_t never_started = 9;
  sim.add_node({never_started});
  sim.add_nodes(2, {never_started, 0});
  auto took = sim.run_until([&] { return sim.all_running_agree_alive(); }, 2000);
  ASSERT_TRUE(took) << dump_events(sim);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(sim.core(i).table().size(), 3u) << "no entry for the seed that never started";
  }
}

TEST(membership_sim, a_killed_node_is_suspected_then_dead_then_removed_everywhere) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);  // detectors learn the heartbeat rate
  const size_t victim = 3;
  const int64_t killed_at = sim.now();
  sim.kill(victim);

  auto not_alive = sim.run_until([&] { return sim.all_others_see_not_alive(victim); }, 2000);
  ASSERT_TRUE(not_alive) << dump_events(sim);
  auto dead = sim.run_until([&] { return sim.all_others_see(victim, member_status::dead); },
                            defaults.suspicion_timeout_ms + 2000);
  ASSERT_TRUE(dead) << dump_events(sim);
  EXPECT_LE(sim.now() - killed_at, defaults.suspicion_timeout_ms + 2000);

  auto removed = sim.run_until([&] { return sim.none_know(victim); },
                               defaults.dead_retention_ms + 2000);
  ASSERT_TRUE(removed) << dump_events(sim);
  // Each node removes it dead_retention_ms after it saw it dead, not earlier.
  std::map<size_t, int64_t> dead_at;
  for (const auto& e : status_changes_of(sim, victim)) {
    if (e.event.entry.status == member_status::dead) dead_at[e.node] = e.at_ms;
  }
  EXPECT_EQ(dead_at.size(), 4u);
  for (const auto& e : sim.events()) {
    if (e.event.what != kind::removed) continue;
    EXPECT_EQ(e.event.entry.id, membership_sim::id_of(victim));
    ASSERT_TRUE(dead_at.count(e.node));
    EXPECT_GE(e.at_ms - dead_at[e.node], defaults.dead_retention_ms);
  }
  // And it stays gone: no one gossips the old entry back in.
  sim.run_for(20000);
  EXPECT_TRUE(sim.none_know(victim)) << dump_events(sim);
  EXPECT_TRUE(sim.all_running_agree_alive());
  EXPECT_EQ(changes_to(sim, member_status::suspect, victim), 0u) << dump_events(sim);
}

TEST(membership_sim, a_paused_node_goes_suspect_then_dead_and_is_alive_again_after_resume) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t sleeper = 2;
  const uint64_t incarnation = sim.core(sleeper).self().incarnation;
  sim.pause(sleeper);
  sim.run_for(8000);

  for (size_t i = 0; i < 5; ++i) {
    if (i == sleeper) continue;
    std::vector<member_status> seen;
    for (const auto& e : status_changes_of(sim, sleeper)) {
      if (e.node == i) seen.push_back(e.event.entry.status);
    }
    EXPECT_EQ(seen, (std::vector<member_status>{member_status::suspect, member_status::dead}))
        << "node " << i << "\n" << dump_events(sim);
  }

  size_t events_before_resume = sim.events().size();
  sim.resume(sleeper);
  auto back = sim.run_until(
      [&] {
        return sim.all_running_agree_alive() &&
               sim.all_others_see(sleeper, [&](const member* m) {
                 return m != nullptr && m->incarnation > incarnation;
               });
      },
      2000);
  ASSERT_TRUE(back) << dump_events(sim);
  EXPECT_GT(sim.core(sleeper).self().incarnation, incarnation);
  EXPECT_EQ(sim.core(sleeper).self().incarnation, sim.seen(0, sleeper)->incarnation);
  // The same process went on (no restart), and after its pause it suspected no one.
  bool refuted = false;
  for (size_t k = events_before_resume; k < sim.events().size(); ++k) {
    const auto& e = sim.events()[k];
    if (e.node == sleeper && e.event.what == kind::refuted) refuted = true;
    if (e.node == sleeper && e.event.what == kind::status_changed) {
      ADD_FAILURE() << "after its pause, node " << sleeper << ": " << describe(e.event);
    }
  }
  EXPECT_TRUE(refuted);
  sim.run_for(10000);
  EXPECT_TRUE(sim.all_running_agree_alive()) << dump_events(sim);
}

TEST(membership_sim, a_restarted_node_is_alive_everywhere_with_a_higher_incarnation) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t victim = 4;
  const uint64_t incarnation = sim.core(victim).self().incarnation;
  sim.kill(victim);
  ASSERT_TRUE(sim.run_until([&] { return sim.all_others_see(victim, member_status::dead); },
                            defaults.suspicion_timeout_ms + 2000));
  sim.run_for(1000);
  sim.restart(victim);
  auto back = sim.run_until(
      [&] {
        return sim.all_running_agree_alive() &&
               sim.all_others_see(victim, [&](const member* m) {
                 return m != nullptr && m->incarnation > incarnation;
               });
      },
      2000);
  ASSERT_TRUE(back) << dump_events(sim);
  EXPECT_EQ(sim.core(victim).table().size(), 5u);
  sim.run_for(10000);
  EXPECT_TRUE(sim.all_running_agree_alive()) << dump_events(sim);
}

TEST(membership_sim, a_node_restarted_before_anyone_noticed_is_alive_with_a_higher_incarnation) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t victim = 1;
  const uint64_t incarnation = sim.core(victim).self().incarnation;
  sim.kill(victim);
  sim.run_for(50);
  sim.restart(victim);
  auto back = sim.run_until(
      [&] {
        return sim.all_running_agree_alive() &&
               sim.all_others_see(victim, [&](const member* m) {
                 return m != nullptr && m->incarnation > incarnation;
               });
      },
      2000);
  ASSERT_TRUE(back) << dump_events(sim);
  sim.run_for(10000);
  EXPECT_TRUE(sim.all_running_agree_alive()) << dump_events(sim);
  EXPECT_EQ(changes_to(sim, member_status::dead), 0u) << dump_events(sim);
}

TEST(membership_sim, a_node_that_leaves_is_left_everywhere_at_once_and_never_suspect) {
  sim_config c = lan();
  membership_sim sim(c);
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t leaver = 4;
  sim.leave(leaver);
  sim.run_for(c.latency_ms + c.jitter_ms);
  EXPECT_TRUE(sim.all_others_see(leaver, member_status::left)) << dump_events(sim);

  sim.run_for(defaults.dead_retention_ms + 2000);
  for (const auto& e : status_changes_of(sim, leaver)) {
    EXPECT_EQ(e.event.entry.status, member_status::left) << describe(e.event);
  }
  EXPECT_TRUE(sim.none_know(leaver)) << "removed after dead_retention_ms";
  EXPECT_TRUE(sim.all_running_agree_alive());
  EXPECT_EQ(changes_to(sim, member_status::suspect), 0u) << dump_events(sim);
}

TEST(membership_sim, no_false_positives_over_ten_minutes_with_loss_and_jitter) {
  sim_config c = lan();
  c.jitter_ms = 20;
  c.loss = 0.01;
  membership_sim sim(c);
  sim.add_node();
  sim.add_nodes(4, {0});
  ASSERT_TRUE(sim.run_until([&] { return sim.all_running_agree_alive(); }, 5000));
  sim.run_for(10 * 60 * 1000);
  EXPECT_EQ(changes_to(sim, member_status::dead), 0u) << dump_events(sim);
  EXPECT_TRUE(sim.all_running_agree_alive()) << dump_events(sim);
  // Suspicion that was refuted is allowed (it is how SWIM survives loss), but it should be rare.
  size_t suspected = changes_to(sim, member_status::suspect);
  RecordProperty("suspicions", static_cast<int>(suspected));
  EXPECT_LE(suspected, 5u) << dump_events(sim);
}

TEST(membership_sim, a_node_told_it_is_suspect_refutes_with_the_next_incarnation) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(2000);
  const size_t target = 0;
  const uint64_t incarnation = sim.core(target).self().incarnation;

  // Node 1 hears from "node 2" that node 0 is suspect (a stale or partitioned view elsewhere).
  gossip_msg rumour;
  rumour.kind = gossip_kind::ping;
  rumour.from_address = membership_sim::address_of(2);
  rumour.updates.push_back(sim.core(2).self());
  member suspect = sim.core(target).self();
  suspect.status = member_status::suspect;
  rumour.updates.push_back(suspect);
  sim.inject(1, rumour);
  EXPECT_EQ(sim.status_seen(1, target), member_status::suspect);

  auto refuted = sim.run_until(
      [&] {
        return sim.all_running_agree_alive() &&
               sim.all_others_see(target, [&](const member* m) {
                 return m != nullptr && m->incarnation == incarnation + 1;
               });
      },
      2000);
  ASSERT_TRUE(refuted) << dump_events(sim);
  EXPECT_EQ(sim.core(target).self().incarnation, incarnation + 1);
  sim.run_for(defaults.suspicion_timeout_ms + 2000);
  EXPECT_EQ(changes_to(sim, member_status::dead), 0u) << dump_events(sim);
  EXPECT_TRUE(sim.all_running_agree_alive());
  EXPECT_EQ(sim.core(target).self().incarnation, incarnation + 1) << "refuted once";
}

TEST(membership_sim, a_partition_shorter_than_dead_retention_heals_within_two_seconds) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t island = 2;
  sim.disconnect(island);
  sim.run_for(20000);  // long enough for both sides to see the other dead, not to remove it
  EXPECT_TRUE(sim.all_others_see(island, member_status::dead)) << dump_events(sim);
  sim.reconnect(island);
  auto healed = sim.run_until([&] { return sim.all_running_agree_alive(); }, 2000);
  EXPECT_TRUE(healed) << dump_events(sim);
}

// Regression: once both sides had removed each other, each ignored the other's entries until
// its tombstone expired (10 * dead_retention_ms = 300 s) and nobody told the island it was dead,
// so it never refuted. Now a node answers a removed sender with its record of it.
TEST(membership_sim, a_partition_longer_than_dead_retention_heals_within_seconds) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t island = 2;
  sim.disconnect(island);
  sim.run_for(defaults.suspicion_timeout_ms + defaults.dead_retention_ms + 10000);
  ASSERT_TRUE(sim.none_know(island));
  sim.reconnect(island);
  auto healed = sim.run_until([&] { return sim.all_running_agree_alive(); }, 5000);
  EXPECT_TRUE(healed) << dump_events(sim);
}

// Regression (issue 20, found by tests/faults' partition scenario): when a partition healed, the
// island's verdicts (everyone else dead) reached the other side, and its nodes took "dead" for
// members they had been hearing all along, until those refuted. First-hand evidence now weighs: a
// dead verdict about a member heard lately is taken as suspect, and the member refutes it.
TEST(membership_sim, a_healed_partition_does_not_mark_dead_a_member_its_side_was_hearing) {
  membership_sim sim(lan());
  start_cluster(sim, 5);
  sim.run_for(5000);
  const size_t island = 2;
  sim.disconnect(island);
  sim.run_for(20000);
  ASSERT_TRUE(sim.all_others_see(island, member_status::dead)) << dump_events(sim);
  ASSERT_EQ(sim.status_seen(island, 0), member_status::dead) << "the island's verdict exists";
  const int64_t healed_at = sim.now();
  sim.reconnect(island);
  ASSERT_TRUE(sim.run_until([&] { return sim.all_running_agree_alive(); }, 2000))
      << dump_events(sim);
  sim.run_for(5000);
  for (const auto& e : sim.events()) {
    if (e.at_ms < healed_at || e.node == island || e.event.what != kind::status_changed ||
        e.event.entry.id == membership_sim::id_of(island) ||
        e.event.entry.status != member_status::dead) {
      continue;
    }
    ADD_FAILURE() << membership_sim::id_of(e.node) << " at " << e.at_ms
                  << " ms: " << describe(e.event);
  }
}

TEST(membership_sim, a_newcomer_knows_a_cluster_of_two_hundred_at_once_and_everyone_knows_it_soon) {
  sim_config c = lan();
  c.keep_events = false;
  membership_sim sim(c);
  sim.add_node();
  sim.add_nodes(199, {0});
  ASSERT_TRUE(sim.run_until([&] { return sim.all_running_agree_alive(); }, 60000,
                            defaults.gossip_interval_ms));
  sim.run_for(5000);
  const size_t newcomer = sim.add_node({0});
  // Push-pull on join: the newcomer has the seed's whole table after one round trip (its first
  // tick comes within one gossip interval), not 15 entries at a time.
  auto knows = sim.run_until(
      [&] {
        const auto& table = sim.core(newcomer).table();
        if (table.size() != 201) return false;
        for (const auto& [id, m] : table.entries()) {
          if (m.status != member_status::alive) return false;
        }
        return true;
      },
      2 * defaults.gossip_interval_ms);
  EXPECT_TRUE(knows) << "the newcomer knows " << sim.core(newcomer).table().size() << " of 201";
  // Everyone else learns of it by gossip in O(log N) rounds.
  auto known = sim.run_until([&] { return sim.all_others_see(newcomer, member_status::alive); },
                             3000);
  EXPECT_TRUE(known);
}

TEST(membership_sim, messages_stay_bounded_in_a_cluster_of_two_hundred) {
  sim_config c = lan();
  c.keep_events = false;
  membership_sim sim(c);
  sim.add_node();
  sim.add_nodes(199, {0});
  auto took = sim.run_until([&] { return sim.all_running_agree_alive(); }, 120000,
                            defaults.gossip_interval_ms);
  ASSERT_TRUE(took);
  RecordProperty("converged_ms", static_cast<int>(*took));
  sim.run_for(5000);  // every message is full once every table is
  const sim_traffic& t = sim.traffic();
  EXPECT_LE(t.max_updates, defaults.max_updates_per_message);
  // 16 entries of ~80 bytes (id, name, three addresses, numbers) plus the envelope.
  EXPECT_LT(t.max_bytes, 2048u);
  EXPECT_TRUE(sim.all_running_agree_alive());
}

}  // namespace
}  // namespace shoal::testing
