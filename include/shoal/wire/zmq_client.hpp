// zmq_client: a small synchronous client of a node's ZeroMQ port, for the CLI and tests. One call
// at a time: send the request bytes, wait for the reply bytes or the timeout. Speaks bytes only;
// api_codec.hpp makes and reads them.
// Thread-safety: none; one thread uses a client at a time. Each client owns its ZeroMQ context.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shoal/base/host_port.hpp"
#include "shoal/base/status.hpp"

namespace shoal {

class zmq_client {
 public:
  /// Returns a client of the node at `address` ("127.0.0.1:7421"): invalid_argument when the
  /// address does not parse. Connecting is lazy (ZeroMQ reconnects in the background), so a node
  /// that is not there shows up as call()'s timeout, not here.
  /// @pre timeout > 0
  static result<zmq_client> connect(std::string address, std::chrono::milliseconds timeout);

  zmq_client(zmq_client&&) noexcept;
  zmq_client& operator=(zmq_client&&) noexcept;
  ~zmq_client();

  /// Sends one request and returns the reply's bytes, or unavailable when none came within the
  /// timeout ("no answer from node 127.0.0.1:7421 within 10s: is `shoal node` running there?").
  /// After a timeout the connection is replaced, so a late reply can never answer the next call.
  result<std::string> call(const std::string& request_bytes);

  /// Returns the node address as given to connect(), normalised ("127.0.0.1:7421").
  const std::string& address() const;

 private:
  struct impl;
  explicit zmq_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace shoal
