#include "shoal/cluster/placement.hpp"

#include <algorithm>

#include "shoal/cluster/rendezvous.hpp"

namespace shoal {

std::vector<std::string> placement_for(const model_id& id, const live_members& live,
                                       const std::string& self_id, size_t replication_factor) {
  std::vector<std::string> ids;
  ids.reserve(live.size());
  for (const auto& [member, address] : live) ids.push_back(member);
  if (ids.empty()) ids.push_back(self_id);
  auto order = rendezvous_order(id.str(), std::move(ids));
  if (order.size() > replication_factor) order.resize(replication_factor);
  return order;
}

copy_plan plan_copies(const catalog& view, const std::string& self_id, const live_members& live,
                      size_t replication_factor,
                      const std::function<bool(const std::string& sha256)>& stored_here,
                      const std::set<std::pair<model_id, uint32_t>>& kept_for_traffic) {
  copy_plan plan;
  std::set<std::string> keep, drop;  // sha256s still needed here / copies no longer needed
  for (const model_entry* m : view.models()) {
    const auto want = placement_for(m->id, live, self_id, replication_factor);
    const bool mine = std::find(want.begin(), want.end(), self_id) != want.end();
    for (const auto& snap : m->snapshots) {
      if (snap.holders.count(self_id) == 0) {
        if (!mine) continue;
        if (stored_here(snap.sha256)) {
          plan.changes.push_back(hold_change(m->id, snap.version));
          keep.insert(snap.sha256);
        } else {
          plan.missing.insert(snap.sha256);
          plan.fetches.push_back({m->id, snap});
        }
        continue;
      }
      // We hold it. A copy placement does not name goes once every member it names holds it.
      const bool covered =
          !mine && want.size() >= replication_factor &&
          kept_for_traffic.count({m->id, snap.version}) == 0 &&
          std::all_of(want.begin(), want.end(),
                      [&](const std::string& w) { return snap.holders.count(w) > 0; });
      if (covered) {
        plan.changes.push_back(release_change(m->id, snap.version));
        drop.insert(snap.sha256);
      } else {
        keep.insert(snap.sha256);
      }
    }
  }
  for (const auto& sha : drop) {
    if (keep.count(sha) == 0) plan.remove.insert(sha);  // the same bytes may serve a kept version
  }
  return plan;
}

std::vector<std::string> copy_sources(const snapshot_info& snap, const live_members& live,
                                      const std::string& self_id) {
  std::vector<std::string> sources;
  for (const auto& holder : snap.holders) {
    auto it = live.find(holder);
    if (it != live.end() && holder != self_id) sources.push_back(it->second);
  }
  return sources;
}

std::vector<std::string> push_targets(const model_id& id, const live_members& live,
                                      const std::string& self_id, size_t replication_factor) {
  std::vector<std::string> targets;
  for (const auto& member : placement_for(id, live, self_id, replication_factor)) {
    auto it = live.find(member);
    if (member != self_id && it != live.end()) targets.push_back(it->second);
  }
  return targets;
}

std::string replication_shortfall(size_t live_count, size_t replication_factor) {
  const size_t alive = std::max<size_t>(1, live_count);
  if (alive >= replication_factor) return "";
  return "only " + std::to_string(alive) + (alive == 1 ? " node is" : " nodes are") +
         " alive; copies are added when nodes join";
}

}  // namespace shoal
