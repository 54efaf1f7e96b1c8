// host_port: a node address ("127.0.0.1:7421", "node-3.internal:7421", "[::1]:7421") as configs,
// the CLI, gossip and catalog sync write it.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shoal/base/status.hpp"

namespace shoal {

/// A node address as the CLI and configs write it.
struct host_port {
  std::string host;  // IPv6 literals without brackets
  uint16_t port = 0;

  /// Returns "host:port" ("[::1]:7421" for IPv6).
  std::string str() const;
};

/// Parses "HOST:PORT" ("127.0.0.1:7421", "node-3.internal:7421", "[::1]:7421"); the port must be
/// 1..65535. Anything else is invalid_argument saying what is expected.
result<host_port> parse_host_port(std::string_view text);

}  // namespace shoal
