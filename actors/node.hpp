// node: runs one Shoal node until SIGINT or SIGTERM. Opens the data directory, spawns the
// catalog actor (detached), the router and the gateway, then starts the HTTP and ZeroMQ front ends,
// which decode requests on their own I/O threads and hand them to the gateway.
#pragma once

#include "shoal/ops/node_config.hpp"

namespace shoal {

/// Runs the node until SIGINT or SIGTERM (it installs handlers for both); returns the process
/// exit code (0 after a clean stop, 1 when it cannot start).
int run_node(const node_config& cfg);

}  // namespace shoal
