#include "actors/model_host.hpp"

namespace shoal {

infer_result run_inference(const model& m, const infer_request& req, uint32_t version) {
  infer_result out;
  out.id = req.id;
  out.version = version;
  out.rows = m.predict_batch(req.texts, req.top_k == 0 ? 1 : req.top_k);
  return out;
}

model_host_actor::behavior_type model_host(model_host_actor::stateful_pointer<model_host_state> self,
                                           model_loader_actor loader, model_id id,
                                           uint32_t version,
                                           caf::timespan load_timeout, router_actor router,
                                           uint64_t memory_budget) {
  auto fail = [=](const caf::error& err) {
    for (auto& entry : self->state.waiting) entry.first.deliver(err);
    self->state.waiting.clear();
    // A normal exit: the router is linked to its hosts, and an error exit would take it
    // down too. The router's monitor sees the host go and forgets it.
    self->quit(caf::exit_reason::normal);
  };
  self->request(loader, load_timeout, load_atom_v, id, version)
      .then(
          [=](model_ptr& m) {
            if (m->memory_bytes() > memory_budget) {
              fail(to_error(status::resource_exhausted(
                  id.str() + " version " + std::to_string(version) + " needs " +
                  std::to_string(m->memory_bytes() >> 20) +
                  " MB in memory, more than this node's whole model memory budget (" +
                  std::to_string(memory_budget >> 20) + " MB, model_memory_mb)")));
              return;
            }
            self->state.loaded = std::move(m);
            self->send(router, loaded_atom_v, id, version, self->state.loaded);
            for (auto& [promise, req] : self->state.waiting) {
              promise.deliver(run_inference(*self->state.loaded, req, version));
            }
            self->state.waiting.clear();
          },
          [=](caf::error& err) { fail(err); });
  return {
      [=](infer_atom, infer_request& req) -> caf::result<infer_result> {
        if (self->state.loaded) return run_inference(*self->state.loaded, req, version);
        if (self->state.waiting.size() >= model_host_max_waiting) {
          return to_error(status::resource_exhausted(
              id.str() + " version " + std::to_string(version) + " is loading and " +
              std::to_string(model_host_max_waiting) +
              " requests already wait for it; retry in a moment"));
        }
        auto promise = self->make_response_promise<infer_result>();
        self->state.waiting.emplace_back(promise, std::move(req));
        return promise;
      },
      [=](leave_atom) { self->quit(caf::exit_reason::normal); },
  };
}

}  // namespace shoal
