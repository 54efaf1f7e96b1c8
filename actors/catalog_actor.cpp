// catalog_actor: the durable writer of the catalog (catalog_actor.hpp). Over 500 lines: besides
// pushes and label moves it still holds version voting (number_version), the answers to peers'
// requests, and issue 18's control plane (validation runs and the gate, validation sets,
// policies, trials, the watch); placement moved to cluster/placement.hpp, the gate's and the
// watch's rules live in serving/validation.hpp. Voting and the validation runs are the next
// planners to pull out.
#include "actors/catalog_actor.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "actors/model_loader.hpp"
#include "shoal/base/host_memory.hpp"
#include "shoal/base/log.hpp"
#include "shoal/cluster/catalog_sync.hpp"
#include "shoal/cluster/placement.hpp"
#include "shoal/serving/model.hpp"
#include "shoal/serving/validation.hpp"
#include "shoal/store/registry.hpp"
#include "shoal/wire/api_codec.hpp"

namespace shoal {
namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const char* action_name(label_action a) { return a == label_action::promote ? "promote" : "rollback"; }

using self_ptr = catalog_actor::stateful_pointer<catalog_state>;

void flush_commits(self_ptr self);

// The sha256s of every snapshot this node holds in `view` (bytes that must not be removed).
std::set<std::string> held_here(const catalog& view, const std::string& self_id) {
  std::set<std::string> held;
  for (const model_entry* m : view.models()) {
    for (const auto& s : m->snapshots) {
      if (s.holders.count(self_id) > 0) held.insert(s.sha256);
    }
  }
  return held;
}

// Gives every reader the replica's current view: the serving board (front ends) and listeners.
// `pushes_only`: the change was a group commit of pushes, whose usage the push handler adds to
// the tenants' cached usage itself; any other change may have changed any tenant's.
void publish(self_ptr self, bool pushes_only = false) {
  auto& st = self->state;
  if (!pushes_only) st.usage_cache.clear();
  auto copy = std::make_shared<const catalog>(st.replica->view());
  if (st.board) st.board->publish_catalog(copy);
  for (auto& listener : st.listeners) self->send(listener, catalog_atom_v, copy);
}

void send_sync(self_ptr self, const std::string& address, const catalog_sync_msg& m) {
  if (!self->state.members) return;
  self->send(self->state.members, replicate_atom_v, address, encode_catalog_sync(m));
}

void update_live(self_ptr self, const std::vector<member_view>& views);

// Refreshes who is live from the membership actor, then runs `next` (with the view we had, if
// membership does not answer). The view kept between ticks is up to a second old.
void with_fresh_view(self_ptr self, std::function<void()> next) {
  self->request(self->state.members, std::chrono::seconds(1), members_atom_v)
      .then(
          [=](const std::vector<member_view>& views) {
            update_live(self, views);
            self->state.view_at_ms = steady_now_ms();
            next();
          },
          [=](const caf::error&) { next(); });
}

// Pushes changes made here to every live peer at once: to the peers we know now (so a copy or
// vote sent right after reaches them after the change, on the same link), then to any a fresh
// member view adds (the one kept between ticks is up to a second old).
void push_to_peers(self_ptr self, const std::vector<catalog_change>& changes) {
  auto& st = self->state;
  if (!st.members) return;
  auto m = std::make_shared<catalog_sync_msg>();
  m->from_address = st.self_address;
  m->changes = changes;
  auto told = std::make_shared<std::set<std::string>>(st.peers.begin(), st.peers.end());
  for (const auto& peer : *told) send_sync(self, peer, *m);
  with_fresh_view(self, [=] {
    for (const auto& peer : self->state.peers) {
      if (told->count(peer) == 0) send_sync(self, peer, *m);
    }
  });
}

// Takes in a peer's sync message: the changes that are next of their origin are journaled (one
// fsync) and then added; a change out of order is a gap (our answer asks for what is missing).
void receive_sync(self_ptr self, const catalog_sync_msg& m) {
  auto& st = self->state;
  // A peer we did not know of yet (our member view is refreshed once a second): push to it too.
  if (m.from_address != st.self_address &&
      std::find(st.peers.begin(), st.peers.end(), m.from_address) == st.peers.end()) {
    st.peers.push_back(m.from_address);
  }
  const int64_t now = now_ms();
  std::vector<catalog_change> fresh;
  catalog_frontier taken;  // seqs accepted from this message so far, per origin
  bool gap = false;
  for (const auto& c : m.changes) {
    auto shape = st.replica->check_shape(c);
    if (!shape.is_ok()) {
      log_warn("refused a catalog change", {{"from", m.from_address}, {"error", shape.message()}});
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
    flush_commits(self);  // ours first, in the order they were made
    status durable = st.journal->append(fresh);
    if (!durable.is_ok()) {
      // Not added: the peer's next anti-entropy round offers them again.
      log_error("cannot journal catalog changes",
                {{"changes", fresh.size()}, {"from", m.from_address}, {"error", durable.to_string()}});
      return;
    }
    for (const auto& c : fresh) {
      auto added = st.replica->add(c, now);
      if (!added.is_ok()) {
        log_error("catalog add failed after journal write", {{"error", added.error().to_string()}});
        continue;
      }
      if (c.what == catalog_change::kind::move_label) {
        log_info("label moved", {{"model", c.id.str()},
                                 {"label", c.label},
                                 {"to", c.to},
                                 {"action", action_name(c.action)},
                                 {"origin", c.origin}});
      } else if (c.what == catalog_change::kind::add_snapshot) {
        log_info("snapshot known", {{"model", c.id.str()},
                                    {"version", c.snapshot.version},
                                    {"sha256", c.snapshot.sha256},
                                    {"origin", c.origin}});
      }
    }
    for (const auto& line : st.replica->conflicts()) log_warn("catalog conflict", {{"detail", line}});
    publish(self);
  }
  if (auto reply = sync_reply(*st.replica, m, gap, st.self_address)) {
    send_sync(self, m.from_address, *reply);
  }
}

// Stamps `changes` as this node's, makes them durable, adds them to the replica and tells the
// listeners. Nothing is added when the journal write fails; an add failure after a durable
// write would be a bug in stamp/add. Returns one status per batch (all of them fail or none).
status commit_now(self_ptr self, std::vector<catalog_change> changes, bool pushes_only = false) {
  auto& st = self->state;
  const int64_t now = now_ms();
  changes = st.replica->stamp(std::move(changes), now);
  SHOAL_RETURN_IF_ERROR(st.journal->append(changes));
  status out = status::ok();
  for (const auto& change : changes) {
    auto added = st.replica->add(change, now);
    if (!added.is_ok()) {
      log_error("catalog add failed after journal write", {{"error", added.error().to_string()}});
      out = status::internal("catalog add failed: " + added.error().message());
    }
  }
  publish(self, pushes_only);
  push_to_peers(self, changes);
  return out;
}

// The group commit: every change queued since the last one, in one journal record (one
// fdatasync), one publish and one push to the peers; then each waiter hears how it went.
void flush_commits(self_ptr self) {
  auto& st = self->state;
  if (st.queued.empty()) return;
  std::vector<queued_commit> batch;
  batch.swap(st.queued);
  st.queued_models.clear();
  // The pushed files first: durable and in place before any record names them.
  std::vector<snapshot_store::staged> files;
  files.swap(st.staged);
  status done = st.store->store_staged(files);
  if (done.is_ok()) {
    std::vector<catalog_change> all;
    for (auto& q : batch) {
      for (auto& c : q.changes) all.push_back(c);
    }
    done = commit_now(self, std::move(all), /*pushes_only=*/true);
  } else {
    log_error("cannot sync the snapshot store", {{"error", done.to_string()}});
  }
  for (auto& q : batch) q.done(done);
}

// Commits `changes` with the next group commit (after storing `file`, a pushed snapshot's
// staged bytes, when given) and then calls `done` (on this actor).
void commit_soon(self_ptr self, std::vector<catalog_change> changes,
                 std::function<void(status)> done,
                 std::optional<snapshot_store::staged> file = std::nullopt) {
  auto& st = self->state;
  if (file) {
    st.staged.push_back(std::move(*file));
  }
  for (const auto& c : changes) st.queued_models.insert(c.id);
  st.queued.push_back({std::move(changes), std::move(done)});
  if (!st.flush_sent) {
    // After the messages already waiting (writers' answers, more pushes): they join this batch.
    st.flush_sent = true;
    self->send(self, flush_atom_v);
  }
}

// Commits `changes` now, after everything queued (so the journal keeps the order they were
// made in).
status commit(self_ptr self, std::vector<catalog_change> changes) {
  flush_commits(self);
  return commit_now(self, std::move(changes));
}

// Takes in the membership view: who is live (alive or suspect), and the peers' addresses.
void update_live(self_ptr self, const std::vector<member_view>& views) {
  auto& s = self->state;
  s.peers.clear();
  s.live.clear();
  for (const auto& v : views) {
    if (v.entry.status != member_status::alive && v.entry.status != member_status::suspect) {
      continue;
    }
    s.live[v.entry.id] = v.entry.cluster_address;
    s.names[v.entry.id] = v.entry.name;
    if (!v.is_self) s.peers.push_back(v.entry.cluster_address);
  }
}

// Copies the bytes of `snap` here from a live holder, checks them against the sha256, stores
// them and records the hold. One copy per sha256 at a time.
void fetch_copy(self_ptr self, const model_id& id, const snapshot_info& snap,
                std::function<void(bool copied)> after = nullptr) {
  auto& st = self->state;
  if (st.fetching.count(snap.sha256) > 0) {
    if (after) after(false);
    return;
  }
  // A random live holder: if one serves a damaged copy (refused by the hash check below), the
  // next round likely asks another.
  const auto sources = copy_sources(snap, st.live, st.replica->self_id());
  if (sources.empty()) {  // no live holder: nothing to copy from now
    if (after) after(false);
    return;
  }
  std::uniform_int_distribution<size_t> pick(0, sources.size() - 1);
  const std::string from = sources[pick(st.rng)];
  st.fetching.insert(snap.sha256);
  peer_request req;
  req.what = peer_request::kind::fetch;
  req.sha256 = snap.sha256;
  const std::string sha = snap.sha256;
  const uint32_t version = snap.version;
  self->request(st.members, std::chrono::seconds(60), peer_atom_v, from, encode_peer_request(req))
      .then(
          [=](const std::string& payload) {
            auto& s = self->state;
            s.fetching.erase(sha);
            auto reply = decode_peer_reply(payload);
            if (!reply || !reply->error.empty()) {
              log_warn("cannot copy a snapshot",
                       {{"model", id.str()},
                        {"version", version},
                        {"from", from},
                        {"error", reply ? reply->error : reply.error().message()}});
              if (after) after(false);
              return;
            }
            if (sha256_hex(reply->snapshot) != sha) {
              log_error("a snapshot copy does not match its sha256: dropped",
                        {{"model", id.str()}, {"version", version}, {"from", from}});
              if (after) after(false);
              return;
            }
            auto stored = s.store->put(reply->snapshot);
            if (!stored) {
              log_error("cannot store a snapshot copy",
                        {{"model", id.str()}, {"error", stored.error().to_string()}});
              if (after) after(false);
              return;
            }
            auto done = commit(self, {hold_change(id, version)});
            if (done.is_ok()) {
              log_info(after ? "snapshot copied for this node's traffic" : "snapshot copied",
                       {{"model", id.str()},
                        {"version", version},
                        {"from", from},
                        {"bytes", reply->snapshot.size()}});
            }
            if (after) after(done.is_ok());
          },
          [=](const caf::error& err) {
            self->state.fetching.erase(sha);
            log_warn("cannot copy a snapshot", {{"model", id.str()},
                                                {"version", version},
                                                {"from", from},
                                                {"error", self->system().render(err)}});
            if (after) after(false);
          });
}

// Publishes how many copies placement wants here that are missing, and for how long the oldest
// has been (the replication lag in /metrics).
void note_missing(self_ptr self, const std::set<std::string>& missing) {
  auto& st = self->state;
  const int64_t now = steady_now_ms();
  for (auto it = st.missing_since.begin(); it != st.missing_since.end();) {
    it = missing.count(it->first) > 0 ? std::next(it) : st.missing_since.erase(it);
  }
  int64_t oldest = now;
  for (const auto& sha : missing) {
    oldest = std::min(oldest, st.missing_since.emplace(sha, now).first->second);
  }
  if (st.metrics) {
    st.metrics->set_replication(missing.size(), static_cast<double>(now - oldest) / 1000.0);
  }
}

// Makes this node hold what placement says it should (cluster/placement.hpp): copies missing
// versions (at most 4 at a time), records holds for bytes it has but never recorded, and lets go
// of copies placement no longer names here.
void place(self_ptr self) {
  auto& st = self->state;
  const std::set<snapshot_key> kept =
      st.follower ? st.follower->held_keys() : std::set<snapshot_key>{};
  copy_plan plan = plan_copies(st.replica->view(), st.replica->self_id(), st.live,
                               st.replication_factor,
                               [&](const std::string& sha) { return st.store->contains(sha); },
                               kept);
  for (const auto& f : plan.fetches) {
    if (st.fetching.size() >= 4) break;
    fetch_copy(self, f.id, f.snap);
  }
  note_missing(self, plan.missing);
  if (plan.changes.empty()) return;
  if (!commit(self, std::move(plan.changes)).is_ok()) return;
  // What this node holds now (the commit also took the pushes queued before it, whose bytes
  // may be the same as a released copy's).
  const std::set<std::string> held = held_here(st.replica->view(), st.replica->self_id());
  for (const auto& sha : plan.remove) {
    if (held.count(sha) > 0) continue;
    status removed = st.store->remove(sha);
    if (removed.is_ok()) {
      log_info("snapshot copy released: the nodes placement names hold it", {{"sha256", sha}});
    } else {
      log_warn("cannot remove a released copy", {{"error", removed.message()}});
    }
  }
}

// Traffic-following copies (serving/traffic.hpp): takes the front doors' forward counts, copies
// here the snapshots forwarded often enough (when the model memory budget has room), and
// releases the copies whose traffic stopped. Runs every tick; the decisions are the follower's.
void follow_traffic(self_ptr self) {
  auto& st = self->state;
  if (!st.traffic || !st.follower || !st.members) return;
  traffic_follower& f = *st.follower;
  const int64_t now = steady_now_ms();
  f.observe(st.traffic->take(), now);
  const serving_view* view = st.board ? &st.board->read(st.board_cache) : nullptr;
  if (view != nullptr) {
    for (const auto& key : f.held_keys()) {
      if (const resident_model* r = view->loaded->find(key)) {
        f.used(key, r->last_used_ms.load(std::memory_order_relaxed));
      }
    }
  }
  const auto wanted = f.to_copy(now);
  const auto idle = f.to_drop(now);
  if (st.metrics) st.metrics->traffic_copies.store(f.copies());
  if (wanted.empty() && idle.empty()) return;  // most ticks: no catalog copy needed
  const catalog cat = st.replica->view();
  const std::string& self_id = st.replica->self_id();
  auto placed_here = [&](const model_id& id) {
    auto want = placement_for(id, st.live, self_id, st.replication_factor);
    return std::find(want.begin(), want.end(), self_id) != want.end();
  };
  for (const auto& key : wanted) {
    const model_entry* entry = cat.find(key.first);
    const snapshot_info* snap = entry != nullptr ? entry->find(key.second) : nullptr;
    if (snap == nullptr || snap->holders.count(self_id) > 0 || placed_here(key.first)) {
      f.failed(key);  // gone, or already here: nothing to follow
      continue;
    }
    const uint64_t loaded = view != nullptr ? view->loaded->bytes() : 0;
    if (st.model_memory_budget != UINT64_MAX &&
        loaded + snap->size_bytes > st.model_memory_budget - st.model_memory_budget / 10) {
      f.failed(key);
      if (now - st.last_budget_log_ms >= 60000) {
        st.last_budget_log_ms = now;
        log_info("not taking a traffic copy: loaded models fill the model memory budget; "
                 "requests keep going to the holders",
                 {{"model", key.first.str()}, {"version", key.second},
                  {"loaded", bytes_text(loaded)}, {"budget", bytes_text(st.model_memory_budget)}});
      }
      continue;
    }
    auto taken = [self, key](bool copied) {
      auto& s = self->state;
      if (!s.follower) return;
      if (copied) {
        s.follower->held(key, steady_now_ms());
        if (s.metrics) s.metrics->traffic_copies_taken.fetch_add(1, std::memory_order_relaxed);
      } else {
        s.follower->failed(key);
      }
      if (s.metrics) s.metrics->traffic_copies.store(s.follower->copies());
    };
    if (st.store->contains(snap->sha256)) {
      // The same bytes are here already (another version or model with them): record the hold.
      taken(commit(self, {hold_change(key.first, key.second)}).is_ok());
      continue;
    }
    fetch_copy(self, key.first, *snap, std::move(taken));
  }
  std::vector<catalog_change> releases;
  std::set<std::string> shas;
  for (const auto& key : idle) {
    const model_entry* entry = cat.find(key.first);
    const snapshot_info* snap = entry != nullptr ? entry->find(key.second) : nullptr;
    if (snap == nullptr || snap->holders.count(self_id) == 0) continue;
    if (placed_here(key.first)) continue;  // placement names us now: a copy like any other
    releases.push_back(release_change(key.first, key.second));
    shas.insert(snap->sha256);
    log_info("traffic copy released: no request for it within follow_idle_s",
             {{"model", key.first.str()}, {"version", key.second}});
  }
  if (releases.empty()) return;
  if (!commit(self, std::move(releases)).is_ok()) return;
  if (st.metrics) {
    st.metrics->traffic_copies_dropped.fetch_add(shas.size(), std::memory_order_relaxed);
  }
  // Delete the bytes unless another version this node keeps has the same ones.
  for (const auto& sha : held_here(st.replica->view(), self_id)) shas.erase(sha);
  for (const auto& sha : shas) {
    status removed = st.store->remove(sha);
    if (!removed.is_ok()) log_warn("cannot remove a released copy", {{"error", removed.message()}});
  }
}

// Sends the pushed bytes to the members placement names for `id` and delivers `out` once each
// answered, with the copies that are durable (ours included) and why any are missing.
void send_copies(self_ptr self, caf::typed_response_promise<push_result> rp, push_result out,
                 const model_id& id, std::shared_ptr<const std::string> payload) {
  auto& st = self->state;
  if (auto shortfall = replication_shortfall(st.live.size(), st.replication_factor);
      !shortfall.empty()) {
    out.replication_note = std::move(shortfall);
  }
  const auto targets = push_targets(id, st.live, st.replica->self_id(), st.replication_factor);
  if (targets.empty()) {
    rp.deliver(out);
    return;
  }
  struct tally {
    push_result out;
    size_t pending = 0;
  };
  auto t = std::make_shared<tally>();
  t->out = std::move(out);
  t->pending = targets.size();
  const std::string what = id.str() + " version " + std::to_string(t->out.version);
  for (const auto& target : targets) {
    auto finish = [=](const std::string& failure) mutable {
      if (failure.empty()) {
        ++t->out.copies;
      } else {
        log_warn("snapshot copy failed", {{"snapshot", what}, {"to", target}, {"error", failure}});
        t->out.replication_note = "the copy to " + target + " failed (" + failure +
                                  "); it is retried in the background";
      }
      if (--t->pending == 0) rp.deliver(t->out);
    };
    self->request(st.members, std::chrono::seconds(30), peer_atom_v, target, *payload)
        .then(
            [=](const std::string& reply) mutable {
              auto r = decode_peer_reply(reply);
              finish(!r ? r.error().message() : r->error);
            },
            [=](const caf::error& err) mutable { finish(self->system().render(err)); });
  }
}

// A push on its way: the bytes are stored here; next the version number, then the catalog.
struct push_job {
  model_id id;
  std::string label;
  snapshot_info snap;
  snapshot_bytes bytes;
  std::optional<snapshot_store::staged> file;  // staged by a writer, until the commit takes it
  bool new_model = false;  // counted in the tenant's pending usage as a new model
  uint32_t next_try = 0;  // the lowest number to ask for (after a refusal)
  int rounds = 0;
};

// The push left the pipeline (committed or failed): its bytes and model no longer count as
// pending for its tenant; once committed they count in its cached usage instead.
void end_pending(self_ptr self, const push_job& job, bool committed = false) {
  auto& st = self->state;
  if (committed) {
    if (auto cached = st.usage_cache.find(job.id.tenant); cached != st.usage_cache.end()) {
      cached->second.stored_bytes += job.snap.size_bytes;
      if (job.new_model) ++cached->second.models;
    }
  }
  auto it = st.pending.find(job.id.tenant);
  if (it == st.pending.end()) return;
  it->second.bytes -= std::min<uint64_t>(it->second.bytes, job.snap.size_bytes);
  if (job.new_model) {
    auto m = it->second.new_models.find(job.id.model);
    if (m != it->second.new_models.end() && --m->second == 0) it->second.new_models.erase(m);
  }
  if (it->second.bytes == 0 && it->second.new_models.empty()) st.pending.erase(it);
}

// Answers a push that failed (and takes it out of the pipeline).
void fail_push(self_ptr self, push_job& job, caf::typed_response_promise<push_result> rp,
               const status& why) {
  if (job.file) self->state.store->discard(*job.file);
  job.file.reset();
  end_pending(self, job);
  rp.deliver(to_error(why));
}


// Our own vote: grants `number` of `id` to `sha` unless we gave it to other bytes. Returns
// ok when granted (now or before).
status vote(self_ptr self, const model_id& id, uint32_t number, const std::string& sha) {
  auto& st = self->state;
  flush_commits(self);  // grants still queued count
  SHOAL_RETURN_IF_ERROR(st.replica->may_grant(id, number, sha));
  return commit(self, {grant_change(id, number, sha)});
}

// Registers this node as a voter (once per data dir).
void join_voters(self_ptr self) {
  auto& st = self->state;
  if (st.replica->voters().count(st.replica->self_id()) > 0) return;
  (void)commit(self, {join_change(st.node_name)});
}

void finish_push(self_ptr self, std::shared_ptr<push_job> job, uint32_t number,
                 caf::typed_response_promise<push_result> rp, bool with_grant);
void ask_peers(self_ptr self, std::shared_ptr<push_job> job,
               caf::typed_response_promise<push_result> rp, uint32_t number, size_t need,
               size_t voters, const std::vector<std::string>& others);

status no_majority(const model_id& id, size_t answered, size_t voters, size_t need) {
  return status::unavailable(
      "cannot number a new version of " + id.str() + ": " + std::to_string(answered) +
      " of the " + std::to_string(voters) +
      " nodes that number versions answered, and a majority (" + std::to_string(need) +
      ") must agree so that no two nodes give one number to different snapshots. Is the "
      "network split, or are nodes down? Promote and rollback still work.");
}

// Gets a version number for the pushed bytes granted by a majority of the voters (see
// replicated_catalog.hpp, "Version numbers"), then finishes the push. A number another
// snapshot got is skipped; without a majority of voters reachable the push fails and says so.
void number_version(self_ptr self, std::shared_ptr<push_job> job,
                    caf::typed_response_promise<push_result> rp) {
  auto& st = self->state;
  join_voters(self);
  auto ask = [=]() mutable {
    auto& s = self->state;
    if (++job->rounds > 8) {
      fail_push(self, *job, rp,
                status::unavailable("could not get a version number for " + job->id.str() +
                                    " after 8 tries: other pushes to it keep taking them; try "
                                    "again"));
      return;
    }
    // Plan on everything queued for this model before (group commit, see the header).
    if (s.queued_models.count(job->id) > 0) flush_commits(self);
    const uint32_t number = std::max(job->next_try, s.replica->next_number(job->id));
    const auto voters = s.replica->voters();
    const size_t need = voters.size() / 2 + 1;
    if (status mine = s.replica->may_grant(job->id, number, job->snap.sha256); !mine.is_ok()) {
      job->next_try = number + 1;
      number_version(self, job, rp);
      return;
    }
    std::vector<std::string> others;
    for (const auto& v : voters) {
      if (v == s.replica->self_id()) continue;
      auto it = s.live.find(v);
      if (it != s.live.end()) others.push_back(it->second);
    }
    if (need <= 1) {
      // Our vote is the majority: the grant goes into the same commit as the snapshot.
      finish_push(self, job, number, rp, /*with_grant=*/true);
      return;
    }
    if (others.size() + 1 < need) {
      fail_push(self, *job, rp, no_majority(job->id, others.size() + 1, voters.size(), need));
      return;
    }
    // Our vote is durable before we ask the others (a grant is a promise).
    commit_soon(self, {grant_change(job->id, number, job->snap.sha256)},
                [=](status granted) mutable {
                  if (!granted.is_ok()) {
                    fail_push(self, *job, rp, granted);
                    return;
                  }
                  ask_peers(self, job, rp, number, need, voters.size(), others);
                });
  };
  if (!st.members) {
    ask();
    return;
  }
  // A fresh view of who is reachable: a push may come right after the node started. One taken
  // within the last 200 ms is fresh enough (a bulk push asks for one per batch, not per file).
  if (st.view_at_ms >= 0 && steady_now_ms() - st.view_at_ms < 200) {
    ask();
    return;
  }
  with_fresh_view(self, ask);
}

// Asks the other voters to grant `number` to the job's bytes; finishes the push with a
// majority, tries the next number when one was taken, fails without a majority.
void ask_peers(self_ptr self, std::shared_ptr<push_job> job,
               caf::typed_response_promise<push_result> rp, uint32_t number, size_t need,
               size_t voters, const std::vector<std::string>& others) {
  auto& s = self->state;
struct tally {
    size_t granted = 1;   // ours
    size_t answered = 1;  // ours
    size_t pending = 0;
    bool taken = false;
    bool done = false;
  };
  auto t = std::make_shared<tally>();
  t->pending = others.size();
  peer_request reserve;
  reserve.what = peer_request::kind::reserve;
  reserve.id = job->id;
  reserve.version = number;
  reserve.sha256 = job->snap.sha256;
  const std::string payload = encode_peer_request(reserve);
  for (const auto& address : others) {
    auto answered = [=](bool granted, bool taken, bool replied) mutable {
      if (t->done) return;
      t->granted += granted;
      t->answered += replied;
      t->taken = t->taken || taken;
      --t->pending;
      if (t->granted >= need) {
        t->done = true;
        finish_push(self, job, number, rp, /*with_grant=*/false);
      } else if (t->pending == 0) {
        t->done = true;
        if (t->taken) {
          job->next_try = number + 1;
          number_version(self, job, rp);
        } else {
          fail_push(self, *job, rp, no_majority(job->id, t->answered, voters, need));
        }
      }
    };
    self->request(s.members, std::chrono::seconds(5), peer_atom_v, address, payload)
        .then(
            [=](const std::string& bytes) mutable {
              auto r = decode_peer_reply(bytes);
              bool ok = r && r->error.empty();
              answered(ok, r && !ok && r->error.rfind("taken:", 0) == 0, true);
            },
            [=](const caf::error&) mutable { answered(false, false, false); });
  }
}

// Queues the push's changes (the grant too when our vote alone is the majority) for the next
// group commit; once that is durable, answers the push (after copies to the members placement
// names, in a cluster).
void finish_push(self_ptr self, std::shared_ptr<push_job> job, uint32_t number,
                 caf::typed_response_promise<push_result> rp, bool with_grant) {
  auto& st = self->state;
  if (st.queued_models.count(job->id) > 0) flush_commits(self);  // plan on what came before
  auto changes =
      st.replica->view().plan_push(job->id, job->snap, job->label, job->snap.created_ms, number);
  // We hold the bytes (the store has them): say so in the catalog.
  changes.push_back(hold_change(job->id, number));
  std::vector<catalog_change> batch;
  if (with_grant) batch.push_back(grant_change(job->id, number, job->snap.sha256));
  batch.insert(batch.end(), changes.begin(), changes.end());
  auto file = std::move(job->file);
  job->file.reset();
  commit_soon(self, std::move(batch), [=](status committed) mutable {
    end_pending(self, *job, committed.is_ok());
    if (!committed.is_ok()) {
      log_error("push failed", {{"model", job->id.str()}, {"error", committed.to_string()}});
      rp.deliver(to_error(committed));
      return;
    }
    auto& s = self->state;
    push_result out;
    out.sha256 = job->snap.sha256;
    out.version = number;
    for (const auto& c : changes) {
      if (c.what == catalog_change::kind::add_snapshot) {
        log_info("snapshot stored", {{"model", job->id.str()},
                                     {"version", number},
                                     {"sha256", job->snap.sha256},
                                     {"size", job->snap.size_bytes}});
      } else if (c.what == catalog_change::kind::move_label) {
        out.labels.push_back(c.label);
        log_info("label moved",
                 {{"model", job->id.str()}, {"label", c.label}, {"to", c.to}, {"action", "push"}});
      }
    }
    // Copies on the members placement names (we hold one already).
    out.copies = 1;
    out.replication_factor = static_cast<uint32_t>(s.replication_factor);
    if (s.one_node && s.live.size() <= 1) {
      // A node started without seeds, still alone: a one-node cluster by design (it said so at
      // start), so one copy is all there is to have; no note on every push.
      out.replication_factor = 1;
    }
    if (!s.members) {
      rp.deliver(out);
      return;
    }
    peer_request copy;
    copy.what = peer_request::kind::store;
    copy.id = job->id;
    copy.version = number;
    copy.sha256 = job->snap.sha256;
    copy.bytes = *job->bytes;
    job->bytes.reset();
    auto payload = std::make_shared<const std::string>(encode_peer_request(copy));
    send_copies(self, rp, out, job->id, payload);
  }, std::move(file));
}

// Answers a peer's request about snapshot bytes.
std::string answer_peer(self_ptr self, const std::string& payload) {
  auto& st = self->state;
  peer_reply out;
  auto req = decode_peer_request(payload);
  if (!req) {
    out.error = req.error().message();
    return encode_peer_reply(out);
  }
  if (req->what == peer_request::kind::reserve) {
    join_voters(self);
    status granted = vote(self, req->id, req->version, req->sha256);
    if (!granted.is_ok()) out.error = "taken: " + granted.message();
    return encode_peer_reply(out);
  }
  if (req->what == peer_request::kind::fetch) {
    auto bytes = st.store->get(req->sha256);
    if (bytes) {
      out.snapshot = std::move(*bytes);
    } else {
      out.error = bytes.error().message();
    }
    return encode_peer_reply(out);
  }
  // store: check, keep, record.
  if (sha256_hex(req->bytes) != req->sha256) {
    out.error = "the bytes do not match sha256 " + req->sha256 + " (damaged in transit?)";
    return encode_peer_reply(out);
  }
  auto stored = st.store->put(req->bytes);
  if (!stored) {
    out.error = stored.error().message();
    return encode_peer_reply(out);
  }
  const model_entry* m = st.replica->view().find(req->id);
  const snapshot_info* snap = m ? m->find(req->version) : nullptr;
  if (snap != nullptr && snap->sha256 == req->sha256 &&
      snap->holders.count(st.replica->self_id()) == 0) {
    auto done = commit(self, {hold_change(req->id, req->version)});
    if (!done.is_ok()) out.error = done.message();
  }
  // (A version the catalog does not know yet gets its hold from place() once it does.)
  return encode_peer_reply(out);
}

// This node's copy of (id, version) was found damaged: never serve or spread it. Drop the file
// and our holds of it, so requests go to other holders and placement fetches a good copy.
// Checked again first: a loader's report may be late, and a good copy may have arrived since.
void drop_damaged(self_ptr self, const model_id& id, uint32_t version) {
  auto& st = self->state;
  const auto* entry = st.replica->view().find(id);
  const snapshot_info* snap = entry ? entry->find(version) : nullptr;
  if (snap == nullptr) return;
  auto bytes = st.store->get(snap->sha256);
  if (bytes || bytes.error().code() != status_code::corruption) return;
  log_error("damaged snapshot: removing it, a good copy will be fetched",
            {{"model", id.str()}, {"version", version}, {"error", bytes.error().message()}});
  status removed = st.store->remove(snap->sha256);
  if (!removed.is_ok()) log_error("cannot remove the damaged copy", {{"error", removed.message()}});
  const std::string sha = snap->sha256;
  std::vector<catalog_change> releases;
  for (const model_entry* m : st.replica->view().models()) {
    for (const auto& s : m->snapshots) {
      if (s.sha256 == sha && s.holders.count(st.replica->self_id()) > 0) {
        releases.push_back(release_change(m->id, s.version));
      }
    }
  }
  if (!releases.empty()) (void)commit(self, std::move(releases));
}

// One writer of the pool (see the header): checks pushed bytes as a load would (refusing what
// this node could not serve) and stores them durably; answers their SHA-256 and format.
caf::behavior snapshot_writer(caf::event_based_actor* self,
                              std::shared_ptr<snapshot_store> store) {
  (void)self;
  return {
      [=](push_atom, const snapshot_bytes& bytes)
          -> caf::result<std::string, std::string, std::string, std::string> {
        auto loaded = load_model(*bytes, load_use::check);
        if (!loaded) {
          return to_error(status::invalid_argument(loaded.error().message()));
        }
        auto staged = store->stage(*bytes);  // stored by the group commit (see the header)
        if (!staged) {
          log_error("snapshot store failed", {{"error", staged.error().to_string()}});
          return to_error(staged.error());
        }
        return {std::move(staged->sha256), (*loaded)->format(), std::move(staged->tmp_path),
                signature_json(**loaded)};
      },
  };
}

// ---- knowing whether a model is good: validation sets, the gate, policies, trials ----------

// Checks and runs a validation in a detached actor of its own (reading snapshots, loading two
// models and predicting every example is seconds of disk and CPU work): the set's examples read
// with the candidate's label prefix, then both versions over them. Answers the report's JSON.
caf::behavior validation_worker(caf::event_based_actor* self,
                                std::shared_ptr<snapshot_store> store) {
  (void)self;
  return {
      [=](load_atom, const std::string& candidate_sha, uint32_t candidate,
          const std::string& baseline_sha, uint32_t baseline,
          const std::string& set_sha) -> caf::result<std::string> {
        auto set_bytes = store->get(set_sha);
        if (!set_bytes) return to_error(set_bytes.error());
        auto load = [&](const std::string& sha, uint32_t version) -> result<model_ptr> {
          auto bytes = store->get(sha);
          if (!bytes) return bytes.error();
          auto m = load_model(*bytes, load_use::check);
          if (!m) {
            return status::internal("version " + std::to_string(version) +
                                    " does not load: " + m.error().message());
          }
          return *m;
        };
        auto c = load(candidate_sha, candidate);
        if (!c) return to_error(c.error());
        if (!(*c)->takes_texts()) {
          return to_error(status::failed_precondition(
              "version " + std::to_string(candidate) + " is a tensor model: a validation set " +
              "holds labelled texts, so it cannot check it (--force moves the label anyway)"));
        }
        auto examples = parse_validation_set(*set_bytes, (*c)->label_prefix());
        if (!examples) return to_error(examples.error());
        std::optional<model_figures> base;
        if (baseline != 0) {
          auto b = load(baseline_sha, baseline);
          if (!b) return to_error(b.error());
          // A tensor model answers no texts: the candidate is then judged on its own figures.
          if ((*b)->takes_texts()) base = evaluate(**b, baseline, *examples);
        }
        return report_to_json(compare(evaluate(**c, candidate, *examples), std::move(base)));
      },
  };
}

// Makes sure the validation set `sha` is stored here, copying it from the live peers in turn
// when it is not (verified by its hash), then calls `next`.
void ensure_set_here(self_ptr self, const std::string& sha, std::vector<std::string> sources,
                     std::function<void(status)> next) {
  auto& st = self->state;
  if (st.store->contains(sha)) return next(status::ok());
  if (sources.empty()) {
    return next(status::unavailable("no live node has the validation set (sha256 " +
                                    sha.substr(0, 12) + ")"));
  }
  const std::string from = sources.back();
  sources.pop_back();
  peer_request req;
  req.what = peer_request::kind::fetch;
  req.sha256 = sha;
  auto again = [=](const std::string& why) {
    log_warn("cannot copy a validation set", {{"from", from}, {"error", why}});
    ensure_set_here(self, sha, sources, next);
  };
  self->request(st.members, std::chrono::seconds(60), peer_atom_v, from, encode_peer_request(req))
      .then(
          [=](const std::string& payload) {
            auto reply = decode_peer_reply(payload);
            if (!reply || !reply->error.empty()) {
              return again(reply ? reply->error : reply.error().message());
            }
            if (sha256_hex(reply->snapshot) != sha)
              return again("the copy does not match its sha256");
            auto stored = self->state.store->put(reply->snapshot);
            if (!stored) return next(stored.error());
            next(status::ok());
          },
          [=](const caf::error& err) { again(self->system().render(err)); });
}

// Runs the validation a peer (or this node) asked for, on this node: both versions must be
// stored here; the set is copied here first if needed. Calls `done` with the report's JSON.
void validate_here(self_ptr self, const peer_request& req,
                   std::function<void(result<std::string>)> done) {
  auto& st = self->state;
  const model_entry* m = st.replica->view().find(req.id);
  if (m == nullptr) return done(model_not_found(req.id));
  const snapshot_info* c = m->find(req.version);
  const snapshot_info* b = req.baseline != 0 ? m->find(req.baseline) : nullptr;
  if (c == nullptr) return done(m->check_version(req.version));
  if (req.baseline != 0 && b == nullptr) return done(m->check_version(req.baseline));
  for (const snapshot_info* s : {c, b}) {
    if (s != nullptr && !st.store->contains(s->sha256)) {
      return done(status::unavailable("version " + std::to_string(s->version) + " of " +
                                      req.id.str() + " is not stored on this node"));
    }
  }
  std::vector<std::string> sources = st.peers;
  const std::string candidate_sha = c->sha256;
  const std::string baseline_sha = b != nullptr ? b->sha256 : std::string();
  const peer_request r = req;
  ensure_set_here(self, req.sha256, sources, [=](status here) {
    if (!here) return done(here);
    auto worker = self->system().spawn<caf::detached>(validation_worker, self->state.store);
    self->request(worker, caf::infinite, load_atom_v, candidate_sha, r.version, baseline_sha,
                  r.baseline, r.sha256)
        .then(
            [=](std::string& report) {
              caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
              done(std::move(report));
            },
            [=](caf::error& err) {
              caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
              done(to_status(err, "the validation run"));
            });
  });
}

// The policy in force for every model of `tenant` that sets nothing itself: the defaults with
// the tenant's settings over them (settings are checked before they are committed; a bad one
// would be skipped whole).
model_policy tenant_policy_of(const catalog& view, const std::string& tenant) {
  auto p = apply_policy(model_policy{}, view.tenant_policy(tenant));
  return p ? *p : model_policy{};
}

// The model's policy in force: its tenant's, with the model's settings over it.
model_policy policy_of(const catalog& view, const model_entry& m) {
  const model_policy base = tenant_policy_of(view, m.id.tenant);
  auto p = apply_policy(base, m.policy);
  return p ? *p : base;
}

// Runs `candidate` (and `baseline`, when not 0) of `id` over the model's validation set in use,
// on a live node that holds both (this one when it does), and calls `done` with the report,
// judged by the model's policy.
void run_validation(self_ptr self, const model_id& id, uint32_t candidate, uint32_t baseline,
                    const std::string& by,
                    std::function<void(result<validation_report_info>)> done) {
  auto& st = self->state;
  const model_entry* m = st.replica->view().find(id);
  if (m == nullptr) return done(model_not_found(id));
  const validation_set_info* set = m->current_set();
  if (set == nullptr) {
    return done(status::failed_precondition(
        id.str() + " has no validation set: set one with 'shoal validation set " + id.str() +
        " FILE'"));
  }
  const snapshot_info* c = m->find(candidate);
  if (c == nullptr) return done(m->check_version(candidate));
  const snapshot_info* b = baseline != 0 ? m->find(baseline) : nullptr;
  // Where: a live holder of both, this node first.
  const std::string& me = st.replica->self_id();
  auto holds_both = [&](const std::string& node) {
    return c->holders.count(node) > 0 && (b == nullptr || b->holders.count(node) > 0);
  };
  std::string target;  // "" = this node
  bool found = holds_both(me);
  if (!found) {
    for (const auto& node : c->holders) {
      if (node != me && st.live.count(node) > 0 && holds_both(node)) {
        target = node;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    return done(status::unavailable(
        "no live node holds both version " + std::to_string(candidate) +
        (baseline != 0 ? " and version " + std::to_string(baseline) : std::string()) + " of " +
        id.str() + " yet; try again once the copies are placed (shoal snapshot list " + id.str() +
        " shows where each is held)"));
  }
  validation_report_info info;
  info.candidate = candidate;
  info.baseline = baseline;
  info.set_number = set->number;
  info.set_sha256 = set->sha256;
  info.by = by;
  const std::string ran_on_id = target.empty() ? me : target;
  info.ran_on = st.names.count(ran_on_id) ? st.names.at(ran_on_id) : ran_on_id.substr(0, 8);
  auto finish = [=](result<std::string> json) mutable {
    if (!json) return done(json.error());
    auto report = report_from_json(*json);
    if (!report)
      return done(
          status::internal("the validation report does not parse: " + report.error().message()));
    const model_entry* now = self->state.replica->view().find(id);
    gate_verdict verdict = judge(
        *report, now != nullptr ? policy_of(self->state.replica->view(), *now) : model_policy{});
    info.report_json = std::move(*json);
    info.passed = verdict.passed;
    info.verdict = verdict.text();
    info.time_ms = now_ms();
    done(std::move(info));
  };
  peer_request req;
  req.what = peer_request::kind::validate;
  req.id = id;
  req.version = candidate;
  req.baseline = baseline;
  req.sha256 = set->sha256;
  if (target.empty()) return validate_here(self, req, finish);
  self->request(st.members, std::chrono::seconds(300), peer_atom_v, st.live.at(target),
                encode_peer_request(req))
      .then(
          [=](const std::string& payload) mutable {
            auto reply = decode_peer_reply(payload);
            if (!reply) return finish(reply.error());
            if (!reply->error.empty()) {
              return finish(status::unavailable("the validation on " + info.ran_on +
                                                " failed: " + reply->error));
            }
            finish(std::move(reply->response));
          },
          [=](const caf::error& err) mutable {
            finish(to_status(err, "the validation on " + info.ran_on));
          });
}

catalog_change report_change(const model_id& id, validation_report_info report) {
  catalog_change c;
  c.what = catalog_change::kind::validation_report;
  c.id = id;
  c.report = std::move(report);
  return c;
}

// Warms `version` of `id` on its live holders (a warm-up inference each, see the header), then
// calls `next` on this actor. Failures are logged: the move goes on (a cold load, not an error).
void warm_then(self_ptr self, const model_id& id, uint32_t version, std::function<void()> next) {
  auto& st = self->state;
  const model_entry* entry = st.replica->view().find(id);
  const snapshot_info* snap = entry != nullptr ? entry->find(version) : nullptr;
  std::vector<std::string> warm_at;  // cluster addresses; "" is this node
  if (snap != nullptr) {
    for (const auto& holder : snap->holders) {
      if (holder == st.replica->self_id()) {
        if (st.router) warm_at.push_back("");
      } else if (st.members && st.live.count(holder) > 0) {
        warm_at.push_back(st.live.at(holder));
      }
    }
  }
  if (warm_at.empty()) return next();
  const infer_request warm = warm_up_request(id, version, snap->signature_json);
  peer_request forward;
  forward.what = peer_request::kind::infer;
  forward.bytes = encode_request(0, api_call{warm});
  const std::string payload = encode_peer_request(forward);
  auto pending = std::make_shared<size_t>(warm_at.size());
  auto done = [=](const std::string& where, const std::string& failure) {
    if (!failure.empty()) {
      log_warn("warming a snapshot failed (moving on anyway)",
               {{"model", id.str()},
                {"version", version},
                {"on", where.empty() ? std::string("this node") : where},
                {"error", failure}});
    }
    if (--*pending == 0) next();
  };
  const auto warm_timeout = std::chrono::seconds(5);
  for (const auto& where : warm_at) {
    auto on_reply = [=](const std::string& bytes) {
      auto reply = decode_peer_reply(bytes);
      std::string failure = !reply ? reply.error().message() : reply->error;
      if (failure.empty()) {
        auto r = decode_infer_response(reply->response);
        if (!r) failure = r.error().message();
      }
      done(where, failure);
    };
    auto on_error = [=](const caf::error& err) { done(where, self->system().render(err)); };
    if (where.empty()) {
      self->request(st.router, warm_timeout, peer_atom_v, payload).then(on_reply, on_error);
    } else {
      self->request(st.members, warm_timeout, peer_atom_v, where, payload).then(on_reply, on_error);
    }
  }
}

// A promote or rollback. A promote of production with a validation set in use runs the gate
// first (run_validation): a candidate worse than the current version by more than the policy
// allows is refused (the report is kept) unless forced; rollbacks are never gated (they are the
// way back). Then the target is warmed on its holders and the move committed with the report.
void move_label(self_ptr self, label_request req, caf::typed_response_promise<label_result> rp) {
  auto& st = self->state;
  if (req.label.empty()) req.label = default_label;
  auto planned = st.replica->view().plan_label(req, now_ms());
  if (!planned) {
    rp.deliver(to_error(planned.error()));
    return;
  }
  const model_entry* entry = st.replica->view().find(req.id);
  uint32_t from = 0;
  auto it = entry->labels.find(req.label);
  if (it != entry->labels.end()) from = it->second.current();
  catalog_change change = *planned;
  change.by = author_text(req.user, req.by);
  auto proceed = [=](catalog_change move, std::vector<catalog_change> before,
                     std::optional<validation_report_info> report, std::string note) {
    warm_then(self, move.id, move.to, [=]() mutable {
      before.push_back(move);
      // A new production is watched (the previous one predicts a share of its requests in
      // shadow) for the policy's window; an automatic rollback may follow (watch_models).
      bool watched = false;
      const model_entry* now_entry = self->state.replica->view().find(move.id);
      if (move.label == default_label && move.action == label_action::promote && from != 0 &&
          now_entry != nullptr && self->state.trials) {
        const model_policy policy = policy_of(self->state.replica->view(), *now_entry);
        if (policy.watch_ms > 0) {
          catalog_change watch;
          watch.what = catalog_change::kind::trial;
          watch.id = move.id;
          watch.trial.what = trial_info::mode::watch;
          watch.trial.version = from;
          watch.trial.watched = move.to;
          watch.trial.share_ppm = static_cast<uint32_t>(std::lround(policy.watch_share * 1e6));
          watch.trial.started_ms = now_ms();
          watch.trial.until_ms = watch.trial.started_ms + policy.watch_ms;
          before.push_back(watch);
          watched = true;
        }
      }
      auto committed = commit(self, before);
      if (!committed.is_ok()) {
        log_error("label move failed",
                  {{"model", move.id.str()}, {"error", committed.to_string()}});
        rp.deliver(to_error(committed));
        return;
      }
      // The previous version predicts in shadow during the watch: keep it in memory.
      if (watched) warm_then(self, move.id, from, [] {});
      log_info("label moved", {{"model", move.id.str()},
                               {"label", move.label},
                               {"from", from},
                               {"to", move.to},
                               {"action", action_name(move.action)},
                               {"by", move.by},
                               {"forced", move.forced ? "yes" : "no"}});
      rp.deliver(label_result{move.label, from, move.to, report, note});
    });
  };
  const bool gated = req.action == label_action::promote && req.label == default_label;
  if (!gated) return proceed(change, {}, std::nullopt, "");
  if (entry->current_set() == nullptr) {
    return proceed(change, {}, std::nullopt, "no validation set: nothing was checked");
  }
  const bool force = req.force;
  run_validation(
      self, req.id, change.to, from, change.by, [=](result<validation_report_info> report) mutable {
        if (!report) {
          if (!force) {
            rp.deliver(to_error(
                status(report.error().code(),
                       "the validation gate could not run: " + report.error().message() +
                           " (the label did not move; --force moves it without a check)")));
            return;
          }
          change.forced = true;
          change.reason = "forced without validation: " + report.error().message();
          return proceed(change, {}, std::nullopt, change.reason);
        }
        if (!report->passed && !force) {
          const std::string verdict = report->verdict;
          status kept = commit(self, {report_change(change.id, *report)});
          if (!kept) log_error("cannot keep a validation report", {{"error", kept.message()}});
          log_warn("promote refused by the validation gate",
                   {{"model", change.id.str()}, {"to", change.to}, {"why", verdict}});
          rp.deliver(to_error(status::failed_precondition(
              "validation refused " + change.id.str() + " version " + std::to_string(change.to) +
              " for production: " + verdict + " (production stays at " + std::to_string(from) +
              "; --force moves it anyway)")));
          return;
        }
        std::string note;
        if (!report->passed) {
          report->forced = true;
          change.forced = true;
          change.reason = "forced past the validation gate: " + report->verdict;
          note = change.reason;
        }
        auto kept = report_change(change.id, *report);
        proceed(change, {kept}, *report, note);
      });
}

// Copies a validation set's bytes to the model's placement members (Store with version 0:
// bytes only), so the nodes that will run validations hold it. Best effort: a node without it
// copies it from a peer when it runs one.
void spread_set(self_ptr self, const model_id& id, const std::string& sha,
                std::shared_ptr<const std::string> bytes) {
  auto& st = self->state;
  if (!st.members) return;
  for (const auto& address :
       push_targets(id, st.live, st.replica->self_id(), st.replication_factor)) {
    peer_request req;
    req.what = peer_request::kind::store;
    req.id = id;
    req.version = 0;
    req.sha256 = sha;
    req.bytes = *bytes;
    self->request(st.members, std::chrono::seconds(60), peer_atom_v, address,
                  encode_peer_request(req))
        .then(
            [=](const std::string& payload) {
              auto reply = decode_peer_reply(payload);
              std::string why = !reply ? reply.error().message() : reply->error;
              if (!why.empty())
                log_warn("cannot copy a validation set", {{"to", address}, {"error", why}});
            },
            [=](const caf::error& err) {
              log_warn("cannot copy a validation set",
                       {{"to", address}, {"error", self->system().render(err)}});
            });
  }
}

// The watch (once a tick): for each model whose production is watched, what this node saw of it
// against the previous version, judged by the model's policy; a rule broken at every check for
// watch_confirm_ms rolls production back by itself, once (the move expects the watched version,
// so a second node deciding at the same time changes nothing).
constexpr int64_t watch_confirm_ms = 2000;

void watch_models(self_ptr self) {
  auto& st = self->state;
  if (!st.trials) return;
  const int64_t now = now_ms();
  std::set<model_id> watched;
  // The trials in force, for /metrics: production compared with the trial version.
  std::set<std::tuple<model_id, uint32_t, uint32_t>> active;
  for (const model_entry* m : st.replica->view().models()) {
    const trial_info& t = m->trial;
    if (t.what == trial_info::mode::shadow ||
        (t.what == trial_info::mode::watch && now < t.until_ms)) {
      auto prod = m->labels.find(default_label);
      if (prod != m->labels.end()) active.emplace(m->id, prod->second.current(), t.version);
    }
    if (t.what != trial_info::mode::watch || now >= t.until_ms) continue;
    auto prod = m->labels.find(default_label);
    if (prod == m->labels.end() || prod->second.current() != t.watched) continue;
    watched.insert(m->id);
    const trial_figures f = st.trials->read(m->id, t.watched, t.version);
    watch_figures w;
    w.requests = f.requests;
    w.errors = f.errors;
    w.p99_ms = f.p99_served_ms;
    w.compared = f.compared;
    w.agreed = f.agreed;
    w.mean_top1_new = f.mean_top1_served;
    w.mean_top1_old = f.mean_top1_shadow;
    w.p99_ms_old = f.p99_shadow_ms;
    auto reason = judge_watch(w, policy_of(st.replica->view(), *m));
    if (!reason) {
      st.watch_broken_since.erase(m->id);
      continue;
    }
    const int64_t since = st.watch_broken_since.emplace(m->id, steady_now_ms()).first->second;
    if (steady_now_ms() - since < watch_confirm_ms) continue;
    st.watch_broken_since.erase(m->id);
    label_request back;
    back.id = m->id;
    back.label = default_label;
    back.action = label_action::rollback;
    back.version = t.version;
    auto planned = st.replica->view().plan_label(back, now);
    if (!planned) {
      log_warn("automatic rollback not possible",
               {{"model", m->id.str()}, {"why", *reason}, {"error", planned.error().message()}});
      continue;
    }
    planned->automatic = true;
    planned->expect_from = t.watched;
    planned->reason = *reason;
    planned->by = "auto";
    const model_id id = m->id;
    const uint32_t from = t.watched, to = t.version;
    status done = commit(self, {*planned});
    if (!done) {
      log_error("automatic rollback failed", {{"model", id.str()}, {"error", done.message()}});
      continue;
    }
    if (st.metrics) st.metrics->auto_rollbacks.fetch_add(1, std::memory_order_relaxed);
    log_warn("automatic rollback", {{"model", id.str()},
                                    {"label", default_label},
                                    {"from", from},
                                    {"to", to},
                                    {"why", *reason}});
    st.trials->set_active(std::move(active));
    return;  // the view changed under the loop; the others are judged at the next tick
  }
  st.trials->set_active(std::move(active));
  for (auto it = st.watch_broken_since.begin(); it != st.watch_broken_since.end();) {
    it = watched.count(it->first) > 0 ? std::next(it) : st.watch_broken_since.erase(it);
  }
}

// Finds voter `node` (a name, an id, or 8 or more leading characters of an id): its id, or why
// there is none.
result<std::string> find_voter(const replicated_catalog& replica,
                               const std::map<std::string, std::string>& names,
                               const std::string& node) {
  auto name_of = [&](const std::string& id) {
    auto it = names.find(id);
    return it != names.end() ? it->second : replica.voter_name(id);
  };
  auto named = [&](const std::string& id, const std::string& name) {
    return id == node || (!name.empty() && name == node) ||
           (node.size() >= 8 && id.compare(0, node.size(), node) == 0);
  };
  std::vector<std::string> found;
  std::vector<std::string> shown;  // the voters, for the error: by name
  for (const auto& id : replica.voters()) {
    const std::string name = name_of(id);
    shown.push_back(name.empty() ? id.substr(0, 8) : name);
    if (named(id, name)) found.push_back(id);
  }
  if (found.size() == 1) return found.front();
  if (found.size() > 1) {
    return status::invalid_argument("'" + node + "' names " + std::to_string(found.size()) +
                                    " nodes: give more of the id (shoal cluster status --json)");
  }
  for (const auto& id : replica.retired()) {
    if (named(id, name_of(id))) return status::failed_precondition(node + " is forgotten already");
  }
  std::sort(shown.begin(), shown.end());
  std::string known;
  for (const auto& s : shown) known += (known.empty() ? "" : ", ") + s;
  return status::not_found("no node '" + node + "' numbers versions; those that do: " + known);
}

// `shoal cluster forget NODE`: after checking, with a fresh member view, that NODE is a voter,
// not this node, and neither alive nor suspect here, commits its retire: from then on the
// majority is counted without it, on every node as the change spreads.
void forget_voter(self_ptr self, forget_request req, caf::typed_response_promise<api_reply> rp) {
  auto decide = [=](const std::vector<member_view>& views) mutable -> void {
    auto& st = self->state;
    auto answer = [&rp](api_reply r) { rp.deliver(std::move(r)); };
    std::map<std::string, const member_view*> by_id;
    for (const auto& v : views) by_id[v.entry.id] = &v;
    auto id = find_voter(*st.replica, st.names, req.node);
    if (!id) return answer(api_reply(id.error()));
    std::string name = st.replica->voter_name(*id);
    if (auto it = st.names.find(*id); it != st.names.end()) name = it->second;
    const std::string shown = name.empty() ? id->substr(0, 8) : name;
    if (*id == st.replica->self_id()) {
      return answer(api_reply(status::failed_precondition(
          shown + " is this node: stop it, then forget it from another node")));
    }
    if (auto it = by_id.find(*id); it != by_id.end()) {
      const member& m = it->second->entry;
      if (m.status == member_status::alive || m.status == member_status::suspect) {
        return answer(api_reply(status::failed_precondition(
            shown + " is " + to_string(m.status) +
            " (this node hears it): forget is for a node that is gone for good. Stop it first; "
            "forget it once every node sees it dead (shoal cluster status)")));
      }
    }
    const std::string by = author_text(req.user, req.by);
    if (status ok = commit(self, {retire_change(*id, name, by, now_ms())}); !ok) {
      return answer(api_reply(ok));
    }
    const auto voters = static_cast<uint32_t>(st.replica->voters().size());
    log_info("node forgotten", {{"node", shown},
                                {"id", *id},
                                {"by", by},
                                {"voters", voters},
                                {"majority", voters / 2 + 1}});
    answer(api_reply(forget_result{*id, name, voters}));
  };
  if (!self->state.members) return decide({});
  self->request(self->state.members, std::chrono::seconds(1), members_atom_v)
      .then([=](const std::vector<member_view>& views) mutable { decide(views); },
            [=](const caf::error&) mutable {
              rp.deliver(api_reply(status::unavailable(
                  "the membership did not answer: cannot tell whether the node is alive")));
            });
}

void answer_registry_call(self_ptr self, api_call call, caf::typed_response_promise<api_reply> rp) {
  auto& st = self->state;
  auto fail = [&](status why) { rp.deliver(api_reply(std::move(why))); };
  if (auto* req = std::get_if<forget_request>(&call))
    return forget_voter(self, std::move(*req), rp);
  if (auto* req = std::get_if<validation_set_request>(&call)) {
    const model_entry* m = st.replica->view().find(req->id);
    if (m == nullptr) return fail(model_not_found(req->id));
    catalog_change c;
    c.what = catalog_change::kind::validation_set;
    c.id = req->id;
    if (req->bytes.empty()) {  // a rollback of the set
      uint32_t to = 0;
      if (req->to) {
        to = *req->to;
        if (to == 0 || to > m->validation_sets.size()) {
          return fail(
              status::not_found(req->id.str() + " has no validation set " + std::to_string(to) +
                                " (sets: " + std::to_string(m->validation_sets.size()) + ")"));
        }
      } else {
        if (m->validation_stack.size() < 2) {
          return fail(status::failed_precondition(req->id.str() +
                                                  " has no earlier validation set to go back to"));
        }
        to = m->validation_stack[m->validation_stack.size() - 2];
      }
      c.validation_set = m->validation_sets[to - 1];
    } else {
      auto examples = check_validation_set(req->bytes);
      if (!examples) return fail(examples.error());
      auto sha = st.store->put(req->bytes);
      if (!sha) return fail(sha.error());
      c.validation_set.sha256 = *sha;
      c.validation_set.size_bytes = req->bytes.size();
      c.validation_set.examples = *examples;
      c.validation_set.created_ms = now_ms();
      c.validation_set.user = author_text(req->user, req->by);
      spread_set(self, req->id, *sha, std::make_shared<const std::string>(std::move(req->bytes)));
    }
    if (status ok = commit(self, {c}); !ok) return fail(ok);
    const model_entry* now = st.replica->view().find(req->id);
    const validation_set_info* set = now != nullptr ? now->current_set() : nullptr;
    if (set == nullptr) return fail(status::internal("the validation set was not recorded"));
    log_info("validation set in use",
             {{"model", req->id.str()}, {"set", set->number}, {"examples", set->examples}});
    rp.deliver(api_reply(validation_set_result{set->number, set->examples, set->sha256}));
    return;
  }
  if (auto* req = std::get_if<validate_request>(&call)) {
    const model_entry* m = st.replica->view().find(req->id);
    if (m == nullptr) return fail(model_not_found(req->id));
    if (status ok = m->check_version(req->version); !ok) return fail(ok);
    const std::string label = req->label.empty() ? std::string(default_label) : req->label;
    auto it = m->labels.find(label);
    uint32_t baseline = it == m->labels.end() ? 0 : it->second.current();
    if (baseline == req->version) baseline = 0;  // compared with itself: the figures alone
    const model_id id = req->id;
    return run_validation(self, id, req->version, baseline, "",
                          [=](result<validation_report_info> report) mutable {
                            if (!report) {
                              rp.deliver(api_reply(report.error()));
                              return;
                            }
                            status kept = commit(self, {report_change(id, *report)});
                            if (!kept) {
                              rp.deliver(api_reply(kept));
                              return;
                            }
                            rp.deliver(api_reply(*report));
                          });
  }
  if (auto* req = std::get_if<policy_request>(&call)) {
    // A model's policy, or (no model name) its tenant's, over which model settings go.
    const catalog& view = st.replica->view();
    const bool tenant_wide = req->id.model.empty();
    const model_entry* m = tenant_wide ? nullptr : view.find(req->id);
    if (!tenant_wide && m == nullptr) return fail(model_not_found(req->id));
    const model_policy base = tenant_policy_of(view, req->id.tenant);
    if (req->settings.empty()) {
      rp.deliver(
          api_reply(policy_result{policy_settings(tenant_wide ? base : policy_of(view, *m))}));
      return;
    }
    std::map<std::string, std::string> merged =
        tenant_wide ? view.tenant_policy(req->id.tenant) : m->policy;
    for (const auto& [k, v] : req->settings) {
      if (v.empty()) {
        merged.erase(k);
      } else {
        merged[k] = v;
      }
    }
    auto checked = apply_policy(tenant_wide ? model_policy{} : base, merged);
    if (!checked) return fail(checked.error());
    catalog_change c;
    c.what = catalog_change::kind::policy;
    c.id = req->id;
    c.policy = merged;
    if (status ok = commit(self, {c}); !ok) return fail(ok);
    log_info("policy set",
             {{tenant_wide ? "tenant" : "model", tenant_wide ? req->id.tenant : req->id.str()},
              {"by", author_text(req->user, req->by)}});
    rp.deliver(api_reply(policy_result{policy_settings(*checked)}));
    return;
  }
  if (auto* req = std::get_if<trial_request>(&call)) {
    const model_entry* m = st.replica->view().find(req->id);
    if (m == nullptr) return fail(model_not_found(req->id));
    const char* mode = req->what == trial_info::mode::canary ? "canary" : "shadow";
    catalog_change c;
    c.what = catalog_change::kind::trial;
    c.id = req->id;
    if (req->stop) {
      if (m->trial.what != req->what) {
        return fail(status::failed_precondition(req->id.str() + " has no " + mode + " running"));
      }
      if (status ok = commit(self, {c}); !ok) return fail(ok);
      log_info("trial stopped", {{"model", req->id.str()}, {"mode", mode}});
      rp.deliver(api_reply(trial_info{}));
      return;
    }
    if (status ok = m->check_version(req->version); !ok) return fail(ok);
    if (m->trial.what == trial_info::mode::watch && now_ms() < m->trial.until_ms) {
      // A trial would end the watch, and with it the automatic rollback.
      return fail(status::failed_precondition(
          "production of " + req->id.str() + " (version " + std::to_string(m->trial.watched) +
          ") is watched after its promote for " +
          std::to_string((m->trial.until_ms - now_ms() + 999) / 1000) + " s more; start the " +
          mode + " after the watch (policy 'watch' sets its length)"));
    }
    auto prod = m->labels.find(default_label);
    if (prod != m->labels.end() && prod->second.current() == req->version) {
      return fail(status::failed_precondition("version " + std::to_string(req->version) + " of " +
                                              req->id.str() + " is production already"));
    }
    c.trial.what = req->what;
    c.trial.version = req->version;
    c.trial.share_ppm = req->share_ppm;
    c.trial.started_ms = now_ms();
    c.trial.by = author_text(req->user, req->by);
    const trial_info started = c.trial;
    return warm_then(self, req->id, req->version, [=]() mutable {
      if (status ok = commit(self, {c}); !ok) {
        rp.deliver(api_reply(ok));
        return;
      }
      log_info("trial started", {{"model", c.id.str()},
                                 {"mode", mode},
                                 {"version", started.version},
                                 {"share_ppm", started.share_ppm}});
      rp.deliver(api_reply(started));
    });
  }
  fail(status::internal("the catalog does not answer this call"));
}

}  // namespace

catalog_actor::behavior_type catalog_behavior(catalog_actor::stateful_pointer<catalog_state> self,
                                              catalog_storage storage) {
  self->state.store = std::move(storage.store);
  self->state.journal = std::move(storage.journal);
  self->state.replica = std::move(storage.replica);
  self->state.max_push_bytes = storage.max_push_bytes;
  self->state.limits = std::move(storage.limits);
  self->state.metrics = std::move(storage.metrics);
  self->state.board = std::move(storage.board);
  self->state.replication_factor = std::max<size_t>(1, storage.replication_factor);
  self->state.one_node = storage.one_node;
  // Writers: checking and storing a push is CPU (parsing) and disk (fsync) work; several at once
  // keep the cores and the disk busy (the file system commits concurrent fsyncs together).
  const size_t writers = std::clamp<size_t>(std::thread::hardware_concurrency(), 4, 16);
  for (size_t i = 0; i < writers; ++i) {
    self->state.writers.push_back(
        storage.detached_writers
            ? self->system().spawn<caf::detached>(snapshot_writer, self->state.store)
            : self->system().spawn(snapshot_writer, self->state.store));
  }
  // The writers go when the catalog actor goes (they hold no state of their own).
  self->attach_functor([writers = self->state.writers](const caf::error&) {
    for (const auto& w : writers) caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  });
  self->state.traffic = storage.traffic;
  self->state.trials = storage.trials;
  self->state.node_name = storage.node_name;
  self->state.model_memory_budget = storage.model_memory_budget;
  if (storage.traffic && storage.follow.enabled) self->state.follower.emplace(storage.follow);
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
        // The tenant's limits on models and stored bytes (as this node's replica knows them,
        // with the pushes still in the pipeline).
        auto cached = st.usage_cache.find(req.id.tenant);
        if (cached == st.usage_cache.end()) {
          cached = st.usage_cache
                       .emplace(req.id.tenant, st.replica->view().tenant_usage(req.id.tenant))
                       .first;
        }
        auto usage = cached->second;
        auto& pending = st.pending[req.id.tenant];
        usage.models += pending.new_models.size();
        usage.stored_bytes += pending.bytes;
        const bool new_model = st.replica->view().find(req.id) == nullptr &&
                               pending.new_models.count(req.id.model) == 0;
        if (status over = check_push_limits(st.limits.of(req.id.tenant), req.id.tenant,
                                            new_model, usage.models, usage.stored_bytes,
                                            req.bytes.size());
            !over) {
          if (pending.bytes == 0 && pending.new_models.empty()) st.pending.erase(req.id.tenant);
          log_warn("push refused", {{"model", req.id.str()}, {"error", over.message()}});
          return to_error(over);
        }
        auto job = std::make_shared<push_job>();
        job->id = req.id;
        job->label = req.label;
        job->snap.created_ms = now_ms();
        job->snap.size_bytes = req.bytes.size();
        job->snap.note = req.note;
        job->snap.user = std::move(req.user);
        job->snap.pushed_with = std::move(req.pushed_with);
        job->snap.tags = std::move(req.tags);
        job->snap.metrics_json = std::move(req.metrics_json);
        job->snap.source = std::move(req.source);
        if (status meta = check_snapshot_metadata(job->snap); !meta) {
          if (pending.bytes == 0 && pending.new_models.empty()) st.pending.erase(req.id.tenant);
          return to_error(
              status::invalid_argument("refused " + req.id.str() + ": " + meta.message()));
        }
        job->new_model = new_model;
        pending.bytes += job->snap.size_bytes;
        if (job->new_model) ++pending.new_models[req.id.model];
        job->bytes = std::make_shared<const std::string>(std::move(req.bytes));
        auto rp = self->make_response_promise<push_result>();
        // Checked (parsed as a load would) and stored by a writer, several pushes at once.
        auto& writer = st.writers[st.next_writer++ % st.writers.size()];
        self->request(writer, caf::infinite, push_atom_v, job->bytes)
            .then(
                [=](std::string& sha, std::string& format, std::string& tmp,
                    std::string& signature) mutable {
                  auto& s = self->state;
                  job->file = snapshot_store::staged{sha, std::move(tmp)};
                  // Stored already, but the copy may have been released and removed since:
                  // store it again (rare: the same bytes for two models, one moved away).
                  if (job->file->tmp_path.empty() && !s.store->contains(sha)) {
                    auto again = s.store->put(*job->bytes);
                    if (!again) {
                      log_error("snapshot store failed", {{"error", again.error().to_string()}});
                      fail_push(self, *job, rp, again.error());
                      return;
                    }
                  }
                  job->snap.sha256 = std::move(sha);
                  job->snap.format = std::move(format);
                  job->snap.signature_json = std::move(signature);
                  number_version(self, job, rp);
                },
                [=](caf::error& err) mutable {
                  status why = to_status(err, "storing the snapshot");
                  if (why.code() == status_code::invalid_argument) {
                    // Refuse what we could not serve: nothing was stored or numbered.
                    log_warn("push refused", {{"model", job->id.str()}, {"error", why.message()}});
                    why = status::invalid_argument("refused " + job->id.str() + ": " +
                                                   why.message());
                  }
                  fail_push(self, *job, rp, why);
                });
        return rp;
      },
      [=](label_atom, label_request& req) -> caf::result<label_result> {
        auto rp = self->make_response_promise<label_result>();
        move_label(self, std::move(req), rp);
        return rp;
      },
      [=](call_atom, api_call& call) -> caf::result<api_reply> {
        auto rp = self->make_response_promise<api_reply>();
        answer_registry_call(self, std::move(call), rp);
        return rp;
      },
      [=](load_atom, const model_id& id, uint32_t version) -> caf::result<model_ptr> {
        bool damaged = false;
        auto m = load_snapshot(*self->state.store, self->state.replica->view(), id, version,
                               damaged);
        if (damaged) drop_damaged(self, id, version);
        if (!m) return to_error(m.error());
        return std::move(*m);
      },
      [=](damaged_atom, const model_id& id, uint32_t version) { drop_damaged(self, id, version); },
      [=](flush_atom) {
        self->state.flush_sent = false;
        flush_commits(self);
      },
      [=](subscribe_atom, catalog_listener listener) {
        self->state.listeners.push_back(std::move(listener));
      },
      [=](cluster_atom, membership_actor members, std::string& self_address,
          peer_request_sink router) {
        self->state.members = std::move(members);
        self->state.self_address = std::move(self_address);
        self->state.router = std::move(router);
        join_voters(self);  // take part in numbering versions (once per data dir)
        self->send(self, tick_atom_v);
      },
      [=](tick_atom) {
        // Anti-entropy: refresh who is alive, then offer our frontier to one of them.
        auto& st = self->state;
        with_fresh_view(self, [=] {
          auto& s = self->state;
          if (s.replica->retired().count(s.replica->self_id()) > 0) {
            // Forgotten (shoal cluster forget) while it was away, and running now: it is back,
            // so it numbers versions again (its join orders after the retire everywhere).
            log_info(
                "this node was forgotten by the cluster and is back: it joins the nodes "
                "that number versions again",
                {});
            join_voters(self);
          }
          if (++s.ticks % 2 == 0) place(self);
          follow_traffic(self);
          watch_models(self);
          if (s.peers.empty()) return;
          std::uniform_int_distribution<size_t> pick(0, s.peers.size() - 1);
          catalog_sync_msg hello;
          hello.from_address = s.self_address;
          hello.frontier = s.replica->frontier();
          send_sync(self, s.peers[pick(s.rng)], hello);
        });
        // Until the first peer shows up (a node that just started), look five times as often,
        // so its own changes reach the others at once rather than by anti-entropy.
        self->delayed_send(self, st.peers.empty() ? st.sync_interval / 5 : st.sync_interval,
                           tick_atom_v);
      },
      [=](peer_atom, const std::string& payload) -> caf::result<std::string> {
        auto req = decode_peer_request(payload);
        if (req && req->what == peer_request::kind::validate) {
          auto rp = self->make_response_promise<std::string>();
          validate_here(self, *req, [rp](result<std::string> report) mutable {
            peer_reply out;
            if (report) {
              out.response = std::move(*report);
            } else {
              out.error = report.error().message();
            }
            rp.deliver(encode_peer_reply(out));
          });
          return rp;
        }
        return answer_peer(self, payload);
      },
      [=](sync_atom, const std::string& payload) {
        auto m = decode_catalog_sync(payload);
        if (!m) {
          auto& st = self->state;
          int64_t now = now_ms();
          if (now - st.last_refusal_log_ms > 10000) {
            st.last_refusal_log_ms = now;
            log_warn("refused a catalog sync message", {{"error", m.error().message()}});
          }
          return;
        }
        receive_sync(self, *m);
      },
  };
}

}  // namespace shoal
