#include "shoal/serving/traffic.hpp"

#include <algorithm>

namespace shoal {

void traffic_meter::add(const std::map<snapshot_key, uint64_t>& counts) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, n] : counts) counts_[key] += n;
}

std::map<snapshot_key, uint64_t> traffic_meter::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(counts_, {});
}

void traffic_follower::observe(const std::map<snapshot_key, uint64_t>& forwards, int64_t now_ms) {
  for (const auto& [key, n] : forwards) {
    if (copies_.count(key) > 0) continue;  // forwards while our copy arrives: nothing to learn
    auto [it, fresh] = rates_.try_emplace(key);
    if (fresh) it->second.window_start_ms = now_ms;
    it->second.count += n;
  }
  // Windows that ended without reaching the rate start again; keys with no forwards in two
  // windows are forgotten, so the map holds only what is being forwarded now.
  for (auto it = rates_.begin(); it != rates_.end();) {
    rate& r = it->second;
    const int64_t age = now_ms - r.window_start_ms;
    const double needed = s_.min_rps * static_cast<double>(s_.window_ms) / 1000.0;
    if (!r.asked && age > s_.window_ms && static_cast<double>(r.count) < needed) {
      if (r.count == 0 && age > 2 * s_.window_ms) {
        it = rates_.erase(it);
        continue;
      }
      r.window_start_ms = now_ms;
      r.count = 0;
    }
    ++it;
  }
}

std::vector<snapshot_key> traffic_follower::to_copy(int64_t now_ms) {
  if (!s_.enabled) return {};
  const double needed = s_.min_rps * static_cast<double>(s_.window_ms) / 1000.0;
  std::vector<std::pair<uint64_t, snapshot_key>> ready;
  size_t asked = 0;
  for (const auto& [key, r] : rates_) {
    if (r.asked) {
      ++asked;
      continue;
    }
    if (now_ms - r.window_start_ms >= s_.window_ms && static_cast<double>(r.count) >= needed) {
      ready.emplace_back(r.count, key);
    }
  }
  std::sort(ready.begin(), ready.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<snapshot_key> out;
  for (auto& [count, key] : ready) {
    if (copies_.size() + asked + out.size() >= s_.max_copies) break;
    rates_[key].asked = true;
    out.push_back(std::move(key));
  }
  return out;
}

void traffic_follower::held(const snapshot_key& key, int64_t now_ms) {
  rates_.erase(key);
  auto [it, fresh] = copies_.try_emplace(key, now_ms);
  if (!fresh) it->second = std::max(it->second, now_ms);
}

void traffic_follower::failed(const snapshot_key& key) { rates_.erase(key); }

void traffic_follower::used(const snapshot_key& key, int64_t last_used_ms) {
  auto it = copies_.find(key);
  if (it != copies_.end()) it->second = std::max(it->second, last_used_ms);
}

std::vector<snapshot_key> traffic_follower::to_drop(int64_t now_ms) {
  std::vector<snapshot_key> out;
  for (auto it = copies_.begin(); it != copies_.end();) {
    if (now_ms - it->second >= s_.idle_ms) {
      out.push_back(it->first);
      it = copies_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace shoal
