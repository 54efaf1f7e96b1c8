#include "shoal/serving/front_door.hpp"

#include <cstdio>
#include <map>
#include <utility>

#include "shoal/serving/micro_batch.hpp"
#include "shoal/serving/overload.hpp"

namespace shoal {
namespace {

// What a front-end thread keeps between requests: its micro-batcher, its lag-based admission and
// its serving view. Owned by the thread (thread_local), so a request takes no lock. It belongs to
// one front door at a time: a thread that serves another door (tests make several) starts afresh.
struct thread_state {
  uint64_t owner = 0;  // the id of the front door it belongs to
  std::optional<micro_batcher> batcher;
  std::optional<admission_control> admission;
  serving_board::cache view;
  // Forwards of this thread since it last added them to the traffic meter (once a second).
  std::map<snapshot_key, uint64_t> forwards;
  int64_t forwards_since_ms = 0;
};
thread_local thread_state this_thread;

std::atomic<uint64_t> next_door_id{1};

thread_state& state_for(uint64_t door) {
  if (this_thread.owner != door) {
    this_thread.owner = door;
    this_thread.batcher.reset();
    this_thread.admission.reset();
    this_thread.view = {};
    this_thread.forwards.clear();
  }
  return this_thread;
}

admission_control& thread_admission(thread_state& t, double max_queue_ms) {
  if (!t.admission) t.admission.emplace(max_queue_ms);
  return *t.admission;
}

micro_batcher& thread_batcher(thread_state& t, size_t batch_texts) {
  if (!t.batcher) t.batcher.emplace(batch_texts);
  return *t.batcher;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The mean top-1 score of an answer's rows (text models), or -1 when it has none (a tensor
// model's outputs): the console's confidence per version.
double mean_top1(const infer_result& r) {
  double sum = 0;
  size_t n = 0;
  for (const auto& row : r.rows) {
    if (row.empty()) continue;
    sum += row.front().score;
    ++n;
  }
  return n == 0 ? -1.0 : sum / static_cast<double>(n);
}

infer_outcome refusal(infer_outcome::kind what, status why) {
  infer_outcome out;
  out.what = what;
  out.error = std::move(why);
  return out;
}

// What an answer from elsewhere (the actors, a peer) means to the client: the result, or a
// failure; a full queue there (a loading model's, a holder's) is a refusal like this node's own.
infer_outcome outcome_of(result<infer_result> r) {
  if (!r) {
    status err = r.error();
    const auto what = err.code() == status_code::resource_exhausted ? infer_outcome::kind::limited
                                                                     : infer_outcome::kind::failed;
    return refusal(what, std::move(err));
  }
  infer_outcome out;
  out.answer = std::move(*r);
  return out;
}

// The HTTP status an outcome is counted under in /metrics.
int metrics_status(const infer_outcome& o) {
  return o.what == infer_outcome::kind::answered ? 200 : http_status(o.error.code());
}

// Where the delay a thread holds now came from, for refusal messages.
std::string budget_source(const admission_control& a) {
  char why[120];
  if (a.target_ms() == a.default_ms()) {
    std::snprintf(why, sizeof(why), "max_queue_ms %.1f", a.target_ms());
  } else {
    std::snprintf(why, sizeof(why), "the requests' Shoal-Max-Queue-Ms %.1f", a.target_ms());
  }
  return why;
}

status lag_refusal(const admission_control& a) {
  char why[240];
  std::snprintf(why, sizeof(why),
                "this node is overloaded: requests wait %.1f ms for its threads (%s); retry in "
                "a moment",
                a.last_lag_ms(), budget_source(a).c_str());
  return status::resource_exhausted(why);
}

// Why this thread's current round takes no more micro-batched work, or ok: while the thread is
// shedding (it is behind), a round takes no more prediction work than half of the delay it holds
// (every request of the round waits for all of it, and for the round before). A round with
// nothing pending always takes its first request; a thread that keeps up takes whole rounds (a
// burst is not a queue); without micro-batching (no batcher on this thread) there are no rounds
// to bound.
status round_refusal(thread_state& t, double max_queue_ms, size_t more_texts,
                     const char* thread_name) {
  if (!t.batcher || t.batcher->pending_texts() == 0) return status::ok();
  const auto& a = thread_admission(t, max_queue_ms);
  if (!a.shedding() || !a.has_target()) return status::ok();
  const double cost =
      t.batcher->pending_cost_ms() + static_cast<double>(more_texts) * t.batcher->ms_per_text();
  if (cost <= a.target_ms() / 2) return status::ok();
  char why[300];
  std::snprintf(why, sizeof(why),
                "this node is overloaded: the requests its %s is answering now take %.1f ms "
                "(%s); retry in a moment",
                thread_name, t.batcher->pending_cost_ms(), budget_source(a).c_str());
  return status::resource_exhausted(why);
}

// Adds this thread's forward counts to the meter and starts them again at `now_ms`.
void add_forwards(thread_state& t, traffic_meter& meter, int64_t now_ms) {
  meter.add(t.forwards);
  t.forwards.clear();
  t.forwards_since_ms = now_ms;
}

void flush_this_thread() {
  if (this_thread.batcher) this_thread.batcher->flush();
}

// Arranges the flush of a batcher that was empty before: through the front end's deferral (after
// the other requests of the round), or at once when it has none that works. A front end without
// deferral ends its rounds itself (front_door::end_round).
void schedule_flush(const front_end& fe, micro_batcher& b) {
  if (fe.defer != nullptr && !fe.defer(flush_this_thread)) b.flush();
}

// A shed refusal: after the round's answers where the front end asks for that (a 429 a round
// later is still fast, about a millisecond in a storm; an accepted request that waited for every
// refusal of its round was not), else at once.
void refuse_shed(thread_state& t, size_t batch_texts, const front_end& fe, const infer_done& done,
                 status why) {
  infer_outcome out = refusal(infer_outcome::kind::shed, std::move(why));
  if (batch_texts == 0 || !fe.refusals_after_round) return done(std::move(out));
  micro_batcher& b = thread_batcher(t, batch_texts);
  if (b.after_flush([done, out = std::move(out)]() mutable { done(std::move(out)); })) {
    schedule_flush(fe, b);
  }
}

}  // namespace

front_door::front_door(front_door_settings settings, std::shared_ptr<const serving_board> board,
                       std::shared_ptr<const key_board> keys,
                       std::shared_ptr<in_flight_counter> in_flight,
                       std::shared_ptr<tenant_admission> admission,
                       std::shared_ptr<node_metrics> metrics, std::shared_ptr<cluster_port> cluster,
                       std::shared_ptr<peer_port> peers, std::shared_ptr<traffic_meter> traffic,
                       std::shared_ptr<trial_meter> trials)
    : id_(next_door_id.fetch_add(1, std::memory_order_relaxed)),
      settings_(settings),
      board_(std::move(board)),
      keys_(std::move(keys)),
      in_flight_(std::move(in_flight)),
      admission_(std::move(admission)),
      metrics_(std::move(metrics)),
      cluster_(std::move(cluster)),
      peers_(std::move(peers)),
      traffic_(std::move(traffic)),
      trials_(std::move(trials)) {}

infer_done front_door::count_trial(const inline_target& in, const model_id& id, infer_done done) {
  if (!in.on_trial || !trials_) return done;
  return [done = std::move(done), trials = trials_, id, version = in.version](infer_outcome o) {
    trials->observe_served(id, version, metrics_status(o) >= 500);
    done(std::move(o));
  };
}

result<principal> front_door::authenticate(std::optional<std::string_view> key,
                                           const char* how) const {
  return shoal::authenticate(keys_->current_here(), key, how);
}

std::optional<infer_outcome> front_door::admission_refusal(double budget_ms) {
  if (draining()) {
    metrics_->count_refusal(refusal_reason::draining);
    return refusal(infer_outcome::kind::limited,
                   status::unavailable("this node is stopping; send the request to another node"));
  }
  // This request included; the other threads' counts as read within the last millisecond.
  const uint32_t now =
      in_flight_->now_recent(std::chrono::steady_clock::now(), std::chrono::milliseconds(1));
  if (now > settings_.max_in_flight) {
    metrics_->count_refusal(refusal_reason::node_in_flight);
    return refusal(infer_outcome::kind::limited,
                   status::resource_exhausted(
                       "this node is at capacity (" + std::to_string(now - 1) +
                       " inference requests in flight, max_in_flight " +
                       std::to_string(settings_.max_in_flight) + "); retry in a moment"));
  }
  if (auto& shed = thread_admission(state_for(id_), settings_.max_queue_ms);
      !shed.admit(budget_ms)) {
    metrics_->count_refusal(refusal_reason::overload);
    return refusal(infer_outcome::kind::shed, lag_refusal(shed));
  }
  return std::nullopt;
}

void front_door::refuse_admission(const front_end& fe, infer_outcome refusal, infer_done refused) {
  if (refusal.what != infer_outcome::kind::shed) return refused(std::move(refusal));
  refuse_shed(this_thread, settings_.micro_batch_texts, fe, refused, std::move(refusal.error));
}

void front_door::infer(inference_pass pass, const principal& who, infer_request req,
                       const front_end& fe, infer_done done) {
  // From here every answer is counted for the model: the refusals below at once, every later
  // answer by the wrapper that also holds the pass and the tenant ticket until then.
  auto refuse = [&](infer_outcome::kind what, status why) {
    infer_outcome o = refusal(what, std::move(why));
    metrics_->observe_inference(req.id.tenant, req.id.model, metrics_status(o),
                                seconds_since(pass.start));
    done(std::move(o));
  };
  if (req.batch_size() > settings_.max_batch) {
    return refuse(infer_outcome::kind::failed,
                  status::invalid_argument("a batch of " + std::to_string(req.batch_size()) +
                                           (req.inputs.empty() ? " texts" : " rows") +
                                           " is over this node's limit of " +
                                           std::to_string(settings_.max_batch) +
                                           " (max_batch): split it into several requests"));
  }
  if (status allowed = authorize(who, req); !allowed) {
    return refuse(infer_outcome::kind::failed, std::move(allowed));
  }
  std::shared_ptr<tenant_admission::ticket> held;
  if (admission_) {
    tenant_admission::limit over = tenant_admission::limit::rate;
    auto ticket = admission_->admit(req.id.tenant, steady_now_ms(), &over);
    if (!ticket) {
      metrics_->count_refusal(over == tenant_admission::limit::in_flight
                                  ? refusal_reason::tenant_in_flight
                                  : refusal_reason::tenant_rate);
      return refuse(infer_outcome::kind::limited, ticket.error());
    }
    held = std::make_shared<tenant_admission::ticket>(std::move(*ticket));
  }
  thread_state& t = state_for(id_);
  serving_board::cache call_view;  // a view for this call only (see front_end::keep_view)
  const serving_view& view = board_->read(fe.keep_view ? t.view : call_view);
  inline_target in = find_inline(view, req, settings_.inline_max_texts);
  done = [done = std::move(done), metrics = metrics_, versions = versions_, id = req.id,
          version = in.version, start = pass.start, counted = std::move(pass.counted),
          held = std::move(held)](infer_outcome o) {
    const double seconds = seconds_since(start);
    const int code = metrics_status(o);
    metrics->observe_inference(id.tenant, id.model, code, seconds);
    const bool answered = o.what == infer_outcome::kind::answered;
    // A model that does not exist (a typo) gets no counts, as in /metrics.
    if (code != 404) {
      versions->observe(id, answered && o.answer.version != 0 ? o.answer.version : version,
                        code >= 400, seconds, answered ? mean_top1(o.answer) : -1);
    }
    done(std::move(o));
  };
  if (in.error) return done(refusal(infer_outcome::kind::failed, std::move(*in.error)));
  if (in.m) {
    metrics_->served_local.fetch_add(1, std::memory_order_relaxed);
    if (in.on_trial && trials_) trials_->observe_served(req.id, in.version, false);
    return answer_inline(in.m, in.version, std::move(req), fe, std::move(done),
                         std::move(in.shadow), in.shadow_version, in.on_trial);
  }
  req.version = in.version;
  done = count_trial(in, req.id, std::move(done));
  if (peers_ && in.holders != nullptr && view.peers->held_elsewhere(*in.holders)) {
    auto targets = view.peers->attempts(req.id.str(), *in.holders);
    if (!targets.empty()) {
      metrics_->forwarded.fetch_add(1, std::memory_order_relaxed);
      note_forward({req.id, in.version});
      // The label is resolved here: every holder answers the same version.
      req.label.clear();
      return peers_->forward(std::move(targets), std::move(req),
                             [done = std::move(done)](result<infer_result> r) {
                               done(outcome_of(std::move(r)));
                             });
    }
    // No live holder with a data plane in this thread's view: the actors know more (a fresh
    // member view, the holders' BASP links).
  }
  metrics_->served_local.fetch_add(1, std::memory_order_relaxed);
  answer_by_actors(std::move(req), std::move(done));
}

void front_door::serve_peer(infer_request req, const front_end& fe, infer_done done) {
  metrics_->served_for_peers.fetch_add(1, std::memory_order_relaxed);
  const auto start = std::chrono::steady_clock::now();
  auto counted = std::make_shared<in_flight_counter::guard>(in_flight_->track());
  if (auto why = admission_refusal()) return done(std::move(*why));
  // Counted in the model's metrics here too: this node did the work.
  done = [done = std::move(done), metrics = metrics_, id = req.id, start,
          counted = std::move(counted)](infer_outcome o) {
    metrics->observe_inference(id.tenant, id.model, metrics_status(o), seconds_since(start));
    done(std::move(o));
  };
  thread_state& t = state_for(id_);
  serving_board::cache call_view;
  inline_target in =
      find_inline(board_->read(fe.keep_view ? t.view : call_view), req, settings_.inline_max_texts);
  if (in.error) return done(refusal(infer_outcome::kind::failed, std::move(*in.error)));
  if (in.m) {
    if (in.on_trial && trials_) trials_->observe_served(req.id, in.version, false);
    return answer_inline(in.m, in.version, std::move(req), fe, std::move(done),
                         std::move(in.shadow), in.shadow_version, in.on_trial);
  }
  req.version = in.version;
  done = count_trial(in, req.id, std::move(done));
  answer_by_actors(std::move(req), std::move(done));
}

void front_door::answer_by_actors(infer_request req, infer_done done) {
  cluster_->call(std::move(req), [done = std::move(done)](api_reply reply) {
    if (auto* err = std::get_if<status>(&reply)) return done(outcome_of(std::move(*err)));
    done(outcome_of(std::move(std::get<infer_result>(reply))));
  });
}

void front_door::answer_inline(const std::shared_ptr<const model>& m, uint32_t version,
                               infer_request req, const front_end& fe, infer_done done,
                               std::shared_ptr<const model> shadow, uint32_t shadow_version,
                               bool time_served) {
  if (status fits = check_fits(*m, req, version); !fits) {
    return done(refusal(infer_outcome::kind::failed, std::move(fits)));
  }
  thread_state& t = this_thread;
  const size_t batch_texts = settings_.micro_batch_texts;
  if (status full = round_refusal(t, settings_.max_queue_ms, req.batch_size(), fe.thread_name);
      !full) {
    metrics_->count_refusal(refusal_reason::overload);
    return refuse_shed(t, batch_texts, fe, done, std::move(full));
  }
  metrics_->cache_hits.fetch_add(1, std::memory_order_relaxed);
  if (!req.inputs.empty()) {
    // A tensor model: run now, or stacked with this round's like requests (micro_batch.hpp).
    if (batch_texts == 0 || !micro_batcher::batchable(req.inputs)) {
      return done(outcome_of(answer_tensors(*m, req, version)));
    }
    auto answer = [done = std::move(done), id = req.id,
                   version](result<std::vector<tensor>> outputs) {
      done(outcome_of(tensor_answer(id, version, std::move(outputs))));
    };
    micro_batcher& b = thread_batcher(t, batch_texts);
    if (b.add_tensors(m, std::move(req.inputs), std::move(req.outputs), std::move(answer))) {
      schedule_flush(fe, b);
    }
    return;
  }
  infer_outcome base;
  base.answer.id = req.id;
  base.answer.version = version;
  const size_t k = req.top_k == 0 ? 1 : req.top_k;
  // Predicts now, or with this thread's micro-batch, and hands the rows to `answer`.
  auto predict = [&](auto answer) {
    if (batch_texts == 0) return answer(m->predict_batch(req.texts, k));
    micro_batcher& b = thread_batcher(t, batch_texts);
    if (b.add(m, k, std::move(req.texts), std::move(answer))) schedule_flush(fe, b);
  };
  if (shadow && trials_) {
    // Shadow: the answer goes first; then, on this thread, the trial version predicts the
    // request's texts (at most 4), timed, and the meter counts whether its top label agrees with
    // the answer's. Under a watch the answering version predicts again too, timed the same way,
    // for the p99 rule (its time inside a micro-batch is not its own).
    const size_t n = std::min<size_t>(req.texts.size(), 4);
    auto answer = [done = std::move(done), base = std::move(base), served = m,
                   shadow = std::move(shadow), shadow_version, trials = trials_, time_served,
                   texts =
                       std::vector<std::string>(req.texts.begin(), req.texts.begin() + long(n))](
                      std::vector<std::vector<prediction>> rows) mutable {
      using clock = std::chrono::steady_clock;
      const model_id id = base.answer.id;
      const uint32_t version = base.answer.version;
      std::vector<prediction> tops;  // the answer's top label per compared text
      for (size_t i = 0; i < texts.size(); ++i) {
        tops.push_back(i < rows.size() && !rows[i].empty() ? rows[i][0] : prediction{});
      }
      base.answer.rows = std::move(rows);
      done(std::move(base));
      for (size_t i = 0; i < texts.size(); ++i) {
        double served_us = 0;
        if (time_served) {
          const auto t0 = clock::now();
          (void)served->predict(texts[i], 1);
          served_us = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
        }
        const auto t1 = clock::now();
        auto b = shadow->predict(texts[i], 1);
        const double shadow_us =
            std::chrono::duration<double, std::micro>(clock::now() - t1).count();
        const std::string none;
        const bool agreed = tops[i].label == (b.empty() ? none : b[0].label);
        trials->observe_shadow(id, version, shadow_version, agreed, tops[i].score,
                               b.empty() ? 0.0 : b[0].score, served_us, shadow_us);
      }
    };
    return predict(std::move(answer));
  }
  auto answer = [done = std::move(done), base = std::move(base)](
                    std::vector<std::vector<prediction>> rows) mutable {
    base.answer.rows = std::move(rows);
    done(std::move(base));
  };
  predict(std::move(answer));
}

void front_door::call(const principal& who, api_call call, api_callback done) {
  if (status allowed = authorize(who, call); !allowed) return done(std::move(allowed));
  // Who asks, as the node knows it (a key's name), for the records; never the client's word.
  const std::string by = who.open ? std::string() : who.display_name();
  std::visit(
      [&by](auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, push_request>) {
          c.pushed_with = by;
        } else if constexpr (std::is_same_v<T, label_request> ||
                             std::is_same_v<T, validation_set_request> ||
                             std::is_same_v<T, policy_request> ||
                             std::is_same_v<T, trial_request> ||
                             std::is_same_v<T, forget_request>) {
          c.by = by;
        }
      },
      call);
  cluster_->call(std::move(call), [who, done = std::move(done)](api_reply reply) {
    if (auto* all = std::get_if<std::vector<model_entry>>(&reply)) {
      return done(visible_models(who, std::move(*all)));
    }
    done(std::move(reply));
  });
}

std::string front_door::render_metrics() const {
  node_metrics::gauges now;
  now.in_flight = in_flight_->now();
  now.max_in_flight = settings_.max_in_flight;
  std::string out = metrics_->render(now);
  if (trials_) trials_->render(out);
  return out;
}

void front_door::end_round() { flush_this_thread(); }

void front_door::on_lag(double lag_ms, bool idle) {
  auto& a = thread_admission(state_for(id_), settings_.max_queue_ms);
  if (idle) {
    a.idle();
  } else {
    a.sample(lag_ms);
  }
}

void front_door::refresh_view() {
  thread_state& t = state_for(id_);
  board_->read(t.view);
  if (traffic_ && !t.forwards.empty()) add_forwards(t, *traffic_, steady_now_ms());
}

void front_door::note_forward(const snapshot_key& key) {
  if (!traffic_) return;
  thread_state& t = this_thread;
  ++t.forwards[key];
  // A thread without ticks (the ZeroMQ one) adds its counts here, at most once a second.
  const int64_t now = steady_now_ms();
  if (now - t.forwards_since_ms >= 1000) add_forwards(t, *traffic_, now);
}

}  // namespace shoal
