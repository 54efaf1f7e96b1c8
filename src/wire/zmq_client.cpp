#include "shoal/wire/zmq_client.hpp"

#include <cerrno>
#include <cstdio>
#include <iterator>
#include <utility>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace shoal {
namespace {

// "10s", "250ms", "1.5s": how the timeout reads in a message.
std::string duration_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", double(ms) / 1000.0);
  return buf;
}

}  // namespace

struct zmq_client::impl {
  zmq::context_t ctx{1};
  zmq::socket_t socket;  // DEALER; replaced after a timeout
  std::string address;   // "127.0.0.1:7421"
  std::string endpoint;  // "tcp://127.0.0.1:7421"
  bool ipv6 = false;
  std::chrono::milliseconds timeout{0};

  // Returns ok once `socket` is a fresh DEALER connecting to the node.
  status open_socket() {
    try {
      socket = zmq::socket_t(ctx, zmq::socket_type::dealer);
      socket.set(zmq::sockopt::linger, 0);  // never keep a CLI process alive for unsent bytes
      if (ipv6) socket.set(zmq::sockopt::ipv6, 1);
      socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return status::unavailable("cannot connect to node " + address + ": " + e.what());
    }
    return status::ok();
  }
};

zmq_client::zmq_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
zmq_client::zmq_client(zmq_client&&) noexcept = default;
zmq_client& zmq_client::operator=(zmq_client&&) noexcept = default;
zmq_client::~zmq_client() = default;

result<zmq_client> zmq_client::connect(std::string address, std::chrono::milliseconds timeout) {
  auto hp = parse_host_port(address);
  if (!hp) return hp.error();
  auto p = std::make_unique<impl>();
  p->address = hp->str();
  p->endpoint = "tcp://" + hp->str();
  p->ipv6 = hp->host.find(':') != std::string::npos;
  p->timeout = timeout.count() > 0 ? timeout : std::chrono::milliseconds(1);
  SHOAL_RETURN_IF_ERROR(p->open_socket());
  return zmq_client(std::move(p));
}

const std::string& zmq_client::address() const { return impl_->address; }

result<std::string> zmq_client::call(const std::string& request_bytes) {
  impl& s = *impl_;
  if (!s.socket) SHOAL_RETURN_IF_ERROR(s.open_socket());
  try {
    // Until the TCP connection is up, the message waits in the socket's queue; dontwait only
    // refuses when that queue is full, which one call at a time never reaches.
    if (!s.socket.send(zmq::buffer(request_bytes), zmq::send_flags::dontwait)) {
      return status::unavailable("cannot send to node " + s.address + ": its queue is full");
    }
  } catch (const zmq::error_t& e) {
    return status::unavailable("cannot send to node " + s.address + ": " + e.what());
  }
  auto deadline = std::chrono::steady_clock::now() + s.timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    zmq::pollitem_t item{s.socket.handle(), 0, ZMQ_POLLIN, 0};
    int ready = 0;
    try {
      ready = zmq::poll(&item, 1, left);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return status::unavailable("cannot wait for node " + s.address + ": " + e.what());
    }
    if (ready == 0 || (item.revents & ZMQ_POLLIN) == 0) {
      if (std::chrono::steady_clock::now() < deadline) continue;
      // A late reply must not answer the next call: start over on a new connection.
      s.socket.close();
      (void)s.open_socket();
      return status::unavailable("no answer from node " + s.address + " within " +
                                 duration_text(s.timeout) + ": is `shoal node` running there?");
    }
    std::vector<zmq::message_t> frames;
    try {
      if (!zmq::recv_multipart(s.socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        continue;
      }
    } catch (const zmq::error_t& e) {
      return status::unavailable("cannot read the reply of node " + s.address + ": " + e.what());
    }
    if (frames.empty()) continue;
    // A REQ-style envelope (empty delimiter) may precede the body; the body is the last part.
    return frames.back().to_string();
  }
}

}  // namespace shoal
