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

inline_target find_inline(const serving_view& view, const infer_request& req, size_t max_texts) {
  inline_target out;
  auto version = view.catalog_copy->resolve(req.id, req.version, req.label);
  if (!version) {
    out.error = version.error();
    return out;
  }
  out.version = *version;
  const resident_model* resident = req.texts.size() > max_texts
                                       ? nullptr
                                       : view.loaded->find(std::make_pair(req.id, *version));
  if (resident == nullptr) {
    const model_entry* entry = view.catalog_copy->find(req.id);
    const snapshot_info* snap = entry != nullptr ? entry->find(*version) : nullptr;
    if (snap != nullptr) out.holders = &snap->holders;
    return out;
  }
  resident->touch(steady_now_ms());
  out.m = resident->m;
  return out;
}

}  // namespace shoal
