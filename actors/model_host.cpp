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
                                           uint64_t memory_budget, size_t micro_batch_texts,
                                           std::shared_ptr<node_metrics> metrics) {
  self->state.batcher = micro_batcher(micro_batch_texts);
  // The node's count of requests waiting for a load (/metrics), moved by this host's queue.
  auto queued = [metrics](int64_t n) {
    if (metrics) metrics->load_queue.fetch_add(n, std::memory_order_relaxed);
  };
  // Answers `req` from the loaded model: at once without micro-batching, else with the next
  // flush (which is sent when the batch starts, so it comes after the mailbox's requests).
  auto serve = [=](caf::typed_response_promise<infer_result> promise, infer_request req) {
    const model& m = *self->state.loaded;
    if (status fits = check_fits(m, req, version); !fits) {
      promise.deliver(to_error(std::move(fits)));
      return;
    }
    if (!req.inputs.empty()) {  // a tensor model: at once, or stacked with the next flush's
      auto deliver = [promise](result<infer_result> r) mutable {
        if (r) {
          promise.deliver(std::move(*r));
        } else {
          promise.deliver(to_error(r.error()));
        }
      };
      if (micro_batch_texts == 0 || !micro_batcher::batchable(req.inputs)) {
        return deliver(answer_tensors(m, req, version));
      }
      auto done = [deliver, id = req.id, version](result<std::vector<tensor>> outputs) mutable {
        deliver(tensor_answer(id, version, std::move(outputs)));
      };
      if (self->state.batcher.add_tensors(self->state.loaded, std::move(req.inputs),
                                          std::move(req.outputs), std::move(done))) {
        self->send(self, flush_atom_v);
      }
      return;
    }
    const size_t k = req.top_k == 0 ? 1 : req.top_k;
    if (micro_batch_texts == 0) {
      promise.deliver(run_inference(*self->state.loaded, req, version));
      return;
    }
    infer_result base;
    base.id = req.id;
    base.version = version;
    auto done = [promise, base = std::move(base)](
                    std::vector<std::vector<prediction>> rows) mutable {
      base.rows = std::move(rows);
      promise.deliver(std::move(base));
    };
    if (self->state.batcher.add(self->state.loaded, k, std::move(req.texts), std::move(done))) {
      self->send(self, flush_atom_v);
    }
  };
  auto fail = [=](const caf::error& err) {
    queued(-static_cast<int64_t>(self->state.waiting.size()));
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
            auto waiting = std::move(self->state.waiting);
            self->state.waiting.clear();
            queued(-static_cast<int64_t>(waiting.size()));
            for (auto& [promise, req] : waiting) serve(promise, std::move(req));
          },
          [=](caf::error& err) { fail(err); });
  return {
      [=](infer_atom, infer_request& req) -> caf::result<infer_result> {
        if (self->state.loaded) {
          auto promise = self->make_response_promise<infer_result>();
          serve(promise, std::move(req));
          return promise;
        }
        if (self->state.waiting.size() >= model_host_max_waiting) {
          if (metrics) metrics->count_refusal(refusal_reason::model_queue);
          return to_error(status::resource_exhausted(
              id.str() + " version " + std::to_string(version) + " is loading and " +
              std::to_string(model_host_max_waiting) +
              " requests already wait for it; retry in a moment"));
        }
        auto promise = self->make_response_promise<infer_result>();
        self->state.waiting.emplace_back(promise, std::move(req));
        queued(1);
        return promise;
      },
      [=](flush_atom) { self->state.batcher.flush(); },
      [=](leave_atom) {
        self->state.batcher.flush();  // nothing pending is left unanswered
        self->quit(caf::exit_reason::normal);
      },
  };
}

}  // namespace shoal
