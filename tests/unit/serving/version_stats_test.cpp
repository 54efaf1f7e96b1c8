// version_stats: counts per (model, version) from several threads, read back summed.
#include "shoal/serving/version_stats.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace shoal {
namespace {

const model_id bot{"acme", "bot"};

TEST(version_stats, sums_every_threads_counts_per_version) {
  version_stats stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&stats] {
      for (int i = 0; i < 1000; ++i) {
        stats.observe(bot, 2, i % 10 == 0, 0.0007, 0.75);  // 1 ms bucket
        stats.observe(bot, 3, false, 0.3, -1);             // no score (a tensor model)
      }
    });
  }
  for (auto& t : threads) t.join();
  auto counts = stats.read(bot);
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].version, 2u);
  EXPECT_EQ(counts[0].requests, 4000u);
  EXPECT_EQ(counts[0].errors, 400u);
  EXPECT_EQ(counts[0].scored, 4000u);
  EXPECT_EQ(counts[0].top1_sum_ppm, 4000u * 750000u);
  EXPECT_EQ(counts[0].buckets[1], 4000u) << "0.7 ms is in the (0.5, 1] ms bucket";
  EXPECT_EQ(counts[0].sum_us, 4000u * 700u);
  EXPECT_EQ(counts[1].version, 3u);
  EXPECT_EQ(counts[1].scored, 0u);
  EXPECT_EQ(counts[1].buckets[9], 4000u) << "300 ms is in the (250, 500] ms bucket";
  EXPECT_TRUE(stats.read({"acme", "other"}).empty());
}

TEST(version_stats, a_time_past_the_last_bound_and_a_bad_one_land_in_the_end_buckets) {
  version_stats stats;
  stats.observe(bot, 1, false, 60, 1.0);
  stats.observe(bot, 1, false, -1, 0.0);  // a clock that went back: counted as 0
  auto counts = stats.read(bot);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].buckets.back(), 1u);
  EXPECT_EQ(counts[0].buckets.front(), 1u);
  EXPECT_EQ(counts[0].top1_sum_ppm, 1000000u);
  EXPECT_EQ(counts[0].scored, 2u);
}

TEST(version_stats, stops_counting_new_pairs_at_its_bound_and_keeps_the_old_ones) {
  version_stats stats(3);
  for (uint32_t v = 1; v <= 5; ++v) stats.observe(bot, v, false, 0.001, -1);
  stats.observe(bot, 1, false, 0.001, -1);
  auto all = stats.read_all();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[bot].size(), 3u);
  EXPECT_EQ(all[bot][0].requests, 2u);
  EXPECT_EQ(all[bot][2].version, 3u);
}

}  // namespace
}  // namespace shoal
