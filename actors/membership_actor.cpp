#include "actors/membership_actor.hpp"

#include <utility>

#include "shoal/gossip_codec.hpp"
#include "shoal/log.hpp"
#include "shoal/zmq_client.hpp"

namespace shoal {
namespace {

using self_ptr = membership_actor::stateful_pointer<membership_actor_state>;

void log_events(self_ptr self) {
  for (const auto& e : self->state.core->take_events()) {
    if (e.what == membership_event::kind::status_changed || e.what == membership_event::kind::refuted ||
        e.what == membership_event::kind::resumed) {
      log_warn(describe(e));
    } else {
      log_info(describe(e));
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

// Sends `bytes` to the membership actor at `address`, connecting first if needed.
void send_to(self_ptr self, const std::string& address, std::string bytes) {
  auto& st = self->state;
  auto& link = st.links[address];
  if (link.handle) {
    self->send(*link.handle, gossip_atom_v, std::move(bytes));
    return;
  }
  if (link.queued.size() < st.cfg.max_queued_per_peer) link.queued.push_back(std::move(bytes));
  if (link.connecting) return;
  auto addr = parse_host_port(address);  // checked by the config and the codec already
  if (!addr) {
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
              report_unreachable(self, address);
              return;
            }
            auto handle = caf::actor_cast<membership_actor>(ptr);
            self->monitor(handle);
            l.handle = handle;
            while (!l.queued.empty()) {
              self->send(handle, gossip_atom_v, std::move(l.queued.front()));
              l.queued.pop_front();
            }
          },
          [=](const caf::error&) {
            auto& l = self->state.links[address];
            l.connecting = false;
            l.queued.clear();
            report_unreachable(self, address);
          });
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
  if (self->state.cfg.board) {
    const auto& view = self->state.cfg.board->read(self->state.board_cache);
    load.loaded_models = static_cast<uint32_t>(view.loaded->size());
  }
  return load;
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
        self->delayed_send(self, interval, tick_atom_v);
      },
      [=](gossip_atom, std::string& bytes) {
        auto& st = self->state;
        auto decoded = decode_gossip(bytes, st.cfg.secret, st.cfg.core.max_updates_per_message);
        if (!decoded.msg) {
          int64_t now = now_ms(self);
          auto& last = st.last_refusal_log_ms[decoded.sender_address];
          if (last == 0 || now - last > 10000) {
            last = now;
            log_warn("refused gossip from " +
                     (decoded.sender_address.empty() ? std::string("an unknown sender")
                                                     : decoded.sender_address) +
                     ": " + decoded.msg.error().message());
          }
          if (auto sender = caf::actor_cast<membership_actor>(self->current_sender())) {
            self->send(sender, refused_atom_v, st.cfg.core.cluster_address,
                       decoded.msg.error().message());
          }
          return;
        }
        if (st.leaving) return;
        send_all(self, st.core->receive(*decoded.msg, now_ms(self)));
        log_events(self);
      },
      [=](refused_atom, std::string& by, std::string& reason) {
        auto& st = self->state;
        int64_t now = now_ms(self);
        auto& last = st.last_refusal_log_ms["refused-by:" + by];
        if (last == 0 || now - last > 10000) {
          last = now;
          log_error("cluster node " + by + " refused our gossip: " + reason);
        }
      },
      [=](members_atom) -> std::vector<member_view> {
        return self->state.core->view(now_ms(self));
      },
      [=](leave_atom) -> bool {
        if (!self->state.leaving) {
          auto out = self->state.core->leave(now_ms(self));
          self->state.leaving = true;
          // Only to peers we are connected to: a leave must not wait on connects.
          for (auto& o : out) {
            auto it = self->state.links.find(o.address);
            if (it != self->state.links.end() && it->second.handle) {
              self->send(*it->second.handle, gossip_atom_v,
                         encode_gossip(o.msg, self->state.cfg.secret));
            }
          }
          log_info("leaving the cluster: told " + std::to_string(out.size()) + " members");
        }
        return true;
      },
  };
}

}  // namespace shoal
