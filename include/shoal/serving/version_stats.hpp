// version_stats: what this node's clients saw of each version of each model, for the operator's
// console (wire/console.hpp): requests, errors, a latency histogram and the mean top-1 score.
// /metrics stays per (tenant, model) (a version label would multiply its series); the console
// reads these counts instead and draws its charts from the differences between two reads.
//
// A request is counted under the version that answered it, or, when it failed after its label
// was resolved, under that version; one that failed before (unknown model or label, a refusal)
// under version 0. At most `max_tracked` (model, version) pairs are counted; past that, new
// pairs are not (the console says "not counted").
//
// Thread-safety: every member may be called from any thread. Recording takes no lock once a
// thread has seen the pair: each thread has counters of its own per pair (relaxed atomics on
// their own cache line, never freed while the object lives); reads sum them under a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/serving/metrics.hpp"

namespace shoal {

/// One version's counts since the node started (all threads summed).
struct version_figures {
  uint32_t version = 0;
  uint64_t requests = 0;  // answered or failed
  uint64_t errors = 0;    // failed (client errors included, as in /metrics)
  uint64_t sum_us = 0;    // their time, reading to answering
  /// Non-cumulative counts per latency bucket (latency_buckets_s; the last is +Inf).
  std::array<uint64_t, latency_buckets_s.size() + 1> buckets{};
  uint64_t scored = 0;        // answers with a top-1 score (text models)
  uint64_t top1_sum_ppm = 0;  // the sum of their mean top-1 scores, parts per million
};

class version_stats {
 public:
  explicit version_stats(size_t max_tracked = 20000);
  ~version_stats();
  version_stats(const version_stats&) = delete;
  version_stats& operator=(const version_stats&) = delete;

  /// One request of `id` that `version` answered (or failed at; 0: none was chosen) in
  /// `seconds`; `top1` is the mean top-1 score of its rows, negative when it had none.
  void observe(const model_id& id, uint32_t version, bool failed, double seconds, double top1);

  /// Returns every counted version of `id`, by version.
  std::vector<version_figures> read(const model_id& id) const;
  /// Returns every counted (model, version), by model then version.
  std::map<model_id, std::vector<version_figures>> read_all() const;

 private:
  struct alignas(64) counters {
    std::atomic<uint64_t> requests{0}, errors{0}, sum_us{0}, scored{0}, top1_sum_ppm{0};
    std::array<std::atomic<uint64_t>, latency_buckets_s.size() + 1> buckets{};
  };
  using key = std::pair<model_id, uint32_t>;
  counters* mine(const model_id& id, uint32_t version);
  static version_figures sum(uint32_t version, const std::vector<std::unique_ptr<counters>>& list);

  const size_t max_tracked_;
  const uint64_t generation_;  // tells this object's thread caches from another's
  mutable std::mutex mutex_;   // guards shards_ (not the counters)
  std::map<key, std::vector<std::unique_ptr<counters>>> shards_;  // one per thread that counted
};

}  // namespace shoal
