// The replicated catalog: replicas that hold the same changes show the same catalog whatever
// order the changes arrived in; gaps are refused, duplicates ignored; nothing is ever lost.
#include "shoal/cluster/replicated_catalog.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "support/catalog_dump.hpp"
#include "support/replica_steps.hpp"

namespace shoal {
namespace {

using testing::dump;

const model_id bot{"acme", "bot"};

snapshot_info snap(const std::string& sha) { return testing::test_snapshot(sha); }

std::vector<catalog_change> push(replicated_catalog& r, const model_id& id, const std::string& sha,
                                 int64_t t, const std::string& label = "") {
  return testing::push_on(r, id, sha, t, label);
}

std::vector<catalog_change> move(replicated_catalog& r, const model_id& id, label_action action,
                                 std::optional<uint32_t> version, int64_t t,
                                 const std::string& label = "production") {
  label_request req;
  req.id = id;
  req.label = label;
  req.action = action;
  req.version = version;
  auto planned = r.view().plan_label(req, t);
  EXPECT_TRUE(planned.is_ok()) << planned.error().message();
  if (!planned) return {};
  auto changes = r.stamp({*planned}, t);
  for (const auto& c : changes) EXPECT_TRUE(r.add(c, t).is_ok());
  return changes;
}

// Delivers everything `from` has that `to` lacks (anti-entropy, one exchange).
void sync(const replicated_catalog& from, replicated_catalog& to, int64_t t) {
  for (const auto& c : from.missing_for(to.frontier(), 1000000)) {
    auto r = to.add(c, t);
    ASSERT_TRUE(r.is_ok()) << r.error().message();
  }
}

// Issue 18: two nodes roll back the same watched move by themselves at once; whatever order the
// changes arrive in, production moves back once. Tenant policies converge the same way.
TEST(replicated_catalog, two_automatic_rollbacks_of_one_move_apply_once_in_any_order) {
  replicated_catalog n1("n1"), n2("n2");
  push(n1, bot, "s1", 1000);
  push(n1, bot, "s2", 2000);
  move(n1, bot, label_action::promote, 2u, 3000);
  sync(n1, n2, 3100);
  auto automatic = [&](replicated_catalog& r, int64_t t) {
    label_request req;
    req.id = bot;
    req.label = "production";
    req.action = label_action::rollback;
    req.version = 1u;
    auto planned = r.view().plan_label(req, t);
    EXPECT_TRUE(planned.is_ok());
    planned->automatic = true;
    planned->expect_from = 2;
    planned->reason = "agreement 31% < 70% over 2,000 requests";
    auto changes = r.stamp({*planned}, t);
    EXPECT_TRUE(r.add(changes[0], t).is_ok());
  };
  automatic(n1, 4000);
  automatic(n2, 4001);
  sync(n1, n2, 5000);
  sync(n2, n1, 5000);
  EXPECT_EQ(dump(n1.view()), dump(n2.view()));
  const auto& st = n1.view().find(bot)->labels.at("production");
  EXPECT_EQ(st.current(), 1u);
  EXPECT_EQ(std::count_if(st.history.begin(), st.history.end(),
                          [](const label_move& m) { return m.automatic; }),
            1);
  // A tenant's policy set on both nodes: the later one wins everywhere.
  for (auto* r : {&n1, &n2}) {
    catalog_change p;
    p.what = catalog_change::kind::policy;
    p.id = model_id{"acme", ""};
    p.policy = {{"watch", r == &n1 ? "5m" : "7m"}};
    auto stamped = r->stamp({p}, r == &n1 ? 6000 : 6001);
    ASSERT_TRUE(r->add(stamped[0], 6002).is_ok());
  }
  sync(n2, n1, 7000);
  sync(n1, n2, 7000);
  EXPECT_EQ(n1.view().tenant_policy("acme").at("watch"), "7m");
  EXPECT_EQ(n2.view().tenant_policy("acme").at("watch"), "7m");
}

TEST(replicated_catalog, a_change_made_on_one_node_shows_the_same_on_another) {
  replicated_catalog n1("n1"), n2("n2");
  push(n1, bot, "s1", 1000);
  push(n1, bot, "s2", 2000, "staging");
  sync(n1, n2, 2500);
  EXPECT_EQ(dump(n2.view()), dump(n1.view()));
  EXPECT_EQ(n2.frontier(), (catalog_frontier{{"n1", 4}}));  // add+production, add+staging
  // A rollback on n2 (it holds the history) reaches n1.
  move(n2, bot, label_action::promote, 2u, 3000);
  move(n2, bot, label_action::rollback, std::nullopt, 4000);
  sync(n2, n1, 4500);
  EXPECT_EQ(dump(n1.view()), dump(n2.view()));
  EXPECT_EQ(n1.view().find(bot)->labels.at("production").current(), 1u);
  EXPECT_EQ(n1.view().find(bot)->labels.at("production").history.size(), 3u);
}

TEST(replicated_catalog, a_gap_is_refused_and_a_duplicate_ignored) {
  replicated_catalog n1("n1"), n2("n2");
  push(n1, bot, "s1", 1000);
  push(n1, bot, "s2", 2000);
  push(n1, bot, "s3", 3000);
  auto all = n1.missing_for({}, 100);
  ASSERT_EQ(all.size(), 4u);  // first push: add + production; then two adds
  auto r = n2.add(all[2], 3000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::failed_precondition);
  EXPECT_EQ(r.error().message(), "catalog change 3 of n1 arrived before 1-2 (held up to 0)");
  EXPECT_EQ(n2.size(), 0u);
  EXPECT_EQ(*n2.add(all[0], 3000), true);
  EXPECT_EQ(*n2.add(all[0], 3000), false) << "held already";
  EXPECT_EQ(n2.add(all[2], 3000).error().message(),
            "catalog change 3 of n1 arrived before 2 (held up to 1)");
  EXPECT_EQ(n2.range("n1", 2, 2).size(), 0u);
  EXPECT_EQ(n1.range("n1", 2, 3).size(), 2u);
  EXPECT_EQ(n1.range("n1", 2, 3).front().seq, 2u);
}

TEST(replicated_catalog, missing_for_is_capped_and_resumes_from_the_new_frontier) {
  replicated_catalog n1("n1"), n2("n2");
  for (int i = 0; i < 10; ++i) push(n1, bot, "s" + std::to_string(i), 1000 + i);
  int rounds = 0;
  while (n2.size() < n1.size()) {
    auto batch = n1.missing_for(n2.frontier(), 3);
    ASSERT_LE(batch.size(), 3u);
    ASSERT_FALSE(batch.empty());
    for (const auto& c : batch) ASSERT_TRUE(n2.add(c, 5000).is_ok());
    ++rounds;
  }
  EXPECT_EQ(rounds, 4);  // 11 changes, 3 at a time
  EXPECT_EQ(dump(n2.view()), dump(n1.view()));
  EXPECT_TRUE(n1.missing_for(n2.frontier(), 3).empty());
}

// A label moved on n2 to a version n2 got from n1; n3 hears n2's move before n1's add (from
// different origins, so both are "next" for n3). The move waits in the change set and applies
// as soon as the version arrives.
TEST(replicated_catalog, a_label_move_that_arrives_before_its_version_applies_when_it_comes) {
  replicated_catalog n1("n1"), n2("n2"), n3("n3");
  push(n1, bot, "s1", 1000);
  sync(n1, n3, 1000);
  push(n1, bot, "s2", 2000);
  sync(n1, n2, 2000);
  auto moved = move(n2, bot, label_action::promote, 2u, 2100);
  ASSERT_TRUE(*n3.add(moved[0], 2200));
  EXPECT_EQ(n3.view().find(bot)->labels.at("production").current(), 1u) << "v2 not known yet";
  sync(n1, n3, 2300);
  EXPECT_EQ(n3.view().find(bot)->labels.at("production").current(), 2u);
  EXPECT_EQ(dump(n3.view()), dump(n2.view()));
}

// Two nodes roll back and promote the same label at the same moment: every replica ends with the
// same label and the same history (both moves kept), the later in (time, origin) order winning.
TEST(replicated_catalog, concurrent_label_moves_merge_the_same_everywhere_and_keep_both) {
  replicated_catalog n1("n1"), n2("n2");
  push(n1, bot, "s1", 1000);
  push(n1, bot, "s2", 1100);
  push(n1, bot, "s3", 1200);
  sync(n1, n2, 1300);
  move(n1, bot, label_action::promote, 3u, 2000);
  move(n2, bot, label_action::promote, 2u, 2000);  // same ms: origin breaks the tie (n2 > n1)
  sync(n1, n2, 2100);
  sync(n2, n1, 2100);
  EXPECT_EQ(dump(n1.view()), dump(n2.view()));
  const auto& prod = n1.view().find(bot)->labels.at("production");
  EXPECT_EQ(prod.current(), 2u);
  EXPECT_EQ(prod.history.size(), 3u);
}

// Numbering is the caller's job; if two nodes ever give the same number to different content,
// every replica keeps the same one (earlier in (time, origin) order) and reports the other,
// which stays in the change set (not lost: it still travels to every replica).
TEST(replicated_catalog, two_adds_of_one_version_number_resolve_the_same_everywhere) {
  replicated_catalog n1("n1"), n2("n2"), n3("n3");
  push(n1, bot, "s1", 1000);
  sync(n1, n2, 1000);
  push(n2, bot, "from-n2", 2000);  // version 2 at 2000 on n2
  push(n1, bot, "from-n1", 2001);  // version 2 at 2001 on n1
  sync(n1, n3, 2100);              // n3 sees n1's first...
  EXPECT_EQ(n3.view().find(bot)->find(2)->sha256, "from-n1");
  sync(n2, n3, 2200);              // ...then n2's earlier one: refold
  sync(n3, n1, 2300);
  sync(n3, n2, 2300);
  for (const auto* r : {&n1, &n2, &n3}) {
    EXPECT_EQ(r->view().find(bot)->find(2)->sha256, "from-n2");
    ASSERT_EQ(r->conflicts().size(), 1u);
    EXPECT_NE(r->conflicts()[0].find("change 3 of n1"), std::string::npos) << r->conflicts()[0];
    EXPECT_EQ(r->size(), 4u);
  }
  EXPECT_EQ(dump(n1.view()), dump(n3.view()));
}

TEST(replicated_catalog, changes_from_before_replication_are_stamped_the_same_on_every_replay) {
  catalog plain;
  std::vector<catalog_change> legacy;
  for (int i = 1; i <= 3; ++i) {
    auto changes = plain.plan_push(bot, snap("s" + std::to_string(i)), "", 1000 * i);
    for (const auto& c : changes) {
      ASSERT_TRUE(plain.apply(c).is_ok());
      legacy.push_back(c);
    }
  }
  replicated_catalog a("me"), b("me");
  for (const auto& c : legacy) ASSERT_TRUE(a.add(c, 9000).is_ok());
  for (const auto& c : legacy) ASSERT_TRUE(b.add(c, 99999).is_ok());
  EXPECT_EQ(dump(a.view()), dump(plain));
  EXPECT_EQ(a.missing_for({}, 100).size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    auto x = a.missing_for({}, 100)[i];
    auto y = b.missing_for({}, 100)[i];
    EXPECT_EQ(x.origin, "me");
    EXPECT_EQ(x.seq, i + 1);
    EXPECT_EQ(x.at, y.at);
  }
  // New changes continue after them.
  auto next = push(a, bot, "s4", 10000);
  EXPECT_EQ(next[0].seq, 5u);
  EXPECT_GT(next[0].at, a.missing_for({}, 100)[3].at);
}

TEST(replicated_catalog, malformed_changes_are_refused) {
  replicated_catalog r("n1");
  catalog_change c;
  c.id = model_id{"Bad Tenant", "x"};
  c.origin = "n2";
  c.seq = 1;
  EXPECT_EQ(r.add(c, 0).error().code(), status_code::invalid_argument);
  c.id = bot;
  c.seq = 0;
  EXPECT_EQ(r.add(c, 0).error().code(), status_code::invalid_argument);
  EXPECT_EQ(r.size(), 0u);
}

// Random work on three replicas with random partial exchanges; after a full exchange every
// replica equals the others and a fresh replica fed the changes in another order.
TEST(replicated_catalog, random_histories_converge_whatever_the_delivery_order) {
  int with_conflicts = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<replicated_catalog> nodes;
    for (const char* id : {"n1", "n2", "n3"}) nodes.emplace_back(id);
    const std::vector<model_id> models = {bot, {"acme", "faq"}, {"beta", "bot"}};
    int64_t t = 1000;
    int pushes = 0;
    for (int step = 0; step < 60; ++step) {
      t += static_cast<int64_t>(rng() % 50);
      auto& n = nodes[rng() % 3];
      const model_id& id = models[rng() % models.size()];
      const model_entry* m = n.view().find(id);
      int what = static_cast<int>(rng() % 4);
      if (m == nullptr || what == 0) {
        push(n, id, "s" + std::to_string(++pushes), t, rng() % 2 ? "staging" : "");
      } else if (what == 1) {
        uint32_t v = m->snapshots[rng() % m->snapshots.size()].version;
        if (m->labels.count("production") && m->labels.at("production").current() == v) continue;
        move(n, id, label_action::promote, v, t);
      } else if (what == 2) {
        auto it = m->labels.find("production");
        if (it == m->labels.end() || it->second.stack.size() < 2) continue;
        move(n, id, label_action::rollback, std::nullopt, t);
      } else {
        auto& other = nodes[rng() % 3];
        if (&other != &n) sync(n, other, t);
      }
    }
    for (int round = 0; round < 2; ++round) {
      for (auto& a : nodes) {
        for (auto& b : nodes) {
          if (&a != &b) sync(a, b, t);
        }
      }
    }
    for (auto& n : nodes) {
      ASSERT_EQ(dump(n.view()), dump(nodes[0].view())) << "seed " << seed;
      ASSERT_EQ(n.frontier(), nodes[0].frontier());
    }
    // Another delivery order: origins interleaved at random (each origin's own order kept).
    std::vector<std::vector<catalog_change>> logs;
    for (const auto& [origin, held] : nodes[0].frontier()) logs.push_back(nodes[0].range(origin, 1, held));
    replicated_catalog fresh("n9");
    std::vector<size_t> next(logs.size(), 0);
    for (size_t left = nodes[0].size(); left > 0; --left) {
      size_t o;
      do o = rng() % logs.size(); while (next[o] == logs[o].size());
      ASSERT_TRUE(fresh.add(logs[o][next[o]++], t).is_ok());
    }
    EXPECT_EQ(dump(fresh.view()), dump(nodes[0].view())) << "seed " << seed;
    EXPECT_EQ(fresh.conflicts(), nodes[0].conflicts());
    with_conflicts += !fresh.conflicts().empty();
  }
  // The histories must include the hard case (concurrent pushes numbered alike), or this test
  // would only show that sequential histories converge.
  EXPECT_GT(with_conflicts, 0);
}

}  // namespace
}  // namespace shoal

namespace shoal {
namespace {


// Which nodes hold a version's bytes is part of the catalog: each node stamps its own holds and
// releases, and every replica folds them the same, even when a hold arrives before its version.
TEST(replicated_catalog, holders_of_a_version_fold_the_same_everywhere) {
  replicated_catalog n1("n1"), n2("n2"), n3("n3");
  auto add = push(n1, bot, "s1", 1000);
  for (const auto& c : n1.stamp({hold_change(bot, 1)}, 1001)) ASSERT_TRUE(n1.add(c, 1001).is_ok());
  sync(n1, n2, 1100);
  for (const auto& c : n2.stamp({hold_change(bot, 1)}, 1200)) ASSERT_TRUE(n2.add(c, 1200).is_ok());
  EXPECT_EQ(n2.view().find(bot)->find(1)->holders, (std::set<std::string>{"n1", "n2"}));
  // n3 hears n2's hold before n1's add: it waits, then applies.
  ASSERT_TRUE(n3.add(n2.range("n2", 1, 1)[0], 1300).is_ok());
  EXPECT_EQ(n3.view().find(bot), nullptr);
  sync(n1, n3, 1400);
  EXPECT_EQ(n3.view().find(bot)->find(1)->holders, (std::set<std::string>{"n1", "n2"}));
  // n1 lets go of its copy.
  for (const auto& c : n1.stamp({release_change(bot, 1)}, 1500)) ASSERT_TRUE(n1.add(c, 1500).is_ok());
  sync(n1, n3, 1600);
  sync(n2, n3, 1600);
  sync(n3, n2, 1600);
  sync(n3, n1, 1600);
  for (const auto* r : {&n1, &n2, &n3}) {
    EXPECT_EQ(r->view().find(bot)->find(1)->holders, std::set<std::string>{"n2"});
  }
  EXPECT_EQ(dump(n1.view()), dump(n3.view()));
}

}  // namespace
}  // namespace shoal

namespace shoal {
namespace {



void make(replicated_catalog& r, catalog_change c, int64_t t) {
  for (const auto& s : r.stamp({std::move(c)}, t)) ASSERT_TRUE(r.add(s, t).is_ok());
}

// The numbering votes: who votes, which number to ask for, and that a voter grants a number to
// one snapshot only, across replicas and restarts (grants are replicated changes).
TEST(replicated_catalog, voters_grant_each_number_to_one_snapshot_only) {
  replicated_catalog n1("n1"), n2("n2");
  make(n1, join_change(), 1000);
  make(n2, join_change(), 1000);
  sync(n1, n2, 1100);
  sync(n2, n1, 1100);
  EXPECT_EQ(n1.voters(), (std::set<std::string>{"n1", "n2"}));
  EXPECT_EQ(n2.voters(), n1.voters());

  EXPECT_EQ(n1.next_number(bot), 1u);
  EXPECT_TRUE(n1.may_grant(bot, 1, "sha-a").is_ok());
  make(n1, grant_change(bot, 1, "sha-a"), 1200);
  EXPECT_TRUE(n1.may_grant(bot, 1, "sha-a").is_ok()) << "asking again for the same bytes is fine";
  auto refused = n1.may_grant(bot, 1, "sha-b");
  EXPECT_EQ(refused.code(), status_code::failed_precondition);
  EXPECT_NE(refused.message().find("granted to sha256 sha-a"), std::string::npos) << refused.message();
  EXPECT_EQ(n1.next_number(bot), 2u) << "a granted number is not asked for again";

  // n2 has not granted 1 yet; once it hears of n1's grant it still may (a vote is its own), but
  // a version that took the number rules it out everywhere.
  sync(n1, n2, 1300);
  EXPECT_EQ(n2.next_number(bot), 2u);
  push(n1, bot, "sha-a", 1400);  // version 1 = sha-a
  sync(n1, n2, 1500);
  EXPECT_EQ(n2.may_grant(bot, 1, "sha-b").code(), status_code::failed_precondition);
  EXPECT_TRUE(n2.may_grant(bot, 2, "sha-b").is_ok());

  // Grants survive like any change: a replica rebuilt from the changes refuses the same way.
  replicated_catalog again("n1");
  for (const auto& c : n1.missing_for({}, 1000)) ASSERT_TRUE(again.add(c, 2000).is_ok());
  EXPECT_EQ(again.may_grant(bot, 1, "sha-b").code(), status_code::failed_precondition);
  EXPECT_EQ(again.voters(), n1.voters());
  EXPECT_EQ(dump(again.view()), dump(n1.view()));
}

// `shoal cluster forget`: a retire takes a voter out of the majority, on every replica and in
// whatever order the changes arrive; a join made after the retire brings it back.
TEST(replicated_catalog, a_retired_voter_stops_voting_everywhere_whatever_the_arrival_order) {
  replicated_catalog n1("n1"), n2("n2"), n3("n3"), late("n4");
  make(n1, join_change("one"), 1000);
  make(n2, join_change("two"), 1000);
  make(n3, join_change("three"), 1000);
  sync(n2, n1, 1100);
  sync(n3, n1, 1100);
  EXPECT_EQ(n1.voters(), (std::set<std::string>{"n1", "n2", "n3"}));
  EXPECT_EQ(n1.voter_name("n3"), "three");

  make(n1, retire_change("n3", "three", "ops", 1200), 1200);
  EXPECT_EQ(n1.voters(), (std::set<std::string>{"n1", "n2"}));
  EXPECT_EQ(n1.retired(), (std::set<std::string>{"n3"}));
  EXPECT_EQ(n1.voter_name("n3"), "three") << "still named (a second forget says so)";

  // A replica that hears n1's retire before n3's own join still ends with n3 retired.
  sync(n1, late, 1300);  // n1's changes: its join and the retire
  sync(n2, late, 1300);
  sync(n3, late, 1300);  // n3's join arrives last, but it ordered before the retire
  EXPECT_EQ(late.voters(), n1.voters());

  // n3 comes back and joins again: its new join orders after the retire, everywhere.
  sync(n1, n3, 1400);
  EXPECT_EQ(n3.voters().count("n3"), 0u);
  make(n3, join_change("three"), 1500);
  sync(n3, n1, 1600);
  sync(n3, late, 1600);
  EXPECT_EQ(n1.voters(), (std::set<std::string>{"n1", "n2", "n3"}));
  EXPECT_EQ(late.voters(), n1.voters());
  EXPECT_TRUE(n1.retired().empty());

  // Survives a rebuild from the changes, like every change (the journal's replay).
  replicated_catalog again("n1");
  for (const auto& c : n1.missing_for({}, 1000)) ASSERT_TRUE(again.add(c, 2000).is_ok());
  EXPECT_EQ(again.voters(), n1.voters());
}

}  // namespace
}  // namespace shoal
