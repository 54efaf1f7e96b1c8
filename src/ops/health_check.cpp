#include "shoal/ops/health_check.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace shoal {
namespace {

using clock_type = std::chrono::steady_clock;

// Milliseconds left until `deadline`, at least 0 (poll's timeout).
int millis_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Closes the socket when the check returns, whichever way.
struct socket_fd {
  int fd = -1;
  explicit socket_fd(int f) : fd(f) {}
  ~socket_fd() {
    if (fd >= 0) ::close(fd);
  }
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
};

// Waits until `fd` is ready for `events` or the deadline passes.
status wait_for(int fd, short events, clock_type::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, millis_left(deadline));
    if (n > 0) return status::ok();
    if (n == 0) return status::unavailable("timed out " + what);
    if (errno != EINTR) return status::unavailable(what + ": " + std::strerror(errno));
  }
}

// Connects to one resolved address before the deadline; returns the socket or why not.
result<int> connect_to(const addrinfo& a, clock_type::time_point deadline) {
  int fd = ::socket(a.ai_family, a.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a.ai_protocol);
  if (fd < 0) return status::unavailable(std::string("socket: ") + std::strerror(errno));
  socket_fd guard(fd);
  if (::connect(fd, a.ai_addr, a.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return status::unavailable(std::strerror(errno));
    SHOAL_RETURN_IF_ERROR(wait_for(fd, POLLOUT, deadline, "connecting"));
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return status::unavailable(std::strerror(err));
  }
  guard.fd = -1;
  return fd;
}

}  // namespace

result<health_check_options> parse_health_check_args(const std::vector<std::string>& args) {
  health_check_options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      o.help = true;
      continue;
    }
    if (a != "--http" && a != "--timeout") {
      return status::invalid_argument("unknown option '" + a + "'");
    }
    if (i + 1 >= args.size()) return status::invalid_argument(a + " needs a value");
    const std::string& v = args[++i];
    if (a == "--http") {
      // HOST:PORT, the last colon splits; an IPv6 address goes in brackets ([::1]:7422).
      const size_t colon = v.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) {
        return status::invalid_argument("--http wants HOST:PORT (e.g. 127.0.0.1:7422), not '" + v +
                                        "'");
      }
      std::string host = v.substr(0, colon);
      const std::string port = v.substr(colon + 1);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      unsigned long p = 0;
      size_t used = 0;
      try {
        p = std::stoul(port, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (port[0] < '0' || port[0] > '9' || used != port.size() || p == 0 || p > 65535 ||
          host.empty()) {
        return status::invalid_argument("--http wants HOST:PORT with a port 1-65535, not '" + v +
                                        "'");
      }
      o.host = host;
      o.port = static_cast<uint16_t>(p);
    } else {
      double s = 0;
      size_t used = 0;
      try {
        s = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != v.size() || !std::isfinite(s) || s <= 0 || s > 3600) {
        return status::invalid_argument("--timeout wants seconds above 0, up to 3600, not '" + v +
                                        "'");
      }
      o.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(s * 1000)));
    }
  }
  return o;
}

std::string health_check_usage() {
  return "usage: shoal health [--http HOST:PORT] [--timeout SECONDS]\n"
         "\n"
         "Asks a node whether it is ready: GET /v2/health/ready over plain HTTP. Exits 0 when it\n"
         "answers 200, 1 otherwise (with the reason on stderr), 2 for a wrong command line. The\n"
         "container image's health check; it needs no shell and no curl.\n"
         "\n"
         "  --http HOST:PORT     the node's HTTP port (default 127.0.0.1:7422; IPv6: [::1]:7422)\n"
         "  --timeout SECONDS    for the whole check (default 3; fractions allowed)\n";
}

status check_ready(const health_check_options& o) {
  const auto deadline = clock_type::now() + o.timeout;
  const std::string where = o.host + ":" + std::to_string(o.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &found);
  if (gai != 0) return status::unavailable("cannot resolve " + o.host + ": " + ::gai_strerror(gai));
  int fd = -1;
  std::string why;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    auto c = connect_to(*a, deadline);
    if (c) {
      fd = *c;
    } else {
      why = c.error().message();
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return status::unavailable("cannot connect to " + where + ": " + why);
  socket_fd guard(fd);

  const std::string request = "GET /v2/health/ready HTTP/1.1\r\nHost: " + where +
                              "\r\nUser-Agent: shoal-health\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      SHOAL_RETURN_IF_ERROR(wait_for(fd, POLLOUT, deadline, "sending to " + where));
    } else {
      return status::unavailable("sending to " + where + ": " + std::strerror(errno));
    }
  }
  // The status line and a little of the body (the reason a node gives when not ready) are
  // enough; the node closes after answering.
  std::string answer;
  char buf[4096];
  while (answer.size() < 64 * 1024) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      SHOAL_RETURN_IF_ERROR(wait_for(fd, POLLIN, deadline, "waiting for " + where + " to answer"));
    } else {
      return status::unavailable("reading from " + where + ": " + std::strerror(errno));
    }
  }
  // "HTTP/1.1 200 OK"
  if (answer.rfind("HTTP/1.", 0) != 0 || answer.size() < 12 || answer[8] != ' ') {
    return status::unavailable(where + " did not answer HTTP (is it the node's http_port?)");
  }
  const std::string code = answer.substr(9, 3);
  if (code == "200") return status::ok();
  std::string body;
  if (size_t at = answer.find("\r\n\r\n"); at != std::string::npos) body = answer.substr(at + 4);
  for (char& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (body.size() > 200) body = body.substr(0, 200) + "...";
  return status::unavailable(where + " is not ready: answered " + code +
                             (body.empty() ? "" : ": " + body));
}

int run_health_check(const std::vector<std::string>& args) {
  auto o = parse_health_check_args(args);
  if (!o) {
    std::cerr << "shoal: health: " << o.error().message() << " (try 'shoal health --help')\n";
    return 2;
  }
  if (o->help) {
    std::cout << health_check_usage();
    return 0;
  }
  status ready = check_ready(*o);
  if (!ready) {
    std::cerr << "shoal: health: " << ready.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace shoal
