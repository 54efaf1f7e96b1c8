// front_door: a node's request path as plain code. Every front end (HTTP, ZeroMQ, and the gRPC one
// to come) decodes a request on its own I/O thread and hands it here; the front door decides, in
// this order, and counts every answer and refusal in node_metrics:
//   authenticate  the caller's key (access.hpp)                                      401
//   admit         the node: draining (503), max_in_flight (429), this thread's lag
//                 (429 "overloaded", overload.hpp); before the body is decoded, so a
//                 refusal costs little
//   authorize     the caller may reach this model (access.hpp)                        403
//   tenant        the tenant's rate and in-flight limits (tenants.hpp)                 429
//   resolve       label -> version through the serving view (serving_view.hpp)         404
//   answer        a loaded snapshot is predicted on this thread, micro-batched with the
//                 round's other requests (micro_batch.hpp; 429 when a shedding thread's
//                 round is full); a snapshot held only by other nodes is forwarded to
//                 one of them on the data plane (peer_port); anything else goes to the
//                 actors through cluster_port (a load here)
// A request another node forwarded here (serve_peer) is admitted and answered the same way, but
// never forwarded again: the asker chose this node as a holder.
// Nothing here knows HTTP, protobuf or CAF: front ends render the outcome, and the actor system
// sits behind cluster_port.
//
// Threading: one front_door is shared by every front-end thread. Its members are set at start and
// read-only afterwards, except the draining flag (set once by the main thread on SIGTERM). The
// state a request touches per thread (its micro-batcher, its lag-based admission, its cached
// serving view) is thread_local in front_door.cpp: a request is predicted and answered on the
// thread that read it, so no lock is taken per request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/access.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/serving_view.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/serving/traffic.hpp"
#include "shoal/serving/trials.hpp"
#include "shoal/serving/version_stats.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// Everything a front end can get back for one api_call.
using api_reply =
    std::variant<status, infer_result, push_result, model_entry, std::vector<model_entry>,
                 label_result, node_status, cluster_status, validation_set_result,
                 validation_report_info, policy_result, trial_info, forget_result>;

/// Called exactly once with the reply; invoked on an actor thread, so it must not block (front
/// ends post the reply onto their own I/O threads).
using api_callback = std::function<void(api_reply)>;

/// The actors behind the front door: whatever a front-end thread cannot answer itself.
class cluster_port {
 public:
  virtual ~cluster_port() = default;
  /// Hands `call` to the actor system; `done` runs exactly once, later, on an actor thread.
  virtual void call(api_call call, api_callback done) = 0;
};

/// Where a front end forwards an inference held by other nodes: the data plane (wire/
/// data_plane.hpp). It tries `targets` in order, retrying the next at once when one refuses,
/// fails, dies or times out, and calls `done` exactly once, on an I/O thread, with the first
/// answer or the last failure. A client's own mistake (invalid_argument, not_found) is answered
/// at once: every holder would say the same.
class peer_port {
 public:
  virtual ~peer_port() = default;
  virtual void forward(std::vector<peer_info> targets, infer_request req,
                       std::function<void(result<infer_result>)> done) = 0;
};

/// How one front end's threads work, as the front door needs to know.
struct front_end {
  /// Names the thread in refusal messages ("thread", "ZeroMQ thread").
  const char* thread_name = "thread";
  /// Runs `fn` later on this thread, after the other requests of its round; returns false when it
  /// cannot (the front door then runs it at once). Null: the front end ends every round itself
  /// (front_door::end_round after each batch of requests it read).
  bool (*defer)(std::function<void()> fn) = nullptr;
  /// Whether a refusal by this thread's lag is sent after the round's answers (HTTP: each is a
  /// socket write, and an accepted request of the round should not wait for all of them).
  bool refusals_after_round = false;
  /// Whether the thread keeps its serving view between requests (a busy I/O thread, which
  /// front_door::refresh_view keeps fresh) or reads one per request (a thread that may idle for
  /// hours and would keep unloaded models alive with an old view).
  bool keep_view = true;
};

/// What became of one inference.
struct infer_outcome {
  enum class kind : uint8_t {
    answered,  // `answer` holds the result
    failed,    // `error`: the request's own problem (400, 403, 404, ...) or a failure (5xx)
    limited,   // `error`: a limit was reached (429) or the node is stopping (503); the client
               // should wait before it retries (HTTP: Retry-After, the connection paused)
    shed,      // `error`: this thread is behind (429); retry at once elsewhere or a moment later
  };
  kind what = kind::answered;
  infer_result answer;
  status error;
};

/// Called exactly once per inference, on the front-end thread or on an actor thread.
using infer_done = std::function<void(infer_outcome)>;

/// An inference the node took: counted in flight until the last copy is dropped (when it has been
/// answered), and timed from its admission.
struct inference_pass {
  std::shared_ptr<in_flight_counter::guard> counted;
  std::chrono::steady_clock::time_point start;
};

/// Settings (node_config has their documentation and defaults).
struct front_door_settings {
  size_t max_in_flight = 1024;     // inferences answered at once; more are refused
  size_t max_batch = 1024;         // texts in one inference; more are refused (400)
  size_t micro_batch_texts = 64;   // 0: predict each request alone
  double max_queue_ms = 100;       // a thread whose requests wait longer sheds; 0: never (a
                                   // request's own Shoal-Max-Queue-Ms still counts)
  /// A loaded snapshot is answered on the front-end thread for batches of at most this many texts
  /// (a few microseconds each); larger batches go to the model host, so one big batch does not
  /// hold up the other connections of an I/O thread.
  size_t inline_max_texts = 64;
};

/// The request path (see the file comment). Non-copyable; shared by the front ends.
class front_door {
 public:
  /// `admission` may be null (no tenant has a rate or in-flight limit); `peers` may be null (the
  /// node never forwards on a data plane: everything not loaded goes to the actors). Every other
  /// pointer is required and outlives nothing: the front door holds them.
  front_door(front_door_settings settings, std::shared_ptr<const serving_board> board,
             std::shared_ptr<const key_board> keys, std::shared_ptr<in_flight_counter> in_flight,
             std::shared_ptr<tenant_admission> admission, std::shared_ptr<node_metrics> metrics,
             std::shared_ptr<cluster_port> cluster, std::shared_ptr<peer_port> peers = nullptr,
             std::shared_ptr<traffic_meter> traffic = nullptr,
             std::shared_ptr<trial_meter> trials = nullptr);

  front_door(const front_door&) = delete;
  front_door& operator=(const front_door&) = delete;

  /// Returns who holds `key` (none sent: nullopt), or unauthenticated saying how to send one
  /// (`how`, e.g. "an 'Authorization: Bearer KEY' header").
  result<principal> authenticate(std::optional<std::string_view> key, const char* how) const;

  /// Admits one inference to this node before it is decoded. Returns its pass, or nullopt after
  /// the refusal went to the infer_done that `make_refused()` returns: 503 while draining, 429
  /// over max_in_flight or while this thread sheds (a shed refusal after the round's answers where
  /// `fe` asks for that). make_refused is called, at once, only for a refusal: an admitted request
  /// builds no callback here (one allocation per request saved on the hot path). `budget_ms`:
  /// the longest the client said the request may wait for this thread (Shoal-Max-Queue-Ms);
  /// 0: it said nothing, max_queue_ms applies (overload.hpp).
  template <class MakeRefused>
  std::optional<inference_pass> admit(const front_end& fe, double budget_ms,
                                      MakeRefused&& make_refused) {
    inference_pass pass{std::make_shared<in_flight_counter::guard>(in_flight_->track()),
                        std::chrono::steady_clock::now()};
    if (auto why = admission_refusal(budget_ms)) {
      refuse_admission(fe, std::move(*why), infer_done(make_refused()));
      return std::nullopt;
    }
    return pass;
  }

  /// Answers one admitted inference: batch size, authorize, tenant limits, resolve, then predict on this
  /// thread or hand it to the cluster. Calls `done` exactly once, now or later, on this thread or
  /// on an actor thread, and counts the answer for its model in the metrics.
  void infer(inference_pass pass, const principal& who, infer_request req, const front_end& fe,
             infer_done done);

  /// Answers an inference another node forwarded here (already authorized there): admitted like
  /// a client's (draining, max_in_flight, this thread's lag), answered from a loaded snapshot on
  /// this thread or through the actors, never forwarded again. `done` runs exactly once.
  void serve_peer(infer_request req, const front_end& fe, infer_done done);

  /// Any other call: authorize, then hand it to the cluster. A model list is cut down to what
  /// `who` may see. `done` runs exactly once (on this thread when refused, else an actor thread).
  void call(const principal& who, api_call call, api_callback done);

  /// Returns /metrics in Prometheus' text format, with the in-flight gauges of now.
  std::string render_metrics() const;

  /// Returns this node's counts of one model (the V2 statistics extension).
  node_metrics::model_counts model_counts(const model_id& id) const {
    return metrics_->counts_of(id.tenant, id.model);
  }
  /// Returns this node's counts per version: of one model, or of every model (the console).
  std::vector<version_figures> version_counts(const model_id& id) const {
    return versions_->read(id);
  }
  std::map<model_id, std::vector<version_figures>> version_counts() const {
    return versions_->read_all();
  }

  /// From now on, inferences are refused with 503 and readiness is false. Idempotent.
  void start_draining() { draining_.store(true, std::memory_order_relaxed); }
  /// Returns whether the node is stopping.
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // ---- per-thread hooks: call them on the front-end thread they are about ----

  /// Answers the micro-batched requests of this thread's round (the ZeroMQ thread calls it after
  /// each round of requests it read; HTTP threads through front_end::defer).
  static void end_round();
  /// Feeds this thread's lag probe to its load shedding (overload.hpp): `lag_ms` late, or idle.
  void on_lag(double lag_ms, bool idle);
  /// Reads the newest serving view into this thread's cache, so an idle thread lets go of models
  /// the cache has unloaded.
  void refresh_view();

 private:
  // Why the node takes no inference now (counted in the metrics), or nullopt. Called with the
  // request already counted in flight.
  std::optional<infer_outcome> admission_refusal(double budget_ms = 0);
  // Sends an admission refusal: a shed one after the round where `fe` asks for that.
  void refuse_admission(const front_end& fe, infer_outcome refusal, infer_done refused);
  void answer_inline(const std::shared_ptr<const model>& m, uint32_t version, infer_request req,
                     const front_end& fe, infer_done done,
                     std::shared_ptr<const model> shadow = nullptr, uint32_t shadow_version = 0,
                     bool time_served = false);
  // Wraps `done` to count the answer of a watched version (when `in` says it is one) that is
  // not answered on this thread (an inline answer never fails: counted at once, no wrapper).
  infer_done count_trial(const inline_target& in, const model_id& id, infer_done done);
  // Hands a request this thread cannot answer to the actors.
  void answer_by_actors(infer_request req, infer_done done);
  // Notes a forward of `key` on this thread (traffic-following copies read the counts).
  void note_forward(const snapshot_key& key);

  // Tells this door's per-thread state from another's (tests make several, possibly at the same
  // address one after the other): unique in the process.
  const uint64_t id_;
  const front_door_settings settings_;
  const std::shared_ptr<const serving_board> board_;
  const std::shared_ptr<const key_board> keys_;
  const std::shared_ptr<in_flight_counter> in_flight_;
  const std::shared_ptr<tenant_admission> admission_;
  const std::shared_ptr<node_metrics> metrics_;
  const std::shared_ptr<cluster_port> cluster_;
  const std::shared_ptr<peer_port> peers_;
  const std::shared_ptr<traffic_meter> traffic_;  // may be null: forwards are not counted
  const std::shared_ptr<trial_meter> trials_;     // may be null: no shadow, canary counts
  // Its clients' requests per version (the console's charts); the wrappers in infer() hold it.
  const std::shared_ptr<version_stats> versions_ = std::make_shared<version_stats>();
  // Set once by the main thread on SIGTERM, read by every front-end thread: an atomic flag (a
  // message per request to ask would cost more than the request).
  std::atomic<bool> draining_{false};
};

}  // namespace shoal
