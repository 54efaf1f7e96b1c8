// zmq_server: the node's ZeroMQ front door. A ROUTER socket that hands each request's bytes to a
// handler and sends back whatever bytes the handler's respond callback gets, to the peer that
// asked. It knows nothing about models or protobuf: decoding and encoding are the handler's
// business (api_codec.hpp).
//
// Threads: one I/O thread owns the ROUTER socket (ZeroMQ sockets are not thread-safe) and calls the
// handler. Replies come back to it through an inproc PUSH → PULL pipe. There is one PUSH socket,
// shared by every respond callback under a mutex: a socket per calling thread (thread_local) would
// have to be closed by each of those threads before the context can terminate, and the server does
// not own those threads; the guarded section is one non-blocking inproc enqueue (no high-water
// mark), so contention is negligible.
//
// Envelopes: REQ clients (identity, empty delimiter, body) and DEALER clients (identity, body) are
// both served; a reply goes back with the request's envelope echoed exactly. A message whose frames
// before the body do not end in an empty delimiter (other than the lone identity of a DEALER) is
// malformed and dropped, as is anything libzmq refuses (an oversize part, a peer speaking garbage
// instead of ZMTP): the server keeps serving.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shoal/base/status.hpp"

namespace shoal {

/// Sends one reply. Thread-safe; call exactly once, from any thread, possibly later, even after
/// the server stopped (the reply is then dropped). A second call is ignored.
using zmq_respond = std::function<void(std::string reply_bytes)>;

/// Handles one request. Runs on the server's I/O thread, so it must not block: hand the work
/// off and call `respond` when done.
using zmq_handler = std::function<void(std::string request_bytes, zmq_respond respond)>;

struct zmq_server_options {
  /// The interface to listen on: an IPv4 address, "*" or "0.0.0.0" for all, an IPv6 literal
  /// ("::1", no brackets), or a host name.
  std::string host = "127.0.0.1";
  /// 0: the OS picks a free port; read it back with port().
  uint16_t port = 7421;
  /// ZMQ_MAXMSGSIZE: a peer sending a larger message part is disconnected by libzmq and its message
  /// dropped. Must exceed the largest model file a push may carry. 0: no limit.
  size_t max_message_bytes = 256u << 20;
  /// When set: called on the I/O thread after each round of requests handed to the handler (up
  /// to 256 taken from the socket at once). The node flushes its micro-batches here. Must not
  /// block.
  std::function<void()> after_requests;
  /// When set: the lag probe, as in http_server_options::on_lag. While the I/O thread is busy (it
  /// took a request since the last probe), it is due every lag_probe_interval and this gets how
  /// late the loop came back to it in milliseconds (the share of that time the thread was running:
  /// own_lag_ms in overload.hpp), on the I/O thread; once a probe finds the thread was idle, it
  /// gets idle = true and probing stops until the next request. Must not block.
  std::function<void(double lag_ms, bool idle)> on_lag;
  std::chrono::microseconds lag_probe_interval{1000};
};

class zmq_server {
 public:
  /// Returns a server listening on tcp://host:port with its I/O thread running, or unavailable
  /// with the address and the reason ("cannot listen on tcp://127.0.0.1:7421: Address already in
  /// use").
  static result<std::unique_ptr<zmq_server>> start(zmq_server_options options, zmq_handler handler);

  /// Stops the server (see stop()).
  ~zmq_server();
  zmq_server(const zmq_server&) = delete;
  zmq_server& operator=(const zmq_server&) = delete;

  /// Returns the TCP port the server listens on (the one the OS picked when options.port was 0).
  uint16_t port() const;

  /// Returns the endpoint it listens on ("tcp://127.0.0.1:7421").
  const std::string& endpoint() const;

  /// Returns how many messages were dropped as malformed envelopes (libzmq's own drops, such as
  /// oversize messages, are not seen here).
  uint64_t dropped_messages() const;

  /// Closes the socket, stops the I/O thread and joins it; replies not yet sent are dropped and
  /// later respond calls do nothing. Idempotent. Returns promptly (no polling interval).
  /// @pre not called from the handler
  void stop();

 private:
  struct impl;
  explicit zmq_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace shoal
