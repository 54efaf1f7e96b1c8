// The hybrid logical clock: close to wall time, monotonic, and causal across nodes whose clocks
// disagree.
#include "shoal/store/hlc.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace shoal {
namespace {

TEST(hlc, follows_the_wall_clock_when_it_moves_forward) {
  hybrid_clock c;
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{1000, 0}));
  EXPECT_EQ(c.tick(1005), (hlc_timestamp{1005, 0}));
}

TEST(hlc, counts_logically_within_one_millisecond_and_when_the_clock_steps_back) {
  hybrid_clock c;
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{1000, 0}));
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{1000, 1}));
  EXPECT_EQ(c.tick(990), (hlc_timestamp{1000, 2})) << "a clock stepped back never goes back";
  EXPECT_EQ(c.tick(1001), (hlc_timestamp{1001, 0}));
}

TEST(hlc, an_event_after_a_received_one_orders_after_it_even_with_a_slow_clock) {
  hybrid_clock fast, slow;
  auto sent = fast.tick(5000);  // fast's clock is 4 s ahead of slow's
  ASSERT_TRUE(slow.observe(sent, 1000).is_ok());
  auto reply = slow.tick(1001);
  EXPECT_GT(reply, sent);
  EXPECT_EQ(reply.wall_ms, 5000) << "stays at the greatest wall time seen";
  ASSERT_TRUE(fast.observe(reply, 5000).is_ok());
  EXPECT_GT(fast.tick(5000), reply);
}

TEST(hlc, a_timestamp_too_far_ahead_is_refused_and_changes_nothing) {
  hybrid_clock c(60000);
  c.tick(1000);
  auto st = c.observe({1000 + 60001, 0}, 1000);
  EXPECT_EQ(st.code(), status_code::failed_precondition);
  EXPECT_NE(st.message().find("60001 ms ahead"), std::string::npos) << st.message();
  EXPECT_EQ(c.last(), (hlc_timestamp{1000, 0}));
  EXPECT_TRUE(c.observe({1000 + 60000, 0}, 1000).is_ok()) << "at the limit is fine";
}

TEST(hlc, restore_never_reissues_a_timestamp) {
  hybrid_clock c;
  c.restore({9000, 7});
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{9000, 8}));
  c.restore({100, 0});  // older: no effect
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{9000, 9}));
}

TEST(hlc, logical_overflow_moves_to_the_next_millisecond) {
  hybrid_clock c;
  c.restore({1000, 0xffffffffu});
  EXPECT_EQ(c.tick(1000), (hlc_timestamp{1001, 0}));
}

// Three nodes with skewed clocks exchange messages at random: every node's timestamps strictly
// increase, every receive is followed by greater timestamps, and wall_ms never runs more than the
// greatest skew ahead of real time.
TEST(hlc, random_exchanges_keep_causality_and_stay_near_real_time) {
  std::mt19937_64 rng(7);
  const int64_t skew[3] = {0, 250, -400};
  hybrid_clock clocks[3];
  hlc_timestamp last[3];
  for (int64_t t = 1000; t < 20000; t += 1 + static_cast<int64_t>(rng() % 3)) {
    size_t from = rng() % 3, to = rng() % 3;
    auto sent = clocks[from].tick(t + skew[from]);
    ASSERT_GT(sent, last[from]);
    last[from] = sent;
    if (from == to) continue;
    ASSERT_TRUE(clocks[to].observe(sent, t + skew[to]).is_ok());
    auto next = clocks[to].tick(t + skew[to]);
    ASSERT_GT(next, sent);
    ASSERT_GT(next, last[to]);
    last[to] = next;
    ASSERT_LE(next.wall_ms, t + 250);
  }
}

}  // namespace
}  // namespace shoal
