#include "actors/node.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <cerrno>
#include <atomic>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "actors/catalog_actor.hpp"
#include "actors/gateway.hpp"
#include "actors/membership_actor.hpp"
#include "actors/model_loader.hpp"
#include "actors/protocol.hpp"
#include "actors/router.hpp"
#include "shoal/base/host_memory.hpp"
#include "shoal/base/log.hpp"
#include "shoal/serving/access.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/micro_batch.hpp"
#include "shoal/serving/model_cache.hpp"
#include "shoal/serving/overload.hpp"
#include "shoal/serving/serving_view.hpp"
#include "shoal/store/catalog_journal.hpp"
#include "shoal/store/snapshot_store.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/http_server.hpp"
#include "shoal/wire/v2_codec.hpp"
#include "shoal/wire/zmq_client.hpp"
#include "shoal/wire/zmq_server.hpp"

namespace shoal {
namespace {

http_reply json_reply(int code, std::string body) {
  http_reply r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

http_reply error_reply(const status& s) {
  return json_reply(http_status(s.code()), render_error(s.message()));
}

// Front ends answer an inference on their own thread when its snapshot is loaded and the batch
// is at most this many texts (a few microseconds each); larger batches go to the model host, so
// one big batch does not hold up the other connections of an I/O thread.
constexpr size_t inline_max_texts = 64;

// Each front-end thread's cached serving view (see serving_board::read).
thread_local serving_board::cache board_cache;

// Each front-end thread's micro-batches (micro_batch.hpp). Per thread, so no lock: a request is
// predicted and answered on the thread that read it.
thread_local std::optional<micro_batcher> thread_batcher;

// Predicts `texts` with `m` at top-k `k` and calls `done` with the rows: through this thread's
// micro-batcher when batching is on (flushed by `schedule_flush`, which must run flush_thread_batch
// later on this thread), else at once.
void predict_on_front_end(size_t batch_texts, const std::shared_ptr<const model>& m, size_t k,
                          std::vector<std::string> texts, micro_batcher::on_rows done,
                          const std::function<bool()>& schedule_flush) {
  if (batch_texts == 0) {
    done(m->predict_batch(texts, k));
    return;
  }
  if (!thread_batcher) thread_batcher.emplace(batch_texts);
  if (thread_batcher->add(m, k, std::move(texts), std::move(done)) && !schedule_flush()) {
    thread_batcher->flush();
  }
}

// Each front-end thread's load shedding (overload.hpp), fed by the server's lag probe.
thread_local std::optional<admission_control> thread_admission;

admission_control& this_thread_admission(double max_queue_ms) {
  if (!thread_admission) thread_admission.emplace(max_queue_ms);
  return *thread_admission;
}

// Why this thread's current round takes no more micro-batched work, or ok: while the thread is
// shedding (it is behind), a round takes no more prediction work than half of max_queue_ms (every
// request of the round waits for all of it, and for the round before). A round with nothing
// pending always takes its first request; a thread that keeps up takes whole rounds (a burst is
// not a queue); without micro-batching (no batcher on this thread) there are no rounds to bound.
// `thread_name` says which front end refuses ("thread", "ZeroMQ thread").
status round_refusal(double max_queue_ms, size_t more_texts, const char* thread_name) {
  if (max_queue_ms <= 0 || !thread_batcher || thread_batcher->pending_texts() == 0 ||
      !this_thread_admission(max_queue_ms).shedding()) {
    return status::ok();
  }
  const double cost = thread_batcher->pending_cost_ms() +
                      static_cast<double>(more_texts) * thread_batcher->ms_per_text();
  if (cost <= max_queue_ms / 2) return status::ok();
  char why[220];
  std::snprintf(why, sizeof(why),
                "this node is overloaded: the requests its %s is answering now take %.1f ms "
                "(max_queue_ms %.1f); retry in a moment",
                thread_name, thread_batcher->pending_cost_ms(), max_queue_ms);
  return status::resource_exhausted(why);
}

void flush_thread_batch() {
  if (thread_batcher) thread_batcher->flush();
}

// A shed refusal on an HTTP thread: sent after the round's answers (micro_batcher::after_flush),
// or at once without micro-batching. A 429 a round later is still fast (about a millisecond in a
// storm); an accepted request that waited for every refusal of its round was not.
void refuse_after_round(size_t batch_texts, const http_respond& respond, http_reply reply) {
  if (batch_texts == 0) return respond(std::move(reply));
  if (!thread_batcher) thread_batcher.emplace(batch_texts);
  if (thread_batcher->after_flush([respond, reply = std::move(reply)]() mutable {
        respond(std::move(reply));
      }) &&
      !http_defer(flush_thread_batch)) {
    thread_batcher->flush();
  }
}

// Sends one call to the gateway; `on_reply` runs on an actor thread and must not block.
void call_gateway(const gateway_actor& gw, api_call call, api_callback on_reply) {
  caf::anon_send(gw, call_atom_v, std::move(call), std::move(on_reply));
}

http_reply unauthenticated_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// What every front-end thread shares besides the board: the keys, the request count and whether
// the node is stopping. `draining` is set once by the main thread on SIGTERM and only read by the
// front ends (an atomic flag: a message per request to ask would cost more than the request).
struct front_door {
  std::shared_ptr<const key_board> keys;
  std::shared_ptr<in_flight_counter> in_flight;
  size_t max_in_flight = 1024;
  std::atomic<bool> draining{false};
  std::shared_ptr<tenant_admission> admission;  // null: no tenant has a rate or in-flight limit
  std::shared_ptr<node_metrics> metrics;         // GET /metrics
};

// The time since `start`, in seconds.
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Admits one inference of `tenant` under its limits; a null ticket when nobody has limits. A
// refusal is counted in /metrics under the limit that made it.
result<std::shared_ptr<tenant_admission::ticket>> admit_tenant(const front_door& door,
                                                               const std::string& tenant) {
  if (!door.admission) return std::shared_ptr<tenant_admission::ticket>();
  tenant_admission::limit over = tenant_admission::limit::rate;
  auto t = door.admission->admit(tenant, steady_now_ms(), &over);
  if (!t) {
    door.metrics->count_refusal(over == tenant_admission::limit::in_flight
                                    ? refusal_reason::tenant_in_flight
                                    : refusal_reason::tenant_rate);
    return t.error();
  }
  return std::make_shared<tenant_admission::ticket>(std::move(*t));
}

// Why an inference cannot be taken now, or ok: 503 while draining, 429 over max_in_flight (each
// counted in /metrics). Called with the request already counted.
status admission_check(const front_door& door) {
  if (door.draining.load(std::memory_order_relaxed)) {
    door.metrics->count_refusal(refusal_reason::draining);
    return status::unavailable("this node is stopping; send the request to another node");
  }
  const uint32_t now = door.in_flight->now();
  if (now > door.max_in_flight) {
    door.metrics->count_refusal(refusal_reason::node_in_flight);
    return status::resource_exhausted("this node is at capacity (" + std::to_string(now - 1) +
                                      " inference requests in flight, max_in_flight " +
                                      std::to_string(door.max_in_flight) +
                                      "); retry in a moment");
  }
  return status::ok();
}

// A refusal for a limit (429) or while draining (503). The connection's next request is read
// only 50 ms later: a client that floods over its limit is held back at its own sockets (64
// connections then cost the node at most 1,280 refusals a second, not as many as it can parse),
// which keeps the CPU for the tenants within their limits.
constexpr std::chrono::milliseconds refusal_pause{50};

http_reply refusal_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("Retry-After", "1");
  r.pause_reading = refusal_pause;
  return r;
}

// A refusal because this thread is behind (overload.hpp): 429 at the end of the round
// (refuse_after_round), and the connection is read again at once. Pausing it would leave its next request waiting unread, which is the very delay
// this refusal exists to prevent; the refusal itself is what keeps the thread's queue short.
http_reply shed_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

status lag_refusal(const admission_control& a) {
  char why[200];
  std::snprintf(why, sizeof(why),
                "this node is overloaded: requests wait %.1f ms for its threads (max_queue_ms "
                "%.1f); retry in a moment",
                a.last_lag_ms(), a.target_ms());
  return status::resource_exhausted(why);
}

http_handler make_http_handler(gateway_actor gw, std::shared_ptr<const serving_board> board,
                               std::shared_ptr<front_door> door, const node_config& cfg) {
  size_t max_batch = cfg.max_batch;
  size_t batch_texts = cfg.micro_batch_texts;
  double max_queue_ms = cfg.max_queue_ms;
  auto in_flight = door->in_flight;
  auto keys = door->keys;
  return [gw, board, in_flight, max_batch, batch_texts, max_queue_ms, keys, door](
             http_request&& req, http_respond respond) {
    auto route = parse_route(req.method, req.target);
    if (!route) {
      http_reply r = json_reply(route.http_status(), render_error(route.error().message()));
      if (!route.allow().empty()) r.headers.emplace_back("Allow", route.allow());
      respond(std::move(r));
      return;
    }
    switch (route->what) {
      case http_route::kind::live:
        respond(json_reply(200, render_live(true)));
        return;
      case http_route::kind::ready: {
        auto ready = answer_server_ready(door->draining.load(std::memory_order_relaxed));
        respond(json_reply(ready.status, std::move(ready.body)));
        return;
      }
      case http_route::kind::server_meta:
        respond(json_reply(200, render_server_meta()));
        return;
      default:
        break;
    }
    // Everything below reaches models: it needs a key when the node has a keys file.
    std::optional<std::string_view> key;
    if (req.has_authorization) {
      key = bearer_key(req.authorization);
      if (!key) {
        respond(unauthenticated_reply(status::unauthenticated(
            "the Authorization header must be 'Bearer KEY'")));
        return;
      }
    }
    auto keys_now = keys->current();
    auto who = authenticate(keys_now.get(), key, "an 'Authorization: Bearer KEY' header");
    if (!who) {
      respond(unauthenticated_reply(who.error()));
      return;
    }
    switch (route->what) {
      case http_route::kind::metrics: {
        // Tenant and model names of every tenant: operators only when the node has keys.
        if (!who->admin) {
          respond(json_reply(403, render_error(
                                      "/metrics needs an admin key: it shows every tenant's "
                                      "models")));
          return;
        }
        node_metrics::gauges now;
        now.in_flight = in_flight->now();
        now.max_in_flight = door->max_in_flight;
        http_reply r;
        r.status = 200;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = door->metrics->render(now);
        respond(std::move(r));
        return;
      }
      case http_route::kind::model_meta:
      case http_route::kind::model_ready: {
        auto r = *route;
        if (status allowed = authorize(*who, list_request{r.id}); !allowed) {
          respond(error_reply(allowed));
          return;
        }
        call_gateway(gw, list_request{r.id}, [r, respond, door](api_reply reply) {
          if (auto* err = std::get_if<status>(&reply)) {
            respond(error_reply(*err));
            return;
          }
          const auto& entry = std::get<model_entry>(reply);
          if (r.version) {
            if (auto missing = entry.check_version(*r.version); !missing.is_ok()) {
              respond(error_reply(missing));
              return;
            }
          }
          if (r.what == http_route::kind::model_meta) {
            respond(json_reply(200, render_model_meta(entry, r.version)));
            return;
          }
          auto ready = answer_model_ready(entry, r.version,
                                          door->draining.load(std::memory_order_relaxed));
          respond(json_reply(ready.status, std::move(ready.body)));
        });
        return;
      }
      case http_route::kind::infer: {
        const auto start = std::chrono::steady_clock::now();
        auto counted = std::make_shared<in_flight_counter::guard>(in_flight->track());
        if (status refused = admission_check(*door); !refused) {
          respond(refusal_reply(refused));
          return;
        }
        if (auto& shed = this_thread_admission(max_queue_ms); !shed.admit()) {
          door->metrics->count_refusal(refusal_reason::overload);
          refuse_after_round(batch_texts, respond, shed_reply(lag_refusal(shed)));
          return;
        }
        auto parsed = parse_infer_body(*route, req.body, max_batch);
        if (!parsed) {
          respond(error_reply(parsed.error()));
          return;
        }
        // From here every answer is counted for the model.
        respond = [respond = std::move(respond), metrics = door->metrics,
                   id = parsed->request.id, start](http_reply r) {
          metrics->observe_inference(id.tenant, id.model, r.status, seconds_since(start));
          respond(std::move(r));
        };
        if (status allowed = authorize(*who, parsed->request); !allowed) {
          respond(error_reply(allowed));
          return;
        }
        auto ticket = admit_tenant(*door, parsed->request.id.tenant);
        if (!ticket) {
          respond(refusal_reply(ticket.error()));
          return;
        }
        auto held = *ticket;
        uint32_t top_k = parsed->request.top_k;
        std::string request_id = parsed->request_id;
        v2_outputs outputs = parsed->outputs;
        auto in = find_inline(board->read(board_cache), parsed->request, inline_max_texts);
        if (in.error) {
          respond(error_reply(*in.error));
          return;
        }
        if (in.m) {
          if (status full = round_refusal(max_queue_ms, parsed->request.texts.size(), "thread");
              !full) {
            door->metrics->count_refusal(refusal_reason::overload);
            refuse_after_round(batch_texts, respond, shed_reply(full));
            return;
          }
          door->metrics->cache_hits.fetch_add(1, std::memory_order_relaxed);
          infer_result base;
          base.id = parsed->request.id;
          base.version = in.version;
          auto done = [respond, base = std::move(base), top_k, request_id, outputs, counted, held](
                          std::vector<std::vector<prediction>> rows) mutable {
            base.rows = std::move(rows);
            respond(json_reply(200, render_infer(base, top_k, request_id, outputs)));
          };
          predict_on_front_end(batch_texts, in.m, top_k == 0 ? 1 : top_k,
                               std::move(parsed->request.texts), std::move(done),
                               [] { return http_defer(flush_thread_batch); });
          return;
        }
        parsed->request.version = in.version;
        call_gateway(gw, std::move(parsed->request),
                     [respond, top_k, request_id, outputs, counted, held](api_reply reply) {
                       if (auto* err = std::get_if<status>(&reply)) {
                         // A loading model's queue is full: a refusal like the others.
                         respond(err->code() == status_code::resource_exhausted
                                     ? refusal_reply(*err)
                                     : error_reply(*err));
                       } else {
                         respond(json_reply(200, render_infer(std::get<infer_result>(reply),
                                                              top_k, request_id, outputs)));
                       }
                     });
        return;
      }
      default:
        return;  // health and metadata routes: answered above
    }
  };
}

// The ZeroMQ server calls flush_thread_batch after each round of requests (after_requests).
zmq_handler make_zmq_handler(gateway_actor gw, std::shared_ptr<const serving_board> board,
                             std::shared_ptr<front_door> door, size_t batch_texts,
                             double max_queue_ms) {
  auto in_flight = door->in_flight;
  auto keys = door->keys;
  return [gw, board, in_flight, keys, door, batch_texts, max_queue_ms](std::string bytes,
                                                                       zmq_respond respond) {
    auto decoded = decode_request(bytes);
    if (!decoded) {
      respond(encode_error(decoded.error().request_id, decoded.error().error));
      return;
    }
    uint64_t id = decoded->request_id;
    auto keys_now = keys->current();
    std::optional<std::string_view> key;
    if (!decoded->api_key.empty()) key = decoded->api_key;
    auto who = authenticate(keys_now.get(), key, "--key KEY or SHOAL_KEY");
    if (!who) {
      respond(encode_error(id, who.error()));
      return;
    }
    if (status allowed = authorize(*who, decoded->call); !allowed) {
      respond(encode_error(id, allowed));
      return;
    }
    const principal caller = *who;
    std::shared_ptr<in_flight_counter::guard> counted;
    std::shared_ptr<tenant_admission::ticket> held;
    // An inference's answer, counted for its model (HTTP-equivalent status).
    std::function<void(int)> observe;
    if (auto* infer = std::get_if<infer_request>(&decoded->call)) {
      const auto start = std::chrono::steady_clock::now();
      observe = [metrics = door->metrics, mid = infer->id, start](int code) {
        metrics->observe_inference(mid.tenant, mid.model, code, seconds_since(start));
      };
      counted = std::make_shared<in_flight_counter::guard>(in_flight->track());
      if (status refused = admission_check(*door); !refused) {
        respond(encode_error(id, refused));
        return;
      }
      if (auto& shed = this_thread_admission(max_queue_ms); !shed.admit()) {
        door->metrics->count_refusal(refusal_reason::overload);
        respond(encode_error(id, lag_refusal(shed)));
        return;
      }
      auto ticket = admit_tenant(*door, infer->id.tenant);
      if (!ticket) {
        observe(http_status(ticket.error().code()));
        respond(encode_error(id, ticket.error()));
        return;
      }
      held = *ticket;
      // A view for this call only: the ZeroMQ thread may idle for hours, and a cached view would
      // keep unloaded models in memory all that time (one lock per call is nothing here).
      serving_board::cache call_cache;
      auto in = find_inline(board->read(call_cache), *infer, inline_max_texts);
      if (in.error) {
        observe(http_status(in.error->code()));
        respond(encode_error(id, *in.error));
        return;
      }
      if (in.m) {
        if (status full = round_refusal(max_queue_ms, infer->texts.size(), "ZeroMQ thread");
            !full) {
          door->metrics->count_refusal(refusal_reason::overload);
          observe(429);
          respond(encode_error(id, full));
          return;
        }
        door->metrics->cache_hits.fetch_add(1, std::memory_order_relaxed);
        infer_result base;
        base.id = infer->id;
        base.version = in.version;
        auto done = [id, respond, base = std::move(base), counted, held, observe](
                        std::vector<std::vector<prediction>> rows) mutable {
          base.rows = std::move(rows);
          observe(200);
          respond(encode_response(id, base));
        };
        predict_on_front_end(batch_texts, in.m, infer->top_k == 0 ? 1 : infer->top_k,
                             std::move(infer->texts), std::move(done),
                             [] { return true; });  // after_requests flushes
        return;
      }
      infer->version = in.version;
    }
    call_gateway(gw, std::move(decoded->call),
                 [id, respond, counted, held, caller, observe](api_reply reply) {
      if (observe) {
        const status* err = std::get_if<status>(&reply);
        observe(err != nullptr ? http_status(err->code()) : 200);
      }
      respond(std::visit(
          [id, &caller](auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, status>) {
              return encode_error(id, value);
            } else if constexpr (std::is_same_v<T, std::vector<model_entry>>) {
              return encode_response(id, visible_models(caller, std::move(value)));
            } else {
              return encode_response(id, value);
            }
          },
          reply));
    });
  };
}

// The self-pipe the stop-signal handler writes to. Signals may land on any thread (OpenBLAS
// starts its pool before main, so no mask covers every thread); a handler that only write()s
// is async-signal-safe, and the main thread reads the pipe.
int stop_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  ssize_t ignored = ::write(stop_pipe[1], &b, 1);
  (void)ignored;
}

void install_stop_handlers() {
  if (::pipe2(stop_pipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);  // reread the keys file
}

// Blocks until SIGINT or SIGTERM; returns which. SIGHUP calls `on_hup` and waits on. Later
// signals only write to the pipe again, so a second Ctrl-C (or a script's SIGTERM after the
// terminal's SIGINT) cannot cut stopping short.
int wait_for_stop_signal(const std::function<void()>& on_hup) {
  while (true) {
    unsigned char b = 0;
    while (::read(stop_pipe[0], &b, 1) != 1) {
      if (errno != EINTR) return SIGTERM;
    }
    if (b != SIGHUP) return b;
    on_hup();
  }
}

// Reads the keys file; logs what it holds. Null when there is none (open).
result<std::shared_ptr<const key_table>> read_keys(const node_config& cfg) {
  if (cfg.keys_file.empty()) return std::shared_ptr<const key_table>();
  auto keys = key_table::load_file(cfg.keys_file);
  if (!keys) return keys.error();
  log_info("keys file read", {{"file", cfg.keys_file},
                              {"keys", keys->size()},
                              {"tenants", keys->tenant_count()},
                              {"admin_keys", keys->admin_count()}});
  return std::shared_ptr<const key_table>(std::make_shared<const key_table>(std::move(*keys)));
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

// The membership core's settings from the node's config.
membership_config membership_settings(const node_config& cfg, const std::string& node_id) {
  membership_config m;
  m.id = node_id;
  m.name = cfg.name;
  const std::string& host = cfg.advertise_host.empty() ? cfg.host : cfg.advertise_host;
  m.cluster_address = host_port{host, cfg.cluster_port}.str();
  m.http_address = host_port{host, cfg.http_port}.str();
  m.zmq_address = host_port{host, cfg.zmq_port}.str();
  // The wall-clock start time: a restarted node comes back with a higher incarnation than any
  // it had before (refutations add one at a time, far fewer than the milliseconds in between).
  m.incarnation = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  m.seeds = cfg.seeds;
  m.gossip_interval_ms = cfg.gossip_interval_ms;
  m.phi_threshold = cfg.phi_threshold;
  m.probe_timeout_ms = cfg.probe_timeout_ms;
  m.indirect_probe_timeout_ms = cfg.indirect_probe_timeout_ms;
  m.indirect_probes = cfg.indirect_probes;
  m.suspicion_timeout_ms = cfg.suspicion_timeout_ms;
  m.dead_retention_ms = cfg.dead_retention_ms;
  m.max_updates_per_message = cfg.max_gossip_updates;
  m.seed_interval_ms = cfg.seed_interval_ms;
  m.sync_interval_ms = cfg.sync_interval_ms;
  m.monitored_peers = cfg.monitored_peers;
  m.random_seed = std::random_device{}();
  return m;
}

}  // namespace

int run_node(const node_config& cfg) {
  set_log_format(cfg.log_format);
  install_stop_handlers();
  // Models come and go all day (the model cache loads and unloads them), so their memory must
  // go back to the system when they are unloaded, or resident memory drifts far above the model
  // memory budget. glibc raises its mmap threshold each time a large block is freed (up to
  // 32 MB), after which model arrays come from the heap and fragment it; a fixed threshold keeps
  // every array of 64 KiB or more in its own mapping, returned whole on unload. Fewer arenas
  // keep per-thread free lists from holding on to freed models.
  mallopt(M_MMAP_THRESHOLD, 64 << 10);
  mallopt(M_ARENA_MAX, 4);
  const bool tls = !cfg.tls_certificate.empty();
  if (tls) {
    // Read them now: a missing or unreadable file is a clear start-up error, not a TLS failure
    // on the first connection.
    for (const auto* path : {&cfg.tls_certificate, &cfg.tls_key, &cfg.tls_ca}) {
      if (::access(path->c_str(), R_OK) != 0) {
        log_error("cannot read a TLS file", {{"file", *path}, {"error", std::strerror(errno)}});
        return 1;
      }
    }
  }
  auto initial_keys = read_keys(cfg);
  if (!initial_keys) {
    log_error("cannot start", {{"error", initial_keys.error().message()}});
    return 1;
  }
  auto keys = std::make_shared<key_board>(*initial_keys);
  auto store = snapshot_store::open(cfg.data_dir);
  if (!store) {
    log_error("cannot open the data dir",
              {{"data_dir", cfg.data_dir}, {"error", store.error().message()}});
    return 1;
  }
  auto node_id = (*store)->node_id();
  if (!node_id) {
    log_error("cannot get this node's id",
              {{"data_dir", cfg.data_dir}, {"error", node_id.error().message()}});
    return 1;
  }
  catalog_storage storage;
  storage.replica = std::make_shared<replicated_catalog>(*node_id);
  auto replica = storage.replica;
  const int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  auto journal = catalog_journal::open(
      cfg.data_dir + "/catalog.journal",
      [&](const catalog_change& c) { return replica->add(c, start_ms).error(); },
      [](const std::string& w) { log_warn(w); });
  if (!journal) {
    log_error("cannot open the catalog journal",
              {{"data_dir", cfg.data_dir}, {"error", journal.error().message()}});
    return 1;
  }
  storage.store = std::shared_ptr<snapshot_store>(std::move(*store));
  auto shared_store = storage.store;
  storage.journal = std::shared_ptr<catalog_journal>(std::move(*journal));
  storage.max_push_bytes = cfg.max_push_bytes;
  storage.replication_factor = cfg.replication_factor;
  storage.limits = cfg.limits;
  auto metrics = std::make_shared<node_metrics>();
  storage.metrics = metrics;
  auto initial = std::make_shared<const catalog>(replica->view());
  auto board = std::make_shared<serving_board>();
  board->publish_catalog(initial);
  storage.board = board;
  size_t snapshots = 0;
  for (const auto* entry : initial->models()) snapshots += entry->snapshots.size();

  caf::actor_system_config sys_cfg;
  // CAF 0.17's add_error_category<T> does not compile; register the renderer directly.
  sys_cfg.add_error_category(caf::atom("shoal"), [](uint8_t code, caf::atom_value,
                                                   const caf::message& ctx) {
    return "shoal: " + to_string(static_cast<shoal_errc>(code)) + " " + caf::to_string(ctx);
  });
  // Work sharing (one queue, workers wait on a condition variable) instead of CAF's default work
  // stealing, whose idle workers poll with 50 us sleeps for a while after every message: with
  // gossip every 200 ms that kept an idle node at 17% of a core (0.5% with sharing), and it took
  // the same share from the HTTP threads under load. The actors here are not the hot path
  // (front ends answer loaded models on their own threads), so stealing buys nothing.
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
  sys_cfg.load<caf::io::middleman>();
  if (tls) {
    // CAF's OpenSSL module with a certificate, key and CA file requires and verifies a
    // certificate from that CA on both ends of every node-to-node connection. (Without them it
    // falls back to anonymous Diffie-Hellman, which authenticates nobody: never used here.)
    sys_cfg.load<caf::openssl::manager>();
    sys_cfg.openssl_certificate = cfg.tls_certificate;
    sys_cfg.openssl_key = cfg.tls_key;
    sys_cfg.openssl_cafile = cfg.tls_ca;
  }
  caf::actor_system sys{sys_cfg};

  auto load_timeout = caf::timespan{std::chrono::seconds(60)};
  auto catalog = sys.spawn<caf::detached>(catalog_behavior, std::move(storage));
  router_settings memory;
  memory.budget_bytes = cfg.model_memory_mb > 0
                            ? cfg.model_memory_mb << 20
                            : default_model_memory(read_total_memory().value_or(4ull << 30));
  memory.keep_replaced_warm_ms = cfg.keep_replaced_warm_s * 1000;
  memory.micro_batch_texts = cfg.micro_batch_texts;
  memory.metrics = metrics;
  // Loaders: cold loads side by side, one per core (at least 2), off the catalog actor. They
  // subscribe before the router, so a loader has every catalog the router has acted on.
  std::vector<model_loader_actor> loaders;
  const size_t loader_count = std::max(2u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < std::min<size_t>(loader_count, 8); ++i) {
    loaders.push_back(sys.spawn<caf::detached>(model_loader, shared_store, initial, catalog));
    caf::anon_send(catalog, subscribe_atom_v, caf::actor_cast<catalog_listener>(loaders.back()));
  }
  auto rtr = sys.spawn(router, loaders, initial, load_timeout, board, memory);
  gateway_config gw_cfg;
  gw_cfg.node_name = cfg.name;
  gw_cfg.infer_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  membership_actor_config mem_cfg;
  mem_cfg.core = membership_settings(cfg, *node_id);
  mem_cfg.secret = cfg.cluster_secret;
  mem_cfg.connector = tls ? caf::actor_cast<peer_connector>(sys.openssl_manager().actor_handle())
                          : caf::actor_cast<peer_connector>(sys.middleman().actor_handle());
  mem_cfg.board = board;
  mem_cfg.model_memory_budget = memory.budget_bytes;
  auto in_flight = std::make_shared<in_flight_counter>();
  mem_cfg.in_flight = in_flight;
  auto door = std::make_shared<front_door>();
  door->keys = keys;
  door->in_flight = in_flight;
  door->max_in_flight = cfg.max_in_flight;
  door->metrics = metrics;
  bool rate_or_in_flight = cfg.limits.defaults.rate > 0 || cfg.limits.defaults.in_flight > 0;
  for (const auto& [tenant, l] : cfg.limits.by_tenant) {
    rate_or_in_flight = rate_or_in_flight || l.rate > 0 || l.in_flight > 0;
    log_info("tenant limits", {{"tenant", tenant}, {"limits", to_string(l)}});
  }
  log_info("tenant limits of every other tenant", {{"limits", to_string(cfg.limits.defaults)}});
  if (rate_or_in_flight) door->admission = std::make_shared<tenant_admission>(cfg.limits);
  mem_cfg.catalog = caf::actor_cast<catalog_sync_sink>(catalog);
  mem_cfg.router = caf::actor_cast<peer_request_sink>(rtr);
  const std::string cluster_address = mem_cfg.core.cluster_address;
  auto members = sys.spawn(membership_behavior, std::move(mem_cfg));
  auto gw = sys.spawn(gateway, rtr, catalog, initial, members, gw_cfg);
  caf::anon_send(catalog, subscribe_atom_v, caf::actor_cast<catalog_listener>(rtr));
  caf::anon_send(catalog, subscribe_atom_v, caf::actor_cast<catalog_listener>(gw));
  caf::anon_send(catalog, cluster_atom_v, members, cluster_address,
                 caf::actor_cast<peer_request_sink>(rtr));
  caf::anon_send(rtr, cluster_atom_v, members, *node_id);

  auto stop_actors = [&] {
    caf::anon_send_exit(members, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gw, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rtr, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(catalog, caf::exit_reason::user_shutdown);
    for (const auto& l : loaders) caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  };

  // The node-to-node port: peers' membership actors send gossip to ours here (bind is blocking,
  // but this is start-up, on the main thread).
  auto published = tls ? caf::openssl::publish(members, cfg.cluster_port, cfg.host.c_str(), true)
                       : sys.middleman().publish(members, cfg.cluster_port, cfg.host.c_str(), true);
  if (!published) {
    log_error("cannot listen on the cluster port",
              {{"address", cfg.host + ":" + std::to_string(cfg.cluster_port)},
               {"error", sys.render(published.error())}});
    stop_actors();
    return 1;
  }

  http_server_options http_opts;
  http_opts.host = cfg.host;
  http_opts.port = cfg.http_port;
  http_opts.threads = cfg.http_threads;
  http_opts.max_body_bytes = cfg.max_body_bytes;
  // Each I/O thread keeps the serving view it last read; one that gets no requests would keep an
  // old view, and with it models the cache has unloaded, for as long as it stays idle. Once a
  // second it catches up, letting those go.
  http_opts.on_tick = [board] { board->read(board_cache); };
  // Each front-end thread (every HTTP thread, the ZeroMQ thread) sheds by its own lag.
  std::function<void(double, bool)> shed_by_lag;
  if (cfg.max_queue_ms > 0) {
    const double max_queue_ms = cfg.max_queue_ms;
    shed_by_lag = [max_queue_ms](double lag_ms, bool idle) {
      auto& a = this_thread_admission(max_queue_ms);
      if (idle) {
        a.idle();
      } else {
        a.sample(lag_ms);
      }
    };
  }
  http_opts.on_lag = shed_by_lag;
  auto http = http_server::start(http_opts, make_http_handler(gw, board, door, cfg));
  if (!http) {
    log_error("cannot start HTTP", {{"error", http.error().message()}});
    stop_actors();
    return 1;
  }
  zmq_server_options zmq_opts;
  zmq_opts.host = cfg.host;
  zmq_opts.port = cfg.zmq_port;
  zmq_opts.max_message_bytes = cfg.max_push_bytes + (1u << 20);
  zmq_opts.after_requests = flush_thread_batch;
  zmq_opts.on_lag = shed_by_lag;
  auto zmq = zmq_server::start(
      zmq_opts, make_zmq_handler(gw, board, door, cfg.micro_batch_texts, cfg.max_queue_ms));
  if (!zmq) {
    log_error("cannot start ZeroMQ", {{"error", zmq.error().message()}});
    (*http)->stop();
    stop_actors();
    return 1;
  }

  log_info(cfg.model_memory_mb > 0 ? "node started"
                                   : "node started (model_memory is half of RAM; set "
                                     "model_memory_mb to change)",
           {{"name", cfg.name},
            {"data_dir", cfg.data_dir},
            {"models", initial->models().size()},
            {"snapshots", snapshots},
            {"model_memory", bytes_text(memory.budget_bytes)},
            {"version", SHOAL_VERSION}});
  log_info("listening", {{"http", cfg.host + ":" + std::to_string((*http)->port())},
                         {"zmq", cfg.host + ":" + std::to_string((*zmq)->port())},
                         {"cluster", cfg.host + ":" + std::to_string(*published)}});
  log_info("cluster: node id " + *node_id + (cfg.seeds.empty() ? ", no seeds: a one-node cluster others can join"
                                                           : ", joining through " + join(cfg.seeds)) +
           (cfg.cluster_secret.empty() ? "" : ", gossip authenticated with the cluster secret") +
           (tls ? ", TLS with certificates from " + cfg.tls_ca : ""));

  if (cfg.keys_file.empty()) {
    log_warn("no keys file: every client can reach every model of every tenant (open); set "
             "keys_file (--keys-file) to require API keys");
  }
  int received = wait_for_stop_signal([&] {
    if (cfg.keys_file.empty()) {
      log_info("SIGHUP: no keys file to reread (the node is open)");
      return;
    }
    auto reread = read_keys(cfg);
    if (!reread) {
      log_error("SIGHUP: keeping the keys in force", {{"error", reread.error().message()}});
      return;
    }
    keys->replace(*reread);
  });
  log_info("stopping: draining the inference requests in flight",
           {{"signal", received == SIGINT ? "SIGINT" : "SIGTERM"}, {"in_flight", in_flight->now()}});
  {
    // New inference gets 503 and readiness turns false (load balancers stop sending); what is
    // in flight is answered, for at most drain_timeout_ms. The main thread may wait here: it
    // is no actor.
    door->draining = true;
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(cfg.drain_timeout_ms);
    while (in_flight->now() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (in_flight->now() > 0) {
      log_warn("stopping with inference requests still in flight after drain_timeout_ms",
               {{"in_flight", in_flight->now()}});
    }
  }
  {
    // Tell the peers we are leaving (they drop us at once instead of suspecting us), then give
    // the middleman a moment to put those messages on the wire.
    caf::scoped_actor waiter{sys};
    waiter->request(members, std::chrono::seconds(1), leave_atom_v)
        .receive([](bool) {}, [](caf::error&) {});
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  (*http)->stop();
  (*zmq)->stop();
  stop_actors();
  sys.await_all_actors_done();
  log_info("node stopped", {{"name", cfg.name}});
  return 0;
}

}  // namespace shoal
