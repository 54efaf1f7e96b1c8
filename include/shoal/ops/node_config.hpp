// node_config: everything `shoal node` can be told, from a config file and from flags (flags win).
// The config file is plain `key = value` lines; `#` starts a comment; keys are the field names
// below. cluster-config/embedded.conf is a commented example.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shoal/base/log.hpp"
#include "shoal/base/status.hpp"
#include "shoal/serving/tenants.hpp"

namespace shoal {

/// Returns one per CPU core, at least 2 and at most 64.
size_t default_http_threads();

struct node_config {
  std::string data_dir;               // required: snapshots, catalog journal, LOCK
  std::string host = "127.0.0.1";     // address every port binds to
  uint16_t http_port = 7422;          // KServe V2 HTTP/JSON
  uint16_t zmq_port = 7421;           // ZeroMQ + protobuf (CLI, SDKs)
  std::optional<uint16_t> grpc_port;  // KServe V2 gRPC; unset: http_port + 1 (7423); 0: any
                                      // free port (logged at start)
  uint16_t cluster_port = 7420;       // node-to-node gossip, catalog and snapshot copies
  uint16_t data_port = 0;             // node-to-node inference (forwarded requests); 0: any
                                      // free port (gossip tells the peers which)
  std::string name;                   // default: "<host>:<http_port>"
  // HTTP I/O threads. They also run inference on snapshots already in memory (small batches), so
  // the default is one per CPU core (at least 2).
  size_t http_threads = default_http_threads();
  size_t max_body_bytes = 4u << 20;   // HTTP request body limit (413 above)
  size_t max_push_bytes = 256u << 20; // largest snapshot accepted over ZeroMQ
  uint32_t request_timeout_ms = 5000; // an inference that takes longer answers 503
  size_t max_batch = 1024;            // texts in one inference request
  size_t max_in_flight = 1024;        // inference requests the node answers at once; more get
                                      // 429 at once (a bounded queue instead of a slow node)
  double max_queue_ms = 100;          // a front-end thread whose requests wait longer than this
                                      // refuses a share of new ones with 429 (0: never); a
                                      // request's Shoal-Max-Queue-Ms header sets its own
  size_t micro_batch_texts = 64;      // concurrent requests for one loaded model are predicted
                                      // together, up to this many texts (0: each alone)
  shoal::log_format log_format = shoal::log_format::human;  // human, or json for collectors
  uint32_t drain_timeout_ms = 5000;   // on SIGTERM: answer what is in flight (new requests get
                                      // 503) for at most this long, then stop

  // ---- tenants ----
  std::string keys_file;              // "KEY TENANT" / "KEY admin" lines; empty: open to all
  // tenant_limits = rate=200/s in_flight=64 models=1000 stored_mb=10240 (every tenant) and
  // tenant_limits.NAME = ... (one tenant; replaces the default line for it). Unset: unlimited.
  limits_config limits;

  // ---- models in memory ----
  uint64_t model_memory_mb = 0;       // budget for loaded models (least recently used are
                                      // evicted above it); 0: half of the machine's RAM
  int64_t keep_replaced_warm_s = 600; // a label's previous target (what a rollback goes back
                                      // to) is evicted last for this long after the move

  // ---- cluster ----
  std::string advertise_host;         // the address peers and clients reach us at (gossiped);
                                      // default: host. Needed when host is 0.0.0.0 or ::
  std::vector<std::string> seeds;     // HOST:PORT cluster addresses to join through; none: a
                                      // one-node cluster that others can join
  std::string cluster_secret;         // authenticates gossip (HMAC); from cluster_secret or
                                      // cluster_secret_file; empty: no authentication
  std::string tls_certificate;        // node-to-node TLS: all three paths or none
  std::string tls_key;
  std::string tls_ca;
  size_t replication_factor = 2;      // nodes that keep each snapshot's bytes (1 allowed)
  // Traffic-following copies (serving/traffic.hpp): a node that forwards at least
  // follow_traffic_rps requests a second to a model, for 3 s, takes a copy and serves it
  // locally; the copy is released after follow_idle_s without a request. 0: never.
  double follow_traffic_rps = 20;
  int64_t follow_idle_s = 300;
  size_t follow_max_copies = 1000;    // extra copies a node holds at most
  // Membership timings (LAN defaults; see include/shoal/cluster/membership.hpp for what each does).
  int64_t gossip_interval_ms = 200;        // one heartbeat and one gossip ping per interval
  double phi_threshold = 8;                // probe a peer once phi passes this
  int64_t probe_timeout_ms = 300;          // wait for a direct ack
  int64_t indirect_probe_timeout_ms = 500; // then for an ack through others
  size_t indirect_probes = 3;              // members asked to probe for us
  int64_t suspicion_timeout_ms = 3000;     // suspect -> dead without refutation
  int64_t dead_retention_ms = 30000;       // dead/left -> removed from the table
  size_t max_gossip_updates = 16;          // member entries per gossip message (bounds its size)
  int64_t seed_interval_ms = 5000;         // ping a seed this often once joined (heals partitions)
  int64_t sync_interval_ms = 30000;        // swap whole tables with a random peer (0: only on join)
  size_t monitored_peers = 8;              // ring neighbours whose failure detector each node runs
};

/// Applies `key = value` lines from `text` to `cfg`; `origin` names the file in messages
/// ("node.conf line 3: unknown key 'htp_port'"). '#' starts a comment, except inside a value in
/// double quotes (`cluster_secret = "ab#cd"`; \" and \\ inside stand for " and \); an unclosed
/// quote, text after the closing quote or a quote inside an unquoted value is refused, naming the
/// line. A relative data_dir is taken relative to `base_dir` (the config file's directory).
status apply_config_text(const std::string& text, const std::string& origin,
                         const std::string& base_dir, node_config& cfg);

/// What `shoal node ARGS` asks for.
struct node_command {
  node_config config;
  bool help = false;  // print node_usage() and exit 0
};

/// Parses the arguments after `shoal node`: --config FILE is read first, then the other flags
/// override it. Returns invalid_argument with a one-line message on a bad flag or value.
result<node_command> parse_node_args(const std::vector<std::string>& args);

/// Returns the `shoal node --help` text.
std::string node_usage();

}  // namespace shoal
