// health_check: `shoal health`, the container image's health check. The image has no shell and
// no curl, so the binary itself asks a node's /v2/health/ready over plain HTTP/1.1 (a blocking
// socket, one request, Connection: close) and says yes or no through its exit status: 0 when the
// node answers 200, 1 otherwise (refused, timed out, not ready) with one line on stderr saying
// why, 2 for a wrong command line. Docker's HEALTHCHECK, Kubernetes' exec probe and systemd's
// ExecStartPost can all run it.
//
// Plain HTTP only: the check runs next to the node (in its container), on its HTTP port, which
// serves TLS only when the node is configured so; a TLS front is checked by the load balancer.
// Thread-safety: stateless; every function may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "shoal/base/status.hpp"

namespace shoal {

struct health_check_options {
  std::string host = "127.0.0.1";           // a name or an address; [::1] for IPv6
  uint16_t port = 7422;                     // the node's http_port default
  std::chrono::milliseconds timeout{3000};  // the whole check: resolve, connect, answer
  bool help = false;
};

/// Returns the options of `shoal health ARGS` (ARGS after "health"), or invalid_argument saying
/// which flag or value is wrong.
result<health_check_options> parse_health_check_args(const std::vector<std::string>& args);

/// Returns the help text of `shoal health`.
std::string health_check_usage();

/// Returns ok when GET /v2/health/ready on `o.host:o.port` answers 200 within `o.timeout`;
/// otherwise unavailable with the reason ("connection refused", "answered 503: ...").
status check_ready(const health_check_options& o);

/// Runs `shoal health ARGS`; returns the process exit status (0 ready, 1 not ready, 2 usage).
int run_health_check(const std::vector<std::string>& args);

}  // namespace shoal
