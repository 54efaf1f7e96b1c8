#include "actors/node.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <cerrno>
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
#include "shoal/base/host_port.hpp"
#include "shoal/base/log.hpp"
#include "shoal/serving/front_door.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/model_cache.hpp"
#include "shoal/serving/serving_view.hpp"
#include "shoal/store/catalog_journal.hpp"
#include "shoal/store/snapshot_store.hpp"
#include "shoal/wire/data_plane.hpp"
#include "shoal/wire/front_ends.hpp"
#include "shoal/wire/grpc_front_end.hpp"
#include "shoal/wire/http_server.hpp"
#include "shoal/wire/zmq_server.hpp"

namespace shoal {
namespace {

// The front door's way into the actor system: every call it cannot answer on a front-end thread
// goes to the gateway, whose reply comes back on an actor thread.
class gateway_port final : public cluster_port {
 public:
  explicit gateway_port(gateway_actor gw) : gw_(std::move(gw)) {}
  void call(api_call call, api_callback done) override {
    caf::anon_send(gw_, call_atom_v, std::move(call), std::move(done));
  }

 private:
  gateway_actor gw_;
};

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
// terminal's SIGINT) cannot cut stopping short. Meanwhile, every 5 s, the free pages of the
// heap go back to the system (unloaded models' arrays below the mmap threshold; see run_node):
// this thread has nothing else to do, and no request or actor waits for it.
int wait_for_stop_signal(const std::function<void()>& on_hup) {
  while (true) {
    unsigned char b = 0;
    while (true) {
      pollfd p{stop_pipe[0], POLLIN, 0};
      const int ready = ::poll(&p, 1, 5000);
      if (ready == 0) {
        malloc_trim(0);
        continue;
      }
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return SIGTERM;
      if (::read(stop_pipe[0], &b, 1) == 1) break;
      if (errno != EINTR && errno != EAGAIN) return SIGTERM;
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
membership_config membership_settings(const node_config& cfg, const std::string& node_id,
                                      uint16_t data_port) {
  membership_config m;
  m.id = node_id;
  m.name = cfg.name;
  const std::string& host = cfg.advertise_host.empty() ? cfg.host : cfg.advertise_host;
  m.cluster_address = host_port{host, cfg.cluster_port}.str();
  m.http_address = host_port{host, cfg.http_port}.str();
  m.zmq_address = host_port{host, cfg.zmq_port}.str();
  m.data_address = host_port{host, data_port}.str();
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
  // memory budget: a model's weights are mapped by their own allocator (fasttext_model.cpp) and
  // returned whole on unload. Everything else stays on the heap up to 4 MiB (a fixed threshold:
  // glibc would raise its own up to 32 MB), and the main thread gives back the heap's free pages
  // every 5 s (malloc_trim, in wait_for_stop_signal). Not lower: a block below the threshold
  // that is mapped and unmapped for every request costs page faults and, with threads on other
  // cores, a TLB shootdown each (bench: at 64 KiB, a bulk push of 113 KB models spent 40% of
  // the node's time there and ran at a third of the rate).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  // Nor is the top of a thread's heap given back each time a block there is freed (the next
  // request would fault its pages in again): the periodic malloc_trim does that.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  // Fewer arenas than glibc's default (8 per core) keep per-thread free lists from holding on to
  // freed models; but one per HTTP thread (and a few for the actors), so that front-end threads
  // on different cores do not take turns at one arena's lock on every request.
  mallopt(M_ARENA_MAX, static_cast<int>(std::max<size_t>(4, cfg.http_threads + 4)));
  // Every client connection is a descriptor: a pool of a thousand connections must not meet the
  // usual soft limit of 1,024 when the hard one allows more.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
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
  storage.one_node = cfg.seeds.empty();
  storage.limits = cfg.limits;
  auto metrics = std::make_shared<node_metrics>();
  storage.metrics = metrics;
  auto initial = std::make_shared<const catalog>(replica->view());
  auto board = std::make_shared<serving_board>();
  board->publish_catalog(initial);
  storage.board = board;
  size_t snapshots = 0;
  for (const auto* entry : initial->models()) snapshots += entry->snapshots.size();

  // The data plane (forwarded inference between nodes) binds its port now, so gossip can tell
  // the peers where it is; it runs on the HTTP I/O threads once they exist.
  data_plane_options dp_opts;
  dp_opts.host = cfg.host;
  dp_opts.port = cfg.data_port;
  dp_opts.node_id = *node_id;
  dp_opts.secret = cfg.cluster_secret;
  if (tls) {
    dp_opts.tls_certificate = cfg.tls_certificate;
    dp_opts.tls_key = cfg.tls_key;
    dp_opts.tls_ca = cfg.tls_ca;
  }
  // request_timeout_ms is the client's deadline, forwarded or not; a holder slower than a fifth
  // of it (at most 1 s: a healthy one sheds after max_queue_ms) is hedged.
  dp_opts.forward_timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  dp_opts.hedge_after =
      std::chrono::milliseconds(std::clamp<uint32_t>(cfg.request_timeout_ms / 5, 1, 1000));
  dp_opts.max_frame_bytes = std::max<size_t>(64u << 20, cfg.max_body_bytes * 2);
  dp_opts.metrics = metrics;
  auto data = std::make_shared<data_plane>(dp_opts);
  if (status listening = data->listen(); !listening) {
    log_error("cannot start the data plane", {{"error", listening.message()}});
    return 1;
  }
  auto traffic = std::make_shared<traffic_meter>();
  auto trials = std::make_shared<trial_meter>();  // shadow, canary and watch figures
  storage.trials = trials;
  storage.node_name = cfg.name;
  const uint64_t model_memory = cfg.model_memory_mb > 0
                                    ? cfg.model_memory_mb << 20
                                    : default_model_memory(read_total_memory().value_or(4ull << 30));
  if (cfg.follow_traffic_rps > 0) {
    storage.traffic = traffic;
    storage.follow.min_rps = cfg.follow_traffic_rps;
    storage.follow.idle_ms = cfg.follow_idle_s * 1000;
    storage.follow.max_copies = cfg.follow_max_copies;
    storage.model_memory_budget = model_memory;
  }

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
  memory.budget_bytes = model_memory;
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
  mem_cfg.core = membership_settings(cfg, *node_id, data->port());
  mem_cfg.on_peers = [board, data](std::shared_ptr<const peer_directory> peers) {
    board->publish_peers(peers);
    data->peers_changed(std::move(peers));
  };
  mem_cfg.metrics = metrics;
  mem_cfg.secret = cfg.cluster_secret;
  mem_cfg.connector = tls ? caf::actor_cast<peer_connector>(sys.openssl_manager().actor_handle())
                          : caf::actor_cast<peer_connector>(sys.middleman().actor_handle());
  mem_cfg.board = board;
  mem_cfg.model_memory_budget = memory.budget_bytes;
  auto in_flight = std::make_shared<in_flight_counter>();
  mem_cfg.in_flight = in_flight;
  bool rate_or_in_flight = cfg.limits.defaults.rate > 0 || cfg.limits.defaults.in_flight > 0;
  for (const auto& [tenant, l] : cfg.limits.by_tenant) {
    rate_or_in_flight = rate_or_in_flight || l.rate > 0 || l.in_flight > 0;
    log_info("tenant limits", {{"tenant", tenant}, {"limits", to_string(l)}});
  }
  log_info("tenant limits of every other tenant", {{"limits", to_string(cfg.limits.defaults)}});
  std::shared_ptr<tenant_admission> admission;
  if (rate_or_in_flight) admission = std::make_shared<tenant_admission>(cfg.limits);
  mem_cfg.catalog = caf::actor_cast<catalog_sync_sink>(catalog);
  mem_cfg.router = caf::actor_cast<peer_request_sink>(rtr);
  const std::string cluster_address = mem_cfg.core.cluster_address;
  auto members = sys.spawn(membership_behavior, std::move(mem_cfg));
  auto gw = sys.spawn(gateway, rtr, catalog, initial, members, gw_cfg);
  front_door_settings door_cfg;
  door_cfg.max_in_flight = cfg.max_in_flight;
  door_cfg.max_batch = cfg.max_batch;
  door_cfg.micro_batch_texts = cfg.micro_batch_texts;
  door_cfg.max_queue_ms = cfg.max_queue_ms;
  auto door =
      std::make_shared<front_door>(door_cfg, board, keys, in_flight, admission, metrics,
                                   std::make_shared<gateway_port>(gw), data, traffic, trials);
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
  http_opts.on_tick = [door] { door->refresh_view(); };
  // Each front-end thread (every HTTP thread, the ZeroMQ thread) sheds by its own lag: always
  // measured, since a request may state its own budget even where max_queue_ms is 0.
  std::function<void(double, bool)> shed_by_lag = [door](double lag_ms, bool idle) {
    door->on_lag(lag_ms, idle);
  };
  http_opts.on_lag = shed_by_lag;
  auto http = http_server::start(
      http_opts,
      make_http_handler(door, cfg.max_batch, console_settings{cfg.name, cfg.replication_factor}));
  if (!http) {
    log_error("cannot start HTTP", {{"error", http.error().message()}});
    stop_actors();
    return 1;
  }
  data->start((*http)->io_contexts(), make_peer_handler(door));
  zmq_server_options zmq_opts;
  zmq_opts.host = cfg.host;
  zmq_opts.port = cfg.zmq_port;
  zmq_opts.max_message_bytes = cfg.max_push_bytes + (1u << 20);
  zmq_opts.after_requests = &front_door::end_round;
  zmq_opts.on_lag = shed_by_lag;
  auto zmq = zmq_server::start(zmq_opts, make_zmq_handler(door));
  if (!zmq) {
    log_error("cannot start ZeroMQ", {{"error", zmq.error().message()}});
    data->stop();
    (*http)->stop();
    stop_actors();
    return 1;
  }

  grpc_front_end_options grpc_opts;
  grpc_opts.host = cfg.host;
  grpc_opts.port = cfg.grpc_port.value_or(uint16_t(cfg.http_port + 1));
  grpc_opts.max_message_bytes = cfg.max_body_bytes;
  grpc_opts.max_batch = cfg.max_batch;
  auto grpc = grpc_front_end::start(grpc_opts, door);
  if (!grpc) {
    log_error("cannot start gRPC", {{"error", grpc.error().message()}});
    (*zmq)->stop();
    data->stop();
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
                         {"grpc", cfg.host + ":" + std::to_string((*grpc)->port())},
                         {"cluster", cfg.host + ":" + std::to_string(*published)},
                         {"data", cfg.host + ":" + std::to_string(data->port())}});
  log_info("cluster: node id " + *node_id +
               (cfg.seeds.empty()
                    ? ", no seeds: a one-node cluster (each snapshot is kept here only, until "
                      "other nodes join with this one as a seed)"
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
    door->start_draining();
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
  data->stop();
  (*http)->stop();
  (*zmq)->stop();
  (*grpc)->stop();
  stop_actors();
  sys.await_all_actors_done();
  log_info("node stopped", {{"name", cfg.name}});
  return 0;
}

}  // namespace shoal
