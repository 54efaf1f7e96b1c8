#include "shoal/serving/version_stats.hpp"

#include <cmath>
#include <string>
#include <string_view>

namespace shoal {
namespace {

std::atomic<uint64_t> next_generation{1};

// Per thread: at most this many pairs cached (a node serving thousands of models); past it the
// cache starts again (one lock per pair to fill it back).
constexpr size_t max_thread_cache = 4096;

}  // namespace

version_stats::version_stats(size_t max_tracked)
    : max_tracked_(max_tracked), generation_(next_generation.fetch_add(1)) {}
version_stats::~version_stats() = default;

namespace {

// A (model, version) as this thread's cache keeps it, and as a request asks for it (views into
// the request's id: looking up costs no allocation).
struct cached_key {
  std::string tenant, model;
  uint32_t version = 0;
};
struct key_view {
  std::string_view tenant, model;
  uint32_t version = 0;
};
template <typename A, typename B>
bool key_less(const A& a, const B& b) {
  if (a.tenant != b.tenant) return std::string_view(a.tenant) < std::string_view(b.tenant);
  if (a.model != b.model) return std::string_view(a.model) < std::string_view(b.model);
  return a.version < b.version;
}
struct key_order {
  using is_transparent = void;
  bool operator()(const cached_key& a, const cached_key& b) const { return key_less(a, b); }
  bool operator()(const cached_key& a, const key_view& b) const { return key_less(a, b); }
  bool operator()(const key_view& a, const cached_key& b) const { return key_less(a, b); }
};

}  // namespace

version_stats::counters* version_stats::mine(const model_id& id, uint32_t version) {
  // This thread's counters per pair, found without a lock and without an allocation after the
  // first time.
  struct cache {
    uint64_t generation = 0;
    std::map<cached_key, counters*, key_order> by_key;
  };
  thread_local cache here;
  if (here.generation != generation_ || here.by_key.size() >= max_thread_cache) {
    here.generation = generation_;
    here.by_key.clear();
  }
  auto it = here.by_key.find(key_view{id.tenant, id.model, version});
  if (it != here.by_key.end()) return it->second;
  counters* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = shards_.find(key{id, version});
    if (found == shards_.end() && shards_.size() < max_tracked_) {
      found = shards_.emplace(key{id, version}, std::vector<std::unique_ptr<counters>>()).first;
    }
    if (found != shards_.end()) {
      found->second.push_back(std::make_unique<counters>());
      c = found->second.back().get();
    }
  }
  // Null: not counted (past max_tracked), asked again only when the cache starts again.
  here.by_key.emplace(cached_key{id.tenant, id.model, version}, c);
  return c;
}

void version_stats::observe(const model_id& id, uint32_t version, bool failed, double seconds,
                            double top1) {
  counters* c = mine(id, version);
  if (c == nullptr) return;
  if (!(seconds >= 0)) seconds = 0;
  size_t b = 0;
  while (b < latency_buckets_s.size() && seconds > latency_buckets_s[b]) ++b;
  c->buckets[b].fetch_add(1, std::memory_order_relaxed);
  c->sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  if (failed) c->errors.fetch_add(1, std::memory_order_relaxed);
  if (top1 >= 0 && top1 <= 1) {
    c->top1_sum_ppm.fetch_add(static_cast<uint64_t>(std::llround(top1 * 1e6)),
                              std::memory_order_relaxed);
    c->scored.fetch_add(1, std::memory_order_relaxed);
  }
  c->requests.fetch_add(1, std::memory_order_relaxed);
}

version_figures version_stats::sum(uint32_t version,
                                   const std::vector<std::unique_ptr<counters>>& list) {
  version_figures f;
  f.version = version;
  for (const auto& c : list) {
    f.requests += c->requests.load(std::memory_order_relaxed);
    f.errors += c->errors.load(std::memory_order_relaxed);
    f.sum_us += c->sum_us.load(std::memory_order_relaxed);
    f.scored += c->scored.load(std::memory_order_relaxed);
    f.top1_sum_ppm += c->top1_sum_ppm.load(std::memory_order_relaxed);
    for (size_t i = 0; i < f.buckets.size(); ++i) {
      f.buckets[i] += c->buckets[i].load(std::memory_order_relaxed);
    }
  }
  return f;
}

std::vector<version_figures> version_stats::read(const model_id& id) const {
  std::vector<version_figures> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = shards_.lower_bound(key{id, 0}); it != shards_.end() && it->first.first == id;
       ++it) {
    out.push_back(sum(it->first.second, it->second));
  }
  return out;
}

std::map<model_id, std::vector<version_figures>> version_stats::read_all() const {
  std::map<model_id, std::vector<version_figures>> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [k, list] : shards_) out[k.first].push_back(sum(k.second, list));
  return out;
}

}  // namespace shoal
