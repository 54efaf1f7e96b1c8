// placement: where a model's bytes belong and what one node does about it, as tables over a real
// catalog (no actors, no disk: what is stored here is a set).
#include "shoal/cluster/placement.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "shoal/cluster/rendezvous.hpp"

namespace shoal {
namespace {

const model_id bot{"acme", "bot"};

live_members members(std::vector<std::string> ids) {
  live_members out;
  for (const auto& id : ids) out[id] = id + ":7420";
  return out;
}

// A catalog with `versions` versions of acme/bot (sha256 "sha-N"), each held by `holders`.
catalog with_holders(uint32_t versions, const std::set<std::string>& holders) {
  catalog c;
  for (uint32_t v = 1; v <= versions; ++v) {
    snapshot_info s;
    s.sha256 = "sha-" + std::to_string(v);
    s.size_bytes = 10;
    s.format = "fasttext";
    for (const auto& ch : c.plan_push(bot, s, "", 1000 + v)) EXPECT_TRUE(c.apply(ch).is_ok());
    for (const auto& h : holders) {
      catalog_change hold = hold_change(bot, v);
      hold.origin = h;
      EXPECT_TRUE(c.apply(hold).is_ok());
    }
  }
  return c;
}

// The member rendezvous order puts at `rank` for acme/bot among `ids`.
std::string ranked(const std::vector<std::string>& ids, size_t rank) {
  return rendezvous_order(bot.str(), ids).at(rank);
}

TEST(placement, names_the_first_replication_factor_live_members_in_rendezvous_order) {
  const std::vector<std::string> ids = {"a", "b", "c", "d"};
  const auto order = rendezvous_order(bot.str(), ids);
  EXPECT_EQ(placement_for(bot, members(ids), "a", 2),
            (std::vector<std::string>{order[0], order[1]}));
  EXPECT_EQ(placement_for(bot, members(ids), "a", 9), order) << "no more than there are";
  EXPECT_EQ(placement_for(bot, {}, "a", 2), (std::vector<std::string>{"a"}))
      << "alone, a node keeps what it has";
}

struct plan_case {
  const char* name;
  std::vector<std::string> live;
  std::set<std::string> holders;  // of every version
  std::set<std::string> stored;   // sha256s on this node's disk
  size_t holds, releases, fetches, removes;
};

TEST(placement, plans_holds_copies_and_releases) {
  const std::vector<std::string> ids = {"a", "b", "c"};
  const std::string first = ranked(ids, 0), second = ranked(ids, 1), third = ranked(ids, 2);
  const std::set<std::string> both = {"sha-1", "sha-2"};
  const plan_case cases[] = {
      // this node (`first`) is named: it fetches what it lacks, records what it has
      {"named, nothing here", ids, {third}, {}, 0, 0, 2, 0},
      {"named, bytes here but no hold", ids, {third}, both, 2, 0, 0, 0},
      {"named, held", ids, {first}, both, 0, 0, 0, 0},
      {"named, held by all three", ids, {first, second, third}, both, 0, 0, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    catalog view = with_holders(2, c.holders);
    auto plan = plan_copies(view, first, members(c.live), 2,
                            [&](const std::string& sha) { return c.stored.count(sha) > 0; });
    size_t holds = 0, releases = 0;
    for (const auto& ch : plan.changes) {
      holds += ch.what == catalog_change::kind::hold;
      releases += ch.what == catalog_change::kind::release;
    }
    EXPECT_EQ(holds, c.holds);
    EXPECT_EQ(releases, c.releases);
    EXPECT_EQ(plan.fetches.size(), c.fetches);
    EXPECT_EQ(plan.missing.size(), c.fetches);
    EXPECT_EQ(plan.remove.size(), c.removes);
  }
}

TEST(placement, a_copy_placement_does_not_name_goes_once_every_named_member_holds_it) {
  const std::vector<std::string> ids = {"a", "b", "c"};
  const std::string first = ranked(ids, 0), second = ranked(ids, 1), third = ranked(ids, 2);
  auto stored = [](const std::string&) { return true; };
  // `third` pushed (it holds the copy) and placement names first and second.
  catalog only_pusher = with_holders(1, {third});
  auto plan = plan_copies(only_pusher, third, members(ids), 2, stored);
  EXPECT_TRUE(plan.changes.empty()) << "kept until the named members hold it";
  catalog half = with_holders(1, {third, first});
  EXPECT_TRUE(plan_copies(half, third, members(ids), 2, stored).changes.empty());
  catalog covered = with_holders(1, {third, first, second});
  plan = plan_copies(covered, third, members(ids), 2, stored);
  ASSERT_EQ(plan.changes.size(), 1u);
  EXPECT_EQ(plan.changes[0].what, catalog_change::kind::release);
  EXPECT_EQ(plan.remove, (std::set<std::string>{"sha-1"}));
  // With fewer live members than the factor, nothing is let go.
  EXPECT_TRUE(plan_copies(covered, third, members({third, first}), 3, stored).changes.empty());
}

TEST(placement, bytes_shared_with_a_kept_version_are_not_removed) {
  const std::vector<std::string> ids = {"a", "b", "c"};
  const std::string first = ranked(ids, 0), second = ranked(ids, 1), third = ranked(ids, 2);
  catalog c = with_holders(1, {third, first, second});
  // acme/other's version has the same bytes; placement names `third` for it.
  const model_id other = [&] {
    for (int i = 0;; ++i) {
      model_id m{"acme", "other" + std::to_string(i)};
      auto want = placement_for(m, members(ids), third, 2);
      if (std::find(want.begin(), want.end(), third) != want.end()) return m;
    }
  }();
  snapshot_info s;
  s.sha256 = "sha-1";
  s.size_bytes = 10;
  s.format = "fasttext";
  for (const auto& ch : c.plan_push(other, s, "", 2000)) ASSERT_TRUE(c.apply(ch).is_ok());
  catalog_change hold = hold_change(other, 1);
  hold.origin = third;
  ASSERT_TRUE(c.apply(hold).is_ok());
  auto plan = plan_copies(c, third, members(ids), 2, [](const std::string&) { return true; });
  ASSERT_EQ(plan.changes.size(), 1u) << "acme/bot's copy is released";
  EXPECT_TRUE(plan.remove.empty()) << "its bytes still serve " << other.str();
}

TEST(placement, sources_targets_and_shortfall) {
  snapshot_info snap;
  snap.holders = {"a", "b", "gone"};
  EXPECT_EQ(copy_sources(snap, members({"a", "b", "c"}), "a"),
            (std::vector<std::string>{"b:7420"}))
      << "live holders other than this node";
  const std::vector<std::string> ids = {"a", "b", "c"};
  const std::string first = ranked(ids, 0), second = ranked(ids, 1);
  EXPECT_EQ(push_targets(bot, members(ids), first, 2),
            (std::vector<std::string>{second + ":7420"}));
  const std::string third = ranked(ids, 2);
  EXPECT_EQ(push_targets(bot, members(ids), third, 2),
            (std::vector<std::string>{first + ":7420", second + ":7420"}))
      << "a node placement does not name sends to both it names";
  EXPECT_EQ(replication_shortfall(1, 2), "only 1 node is alive; copies are added when nodes join");
  EXPECT_EQ(replication_shortfall(0, 3), "only 1 node is alive; copies are added when nodes join");
  EXPECT_EQ(replication_shortfall(2, 3), "only 2 nodes are alive; copies are added when nodes join");
  EXPECT_EQ(replication_shortfall(3, 3), "");
}

}  // namespace
}  // namespace shoal
