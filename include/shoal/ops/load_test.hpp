// load_test: `shoal bench`, an open-loop HTTP load generator for sizing a deployment and for the
// overload benches.
//
// Open loop: requests are due at fixed times (rate R: one every 1/R s) whether or not earlier
// ones were answered, and each request's latency is measured from the time it was due, so a
// server (or a client) that falls behind shows up as latency instead of as a slower request rate
// (no coordinated omission). A request goes out on an idle keep-alive connection; when every
// connection is busy a new one is opened, up to `connections`; past that, due requests wait in
// the generator (their wait counts in their latency) and those still waiting when the run ends
// are reported as "not sent".
//
// A run is a list of steps (rate, seconds), back to back with no pause between them (so a step
// after an overload shows how fast the server recovers). With a ramp and an SLO, steps go up by
// `ramp_step` until a step's p99 of successful answers crosses the SLO; the highest rate that kept
// the SLO is reported as sustainable.
//
// One thread runs the generator (one Boost.Asio io_context): size its rate to one core. Its timer
// wakes at most every 100 us and sends everything due by then (above 10,000 req/s, requests go
// in small groups; each one's latency still counts from its own due time): a wake-up per request
// cost more than half of its core at 40,000 req/s. With `spin` it never sleeps: it polls its
// sockets and its clock in a loop and sends each request as soon as it is due, and a reply is
// read as soon as it arrives. That takes a whole core, and keeps the generator's wake-ups out of
// what it measures, and it spares the node the cost of waking the generator for every reply (in
// a 5x storm on a 2-core machine, against the same node: accepted p99 4.2-4.6 ms sleeping,
// 1.8-2.0 ms spinning; unloaded p50 0.20 ms and 0.13 ms).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shoal/base/status.hpp"

namespace shoal {

struct load_step {
  double rate = 100;    // requests per second
  double seconds = 10;  // how long
};

struct load_test_options {
  // The nodes' HTTP addresses (host, port): one node, or several front ends of a cluster, which
  // requests go to round robin (each on a connection to its node). Never empty.
  std::vector<std::pair<std::string, uint16_t>> targets = {{"127.0.0.1", 7422}};
  std::vector<std::string> models;   // TENANT/MODEL, rotated request by request
  std::vector<std::string> texts;    // rotated; empty: a built-in set of chatbot texts
  std::string key;                   // Bearer key; empty: none
  uint32_t top_k = 1;
  std::vector<load_step> steps;      // fixed steps; or a ramp:
  double ramp_start = 0, ramp_step = 0, ramp_max = 0, ramp_seconds = 10;
  double slo_ms = 0;                 // with a ramp: stop once p99 exceeds it (0: run every step)
  size_t connections = 256;          // most connections open at once
  bool drop_when_busy = false;       // a request due while every connection is busy is not sent
                                     // (counted as client_shed) instead of waiting
  bool spin = false;                 // busy-poll instead of sleeping (a core of its own)
  uint32_t timeout_ms = 10000;       // an answer that takes longer counts as an error
  double max_queue_ms = 0;           // > 0: sent as Shoal-Max-Queue-Ms with every request
  int pid = 0;                       // the node's process (same machine): CPU and memory per step
};

/// Latency percentiles in milliseconds (0 when there were no samples).
struct latency_summary {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

struct step_report {
  double rate = 0, seconds = 0;
  uint64_t due = 0;          // requests the step scheduled
  uint64_t ok = 0;           // 200
  uint64_t refused = 0;      // 429
  uint64_t unavailable = 0;  // 503
  uint64_t other = 0;        // any other status
  uint64_t errors = 0;       // connection failed or closed, timeout, unparsable answer
  uint64_t not_sent = 0;     // still waiting for a connection when the run ended
  uint64_t client_shed = 0;  // with drop_when_busy: due while every connection was busy
  latency_summary ok_latency;       // from the time each was due
  latency_summary ok_wire;          // from the time each was written
  latency_summary refused_latency;  // 429 and 503, from the time each was due
  size_t connections = 0;           // open at the step's end
  double node_cpu_percent = -1;     // with a pid: the node's CPU over the step (100 = one core)
  double node_rss_mb = -1;          // with a pid: resident memory at the step's end
};

struct load_test_report {
  std::vector<step_report> steps;
  double sustainable_rate = 0;  // with an SLO: the highest step rate whose p99 kept it
  std::string stopped_because;  // the first step that missed the SLO, and how ("" if none)
};

/// Runs the steps; `progress` (if set) gets one line per finished step. Errors: unreachable
/// node (the first connection fails), invalid options.
result<load_test_report> run_load_test(const load_test_options& options,
                                       const std::function<void(const std::string&)>& progress);

/// The report as a fixed-width table (one row per step).
std::string render_load_table(const load_test_report& r, const load_test_options& options);
/// The report as JSON.
std::string render_load_json(const load_test_report& r, const load_test_options& options);

/// `shoal bench ARGS...`: parses, runs, prints. Returns the exit code (0 ok, 1 failed, 2 usage).
int run_bench_command(const std::vector<std::string>& args);

/// `shoal bench --help`.
std::string bench_usage();

}  // namespace shoal
