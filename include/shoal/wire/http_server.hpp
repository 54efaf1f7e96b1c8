// http_server: an asynchronous HTTP/1.1 server (Boost.Beast) that knows nothing about models. It
// parses requests, hands each one to a handler, and writes whatever reply the handler sends back,
// possibly later and from another thread (the node answers from an actor).
//
// Threading: `threads` I/O threads, each running its own io_context; a connection lives on one of
// them for its whole life (round robin at accept), so that context is the connection's strand:
// its reads, writes and the handler call never run concurrently, and no lock is taken per request.
// The handler runs on the connection's I/O thread and must not block (hand slow work elsewhere and
// call respond later). respond() is thread-safe; it posts the write onto the connection's thread.
//
// Per connection: HTTP/1.1 keep-alive (HTTP/1.0 with "Connection: keep-alive"), one request at a
// time (the next request is read after the reply is written; no pipelining). Errors the client
// causes never reach the handler and never stop the server:
//   body over max_body_bytes (checked on Content-Length, or while reading chunks) -> 413, close
//   request headers over 16 KiB                                                 -> 431, close
//   malformed request line, header, Content-Length or chunk encoding            -> 400, close
//   the handler throws                                                          -> 500 (connection kept)
//   no complete request within idle_timeout (also between keep-alive requests)   -> close
// Error replies are {"error":"..."}; after one the server stops sending, reads and discards what
// the client still sends for a moment (so the client sees the reply, not a reset), then closes.
// A client sending "Expect: 100-continue" gets "100 Continue" before its body is read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shoal/base/status.hpp"

namespace boost {
namespace asio {
class io_context;
}  // namespace asio
}  // namespace boost

namespace shoal {

/// One request, owned by the handler.
struct http_request {
  std::string method;        // "GET", "POST", ... as sent
  std::string target;        // raw request target: path and optional query, still percent-encoded
  std::string body;
  std::string content_type;  // the Content-Type header, "" when absent
  std::string authorization;       // the Authorization header
  bool has_authorization = false;  // whether one was sent
  std::string max_queue_ms;        // the Shoal-Max-Queue-Ms header, "" when absent
  std::string inference_header_length;  // V2's Inference-Header-Content-Length, "" when absent
};

/// One reply. The server adds Server, Date, Content-Type, Content-Length and Connection headers;
/// to a HEAD request it sends the headers only (Content-Length still says what GET would send).
struct http_reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// Extra headers, e.g. {"Allow", "GET"}. A name or value holding CR or LF is dropped.
  std::vector<std::pair<std::string, std::string>> headers;
  /// When > 0: after this reply, the connection's next request is read only this much later.
  /// Backpressure for refusals: a client flooding over a limit is slowed down at the socket
  /// instead of costing the node a parse and a refusal per request.
  std::chrono::milliseconds pause_reading{0};
};

/// Sends the reply to one request. Call it exactly once, from any thread, at any time (also after
/// the handler returned); later calls are ignored, and calls after stop() do nothing. Dropping it
/// uncalled closes the connection.
using http_respond = std::function<void(http_reply)>;

/// Handles one request; runs on an I/O thread and must not block.
using http_handler = std::function<void(http_request&&, http_respond)>;

struct http_server_options {
  std::string host = "127.0.0.1";  // an address or a resolvable name
  uint16_t port = 7422;            // 0: the OS picks a free port (see http_server::port())
  size_t threads = 2;              // I/O threads; 0 counts as 1. One per core is plenty.
  size_t max_body_bytes = 4 << 20;                // larger bodies get 413
  std::chrono::seconds idle_timeout{60};          // per request read, and between requests
  /// When set: called on every I/O thread each tick_interval, busy or idle (the node uses it
  /// to let go of serving views an idle thread would otherwise keep, with their models).
  /// Must not block.
  std::function<void()> on_tick;
  std::chrono::milliseconds tick_interval{1000};
  /// When set: while an I/O thread is busy (it read a request since the last probe), a timer on
  /// it fires every lag_probe_interval and this gets how late it fired in milliseconds (about how
  /// long a request that just arrived waits for the thread), on that thread. Only the share of the
  /// interval the thread was running counts (own_lag_ms in overload.hpp): time the machine kept
  /// it off the CPU, or a handler spent blocked, is not the thread's backlog. When a probe finds
  /// the thread was idle, it gets idle = true and probing stops until the next request. The node
  /// sheds load with it (overload.hpp). Must not block.
  std::function<void(double lag_ms, bool idle)> on_lag;
  std::chrono::microseconds lag_probe_interval{1000};
};

/// From a handler (on an I/O thread): runs `fn` later on this same thread, behind the work the
/// thread already has (e.g. the other requests read in the same round). The node flushes its
/// micro-batches this way. Returns false, and does nothing, on a thread that is not an I/O thread.
bool http_defer(std::function<void()> fn);

/// A listening server. Non-copyable; owns its threads. stop() (or the destructor) returns only
/// after every I/O thread has exited; the handler is never called after that. Connections whose
/// respond is still held elsewhere keep the I/O state (not the threads) alive until it is dropped.
class http_server {
 public:
  /// Returns a server listening on options.host:options.port with its I/O threads running, or
  /// unavailable ("cannot listen on 127.0.0.1:7422: Address already in use") when it cannot bind,
  /// invalid_argument when the host does not resolve.
  static result<std::unique_ptr<http_server>> start(http_server_options options,
                                                    http_handler handler);

  /// Stops (see stop()).
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Returns the port the server is bound to (the one the OS picked when options.port was 0).
  uint16_t port() const;

  /// Returns the I/O threads' contexts, one per thread, so another protocol can run on the same
  /// threads (the data plane). Valid until the server is destroyed; they stop running at stop().
  std::vector<boost::asio::io_context*> io_contexts() const;

  /// Closes the listener and every connection (idle or waiting for a reply) and joins the I/O
  /// threads. Returns promptly; idempotent. Replies sent afterwards are dropped.
  /// @pre not called from the handler (it runs on an I/O thread, which stop() joins)
  void stop();

  struct core;  // the I/O state, shared with connections that outlive the server object

 private:
  explicit http_server(std::shared_ptr<core> c);
  std::shared_ptr<core> core_;
};

}  // namespace shoal
