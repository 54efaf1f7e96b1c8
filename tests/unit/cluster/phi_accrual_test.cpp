#include "shoal/cluster/phi_accrual.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace shoal {
namespace {

TEST(phi_accrual, is_zero_before_any_heartbeat) {
  phi_accrual d;
  EXPECT_FALSE(d.has_heartbeat());
  EXPECT_EQ(d.phi(0), 0);
  EXPECT_EQ(d.phi(1000000), 0);
}

// phi = -log10(P(a heartbeat comes later)); Akka's logistic approximation of the normal CDF is
// within 2e-4 of the exact tail, 0.5 * erfc(y / sqrt(2)).
TEST(phi_accrual, phi_of_matches_the_normal_tail) {
  for (double sigmas : {-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0}) {
    double mean = 1000;
    double sd = 100;
    double p = std::pow(10.0, -phi_of(mean + sigmas * sd, mean, sd));
    double exact = 0.5 * std::erfc(sigmas / std::sqrt(2.0));
    EXPECT_NEAR(p, exact, 2e-4) << sigmas << " sigmas";
  }
  EXPECT_NEAR(phi_of(1000, 1000, 100), std::log10(2.0), 1e-9);  // at the mean: even odds
  EXPECT_GT(phi_of(2000, 1000, 100), 20);                       // ten sigmas: certain
  double hour = phi_of(3600e3, 200, 100);                        // an hour of silence
  EXPECT_TRUE(std::isfinite(hour)) << hour;
  EXPECT_GT(hour, 1e6);
}

TEST(phi_accrual, rises_with_silence) {
  phi_accrual d({100, 10, 0, 1000});
  int64_t t = 0;
  for (int i = 0; i < 150; ++i) d.heartbeat(t += 200);
  double prev = d.phi(t);
  for (int64_t after = 50; after <= 2000; after += 50) {
    double p = d.phi(t + after);
    EXPECT_GE(p, prev) << after;
    prev = p;
  }
  EXPECT_LT(d.phi(t + 200), 1.0);
  EXPECT_GT(d.phi(t + 1000), 8.0);
}

TEST(phi_accrual, learns_the_interval_and_its_jitter) {
  phi_accrual d({100, 1, 0, 500});
  int64_t t = 0;
  // The first heartbeat seeds the window with two samples around first_interval_ms; after 100
  // more intervals (alternately 1100 and 900 ms) only real samples remain: mean 1000, sd 100.
  for (int i = 0; i <= 100; ++i) d.heartbeat(t += (i % 2 == 0 ? 900 : 1100));
  EXPECT_NEAR(d.mean_ms(), 1000, 1e-6);
  EXPECT_NEAR(d.std_dev_ms(), 100, 1e-6);
  EXPECT_NEAR(d.phi(t + 1000), std::log10(2.0), 1e-6);
  EXPECT_NEAR(d.phi(t + 1300), phi_of(1300, 1000, 100), 1e-6);
  EXPECT_GT(d.phi(t + 1300), 2.8);
}

TEST(phi_accrual, a_regular_peer_is_not_suspected_over_jitter_below_the_floor) {
  // Perfectly regular heartbeats have a deviation of 0; the floor keeps a few ms late from
  // looking like death.
  phi_accrual d({100, 100, 0, 200});
  int64_t t = 0;
  for (int i = 0; i <= 100; ++i) d.heartbeat(t += 200);
  EXPECT_NEAR(d.std_dev_ms(), 0, 1e-3);
  EXPECT_LT(d.phi(t + 230), 1.0);
}

TEST(phi_accrual, acceptable_pause_delays_suspicion) {
  phi_accrual strict({100, 50, 0, 200});
  phi_accrual lenient({100, 50, 500, 200});
  int64_t t = 0;
  for (int i = 0; i < 100; ++i) {
    t += 200;
    strict.heartbeat(t);
    lenient.heartbeat(t);
  }
  EXPECT_GT(strict.phi(t + 600), 8);
  EXPECT_LT(lenient.phi(t + 600), 1);
}

TEST(phi_accrual, the_window_forgets_old_intervals) {
  phi_accrual d({10, 1, 0, 100});
  int64_t t = 0;
  for (int i = 0; i < 10; ++i) d.heartbeat(t += 100);
  for (int i = 0; i < 10; ++i) d.heartbeat(t += 1000);
  EXPECT_NEAR(d.mean_ms(), 1000, 1e-6);
}

TEST(phi_accrual, restart_clock_forgives_our_own_pause_and_reset_forgets) {
  phi_accrual d({100, 50, 0, 200});
  int64_t t = 0;
  for (int i = 0; i < 20; ++i) d.heartbeat(t += 200);
  EXPECT_GT(d.phi(t + 5000), 8);
  d.restart_clock(t + 5000);
  EXPECT_LT(d.phi(t + 5000), 1);
  EXPECT_EQ(d.last_heartbeat_ms(), t + 5000);
  d.reset();
  EXPECT_FALSE(d.has_heartbeat());
  EXPECT_EQ(d.phi(t + 100000), 0);
}

}  // namespace
}  // namespace shoal
