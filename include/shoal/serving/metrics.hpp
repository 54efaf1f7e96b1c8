// metrics: what a node counts for `GET /metrics` (Prometheus text format 0.0.4).
//
// Inference requests, errors and a latency histogram per (tenant, model); model cache hits,
// misses, loads, evictions and bytes; refusals by reason and requests in flight; cluster members
// by status and each member's phi; snapshots this node should hold but has not copied yet (and
// for how long); build info.
//
// Cardinality is bounded: every (tenant, model) is counted, but at most `max_models` have series
// of their own; all the others are summed under tenant="_other", model="_other" (no real tenant
// can be called that: names start with [a-z0-9]). Models get series in the order they are first
// asked for while there is room; once the series are full, at each scrape a model that has
// served more than twice as many requests as the least busy model with a series takes that
// one's place (the busiest models win over time). No series goes backwards: the model that
// leaves adds what it counted to _other, and the one that comes starts from zero (what it
// counted before stays in _other).
//
// Thread-safety: every member may be called from any thread. The hot path (observe_inference,
// once per request on a front-end thread) takes no lock once the thread has seen the model: each
// thread caches the model's counters (relaxed atomics, never freed while the registry lives).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace shoal {

/// Upper bounds of the latency histogram's buckets, in seconds (+Inf is implied).
inline constexpr std::array<double, 13> latency_buckets_s = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

/// Why an inference was refused (each a counter).
enum class refusal_reason : uint8_t {
  overload,          // a front-end thread was behind (max_queue_ms)
  node_in_flight,    // max_in_flight
  tenant_rate,       // a tenant's token bucket
  tenant_in_flight,  // a tenant's in-flight limit
  model_queue,       // a loading model's queue was full
  draining,          // the node is stopping (503)
  count_
};

class node_metrics {
 public:
  /// At most `max_models` (tenant, model) pairs get series of their own; at most
  /// `max_tracked` are counted one by one (past that, straight into "_other").
  explicit node_metrics(size_t max_models = 100, size_t max_tracked = 100000);
  ~node_metrics();
  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

  /// One answered inference request: its HTTP-equivalent status (200, 4xx, 5xx) and how long the
  /// node took, from reading it to answering it. Statuses >= 400 count as errors; a 404 (a model
  /// that does not exist, such as a client's typo) counts under _other and makes no series.
  void observe_inference(std::string_view tenant, std::string_view model, int status,
                         double seconds);

  void count_refusal(refusal_reason why);

  /// A model's counts since start (all threads summed): what the V2 statistics extension shows.
  struct model_counts {
    uint64_t requests = 0;  // answered, errors included
    uint64_t errors = 0;
    uint64_t sum_us = 0;  // their time, reading to answering
  };
  /// Returns the counts of (tenant, model); zeros for one this node never answered.
  model_counts counts_of(std::string_view tenant, std::string_view model);

  // ---- model cache (the router updates these) ----
  std::atomic<uint64_t> cache_hits{0};     // requests that found their snapshot loaded
  std::atomic<uint64_t> cache_misses{0};   // requests that had to wait for a load
  std::atomic<uint64_t> model_loads{0};    // snapshots loaded
  std::atomic<uint64_t> evictions{0};      // snapshots unloaded to stay in the budget
  std::atomic<uint64_t> loaded_bytes{0};   // memory of the loaded snapshots
  std::atomic<uint64_t> loaded_models{0};  // snapshots loaded now
  std::atomic<uint64_t> budget_bytes{0};   // model_memory_mb
  std::atomic<int64_t> load_queue{0};      // requests waiting for their model to load
  // Where this node's inferences were answered (the cluster's data plane):
  std::atomic<uint64_t> served_local{0};      // its clients' requests answered here
  std::atomic<uint64_t> forwarded{0};         // its clients' requests forwarded to a holder
  std::atomic<uint64_t> served_for_peers{0};  // requests peers forwarded here
  std::atomic<uint64_t> forward_retries{0};   // forwards asked again (failover or hedge)
  std::atomic<uint64_t> traffic_copies{0};    // extra copies held for this node's traffic now
  std::atomic<uint64_t> traffic_copies_taken{0};    // such copies taken since start
  std::atomic<uint64_t> traffic_copies_dropped{0};  // and dropped again
  std::atomic<uint64_t> auto_rollbacks{0};          // production moves this node rolled back

  // ---- cluster (the router and the catalog actor update these) ----
  struct member_sample {
    std::string name;    // the member's node name
    std::string status;  // alive, suspect, dead, left
    double phi = 0;
    bool is_self = false;
  };
  void set_members(std::vector<member_sample> members);
  /// Snapshot versions placement says this node should hold that it has not copied yet, and
  /// how long the oldest of them has been waiting.
  void set_replication(uint64_t pending, double oldest_wait_s);

  /// Gauges read at each scrape (requests in flight, the limit).
  struct gauges {
    uint64_t in_flight = 0;
    uint64_t max_in_flight = 0;
  };

  /// The whole exposition, every metric with HELP and TYPE.
  std::string render(const gauges& now);

 private:
  // One thread's counts of one model (or the untracked ones), on cache lines of their own: a
  // counter every front-end thread added to would move between their cores on every request.
  struct alignas(64) counters {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> sum_us{0};
    std::array<std::atomic<uint64_t>, latency_buckets_s.size() + 1> buckets{};  // last: +Inf
  };
  struct values {  // a copy of counters
    uint64_t requests = 0, errors = 0, sum_us = 0;
    std::array<uint64_t, latency_buckets_s.size() + 1> buckets{};
    void add(const values& o);
    void subtract(const values& o);
  };
  struct tracked {
    std::string tenant, model;
    // Per front-end thread that served it (thread index -> its counts), summed at each scrape.
    std::map<uint32_t, std::unique_ptr<counters>> shards;
    bool own_series = false;
    values baseline;  // counted before it got its own series (stays in "_other")
  };
  static values read(const counters& c);
  static values total(const tracked& t);  // its shards summed; with mutex_ held
  static void record(counters& c, int status, double seconds);
  counters* find_or_add(std::string_view tenant, std::string_view model);

  const size_t max_models_, max_tracked_;
  const uint64_t generation_;  // tells this registry's thread caches from another's

  // Guards the maps and `own_series_count_` (not the counters, which are atomics): taken when a
  // thread meets a model for the first time and at each scrape.
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<tracked>> models_;
  size_t own_series_count_ = 0;
  counters untracked_;  // past max_tracked

  std::array<std::atomic<uint64_t>, static_cast<size_t>(refusal_reason::count_)> refusals_{};

  std::mutex cluster_mutex_;  // guards members_ and the replication figures
  std::vector<member_sample> members_;
  uint64_t replication_pending_ = 0;
  double replication_wait_s_ = 0;
};

}  // namespace shoal
