#include "shoal/cluster/replicated_catalog.hpp"

#include <algorithm>
#include <utility>

namespace shoal {
namespace {

std::string describe_change(const catalog_change& c) {
  return c.id.str() + " change " + std::to_string(c.seq) + " of " + c.origin;
}

}  // namespace

replicated_catalog::replicated_catalog(std::string self_id, int64_t max_clock_offset_ms)
    : self_(std::move(self_id)), clock_(max_clock_offset_ms) {}

std::vector<catalog_change> replicated_catalog::stamp(std::vector<catalog_change> changes,
                                                      int64_t physical_ms) {
  uint64_t seq = frontier_.count(self_) ? frontier_.at(self_) : 0;
  for (auto& c : changes) {
    c.origin = self_;
    c.seq = ++seq;
    c.at = clock_.tick(physical_ms);
  }
  return changes;
}

void replicated_catalog::take_voter_event(const std::string& node, const catalog_change& c,
                                          bool joined) {
  auto it = voter_events_.find(node);
  const order_key key = key_of(c);
  if (it != voter_events_.end() && it->second.key > key) return;  // an earlier one, arrived late
  voter_events_[node] = voter_event{key, joined};
  if (joined) {
    voters_.insert(node);
  } else {
    voters_.erase(node);
  }
}

std::string replicated_catalog::voter_name(const std::string& node_id) const {
  auto it = voter_names_.find(node_id);
  return it == voter_names_.end() ? std::string() : it->second;
}

std::set<std::string> replicated_catalog::retired() const {
  std::set<std::string> out;
  for (const auto& [node, e] : voter_events_) {
    if (!e.joined) out.insert(node);
  }
  return out;
}

status replicated_catalog::check_shape(const catalog_change& change) const {
  if (change.what == catalog_change::kind::join) {
    if (change.origin.empty()) return status::invalid_argument("a join without a node id");
    if (change.seq == 0) return status::invalid_argument("a join without a seq");
    return status::ok();
  }
  if (change.what == catalog_change::kind::retire) {
    if (change.origin.empty() || change.seq == 0 || change.node.empty()) {
      return status::invalid_argument("a retire needs an origin, a seq and the node it retires");
    }
    return status::ok();
  }
  if (change.what == catalog_change::kind::grant &&
      (change.origin.empty() || change.to == 0 || change.snapshot.sha256.empty())) {
    return status::invalid_argument("a grant needs a voter, a number and a sha256");
  }
  const bool tenant_wide = change.what == catalog_change::kind::policy && change.id.model.empty();
  if (!is_valid_id_part(change.id.tenant) || (!tenant_wide && !is_valid_id_part(change.id.model))) {
    return status::invalid_argument("catalog change for an invalid model id '" +
                                    change.id.str().substr(0, 140) + "'");
  }
  if (static_cast<int>(change.what) > static_cast<int>(catalog_change::kind::retire)) {
    return status::invalid_argument("unknown catalog change kind " +
                                    std::to_string(static_cast<int>(change.what)));
  }
  if (!change.origin.empty() && change.seq == 0) {
    return status::invalid_argument("catalog change of " + change.origin + " has no seq");
  }
  return status::ok();
}

result<bool> replicated_catalog::check(const catalog_change& change) const {
  SHOAL_RETURN_IF_ERROR(check_shape(change));
  if (change.origin.empty()) return true;  // from before replication: always taken
  uint64_t held = frontier_.count(change.origin) ? frontier_.at(change.origin) : 0;
  if (change.seq <= held) return false;
  if (change.seq != held + 1) {
    return status::failed_precondition(
        "catalog change " + std::to_string(change.seq) + " of " + change.origin +
        " arrived before " +
        (change.seq == held + 2 ? std::to_string(held + 1)
                                : std::to_string(held + 1) + "-" + std::to_string(change.seq - 1)) +
        " (held up to " + std::to_string(held) + ")");
  }
  return true;
}

result<bool> replicated_catalog::add(catalog_change change, int64_t physical_ms) {
  auto checked = check(change);
  if (!checked || !*checked) return checked;
  if (change.origin.empty()) {
    // Written before replication: ours, stamped from its own time so every replay agrees.
    change.origin = self_;
    change.seq = (frontier_.count(self_) ? frontier_.at(self_) : 0) + 1;
    int64_t t = change.what == catalog_change::kind::add_snapshot ? change.snapshot.created_ms
                                                                  : change.time_ms;
    change.at = clock_.tick(t);
  } else {
    // Too far ahead: take the change anyway (replicas must converge) but keep our clock sane.
    (void)clock_.observe(change.at, physical_ms);
  }

  if (change.what == catalog_change::kind::join || change.what == catalog_change::kind::grant ||
      change.what == catalog_change::kind::retire) {
    // Numbering bookkeeping, outside the fold of any model's view.
    if (change.what == catalog_change::kind::join) {
      if (!change.by.empty()) voter_names_[change.origin] = change.by;
      take_voter_event(change.origin, change, true);
    } else if (change.what == catalog_change::kind::retire) {
      if (!change.reason.empty() && voter_names_.count(change.node) == 0) {
        voter_names_[change.node] = change.reason;
      }
      take_voter_event(change.node, change, false);
    } else {
      grants_[change.id][change.to][change.origin] = change.snapshot.sha256;
    }
    auto& log = by_origin_[change.origin];
    log.push_back(std::move(change));
    frontier_[log.back().origin] = log.back().seq;
    ++count_;
    return true;
  }

  const model_id id = change.id;
  const order_key key = key_of(change);
  auto& order = by_model_[id];
  const bool last = order.empty() || *order.rbegin() < key;
  order.insert(key);
  auto& log = by_origin_[change.origin];
  log.push_back(std::move(change));
  frontier_[log.back().origin] = log.back().seq;
  ++count_;

  if (last) {
    // The common case: the newest change of its model. Apply it; a refusal is a conflict (a
    // taken number) or a move to a version not known yet, exactly as a refold would skip it.
    const catalog_change& c = log.back();
    status s = view_.apply(c);
    if (!s.is_ok() && c.what == catalog_change::kind::add_snapshot) {
      conflicts_[{c.origin, c.seq}] = describe_change(c) + ": " + s.message();
    }
  } else {
    refold(id);
  }
  return true;
}

const catalog_change& replicated_catalog::change_at(const order_key& k) const {
  return by_origin_.at(std::get<1>(k)).at(std::get<2>(k) - 1);
}

void replicated_catalog::refold(const model_id& id) {
  catalog fresh;
  for (const auto& k : by_model_.at(id)) {
    const catalog_change& c = change_at(k);
    status s = fresh.apply(c);
    if (!s.is_ok() && c.what == catalog_change::kind::add_snapshot) {
      conflicts_[{c.origin, c.seq}] = describe_change(c) + ": " + s.message();
    } else if (s.is_ok() && c.what == catalog_change::kind::add_snapshot) {
      conflicts_.erase({c.origin, c.seq});  // an earlier claim may have arrived since
    }
  }
  if (id.model.empty()) {  // a tenant's policy changes (the only changes without a model)
    view_.set_tenant_policy(id.tenant, fresh.tenant_policy(id.tenant));
    return;
  }
  const model_entry* entry = fresh.find(id);
  if (entry != nullptr) {
    view_.put(*entry);
  } else {
    model_entry none;
    none.id = id;
    view_.put(std::move(none));
  }
}

std::vector<catalog_change> replicated_catalog::missing_for(const catalog_frontier& theirs,
                                                            size_t max) const {
  std::vector<catalog_change> out;
  for (const auto& [origin, held] : frontier_) {
    auto it = theirs.find(origin);
    uint64_t from = it == theirs.end() ? 1 : it->second + 1;
    const auto& log = by_origin_.at(origin);
    for (uint64_t seq = from; seq <= held && out.size() < max; ++seq) out.push_back(log[seq - 1]);
    if (out.size() >= max) break;
  }
  return out;
}

std::vector<catalog_change> replicated_catalog::range(const std::string& origin, uint64_t from,
                                                      uint64_t to) const {
  std::vector<catalog_change> out;
  auto it = by_origin_.find(origin);
  if (it == by_origin_.end() || from == 0) return out;
  for (uint64_t seq = from; seq <= to && seq <= it->second.size(); ++seq) {
    out.push_back(it->second[seq - 1]);
  }
  return out;
}

uint32_t replicated_catalog::next_number(const model_id& id) const {
  uint32_t top = 0;
  if (const model_entry* m = view_.find(id); m != nullptr && !m->snapshots.empty()) {
    top = m->snapshots.back().version;
  }
  auto g = grants_.find(id);
  if (g != grants_.end() && !g->second.empty()) top = std::max(top, g->second.rbegin()->first);
  return top + 1;
}

status replicated_catalog::may_grant(const model_id& id, uint32_t number,
                                     const std::string& sha256) const {
  if (const model_entry* m = view_.find(id)) {
    const snapshot_info* s = m->find(number);
    if (s != nullptr && s->sha256 != sha256) {
      return status::failed_precondition("version " + std::to_string(number) + " of " + id.str() +
                                         " exists (sha256 " + s->sha256.substr(0, 12) + ")");
    }
  }
  auto g = grants_.find(id);
  if (g != grants_.end()) {
    auto n = g->second.find(number);
    if (n != g->second.end()) {
      auto mine = n->second.find(self_);
      if (mine != n->second.end() && mine->second != sha256) {
        return status::failed_precondition("number " + std::to_string(number) + " of " +
                                           id.str() + " is granted to sha256 " +
                                           mine->second.substr(0, 12));
      }
    }
  }
  return status::ok();
}

std::vector<std::string> replicated_catalog::conflicts() const {
  std::vector<std::string> out;
  for (const auto& [k, line] : conflicts_) out.push_back(line);
  return out;
}

}  // namespace shoal
