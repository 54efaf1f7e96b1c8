#include "actors/catalog_actor.hpp"

#include <chrono>

#include "shoal/catalog_sync.hpp"
#include "shoal/log.hpp"
#include "shoal/model.hpp"

namespace shoal {
namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const char* action_name(label_action a) { return a == label_action::promote ? "promote" : "rollback"; }

using self_ptr = catalog_actor::stateful_pointer<catalog_state>;

// Gives every reader the replica's current view: the serving board (front ends) and listeners.
void publish(self_ptr self) {
  auto& st = self->state;
  auto copy = std::make_shared<const catalog>(st.replica->view());
  if (st.board) st.board->publish_catalog(copy);
  for (auto& listener : st.listeners) self->send(listener, catalog_atom_v, copy);
}

void send_sync(self_ptr self, const std::string& address, const catalog_sync_msg& m) {
  if (!self->state.members) return;
  self->send(self->state.members, replicate_atom_v, address, encode_catalog_sync(m));
}

// Pushes changes made here to every live peer at once (anti-entropy covers whoever misses it).
void push_to_peers(self_ptr self, const std::vector<catalog_change>& changes) {
  auto& st = self->state;
  if (st.peers.empty()) return;
  catalog_sync_msg m;
  m.from_address = st.self_address;
  m.changes = changes;
  for (const auto& peer : st.peers) send_sync(self, peer, m);
}

// Takes in a peer's sync message: the changes that are next of their origin are journaled (one
// fsync) and then added; a change out of order is a gap (our answer asks for what is missing).
void receive_sync(self_ptr self, const catalog_sync_msg& m) {
  auto& st = self->state;
  const int64_t now = now_ms();
  std::vector<catalog_change> fresh;
  catalog_frontier taken;  // seqs accepted from this message so far, per origin
  bool gap = false;
  for (const auto& c : m.changes) {
    auto shape = st.replica->check_shape(c);
    if (!shape.is_ok()) {
      log_warn("refused a catalog change from " + m.from_address + ": " + shape.message());
      continue;
    }
    uint64_t held = st.replica->frontier().count(c.origin) ? st.replica->frontier().at(c.origin) : 0;
    if (taken.count(c.origin)) held = taken[c.origin];
    if (c.seq <= held) continue;  // held already
    if (c.seq != held + 1) {
      gap = true;
      continue;
    }
    taken[c.origin] = c.seq;
    fresh.push_back(c);
  }
  if (!fresh.empty()) {
    status durable = st.journal->append(fresh);
    if (!durable.is_ok()) {
      // Not added: the peer's next anti-entropy round offers them again.
      log_error("cannot journal " + std::to_string(fresh.size()) + " catalog changes from " +
                m.from_address + ": " + durable.to_string());
      return;
    }
    for (const auto& c : fresh) {
      auto added = st.replica->add(c, now);
      if (!added.is_ok()) {
        log_error("catalog add failed after journal write: " + added.error().to_string());
        continue;
      }
      if (c.what == catalog_change::kind::move_label) {
        log_info("label moved model=" + c.id.str() + " label=" + c.label + " to=" +
                 std::to_string(c.to) + " action=" + action_name(c.action) + " origin=" + c.origin);
      } else if (c.what == catalog_change::kind::add_snapshot) {
        log_info("snapshot known model=" + c.id.str() + " version=" +
                 std::to_string(c.snapshot.version) + " sha256=" + c.snapshot.sha256 +
                 " origin=" + c.origin);
      }
    }
    for (const auto& line : st.replica->conflicts()) log_warn("catalog conflict: " + line);
    publish(self);
  }
  if (auto reply = sync_reply(*st.replica, m, gap, st.self_address)) {
    send_sync(self, m.from_address, *reply);
  }
}

// Stamps `changes` as this node's, makes them durable, adds them to the replica and tells the
// listeners. Nothing is added when the journal write fails; an add failure after a durable
// write would be a bug in stamp/add.
status commit(self_ptr self, std::vector<catalog_change> changes) {
  auto& st = self->state;
  const int64_t now = now_ms();
  changes = st.replica->stamp(std::move(changes), now);
  SHOAL_RETURN_IF_ERROR(st.journal->append(changes));
  for (const auto& change : changes) {
    auto added = st.replica->add(change, now);
    if (!added.is_ok()) {
      log_error("catalog add failed after journal write: " + added.error().to_string());
      return status::internal("catalog add failed: " + added.error().message());
    }
  }
  publish(self);
  push_to_peers(self, changes);
  return status::ok();
}

}  // namespace

catalog_actor::behavior_type catalog_behavior(catalog_actor::stateful_pointer<catalog_state> self,
                                              catalog_storage storage) {
  self->state.store = std::move(storage.store);
  self->state.journal = std::move(storage.journal);
  self->state.replica = std::move(storage.replica);
  self->state.max_push_bytes = storage.max_push_bytes;
  self->state.board = std::move(storage.board);
  return {
      [=](push_atom, push_request& req) -> caf::result<push_result> {
        auto& st = self->state;
        if (!req.label.empty() && !is_valid_label(req.label)) {
          return to_error(status::invalid_argument("invalid label '" + req.label +
                                                   "': must match [a-z0-9][a-z0-9_.-]{0,63}"));
        }
        if (req.bytes.size() > st.max_push_bytes) {
          return to_error(status::too_large("snapshot of " + std::to_string(req.bytes.size()) +
                                            " bytes is over the limit of " +
                                            std::to_string(st.max_push_bytes) + " bytes"));
        }
        // Refuse what we could not serve before anything is stored or numbered.
        auto loaded = load_model(req.bytes);
        if (!loaded) {
          log_warn("push refused model=" + req.id.str() + ": " + loaded.error().message());
          return to_error(status::invalid_argument("refused " + req.id.str() + ": " +
                                                   loaded.error().message()));
        }
        auto sha = st.store->put(req.bytes);
        if (!sha) {
          log_error("snapshot store failed: " + sha.error().to_string());
          return to_error(sha.error());
        }
        snapshot_info snap;
        snap.sha256 = *sha;
        snap.created_ms = now_ms();
        snap.size_bytes = req.bytes.size();
        snap.format = (*loaded)->format();
        snap.note = req.note;
        auto changes = st.replica->view().plan_push(req.id, snap, req.label, snap.created_ms);
        // We hold the bytes now (the store has them): say so in the catalog.
        catalog_change held;
        held.what = catalog_change::kind::hold;
        held.id = req.id;
        held.to = changes.front().snapshot.version;
        changes.push_back(held);
        auto committed = commit(self, changes);
        if (!committed.is_ok()) {
          log_error("push failed model=" + req.id.str() + ": " + committed.to_string());
          return to_error(committed);
        }
        push_result out;
        out.sha256 = *sha;
        for (const auto& c : changes) {
          if (c.what == catalog_change::kind::add_snapshot) {
            out.version = c.snapshot.version;
            log_info("snapshot stored model=" + req.id.str() + " version=" +
                     std::to_string(c.snapshot.version) + " sha256=" + *sha +
                     " size=" + std::to_string(req.bytes.size()));
          } else if (c.what == catalog_change::kind::move_label) {
            out.labels.push_back(c.label);
            log_info("label moved model=" + req.id.str() + " label=" + c.label + " to=" +
                     std::to_string(c.to) + " action=push");
          }
        }
        return out;
      },
      [=](label_atom, label_request& req) -> caf::result<label_result> {
        auto& st = self->state;
        if (req.label.empty()) req.label = default_label;
        auto planned = st.replica->view().plan_label(req, now_ms());
        if (!planned) return to_error(planned.error());
        uint32_t from = 0;
        if (const auto* entry = st.replica->view().find(req.id)) {
          auto it = entry->labels.find(req.label);
          if (it != entry->labels.end()) from = it->second.current();
        }
        auto committed = commit(self, {*planned});
        if (!committed.is_ok()) {
          log_error("label move failed model=" + req.id.str() + ": " + committed.to_string());
          return to_error(committed);
        }
        log_info("label moved model=" + req.id.str() + " label=" + req.label + " from=" +
                 std::to_string(from) + " to=" + std::to_string(planned->to) +
                 " action=" + action_name(req.action));
        return label_result{req.label, from, planned->to};
      },
      [=](load_atom, const model_id& id, uint32_t version) -> caf::result<model_ptr> {
        auto& st = self->state;
        const auto* entry = st.replica->view().find(id);
        const snapshot_info* snap = entry ? entry->find(version) : nullptr;
        if (snap == nullptr) {
          return to_error(status::not_found("model " + id.str() + " has no version " +
                                            std::to_string(version)));
        }
        auto bytes = st.store->get(snap->sha256);
        if (!bytes && bytes.error().code() == status_code::not_found) {
          // In the catalog (replicated from the node it was pushed to) but not stored here.
          return to_error(status::unavailable(
              "snapshot " + id.str() + " version " + std::to_string(version) +
              " is not stored on this node: it was pushed through another node and its bytes "
              "have not been copied here"));
        }
        if (!bytes) {
          log_error("cannot read snapshot model=" + id.str() + " version=" +
                    std::to_string(version) + ": " + bytes.error().to_string());
          return to_error(bytes.error());
        }
        auto loaded = load_model(*bytes);
        if (!loaded) {
          log_error("cannot load snapshot model=" + id.str() + " version=" +
                    std::to_string(version) + ": " + loaded.error().to_string());
          return to_error(status::corruption("stored snapshot " + id.str() + " version " +
                                             std::to_string(version) + " does not load: " +
                                             loaded.error().message()));
        }
        log_info("model loaded model=" + id.str() + " version=" + std::to_string(version) +
                 " bytes=" + std::to_string((*loaded)->memory_bytes()));
        return model_ptr(std::move(*loaded));
      },
      [=](subscribe_atom, catalog_listener listener) {
        self->state.listeners.push_back(std::move(listener));
      },
      [=](cluster_atom, membership_actor members, std::string& self_address) {
        self->state.members = std::move(members);
        self->state.self_address = std::move(self_address);
        self->send(self, tick_atom_v);
      },
      [=](tick_atom) {
        // Anti-entropy: refresh who is alive, then offer our frontier to one of them.
        auto& st = self->state;
        self->request(st.members, std::chrono::seconds(1), members_atom_v)
            .then(
                [=](const std::vector<member_view>& views) {
                  auto& s = self->state;
                  s.peers.clear();
                  for (const auto& v : views) {
                    if (v.is_self) continue;
                    if (v.entry.status == member_status::alive ||
                        v.entry.status == member_status::suspect) {
                      s.peers.push_back(v.entry.cluster_address);
                    }
                  }
                  if (s.peers.empty()) return;
                  std::uniform_int_distribution<size_t> pick(0, s.peers.size() - 1);
                  catalog_sync_msg hello;
                  hello.from_address = s.self_address;
                  hello.frontier = s.replica->frontier();
                  send_sync(self, s.peers[pick(s.rng)], hello);
                },
                [=](const caf::error&) {});
        self->delayed_send(self, st.sync_interval, tick_atom_v);
      },
      [=](sync_atom, const std::string& payload) {
        auto m = decode_catalog_sync(payload);
        if (!m) {
          auto& st = self->state;
          int64_t now = now_ms();
          if (now - st.last_refusal_log_ms > 10000) {
            st.last_refusal_log_ms = now;
            log_warn("refused a catalog sync message: " + m.error().message());
          }
          return;
        }
        receive_sync(self, *m);
      },
  };
}

}  // namespace shoal
