#include "shoal/serving/metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "0.0.0"
#endif

namespace shoal {
namespace {

std::atomic<uint64_t> next_generation{1};

// Each thread's pointers into the registry it last used (see observe_inference). Per thread, so
// no lock; dropped when the thread meets another registry or has cached too many models.
struct thread_cache {
  uint64_t generation = 0;
  std::unordered_map<std::string, void*> counters;
};
thread_local thread_cache this_thread_cache;
constexpr size_t max_thread_cache = 4096;

// Each thread's index, the key of its counters in a tracked model's shards.
std::atomic<uint32_t> next_thread_index{0};
thread_local const uint32_t this_thread_index = next_thread_index.fetch_add(1);

const char* reason_name(refusal_reason r) {
  switch (r) {
    case refusal_reason::overload: return "overload";
    case refusal_reason::node_in_flight: return "node_in_flight";
    case refusal_reason::tenant_rate: return "tenant_rate";
    case refusal_reason::tenant_in_flight: return "tenant_in_flight";
    case refusal_reason::model_queue: return "model_queue";
    case refusal_reason::draining: return "draining";
    case refusal_reason::count_: break;
  }
  return "unknown";
}

// A label value, escaped as the text format wants (backslash, quote, newline).
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {  // the shortest that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += number(v);
  out += '\n';
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

void node_metrics::values::add(const values& o) {
  requests += o.requests;
  errors += o.errors;
  sum_us += o.sum_us;
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
}

void node_metrics::values::subtract(const values& o) {
  requests -= o.requests;
  errors -= o.errors;
  sum_us -= o.sum_us;
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] -= o.buckets[i];
}

node_metrics::node_metrics(size_t max_models, size_t max_tracked)
    : max_models_(max_models),
      max_tracked_(std::max(max_tracked, max_models)),
      generation_(next_generation.fetch_add(1)) {}

node_metrics::~node_metrics() = default;

node_metrics::values node_metrics::read(const counters& c) {
  values v;
  v.requests = c.requests.load(std::memory_order_relaxed);
  v.errors = c.errors.load(std::memory_order_relaxed);
  v.sum_us = c.sum_us.load(std::memory_order_relaxed);
  for (size_t i = 0; i < v.buckets.size(); ++i) {
    v.buckets[i] = c.buckets[i].load(std::memory_order_relaxed);
  }
  return v;
}

node_metrics::values node_metrics::total(const tracked& t) {
  values v;
  for (const auto& [thread, shard] : t.shards) v.add(read(*shard));
  return v;
}

node_metrics::model_counts node_metrics::counts_of(std::string_view tenant,
                                                   std::string_view model) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = models_.find(std::make_pair(std::string(tenant), std::string(model)));
  if (it == models_.end()) return {};
  const values v = total(*it->second);
  return {v.requests, v.errors, v.sum_us};
}

void node_metrics::record(counters& c, int status, double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  size_t b = 0;
  while (b < latency_buckets_s.size() && seconds > latency_buckets_s[b]) ++b;
  // Non-cumulative here (one add per request); render() sums them into Prometheus' `le` buckets.
  c.buckets[b].fetch_add(1, std::memory_order_relaxed);
  c.sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  if (status >= 400) c.errors.fetch_add(1, std::memory_order_relaxed);
  // Last, so a scrape that sees a request mostly sees its bucket too.
  c.requests.fetch_add(1, std::memory_order_relaxed);
}

node_metrics::counters* node_metrics::find_or_add(std::string_view tenant, std::string_view model) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::make_pair(std::string(tenant), std::string(model));
  auto it = models_.find(key);
  if (it != models_.end()) {
    auto& shard = it->second->shards[this_thread_index];
    if (!shard) shard = std::make_unique<counters>();
    return shard.get();
  }
  if (models_.size() >= max_tracked_) return &untracked_;
  auto t = std::make_unique<tracked>();
  t->tenant = key.first;
  t->model = key.second;
  if (own_series_count_ < max_models_) {  // room: its own series from its first request
    t->own_series = true;
    ++own_series_count_;
  }
  auto& shard = t->shards[this_thread_index];
  shard = std::make_unique<counters>();
  counters* c = shard.get();
  models_.emplace(std::move(key), std::move(t));
  return c;
}

void node_metrics::observe_inference(std::string_view tenant, std::string_view model, int status,
                                     double seconds) {
  if (status == 404) {
    record(untracked_, status, seconds);
    return;
  }
  thread_cache& cache = this_thread_cache;
  if (cache.generation != generation_ || cache.counters.size() >= max_thread_cache) {
    cache.counters.clear();
    cache.generation = generation_;
  }
  std::string key;
  key.reserve(tenant.size() + model.size() + 1);
  key.append(tenant.data(), tenant.size());
  key += '/';
  key.append(model.data(), model.size());
  auto it = cache.counters.find(key);
  counters* c = nullptr;
  if (it != cache.counters.end()) {
    c = static_cast<counters*>(it->second);
  } else {
    c = find_or_add(tenant, model);
    cache.counters.emplace(std::move(key), c);
  }
  record(*c, status, seconds);
}

void node_metrics::count_refusal(refusal_reason why) {
  refusals_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}

void node_metrics::set_members(std::vector<member_sample> members) {
  std::lock_guard<std::mutex> lock(cluster_mutex_);
  members_ = std::move(members);
}

void node_metrics::set_replication(uint64_t pending, double oldest_wait_s) {
  std::lock_guard<std::mutex> lock(cluster_mutex_);
  replication_pending_ = pending;
  replication_wait_s_ = oldest_wait_s;
}

std::string node_metrics::render(const gauges& now) {
  std::string out;
  out.reserve(8192);

  header(out, "shoal_build_info", "gauge", "Shoal's version (the value is always 1).");
  sample(out, "shoal_build_info", "version=\"" + label(SHOAL_VERSION) + "\"", 1);

  // ---- inference per (tenant, model) ----
  struct row {
    std::string tenant, model;
    values v;
  };
  std::vector<row> rows;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Every series full: a model without one that has served more than twice as many requests
    // as the least busy model with one takes its place (a few swaps per scrape). The one that
    // leaves adds all it counted to _other; the one that comes starts from zero, what it
    // counted so far staying in _other: no series ever goes backwards.
    for (int swaps = 0; swaps < 8 && own_series_count_ >= max_models_ && max_models_ > 0;
         ++swaps) {
      tracked* busiest_without = nullptr;
      tracked* idlest_with = nullptr;
      uint64_t more = 0, less = 0;  // their requests
      for (auto& [key, t] : models_) {
        const uint64_t n = total(*t).requests;
        if (t->own_series) {
          if (!idlest_with || n < less) {
            idlest_with = t.get();
            less = n;
          }
        } else if (!busiest_without || n > more) {
          busiest_without = t.get();
          more = n;
        }
      }
      if (!busiest_without || !idlest_with) break;
      if (more <= 2 * less || more < 10) break;
      idlest_with->own_series = false;
      idlest_with->baseline = values{};
      busiest_without->own_series = true;
      busiest_without->baseline = total(*busiest_without);
    }
    row other{"_other", "_other", read(untracked_)};
    for (auto& [key, t] : models_) {
      values v = total(*t);
      if (!t->own_series) {
        other.v.add(v);
        continue;
      }
      other.v.add(t->baseline);
      v.subtract(t->baseline);
      rows.push_back({t->tenant, t->model, v});
    }
    rows.push_back(std::move(other));
  }
  auto labels_of = [](const row& r) {
    return "tenant=\"" + label(r.tenant) + "\",model=\"" + label(r.model) + "\"";
  };
  header(out, "shoal_inference_requests_total", "counter",
         "Inference requests answered, by tenant and model (the busiest models; the rest under "
         "_other).");
  for (const auto& r : rows) {
    sample(out, "shoal_inference_requests_total", labels_of(r), static_cast<double>(r.v.requests));
  }
  header(out, "shoal_inference_errors_total", "counter",
         "Inference requests answered with an error (HTTP status 400 or above, refusals "
         "included), by tenant and model.");
  for (const auto& r : rows) {
    sample(out, "shoal_inference_errors_total", labels_of(r), static_cast<double>(r.v.errors));
  }
  header(out, "shoal_inference_duration_seconds", "histogram",
         "Time from reading an inference request to answering it, by tenant and model.");
  for (const auto& r : rows) {
    const std::string base = labels_of(r);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < r.v.buckets.size(); ++i) {
      cumulative += r.v.buckets[i];
      const std::string le =
          i < latency_buckets_s.size() ? number(latency_buckets_s[i]) : std::string("+Inf");
      sample(out, "shoal_inference_duration_seconds_bucket", base + ",le=\"" + le + "\"",
             static_cast<double>(cumulative));
    }
    sample(out, "shoal_inference_duration_seconds_sum", base,
           static_cast<double>(r.v.sum_us) / 1e6);
    sample(out, "shoal_inference_duration_seconds_count", base, static_cast<double>(cumulative));
  }

  // ---- admission ----
  header(out, "shoal_refusals_total", "counter",
         "Inference requests refused at once (429, or 503 while draining), by reason.");
  for (size_t i = 0; i < refusals_.size(); ++i) {
    sample(out, "shoal_refusals_total",
           std::string("reason=\"") + reason_name(static_cast<refusal_reason>(i)) + "\"",
           static_cast<double>(refusals_[i].load(std::memory_order_relaxed)));
  }
  // A metric with one sample and no labels.
  auto single = [&](const char* name, const char* type, const char* help, double value) {
    header(out, name, type, help);
    sample(out, name, "", value);
  };
  auto read_u = [](const std::atomic<uint64_t>& v) {
    return static_cast<double>(v.load(std::memory_order_relaxed));
  };
  single("shoal_in_flight_requests", "gauge", "Inference requests being answered now.",
         static_cast<double>(now.in_flight));
  single("shoal_max_in_flight_requests", "gauge",
         "Inference requests the node answers at once (max_in_flight); more are refused.",
         static_cast<double>(now.max_in_flight));

  // ---- data plane ----
  single("shoal_requests_served_local_total", "counter",
         "Inference requests from this node's clients answered by this node.",
         read_u(served_local));
  single("shoal_requests_forwarded_total", "counter",
         "Inference requests from this node's clients forwarded to a node holding the model.",
         read_u(forwarded));
  single("shoal_requests_served_for_peers_total", "counter",
         "Inference requests other nodes forwarded to this node.", read_u(served_for_peers));
  single("shoal_forward_retries_total", "counter",
         "Forwarded requests asked again: of the next holder when a peer refused, failed or "
         "died, or of the next holder too (or over a fresh connection) when one was slow.",
         read_u(forward_retries));
  single("shoal_traffic_copies", "gauge",
         "Copies held beyond replication_factor because this node's clients use them.",
         read_u(traffic_copies));
  single("shoal_traffic_copies_taken_total", "counter",
         "Traffic-following copies taken since start.", read_u(traffic_copies_taken));
  single("shoal_traffic_copies_dropped_total", "counter",
         "Traffic-following copies dropped since start (their traffic stopped).",
         read_u(traffic_copies_dropped));
  single("shoal_auto_rollbacks_total", "counter",
         "Production moves this node rolled back by itself (a watch rule broken).",
         read_u(auto_rollbacks));

  // ---- model cache ----
  single("shoal_model_cache_hits_total", "counter",
         "Inference requests whose snapshot was in memory.", read_u(cache_hits));
  single("shoal_model_cache_misses_total", "counter",
         "Inference requests that waited for their snapshot to load.", read_u(cache_misses));
  single("shoal_model_loads_total", "counter", "Snapshots loaded into memory.",
         read_u(model_loads));
  single("shoal_model_evictions_total", "counter",
         "Snapshots unloaded (least recently used) to stay within the model memory budget.",
         read_u(evictions));
  single("shoal_model_memory_bytes", "gauge", "Memory of the snapshots loaded now.",
         read_u(loaded_bytes));
  single("shoal_model_memory_budget_bytes", "gauge", "The model memory budget (model_memory_mb).",
         read_u(budget_bytes));
  single("shoal_models_loaded", "gauge", "Snapshots in memory now.", read_u(loaded_models));
  single("shoal_model_load_queue_requests", "gauge",
         "Inference requests waiting for their model to load (at most 256 per model; more are "
         "refused with reason model_queue).",
         static_cast<double>(std::max<int64_t>(0, load_queue.load(std::memory_order_relaxed))));

  // ---- cluster ----
  std::vector<member_sample> members;
  uint64_t pending = 0;
  double wait_s = 0;
  {
    std::lock_guard<std::mutex> lock(cluster_mutex_);
    members = members_;
    pending = replication_pending_;
    wait_s = replication_wait_s_;
  }
  header(out, "shoal_cluster_members", "gauge", "Members this node knows, by status.");
  for (const char* status : {"alive", "suspect", "dead", "left"}) {
    const auto n = std::count_if(members.begin(), members.end(),
                                 [&](const member_sample& m) { return m.status == status; });
    sample(out, "shoal_cluster_members", std::string("status=\"") + status + "\"",
           static_cast<double>(n));
  }
  header(out, "shoal_cluster_member_phi", "gauge",
         "Phi-accrual suspicion of each other member (0 for this node; probed above "
         "phi_threshold).");
  for (const auto& m : members) {
    sample(out, "shoal_cluster_member_phi",
           "member=\"" + label(m.name) + "\",status=\"" + label(m.status) + "\"",
           m.is_self ? 0.0 : m.phi);
  }
  single("shoal_replication_pending_snapshots", "gauge",
         "Snapshot versions this node should hold (placement) but has not copied yet.",
         static_cast<double>(pending));
  single("shoal_replication_lag_seconds", "gauge",
         "How long the oldest pending copy has been waiting (0 when none is).", wait_s);
  single("process_resident_memory_bytes", "gauge", "Resident memory of the node process.",
         static_cast<double>(resident_bytes()));
  return out;
}

}  // namespace shoal
