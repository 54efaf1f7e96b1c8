// front_ends: the HTTP (KServe V2) and ZeroMQ (protobuf) front ends of a node. Each turns bytes
// into a call on the front door (serving/front_door.hpp) and the front door's outcome into bytes;
// neither decides anything about a request. Thread-safety: the handlers run on their server's
// I/O threads, as http_server and zmq_server call them, and share the front door.
#pragma once

#include <cstddef>
#include <memory>

#include "shoal/serving/front_door.hpp"
#include "shoal/wire/console.hpp"
#include "shoal/wire/data_plane.hpp"
#include "shoal/wire/http_server.hpp"
#include "shoal/wire/zmq_server.hpp"

namespace shoal {

/// Returns the HTTP handler: the V2 routes, /metrics (admin key when the node has keys), the
/// operator's console under /ui (console.hpp), and inference through `door`. An infer body over
/// `max_batch` texts is refused with 400.
http_handler make_http_handler(std::shared_ptr<front_door> door, size_t max_batch,
                               console_settings console = {});

/// Returns the ZeroMQ handler: every call of the protobuf API through `door`. The ZeroMQ server
/// must call front_door::end_round after each round of requests (zmq_server_options::after_requests).
zmq_handler make_zmq_handler(std::shared_ptr<front_door> door);

/// Returns the data plane's handler: peers' forwarded inferences through `door` (serve_peer), on
/// the HTTP I/O threads the data plane runs on.
data_plane_handler make_peer_handler(std::shared_ptr<front_door> door);

}  // namespace shoal
