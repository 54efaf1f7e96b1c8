#include "shoal/base/host_port.hpp"

namespace shoal {
namespace {

std::string shown(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  if (text.size() > 80) out += "...";
  return out + "'";
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

}  // namespace

std::string host_port::str() const {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

result<host_port> parse_host_port(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return status::invalid_argument("invalid node address " + shown(text) + ": " + why);
  };
  const std::string expected = "expected HOST:PORT, e.g. 127.0.0.1:7421";
  host_port out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPV6]:PORT, e.g. [::1]:7421");
    }
    std::string_view host = text.substr(1, close - 1);
    if (host.empty()) return bad("the host is empty");
    for (char c : host) {
      if (!is_ipv6_char(c)) return bad("the host is not an IPv6 address");
    }
    out.host = std::string(host);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad(expected);
    std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return bad("write an IPv6 address in brackets, e.g. [::1]:7421");
    }
    if (host.empty()) return bad("the host is empty; " + expected);
    for (char c : host) {
      if (!is_name_char(c)) return bad(expected);
    }
    out.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return bad("the port must be 1..65535");
  unsigned long port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return bad("the port must be 1..65535");
    port = port * 10 + unsigned(c - '0');
  }
  if (port == 0 || port > 65535) return bad("the port must be 1..65535");
  out.port = uint16_t(port);
  return out;
}

}  // namespace shoal
