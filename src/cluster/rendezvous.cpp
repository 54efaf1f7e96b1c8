#include "shoal/cluster/rendezvous.hpp"

#include <algorithm>
#include <utility>

namespace shoal {
namespace {

constexpr uint64_t fnv_offset = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= fnv_prime;
  }
  return h;
}

// MurmurHash3's 64-bit finalizer: FNV-1a alone leaves the high bits poorly mixed for short keys
// that differ in their last bytes (node-1, node-2, ...).
uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

}  // namespace

uint64_t rendezvous_score(std::string_view key, std::string_view node_id) {
  uint64_t h = fnv1a(fnv_offset, node_id);
  h = fnv1a(h, std::string_view("\0", 1));  // "ab"+"c" and "a"+"bc" must differ
  return fmix64(fnv1a(h, key));
}

std::vector<std::string> rendezvous_order(std::string_view key, std::vector<std::string> node_ids) {
  std::vector<std::pair<uint64_t, std::string>> scored;
  scored.reserve(node_ids.size());
  for (auto& id : node_ids) scored.emplace_back(rendezvous_score(key, id), std::move(id));
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> out;
  out.reserve(scored.size());
  for (auto& [score, id] : scored) out.push_back(std::move(id));
  return out;
}

std::vector<std::string> replica_attempts(std::string_view key,
                                          const std::vector<std::string>& holders,
                                          const std::map<std::string, uint32_t>& live_load,
                                          const std::map<std::string, double>& rtt_ms) {
  std::vector<std::string> live;
  for (const auto& h : holders) {
    if (live_load.count(h) > 0) live.push_back(h);
  }
  auto order = rendezvous_order(key, std::move(live));
  double nearest = -1;
  for (const auto& h : order) {
    auto r = rtt_ms.find(h);
    if (r != rtt_ms.end() && (nearest < 0 || r->second < nearest)) nearest = r->second;
  }
  auto near = [&](const std::string& h) {
    auto r = rtt_ms.find(h);
    return nearest < 0 || r == rtt_ms.end() || r->second <= 2 * nearest + far_margin_ms;
  };
  std::stable_partition(order.begin(), order.end(), near);
  // The power of two choices, between near holders only: a far one is never chosen for its load.
  if (order.size() >= 2 && near(order[1]) && live_load.at(order[1]) < live_load.at(order[0])) {
    std::swap(order[0], order[1]);
  }
  return order;
}

}  // namespace shoal
