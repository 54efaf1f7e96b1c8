#include "shoal/cluster/data_plane_protocol.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <random>

namespace shoal {
namespace {

constexpr size_t mac_bytes = 32;
constexpr size_t max_node_id_bytes = 256;

// HMAC-SHA256 of the parts under `secret`; empty when there is no secret (nothing to prove).
std::string mac(const std::string& secret, std::string_view role, std::string_view a,
                std::string_view b) {
  if (secret.empty()) return {};
  std::string text;
  text.reserve(role.size() + a.size() + b.size());
  text.append(role).append(a).append(b);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(text.data()), text.size(), out,
           &len) == nullptr) {
    return std::string(mac_bytes, '\0');  // never equal to a real MAC's check below
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool same_mac(std::string_view expected, std::string_view got) {
  return expected.size() == got.size() &&
         (expected.empty() || CRYPTO_memcmp(expected.data(), got.data(), got.size()) == 0);
}

status wrong_secret(const char* who) {
  return status::unauthenticated(std::string(who) +
                                 " does not know this node's cluster secret (cluster_secret "
                                 "differs between the nodes)");
}

}  // namespace

void append_frame(std::string& out, std::string_view payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(len, 4);
  out.append(payload);
}

result<std::optional<std::string_view>> next_frame(std::string_view& buffer, size_t max_bytes) {
  if (buffer.size() < 4) return std::optional<std::string_view>();
  const auto* p = reinterpret_cast<const unsigned char*>(buffer.data());
  const size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
  if (n > max_bytes) {
    return status::too_large("a data-plane frame of " + std::to_string(n) +
                             " bytes is over the limit of " + std::to_string(max_bytes));
  }
  if (buffer.size() < 4 + n) return std::optional<std::string_view>();
  std::string_view frame = buffer.substr(4, n);
  buffer.remove_prefix(4 + n);
  return std::optional<std::string_view>(frame);
}

std::string random_nonce() {
  std::string out(data_plane_nonce_bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1) {
    // OpenSSL's generator failed (it does not, once seeded); a nonce must still differ per call.
    std::random_device rd;
    for (auto& c : out) c = static_cast<char>(rd());
  }
  return out;
}

std::string make_hello(std::string_view client_nonce, std::string_view node_id) {
  std::string out(data_plane_magic);
  out.append(client_nonce).append(node_id);
  return out;
}

result<data_plane_hello> parse_hello(std::string_view frame) {
  if (frame.substr(0, data_plane_magic.size()) != data_plane_magic) {
    return status::invalid_argument("not a Shoal data-plane connection (no SHOAL-DATA/1 hello)");
  }
  frame.remove_prefix(data_plane_magic.size());
  if (frame.size() < data_plane_nonce_bytes) {
    return status::invalid_argument("a data-plane hello without its nonce");
  }
  data_plane_hello out;
  out.nonce = std::string(frame.substr(0, data_plane_nonce_bytes));
  out.node_id = std::string(frame.substr(data_plane_nonce_bytes));
  if (out.node_id.size() > max_node_id_bytes) {
    return status::invalid_argument("a data-plane hello with a node id over 256 bytes");
  }
  return out;
}

std::string make_challenge(const std::string& secret, std::string_view client_nonce,
                           std::string_view server_nonce) {
  std::string out(server_nonce);
  return out + mac(secret, "server", client_nonce, server_nonce);
}

result<std::string> check_challenge(const std::string& secret, std::string_view client_nonce,
                                    std::string_view frame) {
  if (frame.size() < data_plane_nonce_bytes) {
    return status::invalid_argument("a data-plane challenge without its nonce");
  }
  std::string_view server_nonce = frame.substr(0, data_plane_nonce_bytes);
  if (!same_mac(mac(secret, "server", client_nonce, server_nonce),
                frame.substr(data_plane_nonce_bytes))) {
    return wrong_secret("the peer");
  }
  return std::string(server_nonce);
}

std::string make_proof(const std::string& secret, std::string_view client_nonce,
                       std::string_view server_nonce) {
  return mac(secret, "client", server_nonce, client_nonce);
}

status check_proof(const std::string& secret, std::string_view client_nonce,
                   std::string_view server_nonce, std::string_view frame) {
  if (!same_mac(mac(secret, "client", server_nonce, client_nonce), frame)) {
    return wrong_secret("the connecting node");
  }
  return status::ok();
}

}  // namespace shoal
