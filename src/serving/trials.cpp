#include "shoal/serving/trials.hpp"

#include <cmath>
#include <cstdio>

namespace shoal {
namespace {

std::atomic<uint64_t> next_generation{1};

std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? 'n' : c;
  }
  return out;
}

}  // namespace

trial_meter::trial_meter() : generation_(next_generation.fetch_add(1)) {}
trial_meter::~trial_meter() = default;

trial_meter::counters& trial_meter::mine(const key& k) {
  // This thread's counters per key of this meter; found without a lock after the first time.
  struct cache {
    uint64_t generation = 0;
    std::map<key, counters*> by_key;
    key last_key;  // the key asked for last (a model under watch: every request)
    counters* last = nullptr;
  };
  thread_local cache here;
  if (here.generation != generation_) {
    here.generation = generation_;
    here.by_key.clear();
    here.last = nullptr;
  }
  if (here.last != nullptr && here.last_key == k) return *here.last;
  auto it = here.by_key.find(k);
  if (it != here.by_key.end()) {
    here.last_key = k;
    here.last = it->second;
    return *it->second;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto& list = shards_[k];
  list.push_back(std::make_unique<counters>());
  counters* c = list.back().get();
  here.by_key.emplace(k, c);
  here.last_key = k;
  here.last = c;
  return *c;
}

size_t trial_meter::bucket_of(double us) {
  size_t b = 0;
  double bound = 1.0;
  while (b + 1 < time_buckets && us >= bound) {
    bound *= 2;
    ++b;
  }
  return b;
}

double trial_meter::p99_ms(const std::array<uint64_t, time_buckets>& h) {
  uint64_t total = 0;
  for (uint64_t n : h) total += n;
  if (total == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(std::ceil(0.99 * double(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    seen += h[i];
    if (seen >= rank) return std::ldexp(1.0, int(i)) / 1000.0;  // the bucket's upper bound
  }
  return std::ldexp(1.0, int(h.size())) / 1000.0;
}

void trial_meter::observe_served(const model_id& id, uint32_t served, bool failed) {
  counters& c = mine(key{id, served, 0});
  c.requests.fetch_add(1, std::memory_order_relaxed);
  if (failed) c.errors.fetch_add(1, std::memory_order_relaxed);
}

void trial_meter::observe_shadow(const model_id& id, uint32_t served, uint32_t shadow, bool agreed,
                                 double top1_served, double top1_shadow, double served_us,
                                 double shadow_us) {
  counters& c = mine(key{id, served, shadow});
  c.compared.fetch_add(1, std::memory_order_relaxed);
  if (agreed) c.agreed.fetch_add(1, std::memory_order_relaxed);
  c.top1_served_ppm.fetch_add(static_cast<uint64_t>(std::llround(top1_served * 1e6)),
                              std::memory_order_relaxed);
  c.top1_shadow_ppm.fetch_add(static_cast<uint64_t>(std::llround(top1_shadow * 1e6)),
                              std::memory_order_relaxed);
  c.served_time[bucket_of(served_us)].fetch_add(1, std::memory_order_relaxed);
  c.shadow_time[bucket_of(shadow_us)].fetch_add(1, std::memory_order_relaxed);
}

trial_figures trial_meter::read(const model_id& id, uint32_t served, uint32_t shadow) const {
  trial_figures f;
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = shards_.find(key{id, served, 0}); it != shards_.end()) {
    for (const auto& c : it->second) {
      f.requests += c->requests.load(std::memory_order_relaxed);
      f.errors += c->errors.load(std::memory_order_relaxed);
    }
  }
  if (shadow == 0) return f;
  auto it = shards_.find(key{id, served, shadow});
  if (it == shards_.end()) return f;
  uint64_t top1_served = 0, top1_shadow = 0;
  std::array<uint64_t, time_buckets> served_time{}, shadow_time{};
  for (const auto& c : it->second) {
    f.compared += c->compared.load(std::memory_order_relaxed);
    f.agreed += c->agreed.load(std::memory_order_relaxed);
    top1_served += c->top1_served_ppm.load(std::memory_order_relaxed);
    top1_shadow += c->top1_shadow_ppm.load(std::memory_order_relaxed);
    for (size_t i = 0; i < time_buckets; ++i) {
      served_time[i] += c->served_time[i].load(std::memory_order_relaxed);
      shadow_time[i] += c->shadow_time[i].load(std::memory_order_relaxed);
    }
  }
  if (f.compared > 0) {
    f.mean_top1_served = double(top1_served) / 1e6 / double(f.compared);
    f.mean_top1_shadow = double(top1_shadow) / 1e6 / double(f.compared);
  }
  f.p99_served_ms = p99_ms(served_time);
  f.p99_shadow_ms = p99_ms(shadow_time);
  return f;
}

void trial_meter::set_active(std::set<key> active) {
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = std::move(active);
}

std::vector<trial_meter::row> trial_meter::rows() const {
  std::vector<std::pair<model_id, std::pair<uint32_t, uint32_t>>> keys;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [k, list] : shards_) {
      if (std::get<2>(k) != 0 && active_.count(k) > 0) {
        keys.push_back({std::get<0>(k), {std::get<1>(k), std::get<2>(k)}});
      }
    }
  }
  std::vector<row> out;
  for (const auto& [id, vs] : keys)
    out.push_back({id, vs.first, vs.second, read(id, vs.first, vs.second)});
  return out;
}

void trial_meter::render(std::string& out) const {
  auto all = rows();
  auto labels = [](const row& r) {
    return "{tenant=\"" + escaped(r.id.tenant) + "\",model=\"" + escaped(r.id.model) +
           "\",version=\"" + std::to_string(r.served) + "\",shadow_version=\"" +
           std::to_string(r.shadow) + "\"";
  };
  out +=
      "# HELP shoal_trial_compared_total Requests answered by a version (version) and predicted "
      "by a version on trial (shadow_version) too, on this node.\n"
      "# TYPE shoal_trial_compared_total counter\n";
  for (const auto& r : all) {
    out +=
        "shoal_trial_compared_total" + labels(r) + "} " + std::to_string(r.figures.compared) + "\n";
  }
  out +=
      "# HELP shoal_trial_agreed_total Of those, requests whose top label was the same.\n"
      "# TYPE shoal_trial_agreed_total counter\n";
  for (const auto& r : all) {
    out += "shoal_trial_agreed_total" + labels(r) + "} " + std::to_string(r.figures.agreed) + "\n";
  }
  out +=
      "# HELP shoal_trial_mean_top1 Mean top-1 probability over the compared requests, of the "
      "version that answered (role=\"served\") and of the one on trial (role=\"shadow\").\n"
      "# TYPE shoal_trial_mean_top1 gauge\n";
  char buf[64];
  for (const auto& r : all) {
    for (int role = 0; role < 2; ++role) {
      std::snprintf(buf, sizeof buf, "%.6f",
                    role == 0 ? r.figures.mean_top1_served : r.figures.mean_top1_shadow);
      out += "shoal_trial_mean_top1" + labels(r) + ",role=\"" + (role == 0 ? "served" : "shadow") +
             "\"} " + buf + "\n";
    }
  }
}

}  // namespace shoal
