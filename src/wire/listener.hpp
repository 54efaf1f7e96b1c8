// listener: a listening TCP socket for the wire servers (the HTTP server, the data plane), bound
// the one way both need: HOST an address or a resolvable name, SO_REUSEADDR, the OS's largest
// backlog. Private to wire/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "shoal/base/status.hpp"

namespace shoal {

/// Returns an acceptor on `io` listening on host:port (port 0: the OS picks; read it from the
/// acceptor), or invalid_argument when the host does not resolve, unavailable when it cannot bind
/// or listen ("cannot listen on 127.0.0.1:7422: Address already in use"). `what`, when not
/// empty, names the setting in those messages ("data_port" gives "... 127.0.0.1:7423
/// (data_port): ...").
result<boost::asio::ip::tcp::acceptor> open_listener(boost::asio::io_context& io,
                                                     const std::string& host, uint16_t port,
                                                     std::string_view what = {});

}  // namespace shoal
