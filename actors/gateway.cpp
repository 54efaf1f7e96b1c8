#include "actors/gateway.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <type_traits>

namespace shoal {

gateway_actor::behavior_type gateway(gateway_actor::stateful_pointer<gateway_state> self,
                                     router_actor router, catalog_actor catalog,
                                     catalog_ptr initial, membership_actor members,
                                     gateway_config cfg) {
  self->state.current = std::move(initial);
  return {
      [=](call_atom, api_call& call, api_callback& reply) {
        std::visit(
            [&](auto& req) {
              using T = std::decay_t<decltype(req)>;
              auto fail = [reply](const std::string& what) {
                return [reply, what](caf::error& err) { reply(to_status(err, what)); };
              };
              if constexpr (std::is_same_v<T, infer_request>) {
                std::string what = "inference on " + req.id.str();
                self->request(router, cfg.infer_timeout, infer_atom_v, std::move(req))
                    .then([reply](infer_result& r) { reply(std::move(r)); }, fail(what));
              } else if constexpr (std::is_same_v<T, push_request>) {
                std::string what = "push to " + req.id.str();
                const model_entry* entry = self->state.current->find(req.id);
                if (req.label == default_label && entry != nullptr &&
                    entry->labels.count(default_label) > 0) {
                  // A push straight to production is a promote: it passes the validation gate
                  // and is watched like one. Store it first, then promote it; the push stays if
                  // the gate refuses.
                  label_request promote;
                  promote.id = req.id;
                  promote.label = default_label;
                  promote.action = label_action::promote;
                  promote.force = req.force;
                  promote.user = req.user;
                  promote.by = req.pushed_with;
                  req.label.clear();
                  self->request(catalog, cfg.write_timeout, push_atom_v, std::move(req))
                      .then(
                          [=](push_result& pushed) mutable {
                            promote.version = pushed.version;
                            self->request(catalog, cfg.write_timeout, label_atom_v, promote)
                                .then(
                                    [reply, pushed](label_result&) mutable {
                                      pushed.labels.push_back(default_label);
                                      std::sort(pushed.labels.begin(), pushed.labels.end());
                                      reply(std::move(pushed));
                                    },
                                    [reply, pushed](caf::error& err) {
                                      status why = to_status(err, "the promote");
                                      reply(status(
                                          why.code(),
                                          "stored as version " + std::to_string(pushed.version) +
                                              ", but production did not move: " + why.message()));
                                    });
                          },
                          fail(what));
                  return;
                }
                self->request(catalog, cfg.write_timeout, push_atom_v, std::move(req))
                    .then([reply](push_result& r) { reply(std::move(r)); }, fail(what));
              } else if constexpr (std::is_same_v<T, validation_set_request> ||
                                   std::is_same_v<T, validate_request> ||
                                   std::is_same_v<T, policy_request> ||
                                   std::is_same_v<T, trial_request> ||
                                   std::is_same_v<T, forget_request>) {
                // A validation run loads two models and predicts a whole set: minutes at most.
                const caf::timespan timeout =
                    std::is_same_v<T, validate_request>
                        ? std::max<caf::timespan>(cfg.write_timeout, std::chrono::minutes(5))
                        : cfg.write_timeout;
                self->request(catalog, timeout, call_atom_v, api_call(std::move(req)))
                    .then([reply](api_reply& r) { reply(std::move(r)); }, fail("the call"));
              } else if constexpr (std::is_same_v<T, label_request>) {
                std::string what = "label move on " + req.id.str();
                self->request(catalog, cfg.write_timeout, label_atom_v, std::move(req))
                    .then([reply](label_result& r) { reply(std::move(r)); }, fail(what));
              } else if constexpr (std::is_same_v<T, list_request>) {
                const auto* entry = self->state.current->find(req.id);
                if (entry == nullptr) {
                  reply(status::not_found("no model " + req.id.str()));
                } else if (!members) {
                  reply(*entry);
                } else {
                  // The catalog knows holders by node id; people know nodes by name.
                  self->request(members, cfg.status_timeout, members_atom_v)
                      .then(
                          [reply, e = *entry](std::vector<member_view>& all) mutable {
                            std::map<std::string, std::string> names;
                            for (const auto& v : all) names[v.entry.id] = v.entry.name;
                            for (auto& s : e.snapshots) {
                              std::set<std::string> named;
                              for (const auto& id : s.holders) {
                                auto it = names.find(id);
                                named.insert(it != names.end() ? it->second : id.substr(0, 8));
                              }
                              s.holders = std::move(named);
                            }
                            reply(std::move(e));
                          },
                          [reply, e = *entry](const caf::error&) mutable { reply(std::move(e)); });
                }
              } else if constexpr (std::is_same_v<T, models_request>) {
                std::vector<model_entry> all;
                for (const auto* entry : self->state.current->models()) all.push_back(*entry);
                reply(std::move(all));
              } else if constexpr (std::is_same_v<T, cluster_status_request>) {
                self->request(members, cfg.status_timeout, members_atom_v)
                    .then(
                        [=](std::vector<member_view>& all) {
                          // Per-node counts of the versions each holds, from our catalog copy.
                          std::map<std::string, uint32_t> held;
                          for (const auto* m : self->state.current->models()) {
                            for (const auto& s : m->snapshots) {
                              for (const auto& h : s.holders) ++held[h];
                            }
                          }
                          for (auto& v : all) v.snapshots_held = held[v.entry.id];
                          reply(cluster_status{std::move(all)});
                        },
                        fail("cluster status"));
              } else {
                static_assert(std::is_same_v<T, status_request>);
                node_status out;
                out.name = cfg.node_name;
                out.version = SHOAL_VERSION;
                for (const auto* entry : self->state.current->models()) {
                  ++out.models;
                  out.snapshots += entry->snapshots.size();
                }
                reply(out);
              }
            },
            call);
      },
      [=](catalog_atom, catalog_ptr& next) { self->state.current = std::move(next); },
  };
}

}  // namespace shoal
