// admission_control: the share of requests a busy front-end thread admits, driven by the queueing
// delays its lag probe measures.
#include "shoal/overload.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

// Counts how many of n requests are admitted.
int admitted(admission_control& a, int n) {
  int yes = 0;
  for (int i = 0; i < n; ++i) yes += a.admit() ? 1 : 0;
  return yes;
}

TEST(admission_control, admits_everything_while_the_delay_stays_under_the_target) {
  admission_control a(2.0);
  for (int i = 0; i < 100; ++i) a.sample(1.9);
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_EQ(admitted(a, 1000), 1000);
}

TEST(admission_control, one_late_probe_is_a_hiccup_not_a_queue) {
  admission_control a(2.0);
  a.sample(0.1);
  a.sample(40.0);  // a stall, once
  EXPECT_EQ(a.share(), 1.0);
  a.sample(0.2);
  a.sample(40.0);
  EXPECT_EQ(a.share(), 1.0);
}

TEST(admission_control, a_lasting_delay_sheds_more_and_more_down_to_the_floor) {
  admission_control a(2.0);
  a.sample(5.0);
  a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), 0.8);
  a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), 0.8 * 0.8);
  for (int i = 0; i < 100; ++i) a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), admission_control::min_share);
  // spread evenly: exactly 2 of every 100
  EXPECT_EQ(admitted(a, 1000), 20);
  EXPECT_DOUBLE_EQ(a.last_lag_ms(), 5.0);
}

TEST(admission_control, the_share_climbs_back_when_the_delay_falls_and_an_idle_thread_takes_all) {
  admission_control a(2.0);
  for (int i = 0; i < 20; ++i) a.sample(9.0);
  const double low = a.share();
  ASSERT_LT(low, 0.05);
  a.sample(1.0);
  EXPECT_NEAR(a.share(), low + 0.05, 1e-12);
  for (int i = 0; i < 20; ++i) a.sample(1.0);
  EXPECT_EQ(a.share(), 1.0);
  for (int i = 0; i < 20; ++i) a.sample(9.0);
  a.idle();
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_EQ(admitted(a, 100), 100);
}

TEST(admission_control, a_target_of_zero_never_sheds) {
  admission_control a(0.0);
  for (int i = 0; i < 50; ++i) a.sample(1000.0);
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_EQ(admitted(a, 100), 100);
}

}  // namespace
}  // namespace shoal
