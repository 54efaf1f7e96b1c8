#include "shoal/serving/serving_view.hpp"

#include <chrono>
#include <functional>

namespace shoal {
namespace {

// Generations come from one process-wide counter, so a cache that outlived its board can never
// mistake a new board's view for the one it holds.
std::atomic<uint64_t> next_generation{1};

}  // namespace

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

loaded_models::loaded_models() {
  auto empty = std::make_shared<const shard>();
  shards_.assign(shard_count, empty);
}

size_t loaded_models::shard_of(const snapshot_key& key) {
  size_t h = std::hash<std::string>{}(key.first.tenant);
  h = h * 31 + std::hash<std::string>{}(key.first.model);
  h = h * 31 + key.second;
  return h % shard_count;
}

const resident_model* loaded_models::find(const snapshot_key& key) const {
  const shard& s = *shards_[shard_of(key)];
  auto it = s.find(key);
  return it == s.end() ? nullptr : it->second.get();
}

loaded_models loaded_models::with(const snapshot_key& key, entry value) const {
  loaded_models out = *this;
  auto& slot = out.shards_[shard_of(key)];
  auto next = std::make_shared<shard>(*slot);
  auto [it, added] = next->emplace(key, value);
  if (!added) {
    out.bytes_ -= it->second->bytes;
    it->second = value;
  } else {
    ++out.size_;
  }
  out.bytes_ += value->bytes;
  slot = std::move(next);
  return out;
}

loaded_models loaded_models::without(const snapshot_key& key) const {
  const size_t i = shard_of(key);
  auto it = shards_[i]->find(key);
  if (it == shards_[i]->end()) return *this;
  loaded_models out = *this;
  auto next = std::make_shared<shard>(*shards_[i]);
  out.bytes_ -= it->second->bytes;
  --out.size_;
  next->erase(key);
  out.shards_[i] = std::move(next);
  return out;
}

serving_board::serving_board()
    : view_(std::make_shared<const serving_view>(serving_view{
          std::make_shared<const catalog>(), std::make_shared<const loaded_models>(),
          std::make_shared<const peer_directory>()})),
      generation_(next_generation.fetch_add(1)) {}

void serving_board::publish(std::shared_ptr<const catalog> cat,
                            std::shared_ptr<const loaded_models> loaded,
                            std::shared_ptr<const peer_directory> peers) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto next = std::make_shared<serving_view>(*view_);
  if (cat) next->catalog_copy = std::move(cat);
  if (loaded) next->loaded = std::move(loaded);
  if (peers) next->peers = std::move(peers);
  view_ = std::move(next);
  generation_.store(next_generation.fetch_add(1), std::memory_order_release);
}

void serving_board::publish_catalog(std::shared_ptr<const catalog> next) {
  if (next) publish(std::move(next), nullptr, nullptr);
}

void serving_board::publish_loaded(std::shared_ptr<const loaded_models> next) {
  if (next) publish(nullptr, std::move(next), nullptr);
}

void serving_board::publish_peers(std::shared_ptr<const peer_directory> next) {
  if (next) publish(nullptr, nullptr, std::move(next));
}

const serving_view& serving_board::read(cache& c) const {
  const uint64_t now = generation_.load(std::memory_order_acquire);
  if (c.board != this || c.generation != now || !c.view) {
    std::lock_guard<std::mutex> lock(mutex_);
    c.board = this;
    c.view = view_;
    c.generation = generation_.load(std::memory_order_relaxed);
  }
  return *c.view;
}

namespace {

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

bool sample_share(uint32_t ppm) {
  if (ppm >= 1000000) return true;
  if (ppm == 0) return false;
  // xorshift64*, seeded per thread from its address and the clock: cheap, and no state shared.
  thread_local uint64_t x =
      (reinterpret_cast<uintptr_t>(&x) ^
       static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) |
      1;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return ((x * 0x2545F4914F6CDD1DULL) >> 32) % 1000000 < ppm;
}

inline_target find_inline(const serving_view& view, const infer_request& req, size_t max_texts) {
  inline_target out;
  const model_entry* entry = view.catalog_copy->find(req.id);
  if (entry == nullptr) {
    out.error = model_not_found(req.id);
    return out;
  }
  auto version = entry->resolve(req.version, req.label);
  if (!version) {
    out.error = version.error();
    return out;
  }
  out.version = *version;
  // Trials are rare: the common case looks at one field.
  if (entry->trial.what != trial_info::mode::none) {
    const trial_info& t = entry->trial;
    auto prod = entry->labels.find(default_label);
    const uint32_t production = prod == entry->labels.end() ? 0 : prod->second.current();
    const bool asks_production = !req.version && (req.label.empty() || req.label == default_label);
    if (t.what == trial_info::mode::canary) {
      if (asks_production && entry->find(t.version) != nullptr && sample_share(t.share_ppm)) {
        out.version = t.version;
      }
    } else if (*version == production && t.version != production &&
               (t.what == trial_info::mode::shadow ||
                (t.what == trial_info::mode::watch && wall_now_ms() < t.until_ms))) {
      out.on_trial = t.what == trial_info::mode::watch;
      if (sample_share(t.share_ppm)) {
        if (const resident_model* s = view.loaded->find(std::make_pair(req.id, t.version))) {
          s->touch(steady_now_ms());
          out.shadow = s->m;
          out.shadow_version = t.version;
        }
      }
    }
  }
  const resident_model* resident = req.batch_size() > max_texts
                                       ? nullptr
                                       : view.loaded->find(std::make_pair(req.id, out.version));
  if (resident == nullptr) {
    const snapshot_info* snap = entry->find(out.version);
    if (snap != nullptr) out.holders = &snap->holders;
    return out;
  }
  resident->touch(steady_now_ms());
  out.m = resident->m;
  return out;
}

}  // namespace shoal
