#include "actors/membership_actor.hpp"

#include <algorithm>
#include <utility>

#include "shoal/base/host_memory.hpp"
#include "shoal/base/host_port.hpp"
#include "shoal/base/log.hpp"
#include "shoal/cluster/catalog_sync.hpp"
#include "shoal/cluster/gossip_codec.hpp"

namespace shoal {
namespace {

using self_ptr = membership_actor::stateful_pointer<membership_actor_state>;

void log_events(self_ptr self) {
  for (const auto& e : self->state.core->take_events()) {
    if (e.what == membership_event::kind::status_changed || e.what == membership_event::kind::refuted ||
        e.what == membership_event::kind::resumed) {
      log_warn(describe(e), {{"member", e.entry.name}});
    } else {
      log_info(describe(e), {{"member", e.entry.name}});
    }
  }
}

void report_unreachable(self_ptr self, const std::string& address);

// The actor clock's time in ms: the steady clock in a node, the test coordinator's manual clock
// in actor tests.
int64_t now_ms(self_ptr self) {
  using namespace std::chrono;
  return duration_cast<milliseconds>(self->clock().now().time_since_epoch()).count();
}

// Connects to the membership actor at `address` unless a link exists or a connect is under way.
void connect_link(self_ptr self, const std::string& address) {
  auto& st = self->state;
  auto& link = st.links[address];
  if (link.handle || link.connecting) return;
  auto addr = parse_host_port(address);  // checked by the config and the codec already
  if (!addr) {
    for (auto& call : link.calls) call(nullptr, to_error(status::invalid_argument("bad cluster address " + address)));
    st.links.erase(address);
    return;
  }
  link.connecting = true;
  self->request(st.cfg.connector, st.cfg.connect_timeout, caf::connect_atom_v, addr->host, addr->port)
      .then(
          [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            auto& l = self->state.links[address];
            l.connecting = false;
            if (!ptr) {
              l.queued.clear();
              auto calls = std::move(l.calls);
              l.calls.clear();
              for (auto& call : calls) {
                call(nullptr, to_error(status::unavailable("no Shoal node at " + address)));
              }
              report_unreachable(self, address);
              return;
            }
            auto handle = caf::actor_cast<membership_actor>(ptr);
            if (!l.handle) {
              self->monitor(handle);
              l.handle = handle;
            }
            handle = *l.handle;
            while (!l.queued.empty()) {
              self->send(handle, gossip_atom_v, std::move(l.queued.front()));
              l.queued.pop_front();
            }
            auto calls = std::move(l.calls);
            l.calls.clear();
            for (auto& call : calls) call(&handle, caf::error{});
          },
          [=](const caf::error& err) {
            auto& l = self->state.links[address];
            l.connecting = false;
            l.queued.clear();
            auto calls = std::move(l.calls);
            l.calls.clear();
            for (auto& call : calls) call(nullptr, err);
            // Say why, once in a while per address: a refused TLS handshake or a typo in the
            // seeds must be visible in the log, not only as silence.
            int64_t now = now_ms(self);
            auto& last = self->state.last_refusal_log_ms["connect:" + address];
            if (last == 0 || now - last > 30000) {
              last = now;
              log_warn("cannot connect to cluster node",
                       {{"address", address}, {"error", self->system().render(err)}});
            }
            report_unreachable(self, address);
          });
}

// Sends `bytes` to the membership actor at `address`, connecting first if needed.
void send_to(self_ptr self, const std::string& address, std::string bytes) {
  auto& st = self->state;
  auto& link = st.links[address];
  if (link.handle) {
    self->send(*link.handle, gossip_atom_v, std::move(bytes));
    return;
  }
  if (link.queued.size() < st.cfg.max_queued_per_peer) link.queued.push_back(std::move(bytes));
  connect_link(self, address);
}

// A peer that reached us has a connection we can answer over: use it for that address instead
// of opening a second one (two connections between the same pair of nodes make CAF close one,
// which reads as a lost peer).
void adopt_sender(self_ptr self, const std::string& address) {
  if (address.empty() || address == self->state.cfg.core.cluster_address) return;
  auto sender = caf::actor_cast<membership_actor>(self->current_sender());
  if (!sender) return;
  auto& link = self->state.links[address];
  if (link.handle && *link.handle == sender) return;
  if (link.handle) return;  // keep the working one we have
  self->monitor(sender);
  link.handle = sender;
  while (!link.queued.empty()) {
    self->send(sender, gossip_atom_v, std::move(link.queued.front()));
    link.queued.pop_front();
  }
}

void send_all(self_ptr self, std::vector<outgoing> out) {
  for (auto& o : out) {
    if (o.address == self->state.cfg.core.cluster_address) continue;
    send_to(self, o.address, encode_gossip(o.msg, self->state.cfg.secret));
  }
}

void report_unreachable(self_ptr self, const std::string& address) {
  if (self->state.leaving) return;
  send_all(self, self->state.core->unreachable(address, now_ms(self)));
  log_events(self);
}

member_load current_load(self_ptr self) {
  member_load load;
  auto& st = self->state;
  uint64_t used = 0;
  if (st.cfg.board) {
    const auto& view = st.cfg.board->read(st.board_cache);
    load.loaded_models = static_cast<uint32_t>(view.loaded->size());
    used = view.loaded->bytes();
  }
  if (st.cfg.in_flight) load.in_flight = st.cfg.in_flight->now();
  if (const auto& m = st.cfg.metrics) {
    load.served_local = m->served_local.load(std::memory_order_relaxed);
    load.forwarded = m->forwarded.load(std::memory_order_relaxed);
    load.served_for_peers = m->served_for_peers.load(std::memory_order_relaxed);
    load.traffic_copies = static_cast<uint32_t>(m->traffic_copies.load(std::memory_order_relaxed));
  }
  // Free model memory: what is left of the budget, but never more than the kernel says is
  // available (read at most once a second: a /proc read, no disk I/O).
  int64_t now = now_ms(self);
  if (st.memory_read_ms < 0 || now - st.memory_read_ms >= 1000) {
    st.memory_read_ms = now;
    st.free_memory = read_available_memory().value_or(0);
  }
  load.free_model_memory = st.free_memory;
  const uint64_t budget = st.cfg.model_memory_budget;
  if (budget > 0) load.free_model_memory = std::min(st.free_memory, budget - std::min(budget, used));
  return load;
}

// Tells cfg.on_peers who is alive now, when that changed since the last time (a status change is
// acted on at once: requests in flight to a peer just declared dead go to the next holder).
// A suspect this node hears itself (membership::hears) still takes requests: it was suspected on
// another node's word, which happens at every flap of a link elsewhere, and refutes within a
// round trip (issue 20's flapping test saw 503s for models whose only reachable holder was in
// that state for ~80 ms). One we stopped hearing is left at once, as before.
void publish_peers(self_ptr self) {
  auto& st = self->state;
  if (!st.cfg.on_peers) return;
  auto next = std::make_shared<peer_directory>();
  next->self_id = st.cfg.core.id;
  const int64_t now = now_ms(self);
  for (const auto& v : st.core->view(now)) {
    const bool usable =
        v.entry.status == member_status::alive ||
        (v.entry.status == member_status::suspect && st.core->hears(v.entry.id, now));
    if (v.is_self || !usable) continue;
    next->alive[v.entry.id] = peer_info{v.entry.id, v.entry.name, v.entry.data_address,
                                        v.entry.load.in_flight, v.rtt_ms.value_or(-1)};
  }
  if (st.peers && *st.peers == *next) return;
  // Only the gossiped loads changed: at most one publication per gossip interval (every
  // publication makes each front-end thread take the board's lock once).
  if (st.peers && now - st.peers_published_ms < st.cfg.core.gossip_interval_ms) {
    bool same_members = st.peers->alive.size() == next->alive.size();
    for (auto a = st.peers->alive.cbegin(), b = next->alive.cbegin();
         same_members && a != st.peers->alive.end(); ++a, ++b) {
      same_members = a->first == b->first && a->second.data_address == b->second.data_address;
    }
    if (same_members) return;
  }
  st.peers_published_ms = now;
  st.peers = next;
  st.cfg.on_peers(std::move(next));
}

}  // namespace

membership_actor::behavior_type membership_behavior(self_ptr self, membership_actor_config cfg) {
  self->state.core = std::make_unique<membership>(cfg.core);
  self->state.cfg = std::move(cfg);
  auto interval = std::chrono::milliseconds(self->state.cfg.core.gossip_interval_ms);
  self->set_down_handler([=](caf::down_msg& msg) {
    // A peer's connection is gone (CAF: remote_link_unreachable) or its actor quit: forget the
    // handle (the next send reconnects) and tell the core, which probes that member.
    for (auto it = self->state.links.begin(); it != self->state.links.end(); ++it) {
      if (it->second.handle && it->second.handle->address() == msg.source) {
        std::string address = it->first;
        self->state.links.erase(it);
        report_unreachable(self, address);
        return;
      }
    }
  });
  self->send(self, tick_atom_v);
  return {
      [=](tick_atom) {
        if (self->state.leaving) return;
        self->state.core->set_load(current_load(self));
        send_all(self, self->state.core->tick(now_ms(self)));
        log_events(self);
        publish_peers(self);
        self->delayed_send(self, interval, tick_atom_v);
      },
      [=](gossip_atom, std::string& bytes) {
        auto& st = self->state;
        auto env = open_envelope(bytes, st.cfg.secret);
        decoded_gossip decoded;
        decoded.sender_address = env.sender_address;
        if (env.payload && env.channel == envelope_channel::catalog) {
          if (st.cfg.catalog) self->send(st.cfg.catalog, sync_atom_v, std::move(*env.payload));
          return;
        }
        if (env.payload) {
          decoded = decode_gossip_payload(*env.payload, st.cfg.core.max_updates_per_message,
                                          std::move(decoded));
        } else {
          decoded.msg = env.payload.error();
        }
        if (!decoded.msg) {
          int64_t now = now_ms(self);
          auto& last = st.last_refusal_log_ms[decoded.sender_address];
          if (last == 0 || now - last > 10000) {
            last = now;
            log_warn("refused gossip", {{"from", decoded.sender_address.empty()
                                                     ? std::string("an unknown sender")
                                                     : decoded.sender_address},
                                        {"error", decoded.msg.error().message()}});
          }
          if (auto sender = caf::actor_cast<membership_actor>(self->current_sender())) {
            self->send(sender, refused_atom_v, st.cfg.core.cluster_address,
                       decoded.msg.error().message());
          }
          return;
        }
        if (st.leaving) return;
        adopt_sender(self, decoded.msg->from_address);
        send_all(self, st.core->receive(*decoded.msg, now_ms(self)));
        log_events(self);
        publish_peers(self);
      },
      [=](refused_atom, std::string& by, std::string& reason) {
        auto& st = self->state;
        int64_t now = now_ms(self);
        auto& last = st.last_refusal_log_ms["refused-by:" + by];
        if (last == 0 || now - last > 10000) {
          last = now;
          log_error("a cluster node refused our gossip", {{"by", by}, {"error", reason}});
        }
      },
      [=](replicate_atom, const std::string& address, std::string& payload) {
        auto& st = self->state;
        if (st.leaving || address == st.cfg.core.cluster_address) return;
        send_to(self, address,
                seal_envelope(envelope_channel::catalog, payload, st.cfg.core.cluster_address,
                              st.cfg.secret));
      },
      [=](peer_atom, std::string& envelope) -> caf::result<std::string> {
        // A peer's request (snapshot bytes): authenticate it, then let the catalog answer.
        auto& st = self->state;
        auto env = open_envelope(envelope, st.cfg.secret);
        if (!env.payload || env.channel != envelope_channel::request) {
          std::string why = env.payload ? "not a request" : env.payload.error().message();
          int64_t now = now_ms(self);
          auto& last = st.last_refusal_log_ms["request:" + env.sender_address];
          if (last == 0 || now - last > 10000) {
            last = now;
            log_warn("refused a request", {{"from", env.sender_address.empty()
                                                        ? std::string("an unknown sender")
                                                        : env.sender_address},
                                           {"error", why}});
          }
          return to_error(status::invalid_argument("refused: " + why));
        }
        auto req = decode_peer_request(*env.payload);
        if (!req) return to_error(req.error());
        if (req->what == peer_request::kind::infer) {
          if (!st.cfg.router) return to_error(status::unavailable("this node does not serve"));
          return self->delegate(st.cfg.router, peer_atom_v, std::move(*env.payload));
        }
        if (!st.cfg.catalog) return to_error(status::unavailable("this node has no catalog"));
        return self->delegate(st.cfg.catalog, peer_atom_v, std::move(*env.payload));
      },
      [=](peer_atom, const std::string& address, std::string& payload) -> caf::result<std::string> {
        // Ours for a peer: seal it, connect if needed, and hand back the peer's reply.
        auto& st = self->state;
        auto rp = self->make_response_promise<std::string>();
        std::string sealed = seal_envelope(envelope_channel::request, payload,
                                           st.cfg.core.cluster_address, st.cfg.secret);
        auto call = [=](const membership_actor* handle, const caf::error& err) mutable {
          if (handle == nullptr) {
            rp.deliver(err ? err : to_error(status::unavailable("cannot reach " + address)));
            return;
          }
          self->request(*handle, self->state.cfg.call_timeout, peer_atom_v, sealed)
              .then([=](std::string& reply) mutable { rp.deliver(std::move(reply)); },
                    [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
        };
        auto& link = st.links[address];
        if (link.handle) {
          call(&*link.handle, caf::error{});
        } else {
          link.calls.push_back(std::move(call));
          connect_link(self, address);
        }
        return rp;
      },
      [=](members_atom) -> std::vector<member_view> {
        return self->state.core->view(now_ms(self));
      },
      [=](leave_atom) -> bool {
        if (!self->state.leaving) {
          auto out = self->state.core->leave(now_ms(self));
          self->state.leaving = true;
          // Only to peers we are connected to: a leave must not wait on connects. The others
          // learn it from those, or detect the silence.
          size_t told = 0;
          for (auto& o : out) {
            auto it = self->state.links.find(o.address);
            if (it != self->state.links.end() && it->second.handle) {
              self->send(*it->second.handle, gossip_atom_v,
                         encode_gossip(o.msg, self->state.cfg.secret));
              ++told;
            }
          }
          log_info("leaving the cluster: told " + std::to_string(told) + " of " +
                   std::to_string(out.size()) + " members");
        }
        return true;
      },
  };
}

}  // namespace shoal
