// model_cache: the eviction policy alone (the router acting on it is tested in tests/actors).
#include "shoal/serving/model_cache.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

snapshot_key key(const std::string& model, uint32_t version = 1) {
  return {model_id{"acme", model}, version};
}

TEST(choose_evictions, least_recently_used_first_until_under_the_target) {
  std::vector<eviction_candidate> c = {
      {key("a"), 100, 30, false}, {key("b"), 100, 10, false}, {key("c"), 100, 20, false}};
  EXPECT_EQ(choose_evictions(c, 300, 300), std::vector<snapshot_key>{});
  EXPECT_EQ(choose_evictions(c, 301, 300), std::vector<snapshot_key>{key("b")});
  EXPECT_EQ(choose_evictions(c, 300, 150), (std::vector<snapshot_key>{key("b"), key("c")}));
}

TEST(choose_evictions, pinned_snapshots_go_last) {
  std::vector<eviction_candidate> c = {
      {key("old-but-pinned"), 100, 1, true}, {key("recent"), 100, 50, false}};
  EXPECT_EQ(choose_evictions(c, 200, 150), std::vector<snapshot_key>{key("recent")});
  EXPECT_EQ(choose_evictions(c, 200, 0),
            (std::vector<snapshot_key>{key("recent"), key("old-but-pinned")}));
}

TEST(choose_evictions, returns_everything_when_even_that_is_not_enough) {
  std::vector<eviction_candidate> c = {{key("a"), 10, 1, false}, {key("b"), 10, 2, true}};
  EXPECT_EQ(choose_evictions(c, 1000, 100).size(), 2u);
  EXPECT_TRUE(choose_evictions({}, 1000, 100).empty());
}

TEST(recently_replaced, only_a_label_that_moved_away_within_the_window) {
  model_entry e;
  e.id = model_id{"acme", "bot"};
  label_state production;
  production.stack = {1, 2};
  production.history = {{0, 1, label_action::promote, 1000}, {1, 2, label_action::promote, 5000}};
  e.labels["production"] = production;
  EXPECT_TRUE(recently_replaced(e, 1, 6000, 10000));
  EXPECT_FALSE(recently_replaced(e, 1, 20000, 10000)) << "the move is older than the window";
  EXPECT_FALSE(recently_replaced(e, 2, 6000, 10000)) << "the current target is not 'replaced'";
  EXPECT_FALSE(recently_replaced(e, 3, 6000, 10000));
  // A rollback from 2 back to 1: now 2 is the one to keep warm.
  e.labels["production"].history.push_back({2, 1, label_action::rollback, 7000});
  EXPECT_TRUE(recently_replaced(e, 2, 8000, 10000));
}

TEST(default_model_memory, is_half_of_the_machine) {
  EXPECT_EQ(default_model_memory(8ull << 30), 4ull << 30);
}

}  // namespace
}  // namespace shoal
