#include "shoal/store/catalog.hpp"

#include <algorithm>
#include <new>
#include <utility>

namespace shoal {
namespace {

bool is_label_lead_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_label_tail_char(char c) { return is_label_lead_char(c) || c == '_' || c == '.' || c == '-'; }

std::string label_or_default(const std::string& label) {
  return label.empty() ? std::string(default_label) : label;
}

// Versions in ranges: "1-3", or "1-3, 5" when a number is missing (replicas can learn of
// versions out of order).
std::string versions_text(const model_entry& m) {
  if (m.snapshots.empty()) return "none";
  std::string out;
  size_t i = 0;
  while (i < m.snapshots.size()) {
    size_t j = i;
    while (j + 1 < m.snapshots.size() && m.snapshots[j + 1].version == m.snapshots[j].version + 1) {
      ++j;
    }
    if (!out.empty()) out += ", ";
    out += std::to_string(m.snapshots[i].version);
    if (j > i) out += "-" + std::to_string(m.snapshots[j].version);
    i = j + 1;
  }
  return out;
}

std::string labels_text(const model_entry& m) {
  if (m.labels.empty()) return "none";
  std::string out;
  for (const auto& [name, state] : m.labels) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

status no_model(const model_id& id) { return model_not_found(id); }

status no_version(const model_entry& m, uint32_t version) {
  return status::not_found("model " + m.id.str() + " has no version " + std::to_string(version) +
                           " (versions: " + versions_text(m) + ")");
}

status no_label(const model_entry& m, const std::string& label) {
  return status::not_found("model " + m.id.str() + " has no label " + label +
                           " (labels: " + labels_text(m) + ")");
}

status out_of_memory(const model_id& id) {
  return status::resource_exhausted("out of memory changing the catalog of " + id.str());
}

status bad_label(const std::string& label) {
  return status::invalid_argument("invalid label '" + label.substr(0, 80) +
                                  "': must match [a-z0-9][a-z0-9_.-]{0,63}");
}

// Where the top-most copy of `version` sits on `stack`, or npos.
size_t find_on_stack(const std::vector<uint32_t>& stack, uint32_t version) {
  for (size_t i = stack.size(); i > 0; --i) {
    if (stack[i - 1] == version) return i - 1;
  }
  return static_cast<size_t>(-1);
}

}  // namespace

catalog_change hold_change(const model_id& id, uint32_t version) {
  catalog_change c;
  c.what = catalog_change::kind::hold;
  c.id = id;
  c.to = version;
  return c;
}

catalog_change release_change(const model_id& id, uint32_t version) {
  catalog_change c = hold_change(id, version);
  c.what = catalog_change::kind::release;
  return c;
}

catalog_change join_change(const std::string& name) {
  catalog_change c;
  c.what = catalog_change::kind::join;
  c.by = name;
  return c;
}

catalog_change retire_change(const std::string& node_id, const std::string& name,
                             const std::string& by, int64_t time_ms) {
  catalog_change c;
  c.what = catalog_change::kind::retire;
  c.node = node_id;
  c.reason = name;
  c.by = by;
  c.time_ms = time_ms;
  return c;
}

catalog_change grant_change(const model_id& id, uint32_t number, const std::string& sha256) {
  catalog_change c;
  c.what = catalog_change::kind::grant;
  c.id = id;
  c.to = number;
  c.snapshot.sha256 = sha256;
  return c;
}

bool is_valid_label(const std::string& name) {
  if (name.empty() || name.size() > 64 || !is_label_lead_char(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), is_label_tail_char);
}

const validation_set_info* model_entry::current_set() const {
  if (validation_stack.empty()) return nullptr;
  const uint32_t n = validation_stack.back();
  return n >= 1 && n <= validation_sets.size() ? &validation_sets[n - 1] : nullptr;
}

status model_entry::check_version(uint32_t version) const {
  return find(version) != nullptr ? status::ok() : no_version(*this, version);
}

const snapshot_info* model_entry::find(uint32_t version) const {
  // Versions are 1..n in order, but search rather than index so a gap can never misread.
  auto it = std::lower_bound(snapshots.begin(), snapshots.end(), version,
                             [](const snapshot_info& s, uint32_t v) { return s.version < v; });
  if (it == snapshots.end() || it->version != version) return nullptr;
  return &*it;
}

std::vector<std::string> model_entry::labels_at(uint32_t version) const {
  std::vector<std::string> out;
  for (const auto& [name, state] : labels) {
    if (state.current() == version && version != 0) out.push_back(name);
  }
  return out;  // std::map iterates in sorted order
}

status model_not_found(const model_id& id) { return status::not_found("no model " + id.str()); }

std::vector<catalog::slot>::iterator catalog::lower(const model_id& id) {
  return std::lower_bound(models_.begin(), models_.end(), id,
                          [](const slot& e, const model_id& key) { return e->id < key; });
}

std::vector<catalog::slot>::const_iterator catalog::lower(const model_id& id) const {
  return std::lower_bound(models_.begin(), models_.end(), id,
                          [](const slot& e, const model_id& key) { return e->id < key; });
}

const model_entry* catalog::find(const model_id& id) const {
  auto it = lower(id);
  return it == models_.end() || (*it)->id != id ? nullptr : it->get();
}

std::vector<const model_entry*> catalog::models() const {
  std::vector<const model_entry*> out;
  out.reserve(models_.size());
  for (const auto& entry : models_) out.push_back(entry.get());
  return out;
}

catalog::usage catalog::tenant_usage(const std::string& tenant) const {
  usage out;
  for (auto it = lower(model_id{tenant, ""}); it != models_.end() && (*it)->id.tenant == tenant;
       ++it) {
    ++out.models;
    for (const auto& s : (*it)->snapshots) out.stored_bytes += s.size_bytes;
  }
  return out;
}

model_entry& catalog::writable(std::shared_ptr<const model_entry>& slot) {
  // Every entry is made as a non-const model_entry (never make_shared<const ...>), so casting
  // const away to change one is defined. use_count() is exact here: only this catalog's owner can copy this catalog, and it is
  // busy calling us. Other catalogs that share the entry never change it.
  if (slot.use_count() > 1) slot = std::make_shared<model_entry>(*slot);
  return const_cast<model_entry&>(*slot);
}

std::vector<catalog_change> catalog::plan_push(const model_id& id, snapshot_info snap,
                                               const std::string& label, int64_t now_ms,
                                               std::optional<uint32_t> version) const {
  const model_entry* m = find(id);
  const bool first = m == nullptr || m->snapshots.empty();
  snap.version = version ? *version : first ? 1 : m->snapshots.back().version + 1;
  if (snap.created_ms == 0) snap.created_ms = now_ms;

  std::vector<catalog_change> changes;
  catalog_change add;
  add.what = catalog_change::kind::add_snapshot;
  add.id = id;
  add.snapshot = snap;
  changes.push_back(std::move(add));

  auto move = [&](const std::string& name) {
    catalog_change c;
    c.what = catalog_change::kind::move_label;
    c.id = id;
    c.label = name;
    c.action = label_action::promote;
    c.to = snap.version;
    c.time_ms = now_ms;
    changes.push_back(std::move(c));
  };
  // Only the first version takes production implicitly; later pushes never move it unasked.
  if (first) move(default_label);
  if (!label.empty() && !(first && label == default_label)) move(label);
  return changes;
}

result<catalog_change> catalog::plan_label(const label_request& req, int64_t now_ms) const {
  const model_entry* m = find(req.id);
  if (m == nullptr) return no_model(req.id);
  const std::string label = label_or_default(req.label);
  if (!is_valid_label(label)) return bad_label(label);

  auto it = m->labels.find(label);
  const label_state* state = it == m->labels.end() ? nullptr : &it->second;

  catalog_change c;
  c.what = catalog_change::kind::move_label;
  c.id = req.id;
  c.label = label;
  c.action = req.action;
  c.time_ms = now_ms;

  if (req.action == label_action::promote) {
    if (!req.version) {
      return status::invalid_argument("promote of label " + label + " of " + m->id.str() +
                                      " needs a version");
    }
    if (m->find(*req.version) == nullptr) return no_version(*m, *req.version);
    if (state != nullptr && state->current() == *req.version) {
      return status::failed_precondition("label " + label + " already points at version " +
                                         std::to_string(*req.version));
    }
    c.to = *req.version;
    return c;
  }

  // rollback
  if (state == nullptr) return no_label(*m, label);
  if (req.version) {
    if (m->find(*req.version) == nullptr) return no_version(*m, *req.version);
    if (state->current() == *req.version) {
      return status::failed_precondition("label " + label + " already points at version " +
                                         std::to_string(*req.version));
    }
    c.to = *req.version;
    return c;
  }
  if (state->stack.size() < 2) {
    return status::failed_precondition("label " + label + " of " + m->id.str() +
                                       " has no earlier version to roll back to");
  }
  c.to = state->stack[state->stack.size() - 2];
  return c;
}

const std::map<std::string, std::string>& catalog::tenant_policy(const std::string& tenant) const {
  static const std::map<std::string, std::string> none;
  auto it = tenant_policies_.find(tenant);
  return it == tenant_policies_.end() ? none : it->second;
}

void catalog::set_tenant_policy(const std::string& tenant,
                                std::map<std::string, std::string> settings) {
  if (settings.empty()) {
    tenant_policies_.erase(tenant);
  } else {
    tenant_policies_[tenant] = std::move(settings);
  }
}

status catalog::apply(const catalog_change& change) {
  // Validate everything first: a refused change must leave the catalog untouched.
  if (change.what == catalog_change::kind::join || change.what == catalog_change::kind::retire) {
    return status::ok();  // numbering bookkeeping: replicated_catalog keeps it
  }
  if (change.what == catalog_change::kind::policy && change.id.model.empty()) {
    if (!is_valid_id_part(change.id.tenant)) {
      return status::invalid_argument("invalid tenant '" + change.id.tenant.substr(0, 80) + "'");
    }
    try {
      set_tenant_policy(change.id.tenant, change.policy);
    } catch (const std::bad_alloc&) {
      return out_of_memory(change.id);
    }
    return status::ok();
  }
  if (!is_valid_id_part(change.id.tenant) || !is_valid_id_part(change.id.model)) {
    return status::invalid_argument("invalid model id '" + change.id.str().substr(0, 140) + "'");
  }
  auto it = lower(change.id);
  if (it != models_.end() && (*it)->id != change.id) it = models_.end();  // not there

  if (change.what == catalog_change::kind::join || change.what == catalog_change::kind::grant) {
    return status::ok();  // numbering bookkeeping: replicated_catalog keeps it
  }

  if (change.what == catalog_change::kind::add_snapshot) {
    const uint32_t v = change.snapshot.version;
    if (v == 0) {
      return status::failed_precondition("snapshot version 0 of " + change.id.str() +
                                         " is not a version (they start at 1)");
    }
    if (it != models_.end() && (*it)->find(v) != nullptr) {
      return status::failed_precondition("snapshot version " + std::to_string(v) + " of " +
                                         change.id.str() + " exists already");
    }
    const bool is_new = it == models_.end();
    try {
      if (is_new) {
        auto entry = std::make_shared<model_entry>();
        entry->id = change.id;
        it = models_.insert(lower(change.id), std::move(entry));
      }
      auto& snaps = writable(*it).snapshots;
      auto at = std::upper_bound(snaps.begin(), snaps.end(), v,
                                 [](uint32_t x, const snapshot_info& s) { return x < s.version; });
      snaps.insert(at, change.snapshot);
    } catch (const std::bad_alloc&) {
      if (is_new && it != models_.end()) models_.erase(it);
      return out_of_memory(change.id);
    }
    return status::ok();
  }

  if (change.what == catalog_change::kind::hold || change.what == catalog_change::kind::release) {
    if (it == models_.end()) return no_model(change.id);
    if (change.origin.empty()) {
      return status::invalid_argument("a hold or release without the holder's node id");
    }
    if ((*it)->find(change.to) == nullptr) return no_version(**it, change.to);
    try {
      auto& snaps = writable(*it).snapshots;
      auto s = std::find_if(snaps.begin(), snaps.end(),
                            [&](const snapshot_info& x) { return x.version == change.to; });
      if (change.what == catalog_change::kind::hold) {
        s->holders.insert(change.origin);
      } else {
        s->holders.erase(change.origin);
      }
    } catch (const std::bad_alloc&) {
      return out_of_memory(change.id);
    }
    return status::ok();
  }

  if (change.what == catalog_change::kind::validation_set ||
      change.what == catalog_change::kind::validation_report ||
      change.what == catalog_change::kind::policy || change.what == catalog_change::kind::trial) {
    if (it == models_.end()) return no_model(change.id);
    return apply_model_setting(change, *it);
  }

  if (change.what != catalog_change::kind::move_label) {
    return status::invalid_argument("unknown catalog change kind " +
                                    std::to_string(static_cast<int>(change.what)));
  }
  if (it == models_.end()) return no_model(change.id);
  const model_entry& before = **it;
  if (!is_valid_label(change.label)) return bad_label(change.label);
  if (before.find(change.to) == nullptr) return no_version(before, change.to);
  if (change.action == label_action::rollback && before.labels.count(change.label) == 0) {
    return no_label(before, change.label);
  }
  if (change.action != label_action::promote && change.action != label_action::rollback) {
    return status::invalid_argument("unknown label action " +
                                    std::to_string(static_cast<int>(change.action)));
  }
  if (change.expect_from != 0) {
    // An automatic rollback of a move that something else already undid: nothing to do.
    auto at = before.labels.find(change.label);
    if (at == before.labels.end() || at->second.current() != change.expect_from) {
      return status::ok();
    }
  }
  model_entry* writable_entry = nullptr;
  try {
    writable_entry = &writable(*it);
  } catch (const std::bad_alloc&) {
    return out_of_memory(change.id);
  }
  model_entry& m = *writable_entry;
  auto lit = m.labels.find(change.label);

  const bool is_new = lit == m.labels.end();
  try {
    if (is_new) lit = m.labels.emplace(change.label, label_state{}).first;
    // Reserve first so the moves below cannot throw halfway.
    lit->second.stack.reserve(lit->second.stack.size() + 1);
    lit->second.history.reserve(lit->second.history.size() + 1);
  } catch (const std::bad_alloc&) {
    if (is_new && lit != m.labels.end()) m.labels.erase(lit);
    return out_of_memory(change.id);
  }
  label_state& state = lit->second;
  label_move move;
  move.from = state.current();
  move.to = change.to;
  move.action = change.action;
  move.time_ms = change.time_ms;
  try {
    move.reason = change.reason;
    move.by = change.by;
  } catch (const std::bad_alloc&) {
    return out_of_memory(change.id);
  }
  move.forced = change.forced;
  move.automatic = change.automatic;
  if (change.label == default_label) m.trial = trial_info{};  // production moved: trials end
  if (change.action == label_action::promote) {
    state.stack.push_back(change.to);
  } else {
    size_t pos = find_on_stack(state.stack, change.to);
    if (pos != static_cast<size_t>(-1)) {
      state.stack.resize(pos + 1);
    } else {
      state.stack.push_back(change.to);
    }
  }
  state.history.push_back(move);
  return status::ok();
}

status catalog::apply_model_setting(const catalog_change& change, slot& entry) {
  using k = catalog_change::kind;
  if (change.what == k::trial && change.trial.what != trial_info::mode::none &&
      entry->find(change.trial.version) == nullptr) {
    return no_version(*entry, change.trial.version);
  }
  if (change.what == k::validation_set && change.validation_set.sha256.empty()) {
    return status::invalid_argument("a validation set without its sha256");
  }
  try {
    model_entry& m = writable(entry);
    switch (change.what) {
      case k::validation_set: {
        uint32_t number = 0;
        for (const auto& s : m.validation_sets) {
          if (s.sha256 == change.validation_set.sha256) number = s.number;
        }
        if (number == 0) {
          validation_set_info set = change.validation_set;
          set.number = static_cast<uint32_t>(m.validation_sets.size() + 1);
          number = set.number;
          m.validation_sets.push_back(std::move(set));
        }
        // Like a label: a set used before is gone back to (popped down to), a new one pushed.
        size_t pos = find_on_stack(m.validation_stack, number);
        if (pos != static_cast<size_t>(-1)) {
          m.validation_stack.resize(pos + 1);
        } else {
          m.validation_stack.push_back(number);
        }
        break;
      }
      case k::validation_report:
        m.reports.push_back(change.report);
        if (m.reports.size() > model_entry::max_reports) m.reports.erase(m.reports.begin());
        break;
      case k::policy:
        m.policy = change.policy;
        break;
      default:
        m.trial = change.trial;
        break;
    }
  } catch (const std::bad_alloc&) {
    return out_of_memory(change.id);
  }
  return status::ok();
}

void catalog::put(model_entry entry) {
  auto it = lower(entry.id);
  const bool there = it != models_.end() && (*it)->id == entry.id;
  if (entry.snapshots.empty()) {
    if (there) models_.erase(it);
    return;
  }
  auto fresh = std::make_shared<model_entry>(std::move(entry));
  if (there) {
    *it = std::move(fresh);
  } else {
    models_.insert(it, std::move(fresh));
  }
}

result<uint32_t> catalog::resolve(const model_id& id, std::optional<uint32_t> version,
                                  const std::string& label) const {
  const model_entry* m = find(id);
  if (m == nullptr) return no_model(id);
  return m->resolve(version, label);
}

result<uint32_t> model_entry::resolve(std::optional<uint32_t> version,
                                      const std::string& label) const {
  if (version) {
    if (find(*version) == nullptr) return no_version(*this, *version);
    return *version;
  }
  if (label.empty()) {  // the common case: no string built
    auto it = labels.find(default_label);
    if (it == labels.end() || it->second.stack.empty()) return no_label(*this, default_label);
    return it->second.current();
  }
  auto it = labels.find(label);
  if (it == labels.end() || it->second.stack.empty()) return no_label(*this, label);
  return it->second.current();
}

}  // namespace shoal
