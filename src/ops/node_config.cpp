// node_config: the config file reader, the flags and the usage text. Over 500 lines because every
// setting is listed three times (file key, flag, help); one key table to drive all three is the
// planned cut (ARCHITECTURE-REVIEW.md, "Config").
#include "shoal/ops/node_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "shoal/base/host_port.hpp"
#include "shoal/base/model_id.hpp"

namespace shoal {

size_t default_http_threads() {
  return std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 64);
}

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

result<uint64_t> parse_uint(const std::string& what, const std::string& text, uint64_t min,
                            uint64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return status::invalid_argument(what + " must be a whole number, got '" + text + "'");
  }
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min || v > max) {
    return status::invalid_argument(what + " must be between " + std::to_string(min) + " and " +
                                    std::to_string(max) + ", got " + text);
  }
  return static_cast<uint64_t>(v);
}

std::string join_path(const std::string& base, const std::string& path) {
  if (path.empty() || path[0] == '/' || base.empty()) return path;
  return base + "/" + path;
}

result<std::string> read_secret_file(const std::string& what, const std::string& path) {
  std::ifstream file(path);
  if (!file) return status::invalid_argument(what + ": cannot read '" + path + "'");
  std::stringstream text;
  text << file.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) secret.pop_back();
  if (secret.empty()) return status::invalid_argument(what + ": '" + path + "' is empty");
  return secret;
}

// Sets one field; `what` names the setting in error messages (a flag or a file position).
status set_field(node_config& cfg, const std::string& key, const std::string& value,
                 const std::string& what, const std::string& base_dir) {
  auto port = [&](uint16_t& field) -> status {
    auto v = parse_uint(what, value, 0, 65535);
    if (!v) return v.error();
    field = static_cast<uint16_t>(*v);
    return status::ok();
  };
  auto size = [&](size_t& field, uint64_t min, uint64_t max) -> status {
    auto v = parse_uint(what, value, min, max);
    if (!v) return v.error();
    field = static_cast<size_t>(*v);
    return status::ok();
  };
  if (key == "data_dir") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    cfg.data_dir = join_path(base_dir, value);
    return status::ok();
  }
  if (key == "host") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    cfg.host = value;
    return status::ok();
  }
  if (key == "advertise_host") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    cfg.advertise_host = value;
    return status::ok();
  }
  if (key == "name") {
    cfg.name = value;
    return status::ok();
  }
  if (key == "http_port") return port(cfg.http_port);
  if (key == "zmq_port") return port(cfg.zmq_port);
  if (key == "grpc_port") {
    uint16_t p = 0;
    SHOAL_RETURN_IF_ERROR(port(p));
    cfg.grpc_port = p;
    return status::ok();
  }
  if (key == "cluster_port") return port(cfg.cluster_port);
  if (key == "data_port") return port(cfg.data_port);
  if (key == "follow_traffic_rps") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(v >= 0 && v <= 1e9)) {
      return status::invalid_argument(what + " must be a number of requests a second (0: never "
                                      "take traffic copies), got '" + value + "'");
    }
    cfg.follow_traffic_rps = v;
    return status::ok();
  }
  if (key == "follow_idle_s") {
    auto v = parse_uint(what, value, 1, 30 * 86400);
    if (!v) return v.error();
    cfg.follow_idle_s = static_cast<int64_t>(*v);
    return status::ok();
  }
  if (key == "follow_max_copies") return size(cfg.follow_max_copies, 0, 1000000);
  if (key == "http_threads") return size(cfg.http_threads, 1, 64);
  if (key == "max_body_bytes") return size(cfg.max_body_bytes, 1024, 1ull << 30);
  if (key == "max_push_bytes") return size(cfg.max_push_bytes, 1024, 1ull << 32);
  if (key == "max_batch") return size(cfg.max_batch, 1, 100000);
  if (key == "max_in_flight") return size(cfg.max_in_flight, 1, 1u << 20);
  if (key == "micro_batch_texts") return size(cfg.micro_batch_texts, 0, 1024);
  if (key == "max_queue_ms") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(v >= 0 && v <= 60000)) {
      return status::invalid_argument(what + " must be a number of milliseconds between 0 and "
                                      "60000, got '" + value + "'");
    }
    cfg.max_queue_ms = v;
    return status::ok();
  }
  if (key == "log_format") {
    auto format = parse_log_format(value);
    if (!format) {
      return status::invalid_argument(what + " must be human or json, got '" + value + "'");
    }
    cfg.log_format = *format;
    return status::ok();
  }
  if (key == "drain_timeout_ms") {
    auto v = parse_uint(what, value, 0, 600000);
    if (!v) return v.error();
    cfg.drain_timeout_ms = static_cast<uint32_t>(*v);
    return status::ok();
  }
  if (key == "tenant_limits" || key.rfind("tenant_limits.", 0) == 0) {
    auto limits = parse_tenant_limits(value);
    if (!limits) return status::invalid_argument(what + ": " + limits.error().message());
    if (key == "tenant_limits") {
      cfg.limits.defaults = *limits;
      return status::ok();
    }
    const std::string tenant = key.substr(std::string("tenant_limits.").size());
    if (!is_valid_id_part(tenant)) {
      return status::invalid_argument(what + ": '" + tenant +
                                      "' is no tenant name ([a-z0-9][a-z0-9_-]{0,63})");
    }
    cfg.limits.by_tenant[tenant] = *limits;
    return status::ok();
  }
  if (key == "keys_file") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    cfg.keys_file = join_path(base_dir, value);
    return status::ok();
  }
  if (key == "model_memory_mb") {
    auto v = parse_uint(what, value, 0, 1ull << 24);
    if (!v) return v.error();
    cfg.model_memory_mb = *v;
    return status::ok();
  }
  if (key == "keep_replaced_warm_s") {
    auto v = parse_uint(what, value, 0, 7 * 86400);
    if (!v) return v.error();
    cfg.keep_replaced_warm_s = static_cast<int64_t>(*v);
    return status::ok();
  }
  if (key == "request_timeout_ms") {
    auto v = parse_uint(what, value, 1, 3600000);
    if (!v) return v.error();
    cfg.request_timeout_ms = static_cast<uint32_t>(*v);
    return status::ok();
  }
  auto millis = [&](int64_t& field, uint64_t min, uint64_t max) -> status {
    auto v = parse_uint(what, value, min, max);
    if (!v) return v.error();
    field = static_cast<int64_t>(*v);
    return status::ok();
  };
  if (key == "seeds") {
    cfg.seeds.clear();
    std::stringstream list(value);
    std::string seed;
    while (std::getline(list, seed, ',')) {
      seed = trim(seed);
      if (seed.empty()) continue;
      auto addr = parse_host_port(seed);
      if (!addr) return status::invalid_argument(what + ": " + addr.error().message());
      cfg.seeds.push_back(addr->str());
    }
    return status::ok();
  }
  if (key == "cluster_secret") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    if (!cfg.cluster_secret.empty()) {
      return status::invalid_argument(what + ": the cluster secret is set twice (cluster_secret "
                                             "and cluster_secret_file); keep one");
    }
    cfg.cluster_secret = value;
    return status::ok();
  }
  if (key == "cluster_secret_file") {
    if (!cfg.cluster_secret.empty()) {
      return status::invalid_argument(what + ": the cluster secret is set twice (cluster_secret "
                                             "and cluster_secret_file); keep one");
    }
    auto secret = read_secret_file(what, join_path(base_dir, value));
    if (!secret) return secret.error();
    cfg.cluster_secret = *secret;
    return status::ok();
  }
  if (key == "tls_certificate" || key == "tls_key" || key == "tls_ca") {
    if (value.empty()) return status::invalid_argument(what + " must not be empty");
    std::string& field = key == "tls_certificate" ? cfg.tls_certificate
                         : key == "tls_key"       ? cfg.tls_key
                                                  : cfg.tls_ca;
    field = join_path(base_dir, value);
    return status::ok();
  }
  if (key == "gossip_interval_ms") return millis(cfg.gossip_interval_ms, 10, 60000);
  if (key == "probe_timeout_ms") return millis(cfg.probe_timeout_ms, 10, 60000);
  if (key == "indirect_probe_timeout_ms") return millis(cfg.indirect_probe_timeout_ms, 10, 60000);
  if (key == "suspicion_timeout_ms") return millis(cfg.suspicion_timeout_ms, 100, 3600000);
  if (key == "dead_retention_ms") return millis(cfg.dead_retention_ms, 1000, 86400000);
  if (key == "indirect_probes") return size(cfg.indirect_probes, 0, 16);
  if (key == "max_gossip_updates") return size(cfg.max_gossip_updates, 2, 256);
  if (key == "seed_interval_ms") return millis(cfg.seed_interval_ms, 100, 3600000);
  if (key == "sync_interval_ms") {
    auto v = parse_uint(what, value, 0, 86400000);
    if (!v) return v.error();
    if (*v != 0 && *v < 1000) {
      return status::invalid_argument(what + " must be 0 (only when joining) or at least 1000, got " +
                                      value);
    }
    cfg.sync_interval_ms = static_cast<int64_t>(*v);
    return status::ok();
  }
  if (key == "monitored_peers") return size(cfg.monitored_peers, 1, 64);
  if (key == "replication_factor") return size(cfg.replication_factor, 1, 16);
  if (key == "phi_threshold") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(v >= 1 && v <= 50)) {
      return status::invalid_argument(what + " must be a number between 1 and 50, got '" +
                                      value + "'");
    }
    cfg.phi_threshold = v;
    return status::ok();
  }
  return status::invalid_argument(
      what + ": unknown setting '" + key +
      "' (known: data_dir, host, http_port, zmq_port, grpc_port, cluster_port, data_port, name, "
      "http_threads, "
      "max_body_bytes, max_push_bytes, request_timeout_ms, max_batch, max_in_flight, "
      "micro_batch_texts, max_queue_ms, log_format, "
      "drain_timeout_ms, keys_file, tenant_limits, tenant_limits.TENANT, model_memory_mb, "
      "keep_replaced_warm_s, advertise_host, seeds, "
      "cluster_secret, "
      "cluster_secret_file, tls_certificate, tls_key, tls_ca, gossip_interval_ms, "
      "phi_threshold, probe_timeout_ms, indirect_probe_timeout_ms, indirect_probes, "
      "suspicion_timeout_ms, dead_retention_ms, max_gossip_updates, seed_interval_ms, "
      "sync_interval_ms, monitored_peers, replication_factor, follow_traffic_rps, follow_idle_s, "
      "follow_max_copies)");
}

}  // namespace

namespace {

// One config line as key and value, or nullopt for a blank or comment line. A value in double
// quotes is taken as written ('#' and spaces inside are part of it; \" and \\ stand for " and \);
// elsewhere '#' starts a comment. A quote that is not closed, text after the closing quote, or a
// quote inside an unquoted value is an error, so a secret is never cut short without a word.
result<std::optional<std::pair<std::string, std::string>>> split_config_line(
    const std::string& line, const std::string& where) {
  const size_t eq = line.find('=');
  const size_t hash = line.find('#');
  if (eq == std::string::npos || (hash != std::string::npos && hash < eq)) {
    const std::string text = trim(line.substr(0, hash));
    if (text.empty()) return std::optional<std::pair<std::string, std::string>>();
    return status::invalid_argument(where + ": expected 'key = value', got '" + text + "'");
  }
  std::string key = trim(line.substr(0, eq));
  std::string rest = trim(line.substr(eq + 1));
  std::string value;
  if (!rest.empty() && rest.front() == '"') {
    size_t i = 1;
    bool closed = false;
    for (; i < rest.size(); ++i) {
      const char c = rest[i];
      if (c == '\\' && i + 1 < rest.size() && (rest[i + 1] == '"' || rest[i + 1] == '\\')) {
        value += rest[++i];
      } else if (c == '"') {
        closed = true;
        break;
      } else {
        value += c;
      }
    }
    if (!closed) {
      return status::invalid_argument(where + ": " + key +
                                      ": the value's opening quote is never closed (write "
                                      "key = \"value\", with \\\" for a quote inside)");
    }
    const std::string after = trim(rest.substr(i + 1));
    if (!after.empty() && after.front() != '#') {
      return status::invalid_argument(where + ": " + key + ": unexpected text after the closing "
                                      "quote: '" + after + "' (only a # comment may follow)");
    }
  } else {
    value = trim(rest.substr(0, rest.find('#')));
    if (value.find('"') != std::string::npos) {
      return status::invalid_argument(where + ": " + key + ": a quote inside an unquoted value: '" +
                                      value + "' (quote the whole value: key = \"value\")");
    }
  }
  return std::optional<std::pair<std::string, std::string>>(
      std::make_pair(std::move(key), std::move(value)));
}

}  // namespace

status apply_config_text(const std::string& text, const std::string& origin,
                         const std::string& base_dir, node_config& cfg) {
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = origin + " line " + std::to_string(number);
    auto entry = split_config_line(line, where);
    if (!entry) return entry.error();
    if (!*entry) continue;
    const auto& [key, value] = **entry;
    SHOAL_RETURN_IF_ERROR(set_field(cfg, key, value, where + ": " + key, base_dir));
  }
  return status::ok();
}

result<node_command> parse_node_args(const std::vector<std::string>& args) {
  node_command cmd;
  // Pass 1: --help and --config, so that flags override the file whatever their order.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      cmd.help = true;
      return cmd;
    }
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) return status::invalid_argument("--config needs a FILE");
      const std::string& path = args[i + 1];
      std::ifstream file(path);
      if (!file) return status::invalid_argument("cannot read config file '" + path + "'");
      std::stringstream text;
      text << file.rdbuf();
      auto slash = path.rfind('/');
      std::string base = slash == std::string::npos ? "." : path.substr(0, slash);
      SHOAL_RETURN_IF_ERROR(apply_config_text(text.str(), path, base, cmd.config));
    }
  }
  static const std::pair<const char*, const char*> flags[] = {
      {"--data-dir", "data_dir"},
      {"--host", "host"},
      {"--http-port", "http_port"},
      {"--zmq-port", "zmq_port"},
      {"--grpc-port", "grpc_port"},
      {"--cluster-port", "cluster_port"},
      {"--data-port", "data_port"},
      {"--name", "name"},
      {"--http-threads", "http_threads"},
      {"--request-timeout-ms", "request_timeout_ms"},
      {"--max-body-bytes", "max_body_bytes"},
      {"--max-push-bytes", "max_push_bytes"},
      {"--keys-file", "keys_file"},
      {"--max-in-flight", "max_in_flight"},
      {"--micro-batch-texts", "micro_batch_texts"},
      {"--max-queue-ms", "max_queue_ms"},
      {"--drain-timeout-ms", "drain_timeout_ms"},
      {"--log-format", "log_format"},
      {"--model-memory-mb", "model_memory_mb"},
      {"--keep-replaced-warm-s", "keep_replaced_warm_s"},
      {"--seeds", "seeds"},
      {"--cluster-secret-file", "cluster_secret_file"},
      {"--advertise-host", "advertise_host"},
      {"--gossip-interval-ms", "gossip_interval_ms"},
      {"--phi-threshold", "phi_threshold"},
      {"--probe-timeout-ms", "probe_timeout_ms"},
      {"--indirect-probe-timeout-ms", "indirect_probe_timeout_ms"},
      {"--indirect-probes", "indirect_probes"},
      {"--suspicion-timeout-ms", "suspicion_timeout_ms"},
      {"--dead-retention-ms", "dead_retention_ms"},
      {"--max-gossip-updates", "max_gossip_updates"},
      {"--seed-interval-ms", "seed_interval_ms"},
      {"--sync-interval-ms", "sync_interval_ms"},
      {"--monitored-peers", "monitored_peers"},
      {"--replication-factor", "replication_factor"},
      {"--follow-traffic-rps", "follow_traffic_rps"},
      {"--follow-idle-s", "follow_idle_s"},
      {"--follow-max-copies", "follow_max_copies"},
  };
  // A secret on the command line would show in `ps`: flags may only name a file. The flag wins
  // over the config file's secret, like every flag.
  bool secret_flag = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--config") {
      ++i;
      continue;
    }
    std::string flag = arg;
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const char* key = nullptr;
    for (const auto& [f, k] : flags) {
      if (flag == f) key = k;
    }
    if (key == nullptr) {
      if (arg.rfind("-", 0) == 0) return status::invalid_argument("unknown option '" + arg + "'");
      return status::invalid_argument("unexpected argument '" + arg + "'");
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return status::invalid_argument(flag + " needs a value");
      value = args[++i];
    }
    if (std::string(key) == "cluster_secret_file" && !secret_flag) {
      secret_flag = true;
      cmd.config.cluster_secret.clear();
    }
    SHOAL_RETURN_IF_ERROR(set_field(cmd.config, key, value, flag, ""));
  }
  const auto& c = cmd.config;
  int tls = !c.tls_certificate.empty() + !c.tls_key.empty() + !c.tls_ca.empty();
  if (tls != 0 && tls != 3) {
    return status::invalid_argument(
        "node-to-node TLS needs all of tls_certificate, tls_key and tls_ca (or none of them)");
  }

  if (cmd.config.data_dir.empty()) {
    return status::invalid_argument("--data-dir DIR is required (or data_dir in --config FILE)");
  }
  bool wildcard = c.host == "0.0.0.0" || c.host == "::" || c.host == "[::]";
  if (c.advertise_host.empty() && wildcard) {
    if (!c.seeds.empty()) {
      return status::invalid_argument(
          "host " + c.host + " listens everywhere but is no address peers can reach: set "
          "--advertise-host (advertise_host) to this machine's address for the cluster");
    }
  }
  if (cmd.config.advertise_host.empty()) cmd.config.advertise_host = cmd.config.host;
  if (cmd.config.name.empty()) {
    cmd.config.name = cmd.config.host + ":" + std::to_string(cmd.config.http_port);
  }
  return cmd;
}

std::string node_usage() {
  return R"(usage: shoal node --data-dir DIR [options]

Runs a Shoal node: stores snapshots under DIR and serves them over HTTP (KServe V2)
and ZeroMQ (protobuf, used by the shoal CLI). Stop it with Ctrl-C or SIGTERM.

options:
  --data-dir DIR            where snapshots and the catalog live (required)
  --host ADDR               address to listen on (default 127.0.0.1)
  --http-port N             HTTP port (default 7422)
  --zmq-port N              ZeroMQ port, for the CLI (default 7421)
  --grpc-port N             KServe V2 gRPC port (default: the HTTP port + 1, so 7423; 0: any
                            free port, logged at start)
  --cluster-port N          node-to-node port: gossip, catalog, snapshot copies (default 7420)
  --data-port N             node-to-node port for forwarded inference (default 0: any free
                            port, told to peers by gossip; set it where a firewall needs one)
  --name NAME               node name in logs and status (default HOST:HTTP_PORT)
  --config FILE             read settings from FILE (key = value lines); flags override it
  --http-threads N          HTTP I/O threads, which also run small inferences (default: one per
                            CPU core, at least 2)
  --request-timeout-ms N    inference deadline before answering 503 (default 5000)
  --max-body-bytes N        HTTP body limit, 413 above it (default 4194304)
  --max-push-bytes N        largest snapshot a push may carry (default 268435456)
  --max-in-flight N         inference requests answered at once; more get 429 at once
                            (default 1024)
  --max-queue-ms MS         when a front-end thread's requests wait longer than MS for it, a share
                            of new inference requests gets 429 at once, so the rest stay fast
                            (default 1; 0: never)
  --micro-batch-texts N     requests for the same loaded model that arrive together are
                            predicted together, up to N texts (default 64; 0: each alone)
  --drain-timeout-ms N      on SIGTERM, finish requests in flight for up to N ms while new
                            ones get 503, then stop (default 5000)
  --keys-file FILE          API keys, one "KEY TENANT [NAME]" or "KEY admin [NAME]" a line
                            ('#' comments); reread on SIGHUP. Without it every client
                            reaches every model
  --model-memory-mb N       memory for loaded models; above it the least recently used are
                            unloaded (they stay stored and load again on their next request).
                            Default: half of this machine's RAM
  --keep-replaced-warm-s N  after a label moves, its previous version is unloaded last for N
                            seconds, so a rollback finds it in memory (default 600)
  --log-format FMT          human (default): one readable line per event on stderr; json: one
                            JSON object per line (time, level, msg, and the event's fields
                            such as model and version), for log collectors
  -h, --help                show this help

cluster:
  --seeds HOST:PORT[,...]   cluster ports of nodes to join through (any one that is up will
                            do); none: start a one-node cluster that others can join
  --replication-factor N    nodes that keep each snapshot's bytes (default 2; 1 allowed)
  --follow-traffic-rps X    a node forwarding X requests a second to a model it does not hold
                            (for 3 s) takes a copy and serves it itself (default 20; 0: never)
  --follow-idle-s N         such an extra copy is released after N s without a request
                            (default 300)
  --follow-max-copies N     extra copies a node holds at most (default 1000)
  --advertise-host ADDR     the address other nodes reach this one at (default: --host;
                            required with --host 0.0.0.0 and seeds)
  --cluster-secret-file F   file holding the shared cluster secret: gossip is authenticated
                            with it, a node with another secret is refused (config:
                            cluster_secret or cluster_secret_file)
  --gossip-interval-ms N    heartbeat and gossip period (default 200)
  --phi-threshold X         phi at which a silent peer is probed (default 8)
  --probe-timeout-ms N      wait for a direct ack (default 300)
  --indirect-probe-timeout-ms N  then for an ack through other members (default 500)
  --indirect-probes N       members asked to probe for us (default 3)
  --suspicion-timeout-ms N  suspect -> dead without a refutation (default 3000)
  --dead-retention-ms N     dead or left -> removed from the member table (default 30000)
  --max-gossip-updates N    member entries per gossip message (default 16)
  --monitored-peers N       ring neighbours whose failure detector each node runs (default 8)
  --seed-interval-ms N      ping a seed this often once joined, heals partitions (default 5000)
  --sync-interval-ms N      swap whole member tables with one random peer this often; 0: only
                            when joining (default 30000)
  TLS between nodes: tls_certificate, tls_key and tls_ca in the config file (certificates
  from the cluster's own CA; see README.md, "Cluster").

example:
  shoal node --data-dir /var/lib/shoal --http-port 8080
  shoal node --config cluster-config/embedded.conf
  shoal node --config cluster-config/local-3/n2.conf
)";
}

}  // namespace shoal
