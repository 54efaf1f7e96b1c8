// Rendezvous hashing: the same order on every node, an even spread, and minimal movement when
// the membership changes.
#include "shoal/cluster/rendezvous.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace shoal {
namespace {

std::vector<std::string> nodes(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back("node-" + std::to_string(i));
  return out;
}

std::string key(int i) { return "tenant" + std::to_string(i % 37) + "/model" + std::to_string(i); }

// Fixed values (computed independently with a few lines of Python: FNV-1a 64 over
// id + NUL + key, then fmix64): a change of the hash would move every snapshot of a cluster
// mid-upgrade (nodes of two builds would disagree on placement), so it must be deliberate.
TEST(rendezvous, scores_are_fixed_across_builds) {
  EXPECT_EQ(rendezvous_score("acme/bot", "node-1"), rendezvous_score("acme/bot", "node-1"));
  EXPECT_NE(rendezvous_score("acme/bot", "node-1"), rendezvous_score("acme/bot", "node-2"));
  EXPECT_NE(rendezvous_score("ab/c", "x"), rendezvous_score("b/c", "xa"))
      << "the separator keeps key and id apart";
  EXPECT_EQ(rendezvous_score("", ""), 0xb9034ad37056f5fbull);
  EXPECT_EQ(rendezvous_score("acme/bot", "node-1"), 0x6ee3c73a379489f4ull);
}

TEST(rendezvous, the_order_does_not_depend_on_the_input_order) {
  auto a = nodes(7);
  auto b = a;
  std::reverse(b.begin(), b.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rendezvous_order(key(i), a), rendezvous_order(key(i), b));
}

TEST(rendezvous, spreads_keys_evenly) {
  auto ids = nodes(5);
  std::map<std::string, int> first;
  const int keys = 20000;
  for (int i = 0; i < keys; ++i) first[rendezvous_order(key(i), ids).front()] += 1;
  ASSERT_EQ(first.size(), 5u);
  for (const auto& [id, count] : first) {
    EXPECT_NEAR(count, keys / 5, keys / 5 * 0.05) << id;  // within 5% of a fair share
  }
}

TEST(rendezvous, removing_a_node_moves_only_its_keys_and_adding_one_takes_a_fair_share) {
  auto five = nodes(5);
  auto four = five;
  four.erase(four.begin() + 2);  // node-3 leaves
  auto six = nodes(6);
  const int keys = 10000;
  int moved_on_add = 0;
  for (int i = 0; i < keys; ++i) {
    auto before = rendezvous_order(key(i), five);
    auto after = rendezvous_order(key(i), four);
    // The relative order of the survivors is unchanged: the first R survivors of the old order
    // are the first R of the new one.
    std::vector<std::string> survivors;
    for (const auto& id : before) {
      if (id != "node-3") survivors.push_back(id);
    }
    ASSERT_EQ(survivors, after) << key(i);
    if (rendezvous_order(key(i), six).front() != before.front()) ++moved_on_add;
  }
  EXPECT_NEAR(moved_on_add, keys / 6, keys / 6 * 0.1) << "a sixth of the keys move to node-6";
}

}  // namespace
}  // namespace shoal

namespace shoal {
namespace {

TEST(replica_attempts, live_holders_in_rendezvous_order_with_the_less_loaded_of_two_first) {
  const std::vector<std::string> holders = {"node-1", "node-2", "node-3"};
  std::map<std::string, uint32_t> idle = {{"node-1", 0}, {"node-2", 0}, {"node-3", 0}, {"node-4", 0}};
  auto order = rendezvous_order("acme/bot", holders);
  EXPECT_EQ(replica_attempts("acme/bot", holders, idle), order) << "a tie keeps the order";
  auto busy = idle;
  busy[order[0]] = 5;
  auto attempts = replica_attempts("acme/bot", holders, busy);
  EXPECT_EQ(attempts, (std::vector<std::string>{order[1], order[0], order[2]}));
  // A dead holder (not live) is skipped; a live non-holder is never tried.
  auto without = idle;
  without.erase(order[0]);
  attempts = replica_attempts("acme/bot", holders, without);
  EXPECT_EQ(attempts, (std::vector<std::string>{order[1], order[2]}));
  EXPECT_TRUE(replica_attempts("acme/bot", holders, {{"node-4", 0}}).empty());
}

// Issue 20's latency scenario: with a slow link between two halves, a request went across it to
// a far holder about half the time (the less loaded of the first two in rendezvous order).
TEST(replica_attempts, holders_across_a_slow_link_go_after_near_ones) {
  const std::vector<std::string> holders = {"node-1", "node-2", "node-3"};
  std::map<std::string, uint32_t> idle = {{"node-1", 0}, {"node-2", 0}, {"node-3", 0}};
  auto order = rendezvous_order("acme/bot", holders);
  // The first in rendezvous order is 400 ms away, the others a millisecond: it goes last.
  std::map<std::string, double> rtt = {{order[0], 400}, {order[1], 1}, {order[2], 1.5}};
  EXPECT_EQ(replica_attempts("acme/bot", holders, idle, rtt),
            (std::vector<std::string>{order[1], order[2], order[0]}));
  // Among near ones the less loaded of the first two still goes first.
  auto busy = idle;
  busy[order[1]] = 7;
  EXPECT_EQ(replica_attempts("acme/bot", holders, busy, rtt),
            (std::vector<std::string>{order[2], order[1], order[0]}));
  // A far holder is never preferred for being less loaded (two holders, one each side).
  const std::vector<std::string> pair = {order[0], order[1]};
  std::map<std::string, uint32_t> near_busy = {{order[0], 9}, {order[1], 0}};
  std::map<std::string, double> second_far = {{order[0], 1}, {order[1], 400}};
  EXPECT_EQ(replica_attempts("acme/bot", pair, near_busy, second_far),
            (std::vector<std::string>{order[0], order[1]}));
  // Differences within twice the nearest plus the margin are noise: rendezvous order stays.
  std::map<std::string, double> lan = {{order[0], 12}, {order[1], 1}, {order[2], 3}};
  EXPECT_EQ(replica_attempts("acme/bot", holders, idle, lan), order);
  // Not measured yet counts as near.
  std::map<std::string, double> partial = {{order[1], 300}, {order[2], 2}};
  EXPECT_EQ(replica_attempts("acme/bot", holders, idle, partial),
            (std::vector<std::string>{order[0], order[2], order[1]}));
}

}  // namespace
}  // namespace shoal
