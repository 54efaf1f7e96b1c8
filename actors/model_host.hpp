// model_host: serves one snapshot (model, version). It starts loading at once (a model loader
// reads and verifies the bytes on its own thread) and queues requests until the model is in
// memory; then it tells the router, which publishes the model to the serving board.
//
//   loading --(model arrives)--> serving --(leave: unloaded by the router)--> quits
//      |                                   (requests already in its mailbox are answered first)
//      +--(load fails, or the model is larger than the whole memory budget)-->
//            answers every queued request with the error and quits
//            (the router forgets it; the next request tries again)
//
// Micro-batching: a serving host does not predict each request as it takes it from its mailbox;
// it adds it to a micro_batcher and, on the first one, sends itself (flush), which queues behind
// the requests already in the mailbox: they are predicted together (micro_batch.hpp). The
// requests that waited for the load are predicted together the same way.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "actors/protocol.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/micro_batch.hpp"

namespace shoal {

/// Requests a loading host queues at most; more are refused at once (resource_exhausted), so a
/// storm on a cold model cannot pile up unbounded work behind one load.
inline constexpr size_t model_host_max_waiting = 256;

struct model_host_state {
  model_ptr loaded;  // null while loading
  micro_batcher batcher;
  std::vector<std::pair<caf::typed_response_promise<infer_result>, infer_request>> waiting;
  static inline const char* name = "model_host";
};

model_host_actor::behavior_type model_host(model_host_actor::stateful_pointer<model_host_state> self,
                                           model_loader_actor loader, model_id id,
                                           uint32_t version,
                                           caf::timespan load_timeout, router_actor router,
                                           uint64_t memory_budget, size_t micro_batch_texts,
                                           std::shared_ptr<node_metrics> metrics);

/// Returns the predictions `m` makes for `req` (the pure part of a host's work).
infer_result run_inference(const model& m, const infer_request& req, uint32_t version);

}  // namespace shoal
