// data_plane: inference between nodes. A node forwards a request for a model it does not hold to a
// holder over a persistent TCP connection (TLS when the node has certificates), many requests in
// flight on it, answers matched by request id (cluster/data_plane_protocol.hpp has the frames and
// the handshake that proves both ends know the cluster secret). The actors keep membership, the
// catalog and snapshot copies; nothing here waits in an actor mailbox.
//
// Why not the actors: a forward through the router and model-host actors over CAF's BASP cost
// about seven local requests (six mailboxes, two BASP hops), so a 4-node cluster served 0.55x of
// one node. Here a forward costs a frame written on the thread that read the request, and the
// holder answers it on the thread that read the frame, from the same loaded model and
// micro-batches as its own clients' requests.
//
// Threading: the data plane runs on the HTTP server's I/O threads (one io_context each). Each
// thread owns its own connection to each peer it forwards to (no lock per request) and the
// inbound connections the accept loop gave it. forward() from an I/O thread uses that thread's
// connections; from any other thread (the ZeroMQ one) it is posted to one of them.
//
// Failover: a request in flight to a peer is retried on the next holder at once when the
// connection drops, when membership no longer lists the peer as alive (peers_changed), or when
// the peer refuses it (shedding, draining) or fails it. A peer that is only slow (hedge_after
// without an answer) keeps the request: the next holder is asked too, and the first answer wins.
// When no holder is left to ask and the slow attempt's connection has carried nothing back for
// hedge_after (a lossy link in retransmission backoff), that holder is asked again over a fresh
// connection, and the stuck one takes no new requests. The request fails when every attempt
// failed, or at forward_timeout (checked on requests sent; one still waiting for a new
// connection's handshake ends with it, within handshake_timeout). Its answer is delivered once:
// a later answer from another attempt is dropped. A client's own mistake (invalid_argument,
// not_found) is not retried.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/cluster/peer_directory.hpp"
#include "shoal/serving/front_door.hpp"
#include "shoal/serving/metrics.hpp"

namespace boost {
namespace asio {
class io_context;
}  // namespace asio
}  // namespace boost

namespace shoal {

struct data_plane_options {
  std::string host = "127.0.0.1";  // listen address
  uint16_t port = 0;               // 0: the OS picks (gossip tells peers which)
  std::string node_id;             // ours: sent in the hello, for the peer's logs
  std::string secret;              // the cluster secret; empty: no proof asked or given
  // TLS, as for gossip: all three set (both ends present a certificate the CA signed), or none.
  std::string tls_certificate;
  std::string tls_key;
  std::string tls_ca;
  size_t max_frame_bytes = 64u << 20;  // a larger frame closes the connection
  // An attempt unanswered this long is hedged (see Failover above). Peers that die are noticed
  // sooner (the connection drops, or membership marks them dead).
  std::chrono::milliseconds hedge_after{1000};
  // No answer from any holder this long after forward(): the request fails (unavailable).
  std::chrono::milliseconds forward_timeout{5000};
  std::chrono::milliseconds handshake_timeout{5000};  // connect + TLS + hello, each way
  std::shared_ptr<node_metrics> metrics;  // retries are counted here; may be null
};

/// Answers an inference a peer forwarded; must call `reply` exactly once, from any thread.
using data_plane_handler =
    std::function<void(infer_request req, std::function<void(result<infer_result>)> reply)>;

/// A node's data plane: the listener for peers' requests and the connections to peers.
/// Non-copyable. Created before the front door (which forwards through it), started once the I/O
/// threads exist, stopped before they stop.
class data_plane final : public peer_port {
 public:
  explicit data_plane(data_plane_options options);
  ~data_plane() override;
  data_plane(const data_plane&) = delete;
  data_plane& operator=(const data_plane&) = delete;

  /// Binds options.host:port (so the port can be gossiped before the I/O threads exist) and
  /// reads the TLS files. Returns unavailable when it cannot listen, invalid_argument when a
  /// TLS file is unusable or the host does not resolve.
  /// @pre called once, before start
  status listen();

  /// Serves peers' requests with `handler` and forwards, on `contexts` (each run by one thread
  /// that never blocks; the HTTP server's).
  /// @pre listen() succeeded; called once; every context outlives stop()
  void start(std::vector<boost::asio::io_context*> contexts, data_plane_handler handler);

  /// Returns the port it listens on (after listen).
  uint16_t port() const;

  /// Forwards `req` to `targets` in order (see the file comment); `done` runs once, on an I/O
  /// thread. Before start or after stop, fails at once with unavailable.
  void forward(std::vector<peer_info> targets, infer_request req,
               std::function<void(result<infer_result>)> done) override;

  /// Tells the data plane who is alive now: connections to peers no longer in `peers` are
  /// closed, and their requests retried on the next holder at once. Any thread.
  void peers_changed(std::shared_ptr<const peer_directory> peers);

  /// Closes the listener and every connection; requests in flight fail with unavailable.
  /// Returns once every I/O thread has done so. Idempotent.
  /// @pre not called on one of the I/O threads
  void stop();

  struct core;  // the state shared with the I/O threads

 private:
  std::shared_ptr<core> core_;
};

}  // namespace shoal
