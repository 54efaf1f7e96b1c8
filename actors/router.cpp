#include "actors/router.hpp"

#include <algorithm>
#include <vector>

#include "actors/model_host.hpp"
#include "shoal/base/host_memory.hpp"
#include "shoal/base/log.hpp"
#include "shoal/cluster/catalog_sync.hpp"
#include "shoal/cluster/rendezvous.hpp"
#include "shoal/serving/model_cache.hpp"
#include "shoal/wire/api_codec.hpp"

namespace shoal {
namespace {

using self_ptr = router_actor::stateful_pointer<router_state>;

void publish_loaded(self_ptr self) {
  if (auto& m = self->state.metrics) {
    m->loaded_bytes.store(self->state.loaded.bytes(), std::memory_order_relaxed);
    m->loaded_models.store(self->state.loaded.size(), std::memory_order_relaxed);
  }
  if (self->state.board) {
    self->state.board->publish_loaded(std::make_shared<const loaded_models>(self->state.loaded));
  }
}

// The model host of (id, version) on this node, spawned on first use.
model_host_actor host_for(self_ptr self, const model_id& id, uint32_t version) {
  auto& st = self->state;
  auto key = std::make_pair(id, version);
  auto it = st.hosts.find(key);
  if (it == st.hosts.end()) {
    // Linked: hosts end with the router (node shutdown); monitored: the router forgets a host
    // that quit after a failed load, so the next request loads afresh.
    // The same snapshot always loads through the same loader; different ones side by side.
    const size_t h = std::hash<std::string>{}(id.str()) * 31 + version;
    auto host = self->spawn<caf::linked>(model_host, st.loaders[h % st.loaders.size()], id,
                                         version, st.load_timeout,
                                         caf::actor_cast<router_actor>(self), st.memory_budget,
                                         st.micro_batch_texts, st.metrics);
    self->monitor(host);
    it = st.hosts.emplace(key, host).first;
  }
  return it->second;
}

int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Unloads the least recently used snapshots (never `keep`, the one just loaded) until the loaded
// ones fit in the budget again, with some room to spare so that a stream of cold loads unloads
// in batches.
void enforce_budget(self_ptr self, const snapshot_key& keep) {
  auto& st = self->state;
  if (st.loaded.bytes() <= st.memory_budget) return;
  const uint64_t target = st.memory_budget - st.memory_budget / 20;
  const int64_t wall = wall_now_ms();
  std::vector<eviction_candidate> candidates;
  candidates.reserve(st.loaded.size());
  st.loaded.for_each([&](const snapshot_key& key, const loaded_models::entry& e) {
    if (key == keep) return;
    const model_entry* entry = st.current->find(key.first);
    bool pinned = entry != nullptr &&
                  recently_replaced(*entry, key.second, wall, st.keep_replaced_warm_ms);
    candidates.push_back({key, e->bytes, e->last_used_ms.load(std::memory_order_relaxed), pinned});
  });
  auto victims = choose_evictions(std::move(candidates), st.loaded.bytes(), target);
  for (const auto& key : victims) {
    st.loaded = st.loaded.without(key);
    auto it = st.hosts.find(key);
    if (it != st.hosts.end()) {
      self->demonitor(it->second.address());
      self->send(it->second, leave_atom_v);
      st.hosts.erase(it);
    }
  }
  st.unloaded_since_log += victims.size();
  if (st.metrics) st.metrics->evictions.fetch_add(victims.size(), std::memory_order_relaxed);
  const int64_t now = steady_now_ms();
  if (now - st.last_unload_log_ms >= 10000) {
    log_info("unloaded least recently used snapshots to stay within the model memory budget",
             {{"unloaded", st.unloaded_since_log},
              {"in_use", bytes_text(st.loaded.bytes())},
              {"budget", bytes_text(st.memory_budget)},
              {"loaded", st.loaded.size()}});
    st.unloaded_since_log = 0;
    st.last_unload_log_ms = now;
  }
}

// Tries attempts[i], then the next ones, until one answers; delivers the answer or the last
// error. A client's mistake (bad argument, unknown version) is answered at once: another
// replica would say the same.
void try_replica(self_ptr self, caf::typed_response_promise<infer_result> rp,
                 std::shared_ptr<const std::string> payload,
                 std::shared_ptr<const std::vector<std::string>> attempts, size_t i,
                 std::string last_error) {
  auto& st = self->state;
  if (i >= attempts->size()) {
    rp.deliver(to_error(status::unavailable("no replica answered: " + last_error)));
    return;
  }
  const std::string& id = (*attempts)[i];
  auto it = st.live.find(id);
  if (it == st.live.end()) {
    try_replica(self, rp, payload, attempts, i + 1, last_error);
    return;
  }
  const std::string address = it->second.first;
  self->request(st.members, st.attempt_timeout, peer_atom_v, address, *payload)
      .then(
          [=](const std::string& bytes) mutable {
            auto reply = decode_peer_reply(bytes);
            if (!reply || !reply->error.empty()) {
              std::string why = reply ? reply->error : reply.error().message();
              try_replica(self, rp, payload, attempts, i + 1, address + ": " + why);
              return;
            }
            auto r = decode_infer_response(reply->response);
            if (r) {
              rp.deliver(std::move(*r));
              return;
            }
            status s = r.error();
            if (s.code() == status_code::invalid_argument || s.code() == status_code::not_found) {
              rp.deliver(to_error(s));
              return;
            }
            try_replica(self, rp, payload, attempts, i + 1, address + ": " + s.message());
          },
          [=](const caf::error& err) mutable {
            try_replica(self, rp, payload, attempts, i + 1,
                        address + ": " + to_status(err, "request").message());
          });
}

void update_live(self_ptr self, const std::vector<member_view>& views) {
  if (auto& m = self->state.metrics) {
    std::vector<node_metrics::member_sample> samples;
    samples.reserve(views.size());
    for (const auto& v : views) {
      samples.push_back({v.entry.name, to_string(v.entry.status), v.phi, v.is_self});
    }
    m->set_members(std::move(samples));
  }
  auto& live = self->state.live;
  live.clear();
  for (const auto& v : views) {
    if (v.entry.status == member_status::alive) {
      live[v.entry.id] = {v.entry.cluster_address, v.entry.load.in_flight};
    }
  }
}

std::vector<std::string> attempts_for(self_ptr self, const model_id& id,
                                      const snapshot_info& snap) {
  std::map<std::string, uint32_t> load;
  for (const auto& [mid, member] : self->state.live) load[mid] = member.second;
  std::vector<std::string> holders(snap.holders.begin(), snap.holders.end());
  return replica_attempts(id.str(), holders, load);
}

status no_live_holder(const model_id& id, uint32_t version) {
  return status::unavailable("no live node holds " + id.str() + " version " +
                             std::to_string(version) +
                             " right now (its holders are down); try again when one is back");
}

}  // namespace

router_actor::behavior_type router(self_ptr self, std::vector<model_loader_actor> loaders,
                                   catalog_ptr initial,
                                   caf::timespan load_timeout,
                                   std::shared_ptr<serving_board> board, router_settings memory) {
  self->state.memory_budget = memory.budget_bytes;
  self->state.keep_replaced_warm_ms = memory.keep_replaced_warm_ms;
  self->state.micro_batch_texts = memory.micro_batch_texts;
  self->state.metrics = memory.metrics;
  if (memory.metrics) memory.metrics->budget_bytes.store(memory.budget_bytes);
  self->state.last_unload_log_ms = steady_now_ms() - 10000;
  self->state.current = std::move(initial);
  self->state.board = std::move(board);
  self->state.loaders = std::move(loaders);
  self->state.load_timeout = load_timeout;
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& hosts = self->state.hosts;
    for (auto it = hosts.begin(); it != hosts.end(); ++it) {
      if (it->second.address() == msg.source) {
        if (self->state.loaded.find(it->first) != nullptr) {
          self->state.loaded = self->state.loaded.without(it->first);
          publish_loaded(self);
        }
        hosts.erase(it);
        return;
      }
    }
  });
  return {
      [=](infer_atom, infer_request& req) -> caf::result<infer_result> {
        auto& st = self->state;
        auto version = st.current->resolve(req.id, req.version, req.label);
        if (!version) return to_error(version.error());
        req.version = *version;
        const snapshot_info* snap = st.current->find(req.id)->find(*version);
        const resident_model* resident = st.loaded.find({req.id, *version});
        if (resident != nullptr) resident->touch(steady_now_ms());
        // Here when this node holds the bytes (or nobody is known to: a node without a cluster,
        // or a catalog from before replication); else at a live holder.
        const bool local = !st.members || snap->holders.empty() ||
                           snap->holders.count(st.self_id) > 0 || resident != nullptr;
        if (st.metrics && local) {
          // In memory here: a hit (a batch too big for the front end, or the board's copy was
          // a moment old); else this request waits for a load here. (One routed to a holder
          // is counted there, in the peer handler below.)
          (resident != nullptr ? st.metrics->cache_hits : st.metrics->cache_misses)
              .fetch_add(1, std::memory_order_relaxed);
        }
        if (local && !st.members) {
          return self->delegate(host_for(self, req.id, *version), infer_atom_v, std::move(req));
        }
        peer_request forward;
        forward.what = peer_request::kind::infer;
        forward.bytes = encode_request(0, api_call{req});
        auto payload = std::make_shared<const std::string>(encode_peer_request(forward));
        auto rp = self->make_response_promise<infer_result>();
        if (local) {
          // Ours to answer; if our copy cannot (damaged, unreadable), another holder does.
          const model_id id = req.id;
          const snapshot_info held = *snap;
          self->request(host_for(self, req.id, *version), st.load_timeout, infer_atom_v,
                        std::move(req))
              .then([=](infer_result& r) mutable { rp.deliver(std::move(r)); },
                    [=](caf::error& err) mutable {
                      status s = to_status(err, "inference");
                      if (s.code() != status_code::unavailable &&
                          s.code() != status_code::corruption) {
                        rp.deliver(std::move(err));
                        return;
                      }
                      // Another holder, on a fresh member view (ours may predate the others).
                      self->request(self->state.members, std::chrono::seconds(1), members_atom_v)
                          .then(
                              [=](const std::vector<member_view>& views) mutable {
                                update_live(self, views);
                                auto others = attempts_for(self, id, held);
                                others.erase(std::remove(others.begin(), others.end(),
                                                         self->state.self_id),
                                             others.end());
                                if (others.empty()) {
                                  rp.deliver(to_error(s));
                                  return;
                                }
                                try_replica(self, rp, payload,
                                            std::make_shared<const std::vector<std::string>>(
                                                std::move(others)),
                                            0, "this node: " + s.message());
                              },
                              [=](const caf::error&) mutable { rp.deliver(to_error(s)); });
                    });
          return rp;
        }
        auto attempts = attempts_for(self, req.id, *snap);
        if (!attempts.empty()) {
          try_replica(self, rp, payload,
                      std::make_shared<const std::vector<std::string>>(std::move(attempts)), 0, "");
          return rp;
        }
        // No live holder in our view, which is refreshed twice a second: ask for a fresh one
        // before giving up (a node that just started, a holder that just came back).
        const model_id id = req.id;
        const snapshot_info held = *snap;
        self->request(st.members, std::chrono::seconds(1), members_atom_v)
            .then(
                [=](const std::vector<member_view>& views) mutable {
                  update_live(self, views);
                  auto fresh = attempts_for(self, id, held);
                  if (fresh.empty()) {
                    rp.deliver(to_error(no_live_holder(id, held.version)));
                    return;
                  }
                  try_replica(self, rp, payload,
                              std::make_shared<const std::vector<std::string>>(std::move(fresh)),
                              0, "");
                },
                [=](const caf::error&) mutable {
                  rp.deliver(to_error(no_live_holder(id, held.version)));
                });
        return rp;
      },
      [=](peer_atom, const std::string& payload) -> caf::result<std::string> {
        // A peer routed an inference here: answer it from this node's own hosts (never routed
        // on: the version is pinned and the asker chose us as a holder).
        auto req = decode_peer_request(payload);
        auto call = req && req->what == peer_request::kind::infer
                        ? decode_request(req->bytes)
                        : request_decode_result(request_error{0, status::invalid_argument("")});
        peer_reply out;
        if (!req || !call || !std::holds_alternative<infer_request>(call->call)) {
          out.response = encode_error(0, status::invalid_argument("not an inference request"));
          return encode_peer_reply(out);
        }
        auto inf = std::get<infer_request>(std::move(call->call));
        auto version = self->state.current->resolve(inf.id, inf.version, inf.label);
        if (!version) {
          out.response = encode_error(0, version.error());
          return encode_peer_reply(out);
        }
        const resident_model* resident = self->state.loaded.find({inf.id, *version});
        if (resident != nullptr) resident->touch(steady_now_ms());
        if (auto& m = self->state.metrics) {
          (resident != nullptr ? m->cache_hits : m->cache_misses)
              .fetch_add(1, std::memory_order_relaxed);
        }
        auto rp = self->make_response_promise<std::string>();
        self->request(host_for(self, inf.id, *version), self->state.load_timeout, infer_atom_v,
                      std::move(inf))
            .then(
                [=](infer_result& r) mutable {
                  peer_reply ok;
                  ok.response = encode_response(0, r);
                  rp.deliver(encode_peer_reply(ok));
                },
                [=](caf::error& err) mutable {
                  peer_reply failed;
                  failed.response = encode_error(0, to_status(err, "inference"));
                  rp.deliver(encode_peer_reply(failed));
                });
        return rp;
      },
      [=](cluster_atom, membership_actor members, std::string& self_id) {
        self->state.members = std::move(members);
        self->state.self_id = std::move(self_id);
        self->send(self, tick_atom_v);
      },
      [=](tick_atom) {
        // Who is alive and how loaded, for choosing replicas (refreshed twice a second).
        self->request(self->state.members, std::chrono::seconds(1), members_atom_v)
            .then(
                [=](const std::vector<member_view>& views) { update_live(self, views); },
                [=](const caf::error&) {});
        self->delayed_send(self, std::chrono::milliseconds(500), tick_atom_v);
      },
      [=](catalog_atom, catalog_ptr& next) { self->state.current = std::move(next); },
      [=](loaded_atom, model_id& id, uint32_t version, model_ptr& m) {
        auto key = std::make_pair(std::move(id), version);
        // Only a host the router still knows: one that died since has been forgotten.
        if (self->state.hosts.count(key) == 0) return;
        self->state.loaded =
            self->state.loaded.with(key, std::make_shared<const resident_model>(std::move(m),
                                                                                steady_now_ms()));
        if (self->state.metrics) {
          self->state.metrics->model_loads.fetch_add(1, std::memory_order_relaxed);
        }
        enforce_budget(self, key);
        publish_loaded(self);
      },
  };
}

}  // namespace shoal
