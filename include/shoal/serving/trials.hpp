// trials: what a node sees of versions on trial, for shadow and canary traffic and the watch
// after a production move (catalog trial_info). Front-end threads record; the catalog actor
// (the watch's judge) and /metrics read.
//
// For a request answered by version S of a model under a shadow or watch trial, a share of
// requests is predicted by the trial's version T too, after the answer is on its way: the pair
// (S, T) counts how often their top labels agree, each one's mean top-1 probability and the
// predict time of each (both timed here, on the same text, so the times compare). Requests and
// failures of a version under trial are counted too (the watch's error rate).
//
// Thread-safety: every member may be called from any thread. Recording takes no lock once a
// thread has seen the key: each thread has counters of its own per key (relaxed atomics on
// their own cache line, never freed while the meter lives); reads sum them under a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "shoal/base/model_id.hpp"

namespace shoal {

/// Figures of version `served` of a model, and of `shadow` predicting its requests too.
struct trial_figures {
  uint64_t requests = 0;  // answered by `served`
  uint64_t errors = 0;    // of which failed
  uint64_t compared = 0;  // predicted by `shadow` too
  uint64_t agreed = 0;    // ... with the same top label
  double mean_top1_served = 0;
  double mean_top1_shadow = 0;
  double p99_served_ms = 0;  // predict time of one request, on the compared requests
  double p99_shadow_ms = 0;
};

class trial_meter {
 public:
  trial_meter();
  ~trial_meter();
  trial_meter(const trial_meter&) = delete;
  trial_meter& operator=(const trial_meter&) = delete;

  /// One request answered (or failed) by `served` of `id`.
  void observe_served(const model_id& id, uint32_t served, bool failed);
  /// One request answered by `served` and predicted by `shadow` too.
  void observe_shadow(const model_id& id, uint32_t served, uint32_t shadow, bool agreed,
                      double top1_served, double top1_shadow, double served_us, double shadow_us);

  /// Returns the figures of (`served`, `shadow`) summed over every thread (shadow 0: requests and
  /// failures only).
  trial_figures read(const model_id& id, uint32_t served, uint32_t shadow) const;

  /// Every (model, served, shadow) with figures, for /metrics.
  struct row {
    model_id id;
    uint32_t served = 0;
    uint32_t shadow = 0;
    trial_figures figures;
  };
  std::vector<row> rows() const;

  /// Appends the series of the trials in force (set_active) to a Prometheus exposition
  /// (shoal_trial_*): a trial's series go when it ends.
  void render(std::string& out) const;

  /// The (model, served version, trial version) pairs of the trials in force (the catalog actor
  /// sets them each tick). Counters of ended trials stay (a few hundred bytes per front-end
  /// thread and trial: freeing them would need the threads to agree) but are not shown.
  void set_active(std::set<std::tuple<model_id, uint32_t, uint32_t>> active);

 private:
  // Predict times in microseconds: bucket i holds times below 2^i us (the last: the rest).
  static constexpr size_t time_buckets = 24;
  struct alignas(64) counters {
    std::atomic<uint64_t> requests{0}, errors{0}, compared{0}, agreed{0};
    std::atomic<uint64_t> top1_served_ppm{0}, top1_shadow_ppm{0};  // sums, parts per million
    std::array<std::atomic<uint64_t>, time_buckets> served_time{}, shadow_time{};
  };
  using key = std::tuple<model_id, uint32_t, uint32_t>;
  counters& mine(const key& k);
  static size_t bucket_of(double us);
  static double p99_ms(const std::array<uint64_t, time_buckets>& h);

  const uint64_t generation_;  // tells this meter's thread caches from another's
  mutable std::mutex mutex_;   // guards shards_ (not the counters)
  std::map<key, std::vector<std::unique_ptr<counters>>> shards_;
  std::set<key> active_;  // guarded by mutex_
};

}  // namespace shoal
