// The traffic-following rule (serving/traffic.hpp) on a fake clock: a copy is asked for only
// after the forward rate held for a whole window, at most max_copies are held, and a held copy
// is dropped after idle_ms without use, not before.
#include "shoal/serving/traffic.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace shoal {
namespace {

const snapshot_key hot{model_id{"acme", "hot"}, 1};
const snapshot_key warm{model_id{"acme", "warm"}, 1};
const snapshot_key cold{model_id{"acme", "cold"}, 3};

follow_settings settings() {
  follow_settings s;
  s.min_rps = 10;
  s.window_ms = 3000;
  s.idle_ms = 60000;
  s.max_copies = 2;
  return s;
}

TEST(traffic_follower, a_copy_is_asked_for_once_the_rate_held_for_a_window) {
  traffic_follower f(settings());
  int64_t t = 1000;
  for (int i = 0; i < 3; ++i, t += 1000) {
    f.observe({{hot, 50}, {cold, 2}}, t);
    EXPECT_TRUE(f.to_copy(t).empty()) << "before a whole window at " << t;
  }
  f.observe({{hot, 50}, {cold, 2}}, t);
  EXPECT_EQ(f.to_copy(t), std::vector<snapshot_key>{hot}) << "cold's 2/s stays below 10/s";
  EXPECT_TRUE(f.to_copy(t).empty()) << "asked once, until held or failed";
  f.held(hot, t);
  EXPECT_TRUE(f.holds(hot));
  EXPECT_EQ(f.copies(), 1u);
}

TEST(traffic_follower, a_failed_copy_may_be_asked_for_again_after_another_window) {
  traffic_follower f(settings());
  for (int64_t t = 0; t <= 3000; t += 1000) f.observe({{hot, 40}}, t);
  ASSERT_EQ(f.to_copy(3000).size(), 1u);
  f.failed(hot);
  EXPECT_TRUE(f.to_copy(3000).empty());
  for (int64_t t = 4000; t <= 7000; t += 1000) f.observe({{hot, 40}}, t);
  EXPECT_EQ(f.to_copy(7000), std::vector<snapshot_key>{hot});
}

TEST(traffic_follower, no_more_than_max_copies_busiest_first) {
  traffic_follower f(settings());
  for (int64_t t = 0; t <= 3000; t += 1000) f.observe({{hot, 90}, {warm, 60}, {cold, 30}}, t);
  EXPECT_EQ(f.to_copy(3000), (std::vector<snapshot_key>{hot, warm}));
}

TEST(traffic_follower, a_held_copy_goes_after_idle_ms_without_use_not_before) {
  traffic_follower f(settings());
  f.held(hot, 0);
  f.used(hot, 50000);  // the model cache saw it answer at 50 s
  EXPECT_TRUE(f.to_drop(100000).empty()) << "used 50 s ago, idle_ms is 60 s";
  EXPECT_EQ(f.to_drop(110000), std::vector<snapshot_key>{hot});
  EXPECT_FALSE(f.holds(hot));
  EXPECT_TRUE(f.to_drop(200000).empty()) << "dropped once";
}

TEST(traffic_follower, turned_off_it_asks_for_nothing) {
  auto s = settings();
  s.enabled = false;
  traffic_follower f(s);
  for (int64_t t = 0; t <= 6000; t += 1000) f.observe({{hot, 1000}}, t);
  EXPECT_TRUE(f.to_copy(6000).empty());
}

TEST(traffic_meter, counts_from_many_threads_add_up_and_start_again_after_a_take) {
  traffic_meter m;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) m.add({{hot, 1}, {cold, 2}});
    });
  }
  for (auto& t : threads) t.join();
  auto counts = m.take();
  EXPECT_EQ(counts[hot], 400u);
  EXPECT_EQ(counts[cold], 800u);
  EXPECT_TRUE(m.take().empty());
}

}  // namespace
}  // namespace shoal
