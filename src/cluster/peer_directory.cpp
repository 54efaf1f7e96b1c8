#include "shoal/cluster/peer_directory.hpp"

#include "shoal/cluster/rendezvous.hpp"

namespace shoal {

std::vector<peer_info> peer_directory::attempts(std::string_view key,
                                                const std::set<std::string>& holders) const {
  std::map<std::string, uint32_t> load;
  std::map<std::string, double> rtt;
  std::vector<std::string> candidates;
  for (const auto& h : holders) {
    auto it = alive.find(h);
    if (h == self_id || it == alive.end() || it->second.data_address.empty()) continue;
    load[h] = it->second.in_flight;
    if (it->second.rtt_ms >= 0) rtt[h] = it->second.rtt_ms;
    candidates.push_back(h);
  }
  std::vector<peer_info> out;
  for (const auto& id : replica_attempts(key, candidates, load, rtt)) out.push_back(alive.at(id));
  return out;
}

}  // namespace shoal
