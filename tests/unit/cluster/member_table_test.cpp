// The member table's merge laws and the incarnation rules, plus single-step behaviour of the
// membership core with messages passed by hand (scenarios over many nodes live in
// membership_sim_test.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <set>
#include <vector>

#include "shoal/cluster/membership.hpp"

namespace shoal {
namespace {

member entry(const std::string& id, uint64_t inc, member_status st, uint64_t hb) {
  member m;
  m.id = id;
  m.name = id;
  m.cluster_address = "127.0.0.1:" + std::to_string(7000 + id.back());
  m.incarnation = inc;
  m.status = st;
  m.heartbeat = hb;
  return m;
}

std::vector<member> random_entries(std::mt19937_64& rng, size_t n) {
  std::vector<member> out;
  for (size_t i = 0; i < n; ++i) {
    member m = entry(std::string("n") + char('a' + rng() % 4), rng() % 3, member_status(rng() % 4),
                     rng() % 5);
    m.load.in_flight = static_cast<uint32_t>(rng() % 2);
    out.push_back(m);
  }
  return out;
}

member_table table_of(const std::vector<member>& entries) {
  member_table t;
  for (const auto& m : entries) t.merge(m);
  return t;
}

TEST(member_table, merge_is_commutative_associative_and_idempotent) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 500; ++round) {
    auto a = table_of(random_entries(rng, 6));
    auto b = table_of(random_entries(rng, 6));
    auto c = table_of(random_entries(rng, 6));
    member_table ab = a, ba = b;
    ab.merge(b);
    ba.merge(a);
    EXPECT_EQ(ab, ba) << "commutative, round " << round;
    member_table ab_c = ab, a_bc = a, bc = b;
    ab_c.merge(c);
    bc.merge(c);
    a_bc.merge(bc);
    EXPECT_EQ(ab_c, a_bc) << "associative, round " << round;
    member_table aa = a;
    aa.merge(a);
    EXPECT_EQ(aa, a) << "idempotent, round " << round;
  }
}

TEST(member_table, any_order_of_the_same_entries_gives_the_same_table) {
  std::mt19937_64 rng(7);
  auto entries = random_entries(rng, 40);
  auto expected = table_of(entries);
  for (int i = 0; i < 50; ++i) {
    std::shuffle(entries.begin(), entries.end(), rng);
    EXPECT_EQ(table_of(entries), expected);
  }
}

TEST(member_table, a_higher_incarnation_wins_whatever_the_status) {
  member_table t;
  t.merge(entry("n1", 5, member_status::dead, 90));
  EXPECT_TRUE(t.merge(entry("n1", 6, member_status::alive, 0)));
  EXPECT_EQ(t.find("n1")->status, member_status::alive);
  EXPECT_FALSE(t.merge(entry("n1", 5, member_status::left, 100)));
  EXPECT_EQ(t.find("n1")->incarnation, 6u);
}

TEST(member_table, at_one_incarnation_the_stronger_status_wins_over_a_newer_heartbeat) {
  member_table t;
  t.merge(entry("n1", 3, member_status::alive, 10));
  EXPECT_TRUE(t.merge(entry("n1", 3, member_status::suspect, 4)));
  EXPECT_FALSE(t.merge(entry("n1", 3, member_status::alive, 50)));
  EXPECT_EQ(t.find("n1")->status, member_status::suspect);
  EXPECT_TRUE(t.merge(entry("n1", 3, member_status::dead, 0)));
  EXPECT_TRUE(t.merge(entry("n1", 3, member_status::left, 0)));
  EXPECT_FALSE(t.merge(entry("n1", 3, member_status::dead, 99)));
  EXPECT_EQ(t.find("n1")->status, member_status::left);
}

TEST(member_table, at_one_incarnation_and_status_the_higher_heartbeat_wins) {
  member_table t;
  t.merge(entry("n1", 1, member_status::alive, 10));
  EXPECT_FALSE(t.merge(entry("n1", 1, member_status::alive, 9)));
  EXPECT_TRUE(t.merge(entry("n1", 1, member_status::alive, 11)));
  EXPECT_EQ(t.find("n1")->heartbeat, 11u);
}

// ---- the membership core, one message at a time ---------------------------------------------

membership_config node_config(const std::string& id, uint16_t port) {
  membership_config c;
  c.id = id;
  c.name = id;
  c.cluster_address = "127.0.0.1:" + std::to_string(port);
  c.incarnation = 100;
  return c;
}

// Delivers every message addressed to `to` from `out`; returns the replies.
std::vector<outgoing> deliver(membership& to, const std::vector<outgoing>& out, int64_t now) {
  std::vector<outgoing> replies;
  for (const auto& o : out) {
    if (o.address != to.config().cluster_address) continue;
    auto r = to.receive(o.msg, now);
    replies.insert(replies.end(), r.begin(), r.end());
  }
  return replies;
}

TEST(membership, a_node_joins_through_its_seed_and_both_see_each_other_alive) {
  membership a(node_config("a", 7420));
  auto cb = node_config("b", 7430);
  cb.seeds = {"127.0.0.1:7420"};
  membership b(cb);
  auto out = b.tick(0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].address, "127.0.0.1:7420");
  auto replies = deliver(a, out, 1);
  ASSERT_NE(a.table().find("b"), nullptr);
  EXPECT_EQ(a.table().find("b")->status, member_status::alive);
  deliver(b, replies, 2);
  ASSERT_NE(b.table().find("a"), nullptr);
  EXPECT_EQ(b.table().find("a")->status, member_status::alive);
  auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].what, membership_event::kind::joined);
  EXPECT_EQ(describe(events[0]), "member b (127.0.0.1:7430, incarnation 100) joined as alive");
}

// The round trip of a gossip ping to its ack, smoothed, shows in view() (and from there steers
// the data plane to near holders): 40 ms first, then samples of 120 ms move it by an eighth.
TEST(membership, acks_to_our_pings_give_each_peer_a_smoothed_round_trip) {
  membership a(node_config("a", 7420));
  auto cb = node_config("b", 7430);
  cb.seeds = {"127.0.0.1:7420"};
  membership b(cb);
  deliver(b, deliver(a, b.tick(0), 1), 2);
  auto rtt_of = [](const membership& m, const std::string& id, int64_t now) {
    for (const auto& v : m.view(now)) {
      if (v.entry.id == id) return v.rtt_ms;
    }
    return std::optional<double>();
  };
  EXPECT_FALSE(rtt_of(b, "a", 2)) << "no ping of b's answered yet";
  int64_t now = 1000;
  auto pings = b.tick(now);  // b's gossip ping to a (its only peer)
  auto acks = deliver(a, pings, now + 20);
  deliver(b, acks, now + 40);
  ASSERT_TRUE(rtt_of(b, "a", now + 40));
  EXPECT_DOUBLE_EQ(*rtt_of(b, "a", now + 40), 40.0);
  now += b.config().gossip_interval_ms;
  pings = b.tick(now);
  deliver(b, deliver(a, pings, now + 60), now + 120);
  EXPECT_DOUBLE_EQ(*rtt_of(b, "a", now + 120), 40.0 + (120.0 - 40.0) / 8);
  // An ack that answers no ping of ours (a replay, another seq) gives no sample.
  deliver(b, acks, now + 500);
  EXPECT_DOUBLE_EQ(*rtt_of(b, "a", now + 500), 50.0);
}

// hears(): our own evidence of a member, what routing keeps a suspect by (issue 20, flapping):
// its heartbeat rose here within probe_timeout_ms + two gossip intervals.
TEST(membership, hears_a_member_whose_heartbeat_rose_within_the_last_probe_round) {
  membership a(node_config("a", 7420));
  gossip_msg m;
  m.kind = gossip_kind::ack;
  m.from_address = "127.0.0.1:7430";
  m.updates = {entry("b", 1, member_status::alive, 1)};
  a.receive(m, 1000);
  m.updates = {entry("b", 1, member_status::alive, 2)};
  a.receive(m, 1200);
  const auto& c = a.config();
  EXPECT_TRUE(a.hears("b", 1200 + c.probe_timeout_ms + 2 * c.gossip_interval_ms));
  EXPECT_FALSE(a.hears("b", 1201 + c.probe_timeout_ms + 2 * c.gossip_interval_ms));
  EXPECT_FALSE(a.hears("nobody", 1200));
  // A rumour that b is suspect does not count as hearing it, and does not stop us hearing it.
  m.from_address = "127.0.0.1:7440";
  m.updates = {entry("c", 1, member_status::alive, 1), entry("b", 1, member_status::suspect, 2)};
  a.receive(m, 1300);
  EXPECT_EQ(a.table().find("b")->status, member_status::suspect);
  EXPECT_TRUE(a.hears("b", 1300));
}

TEST(membership, a_suspected_node_refutes_with_a_higher_incarnation) {
  membership a(node_config("a", 7420));
  gossip_msg rumour;
  rumour.kind = gossip_kind::ping;
  rumour.from_address = "127.0.0.1:7430";
  rumour.updates = {entry("b", 1, member_status::alive, 1), a.self()};
  rumour.updates[1].status = member_status::suspect;
  auto replies = a.receive(rumour, 10);
  EXPECT_EQ(a.self().status, member_status::alive);
  EXPECT_EQ(a.self().incarnation, 101u);
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies[0].msg.updates.front().incarnation, 101u) << "the ack carries the refutation";
  auto events = a.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().what, membership_event::kind::refuted);
}

TEST(membership, an_older_life_with_a_higher_incarnation_is_overtaken) {
  membership a(node_config("a", 7420));
  gossip_msg old_life;
  old_life.kind = gossip_kind::ack;
  old_life.from_address = "127.0.0.1:7430";
  old_life.updates = {entry("b", 1, member_status::alive, 1), a.self()};
  old_life.updates[1].incarnation = 250;  // alive, from before a clock step back
  a.receive(old_life, 10);
  EXPECT_EQ(a.self().incarnation, 251u);
  EXPECT_EQ(a.self().status, member_status::alive);
}

TEST(membership, only_ring_neighbours_get_heartbeats_and_probes) {
  auto cfg = node_config("m050", 7420);
  cfg.monitored_peers = 3;
  membership a(cfg);
  gossip_msg many;
  many.kind = gossip_kind::ping;
  many.from_address = "127.0.0.1:9999";
  for (int i = 0; i < 100; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "m%03d", i);
    if (std::string(id) == "m050") continue;
    auto m = entry(id, 1, member_status::alive, 1);
    m.cluster_address = "10.0.0." + std::to_string(i) + ":7420";
    many.updates.push_back(m);
  }
  a.receive(many, 0);
  std::set<std::string> heartbeat_to;
  for (const auto& o : a.tick(200)) {
    if (o.msg.kind == gossip_kind::heartbeat) {
      heartbeat_to.insert(o.address);
      EXPECT_EQ(o.msg.updates.size(), 1u);
    }
  }
  // Our monitors are the 3 ids before ours on the ring.
  EXPECT_EQ(heartbeat_to, (std::set<std::string>{"10.0.0.47:7420", "10.0.0.48:7420", "10.0.0.49:7420"}));
  // Silence from everyone: only the 3 ids after ours are probed.
  std::set<std::string> probed;
  for (int64_t t = 400; t < 5000; t += 200) {
    for (const auto& o : a.tick(t)) {
      if (is_probe(o.msg)) probed.insert(o.address);
    }
  }
  EXPECT_EQ(probed, (std::set<std::string>{"10.0.0.51:7420", "10.0.0.52:7420", "10.0.0.53:7420"}));
}

TEST(membership, silence_leads_to_a_probe_then_indirect_probes_then_suspicion) {
  auto cfg = node_config("a", 7420);
  membership a(cfg);
  // Two peers, b and c, heard from regularly until t = 2000.
  int64_t t = 0;
  for (uint64_t hb = 1; hb <= 10; ++hb) {
    t = static_cast<int64_t>(hb) * 200;
    gossip_msg m;
    m.kind = gossip_kind::ack;
    m.from_address = "127.0.0.1:7430";
    m.updates = {entry("b", 1, member_status::alive, hb), entry("c", 1, member_status::alive, hb)};
    a.receive(m, t);
    a.tick(t);
  }
  a.take_events();
  // Silence: b and c pass the phi threshold and get a direct ping each.
  std::vector<outgoing> out;
  int64_t probe_started = 0;
  for (; t < 4000 && probe_started == 0; t += 200) {
    for (auto& o : a.tick(t)) {
      if (is_probe(o.msg)) probe_started = t;
      out.push_back(o);
    }
  }
  ASSERT_NE(probe_started, 0) << "no probe within 2 s of silence";
  EXPECT_GE(a.phi("b", probe_started), cfg.phi_threshold);
  // c answers its probe; b does not. After probe_timeout_ms, c is asked to ping b.
  const std::string c_address = entry("c", 1, member_status::alive, 0).cluster_address;
  uint64_t c_seq = 0;
  for (const auto& o : out) {
    if (is_probe(o.msg) && o.address == c_address) c_seq = o.msg.seq;
  }
  ASSERT_NE(c_seq, 0u);
  gossip_msg ack;
  ack.kind = gossip_kind::ack;
  ack.seq = c_seq;
  ack.target_id = "c";
  ack.from_address = c_address;
  ack.updates = {entry("c", 1, member_status::alive, 11)};
  a.receive(ack, t);
  bool asked_c = false;
  for (; t < probe_started + cfg.probe_timeout_ms + 400; t += 100) {
    for (auto& o : a.tick(t)) {
      if (o.msg.kind == gossip_kind::ping_req) {
        EXPECT_EQ(o.msg.target_id, "b");
        EXPECT_EQ(o.address, c_address);
        asked_c = true;
      }
    }
  }
  EXPECT_TRUE(asked_c);
  EXPECT_EQ(a.table().find("b")->status, member_status::alive) << "not suspect before the indirect timeout";
  for (; t < probe_started + cfg.probe_timeout_ms + cfg.indirect_probe_timeout_ms + 400; t += 100) a.tick(t);
  EXPECT_EQ(a.table().find("b")->status, member_status::suspect);
  EXPECT_EQ(a.table().find("c")->status, member_status::alive);
  auto events = a.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().what, membership_event::kind::status_changed);
  EXPECT_GE(events.back().phi, cfg.phi_threshold);
  EXPECT_NE(describe(events.back()).find("alive -> suspect phi="), std::string::npos)
      << describe(events.back());
  // No refutation within suspicion_timeout_ms: dead.
  for (int64_t end = t + cfg.suspicion_timeout_ms + 200; t < end; t += 100) a.tick(t);
  EXPECT_EQ(a.table().find("b")->status, member_status::dead);
}

TEST(membership, a_leave_message_marks_the_sender_left_at_once) {
  membership a(node_config("a", 7420));
  membership b(node_config("b", 7430));
  gossip_msg hello;
  hello.kind = gossip_kind::ping;
  hello.from_address = b.config().cluster_address;
  hello.updates = {b.self()};
  a.receive(hello, 0);
  auto bye = b.leave(10);
  EXPECT_TRUE(bye.empty()) << "b knows no one yet";
  gossip_msg hello_a;
  hello_a.kind = gossip_kind::ping;
  hello_a.from_address = a.config().cluster_address;
  hello_a.updates = {a.self()};
  membership b2(node_config("b", 7430));
  b2.receive(hello_a, 0);
  bye = b2.leave(20);
  ASSERT_EQ(bye.size(), 1u);
  EXPECT_EQ(bye[0].msg.kind, gossip_kind::leave);
  deliver(a, bye, 21);
  EXPECT_EQ(a.table().find("b")->status, member_status::left);
  EXPECT_TRUE(b2.tick(200).empty()) << "a leaving node sends nothing more";
}

TEST(membership, our_own_pause_does_not_make_us_suspect_everyone) {
  membership a(node_config("a", 7420));
  int64_t t = 0;
  for (uint64_t hb = 1; hb <= 20; ++hb) {
    t = static_cast<int64_t>(hb) * 200;
    gossip_msg m;
    m.kind = gossip_kind::ack;
    m.from_address = "127.0.0.1:7430";
    m.updates = {entry("b", 1, member_status::alive, hb)};
    a.receive(m, t);
    a.tick(t);
  }
  a.take_events();
  t += 10000;  // SIGSTOP for 10 s, then SIGCONT: the first tick sees the gap
  for (const auto& o : a.tick(t)) EXPECT_FALSE(is_probe(o.msg)) << "no probe right after a pause";
  EXPECT_LT(a.phi("b", t), 1);
  auto events = a.take_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().what, membership_event::kind::resumed);
}

TEST(membership, messages_carry_at_most_the_configured_number_of_entries) {
  auto cfg = node_config("a", 7420);
  cfg.max_updates_per_message = 8;
  membership a(cfg);
  gossip_msg many;
  many.kind = gossip_kind::ping;
  many.from_address = "127.0.0.1:9999";
  for (int i = 0; i < 100; ++i) {
    many.updates.push_back(entry("m" + std::to_string(i), 1, member_status::alive, 1));
  }
  a.receive(many, 0);
  std::set<std::string> seen;
  // The rotating slice (and the periodic push-pull, under the same cap) carries every entry.
  for (int64_t t = 200; t < 200 * 400; t += 200) {
    for (const auto& o : a.tick(t)) {
      EXPECT_LE(o.msg.updates.size(), 8u);
      EXPECT_EQ(o.msg.updates.front().id, "a") << "the sender's own entry comes first";
      for (const auto& m : o.msg.updates) seen.insert(m.id);
    }
  }
  EXPECT_EQ(seen.size(), 101u) << "anti-entropy carries every entry in time";
}

// A gossip message from `from` carrying `n` more members (m000, m001, ...).
gossip_msg crowd(const member& from, int n) {
  gossip_msg g;
  g.kind = gossip_kind::ping;
  g.from_address = from.cluster_address;
  g.updates.push_back(from);
  for (int i = 0; i < n; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "m%03d", i);
    auto m = entry(id, 1, member_status::alive, 1);
    m.cluster_address = "10.0.0." + std::to_string(i) + ":7420";
    g.updates.push_back(m);
  }
  return g;
}

TEST(membership, a_node_that_knows_no_one_gets_the_whole_table_from_the_first_peer_it_hears) {
  auto ca = node_config("a", 7420);
  ca.max_updates_per_message = 8;
  membership a(ca);
  auto x = entry("x", 1, member_status::alive, 1);
  x.cluster_address = "127.0.0.1:7999";
  a.receive(crowd(x, 40), 0);
  ASSERT_EQ(a.table().size(), 42u);  // a, x, m000..m039

  auto cb = node_config("b", 7430);
  cb.max_updates_per_message = 8;
  cb.seeds = {"127.0.0.1:7420"};
  membership b(cb);
  auto acks = deliver(a, b.tick(0), 1);  // b pings its seed; a is not alone: just an ack
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].msg.kind, gossip_kind::ack);

  auto request = deliver(b, acks, 2);  // b knew no one: it asks a for its table, pushing its own
  ASSERT_FALSE(request.empty());
  EXPECT_EQ(request[0].msg.kind, gossip_kind::sync_req);
  for (size_t i = 1; i < request.size(); ++i) EXPECT_EQ(request[i].msg.kind, gossip_kind::sync);
  auto answer = deliver(a, request, 3);
  // a's entry first in every message, then 7 of the 42 others (x, m000..m039, b): 6 messages.
  ASSERT_EQ(answer.size(), 6u);
  for (const auto& o : answer) {
    EXPECT_EQ(o.address, "127.0.0.1:7430");
    EXPECT_EQ(o.msg.kind, gossip_kind::sync);
    EXPECT_LE(o.msg.updates.size(), 8u);
    EXPECT_EQ(o.msg.updates.front().id, "a");
  }
  EXPECT_TRUE(deliver(b, answer, 4).empty()) << "a sync is not answered";
  EXPECT_EQ(b.table().size(), 43u) << "b knows everyone a knows after one round trip";
  EXPECT_EQ(b.table().find("m039")->status, member_status::alive);
}

TEST(membership, every_sync_interval_a_node_swaps_tables_with_one_live_peer) {
  for (int64_t interval : {int64_t{10000}, int64_t{0}}) {
    auto ca = node_config("a", 7420);
    ca.sync_interval_ms = interval;
    membership a(ca);
    auto x = entry("x", 1, member_status::alive, 1);
    x.cluster_address = "127.0.0.1:7999";
    a.receive(crowd(x, 20), 0);
    std::set<std::string> asked;
    int requests = 0;
    for (int64_t t = 200; t <= 100000; t += 200) {
      // Keep everyone's heartbeat rising so nobody is suspected.
      auto fresh = crowd(x, 20);
      for (auto& m : fresh.updates) m.heartbeat = static_cast<uint64_t>(t);
      a.receive(fresh, t);
      for (const auto& o : a.tick(t)) {
        if (o.msg.kind != gossip_kind::sync_req) continue;
        ++requests;
        asked.insert(o.address);
      }
    }
    if (interval == 0) {
      EXPECT_EQ(requests, 0) << "sync_interval_ms 0: push-pull only when joining";
    } else {
      EXPECT_GE(requests, 9);  // 100 s / 10 s, the first at a random point of the interval
      EXPECT_LE(requests, 10);
      EXPECT_GE(asked.size(), 3u) << "a random peer each time";
    }
  }
}

}  // namespace
}  // namespace shoal
