// Test support for process-level tests: runs real `shoal` processes (nodes and CLI calls) on
// free loopback ports, speaks raw HTTP/1.1 to them, trains small models with the fasttext tool.
// Every node is killed in the destructor, so a failing test leaves no process behind. Temp dirs and
// child processes in general come from files.hpp and process.hpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/process.hpp"

namespace shoal::testing {

/// Returns a random port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral
/// range (so no outgoing connection of a concurrent test can take it before the node binds it).
uint16_t free_port();

/// Returns the path of the shoal binary under test ($SHOAL_BIN).
std::string shoal_bin();

/// Runs `shoal ARGS` to completion (stdin from /dev/null) and captures its output.
run_result run_shoal(const std::vector<std::string>& args,
                     std::chrono::seconds timeout = std::chrono::seconds(60));

struct http_response {
  int status = 0;  // 0: no HTTP answer (connection closed or refused)
  std::string body;
  std::string headers;
};

/// Sends one request with Connection: close and reads the whole answer.
http_response http_call(uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& extra_headers = "");

/// The value of the sample `series` (a metric name with its labels, e.g.
/// `shoal_refusals_total{reason="overload"}`) in Prometheus text `exposition`; nullopt if absent.
std::optional<double> metric_value(const std::string& exposition, const std::string& series);

/// Writes raw bytes to 127.0.0.1:port, then reads whatever comes back until close or timeout.
std::string raw_exchange(uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

/// A `shoal node` process on free loopback ports.
class node_process {
 public:
  /// Starts a node on `data_dir` and waits until /v2/health/ready answers. The cluster port is
  /// `cluster_port`, or a free one when 0; it stays the same across restart().
  explicit node_process(std::string data_dir, std::vector<std::string> extra_args = {},
                        uint16_t cluster_port = 0);
  ~node_process();
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  uint16_t http_port() const { return http_port_; }
  uint16_t zmq_port() const { return zmq_port_; }
  uint16_t grpc_port() const { return grpc_port_; }
  uint16_t cluster_port() const { return cluster_port_; }
  /// Returns "127.0.0.1:<cluster port>", what other nodes' --seeds name.
  std::string cluster_addr() const { return "127.0.0.1:" + std::to_string(cluster_port_); }
  /// Returns "127.0.0.1:<zmq port>" for the CLI's --node.
  std::string node_addr() const;
  /// Returns what the node wrote to stderr so far.
  std::string log() const;
  /// Returns true while the process runs.
  bool alive();
  /// Returns the node's process id.
  pid_t pid() const { return pid_; }

  /// Sends `sig` without waiting.
  void send_signal(int sig);
  /// Sends `sig` and waits for the exit; returns the exit status as from waitpid.
  int stop(int sig);
  /// Starts the node again on the same dir and ports.
  void restart();

  /// Runs `shoal ARGS --node <this node>`.
  run_result cli(std::vector<std::string> args) const;

 private:
  void spawn();
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  uint16_t http_port_;
  uint16_t zmq_port_;
  uint16_t grpc_port_;
  uint16_t cluster_port_;
  std::string log_path_;
  pid_t pid_ = -1;
};

/// How much slower this build runs than a normal one: 3 under AddressSanitizer (the sanitizer
/// build of the tests), else 1. A time target a test gives a node (max_queue_ms) scales by it, so
/// that the sanitizer build tests the same rule and not its own slowness; in the normal build the
/// scaled value is the default.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr int build_slowdown = 3;
#else
inline constexpr int build_slowdown = 1;
#endif

/// The node flags that give it the default max_queue_ms (100), scaled by build_slowdown.
inline std::vector<std::string> default_queue_flags() {
  return {"--max-queue-ms", std::to_string(100 * build_slowdown)};
}

/// Trains a supervised model on `training_text` with the fasttext tool; returns the .bin path.
/// `options` are extra fasttext arguments (e.g. {"-loss", "hs"}).
std::string train_fasttext(const std::string& dir, const std::string& name,
                           const std::string& training_text,
                           const std::vector<std::string>& options = {});

/// Returns the fasttext tool's `predict-prob` output lines for `texts`, k per line.
std::vector<std::string> fasttext_predict_prob(const std::string& model_path,
                                               const std::vector<std::string>& texts, int k);

/// Returns every regular file under `dir` with its bytes, sorted by path.
std::vector<std::pair<std::string, std::string>> snapshot_files(const std::string& dir);

}  // namespace shoal::testing
