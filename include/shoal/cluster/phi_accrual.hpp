// phi_accrual: the accrual failure detector of Hayashibara et al. as Akka and Cassandra use it.
// Instead of a yes/no verdict it gives phi, the suspicion that a peer is down given how its
// heartbeats have arrived so far: phi = -log10(P(a heartbeat arrives later than now)), with the
// inter-arrival times modelled as a normal distribution over a sliding window. phi 1 means a 10%
// chance the peer is still alive and merely late, phi 8 one in 10^8.
//
// Pure: time comes in as an argument (milliseconds on any monotonic clock).
// Thread-safety: a plain value; one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace shoal {

struct phi_accrual_config {
  size_t window = 100;               // inter-arrival samples kept
  double min_std_dev_ms = 100;       // floor for the deviation: a very regular peer is not
                                     // suspected after a few milliseconds of jitter
  double acceptable_pause_ms = 0;    // added to the mean: pauses this long raise no suspicion
  double first_interval_ms = 500;    // the estimate before a second heartbeat arrived
};

class phi_accrual {
 public:
  explicit phi_accrual(phi_accrual_config cfg = {});

  /// Records a heartbeat arriving at `now_ms`.
  void heartbeat(int64_t now_ms);

  /// Returns phi at `now_ms`: 0 before the first heartbeat, then growing with the silence.
  double phi(int64_t now_ms) const;

  /// Forgets every sample; the next heartbeat starts over (a restarted or resumed peer).
  void reset();

  /// Treats `now_ms` as the last arrival without adding a sample (our own process was paused,
  /// so the silence says nothing about the peer).
  void restart_clock(int64_t now_ms);

  /// Returns true once a heartbeat was recorded.
  bool has_heartbeat() const { return has_last_; }
  /// Returns when the last heartbeat arrived. @pre has_heartbeat()
  int64_t last_heartbeat_ms() const { return last_ms_; }
  /// Returns the mean inter-arrival time in the window (ms).
  double mean_ms() const;
  /// Returns the standard deviation of the window (ms), before the min_std_dev floor.
  double std_dev_ms() const;

 private:
  void add_sample(double interval_ms);

  phi_accrual_config cfg_;
  std::deque<double> samples_;
  double sum_ = 0;
  double sum_sq_ = 0;
  bool has_last_ = false;
  int64_t last_ms_ = 0;
};

/// Returns phi for a silence of `elapsed_ms` under a normal distribution of inter-arrival times
/// with `mean_ms` and `std_dev_ms` (Akka's logistic approximation of the normal CDF).
double phi_of(double elapsed_ms, double mean_ms, double std_dev_ms);

}  // namespace shoal
