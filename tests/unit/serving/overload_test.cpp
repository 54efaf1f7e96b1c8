// admission_control: the share of requests a busy front-end thread admits, driven by the queueing
// delays its lag probe measures.
#include "shoal/serving/overload.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "support/busy.hpp"

namespace shoal {
namespace {

// Counts how many of n requests are admitted.
int admitted(admission_control& a, int n, double budget_ms = 0) {
  int yes = 0;
  for (int i = 0; i < n; ++i) yes += a.admit(budget_ms) ? 1 : 0;
  return yes;
}

// A probe's lateness counts in the share of its interval the thread was running.
TEST(own_lag_ms, keeps_the_lag_of_a_running_thread_and_drops_that_of_one_kept_off_the_cpu) {
  EXPECT_DOUBLE_EQ(own_lag_ms(4.0, 5.0, 5.0), 4.0);   // busy all along: its own backlog
  EXPECT_DOUBLE_EQ(own_lag_ms(4.0, 5.0, 2.5), 2.0);   // ran half the time
  EXPECT_DOUBLE_EQ(own_lag_ms(4.0, 5.0, 0.05), 0.04); // stopped or waiting for the CPU
  EXPECT_DOUBLE_EQ(own_lag_ms(4.0, 5.0, 6.0), 4.0);   // clock granularity: never more than lag
  EXPECT_DOUBLE_EQ(own_lag_ms(-0.1, 1.0, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(own_lag_ms(1.0, 0.0, 0.0), 0.0);
}

// thread_cpu_ms advances with the thread's own work, not with the wall clock.
TEST(thread_cpu_ms, advances_while_the_thread_works_and_not_while_it_sleeps) {
  double start = thread_cpu_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LT(thread_cpu_ms() - start, 5.0) << "sleeping used CPU?";
  start = thread_cpu_ms();
  testing::busy_for(std::chrono::milliseconds(20));
  EXPECT_GT(thread_cpu_ms() - start, 1.0) << "20 ms of spinning used no CPU?";
}

TEST(admission_control, admits_everything_while_the_delay_stays_under_the_target) {
  admission_control a(2.0);
  for (int i = 0; i < 100; ++i) a.sample(1.9);
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_EQ(admitted(a, 1000), 1000);
}

TEST(admission_control, a_late_probe_or_two_is_a_burst_not_a_queue) {
  admission_control a(2.0);
  a.sample(0.1);
  a.sample(40.0);  // a stall, once
  EXPECT_EQ(a.share(), 1.0);
  a.sample(0.2);
  a.sample(40.0);
  a.sample(40.0);  // twice in a row
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_FALSE(a.shedding());
  a.sample(0.2);
  a.sample(40.0);
  EXPECT_EQ(a.share(), 1.0) << "the count starts again after an on-time sample";
}

TEST(admission_control, a_lasting_delay_sheds_more_and_more_down_to_the_floor) {
  admission_control a(2.0);
  a.sample(5.0);
  a.sample(5.0);
  EXPECT_FALSE(a.shedding());
  a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), 0.8);
  EXPECT_TRUE(a.shedding());
  a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), 0.8 * 0.8);
  for (int i = 0; i < 100; ++i) a.sample(5.0);
  EXPECT_DOUBLE_EQ(a.share(), admission_control::min_share);
  // spread evenly: exactly 2 of every 100
  EXPECT_EQ(admitted(a, 1000), 20);
  EXPECT_DOUBLE_EQ(a.last_lag_ms(), 5.0);
}

// Once shedding, the target tightens as the share falls (target x (0.5 + share / 2)): at share
// 0.8 a delay of 1.85 of 2 ms sheds more, one of 1.75 does not; deep in a storm (share at the
// floor) anything over about half the target does. Below it the share climbs back until it is
// whole, and then the full target (three samples in a row) applies again.
TEST(admission_control, once_shedding_the_target_tightens_toward_half_as_the_share_falls) {
  admission_control a(2.0);
  for (int i = 0; i < 3; ++i) a.sample(1.85);
  EXPECT_FALSE(a.shedding()) << "1.85 ms is within the 2 ms target";
  for (int i = 0; i < 3; ++i) a.sample(5.0);
  ASSERT_DOUBLE_EQ(a.share(), 0.8);
  a.sample(1.85);  // threshold at share 0.8: 1.8 ms
  EXPECT_DOUBLE_EQ(a.share(), 0.8 * 0.8);
  a.sample(1.75);  // threshold at share 0.64: 1.64 ms
  EXPECT_DOUBLE_EQ(a.share(), 0.8 * 0.8 * 0.8);
  for (int i = 0; i < 30; ++i) a.sample(5.0);
  ASSERT_DOUBLE_EQ(a.share(), admission_control::min_share);
  a.sample(1.1);  // threshold 1.02 ms
  EXPECT_DOUBLE_EQ(a.share(), admission_control::min_share);
  a.sample(0.9);
  EXPECT_NEAR(a.share(), admission_control::min_share + 0.05, 1e-12);
  for (int i = 0; i < 30; ++i) a.sample(0.9);
  EXPECT_EQ(a.share(), 1.0);
  EXPECT_FALSE(a.shedding());
  a.sample(1.5);
  a.sample(5.0);
  a.sample(5.0);
  EXPECT_EQ(a.share(), 1.0) << "whole again: three late samples in a row before shedding";
}

TEST(admission_control, the_share_climbs_back_when_the_delay_falls_and_an_idle_thread_takes_all) {
  admission_control a(2.0);
  for (int i = 0; i < 20; ++i) a.sample(9.0);
  const double low = a.share();
  ASSERT_LT(low, 0.05);
  a.sample(0.5);
  EXPECT_NEAR(a.share(), low + 0.05, 1e-12);
  for (int i = 0; i < 20; ++i) a.sample(0.5);
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

// A connection pool's requests state no budget: with the default (100 ms) a thread that a pool of
// many connections keeps 20 ms behind sheds nothing; a lasting delay past 100 ms still sheds.
TEST(admission_control, a_delay_within_the_default_wait_sheds_nothing) {
  admission_control a(100.0);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(admitted(a, 50), 50);
    a.sample(20.0);
  }
  EXPECT_FALSE(a.shedding());
  for (int i = 0; i < 3; ++i) {
    admitted(a, 50);
    a.sample(150.0);
  }
  EXPECT_TRUE(a.shedding());
  EXPECT_DOUBLE_EQ(a.target_ms(), 100.0);
}

// Requests that state a budget set the target of the next sample: the tightest one taken since
// the last. Under the same 20 ms delay, requests that may wait 2 ms are shed; and once no
// request states one, the default applies again.
TEST(admission_control, the_tightest_budget_among_the_requests_is_the_target) {
  admission_control a(100.0);
  for (int i = 0; i < 3; ++i) {
    admitted(a, 10, 2.0);
    admitted(a, 10, 50.0);
    a.sample(20.0);
  }
  EXPECT_DOUBLE_EQ(a.target_ms(), 2.0);
  EXPECT_TRUE(a.shedding());
  for (int i = 0; i < 30; ++i) {
    admitted(a, 10, 2.0);
    a.sample(20.0);
  }
  EXPECT_DOUBLE_EQ(a.share(), admission_control::min_share);
  EXPECT_EQ(admitted(a, 1000, 2.0), 20) << "2% of the requests that may wait 2 ms";
  // One that may wait longer than the delay now is taken; one that says nothing (100 ms) too.
  EXPECT_EQ(admitted(a, 100, 50.0), 100);
  EXPECT_EQ(admitted(a, 100), 100);
  // The next sample's target is the tightest since the last: 2 ms again.
  a.sample(20.0);
  EXPECT_DOUBLE_EQ(a.target_ms(), 2.0);
  // A moment with only patient requests (or none) does not loosen it...
  for (int i = 0; i < admission_control::samples_to_loosen - 1; ++i) {
    admitted(a, 10);
    a.sample(20.0);
  }
  EXPECT_DOUBLE_EQ(a.target_ms(), 2.0);
  const int hasty = admitted(a, 100, 2.0);
  EXPECT_GE(hasty, 1) << "still shedding the hasty ones, 2% taken";
  EXPECT_LE(hasty, 3) << "still shedding the hasty ones, 2% taken";
  // ...one more measurement without a 2 ms request does (the 2 ms ones above count again, so
  // this takes another run of looser samples), and 20 ms is within the default.
  for (int i = 0; i <= admission_control::samples_to_loosen; ++i) {
    admitted(a, 10);
    a.sample(20.0);
  }
  EXPECT_DOUBLE_EQ(a.target_ms(), 100.0);
  for (int i = 0; i < 30; ++i) {
    admitted(a, 10);
    a.sample(20.0);
  }
  EXPECT_FALSE(a.shedding());
}

// max_queue_ms 0: requests that say nothing are never shed, one that states a budget is.
TEST(admission_control, a_stated_budget_counts_even_where_the_default_is_off) {
  admission_control a(0.0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(admitted(a, 10), 10);
    a.sample(10.0);
  }
  EXPECT_FALSE(a.shedding());
  for (int i = 0; i < 5; ++i) {
    admitted(a, 10, 1.0);
    a.sample(10.0);
  }
  EXPECT_TRUE(a.shedding());
  EXPECT_LT(admitted(a, 100, 1.0), 100);
  EXPECT_EQ(admitted(a, 100), 100);
}

}  // namespace
}  // namespace shoal
