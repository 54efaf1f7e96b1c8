#include "wire/listener.hpp"

namespace shoal {

namespace net = boost::asio;
using tcp = net::ip::tcp;

result<tcp::acceptor> open_listener(net::io_context& io, const std::string& host, uint16_t port,
                                    std::string_view what) {
  const std::string where = host + ":" + std::to_string(port) +
                            (what.empty() ? "" : " (" + std::string(what) + ")");
  boost::system::error_code ec;
  tcp::endpoint endpoint;
  auto address = net::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, port);
  } else {
    tcp::resolver resolver(io);
    auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
    if (ec || found.empty()) {
      return status::invalid_argument("cannot listen on " + where + ": " +
                                      (ec ? ec.message() : std::string("host not found")));
    }
    endpoint = found.begin()->endpoint();
  }
  tcp::acceptor acceptor(io);
  auto fail = [&](const boost::system::error_code& e) {
    return status::unavailable("cannot listen on " + where + ": " + e.message());
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail(ec);
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec)) return fail(ec);
  if (acceptor.bind(endpoint, ec)) return fail(ec);
  if (acceptor.listen(net::socket_base::max_listen_connections, ec)) return fail(ec);
  return acceptor;
}

}  // namespace shoal
