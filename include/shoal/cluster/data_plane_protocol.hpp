// data_plane_protocol: what travels on a data-plane connection between two nodes (the wire/
// data_plane.hpp sockets carry it), as pure functions.
//
// A connection carries frames: a 4-byte big-endian length, then that many bytes. It opens with a
// handshake that proves both ends know the cluster secret (gossip's, the same key), without
// sending it:
//   client -> server  hello:      "SHOAL-DATA/1" + client nonce (32 bytes) + client node id
//   server -> client  challenge:  server nonce (32) + HMAC-SHA256(secret, "server" + cn + sn)
//   client -> server  proof:      HMAC-SHA256(secret, "client" + sn + cn)
//   server -> client  verdict:    "OK", or "REFUSED: why" and the server closes
// Fresh nonces on both sides make a recorded handshake useless to replay, and each side proves
// itself (a stranger can neither send requests nor receive any). Without a secret both MACs are
// empty and any peer is taken, as gossip takes any. With TLS configured the handshake runs inside
// TLS, whose certificates authenticate both ends as well.
//
// After the verdict: the client sends requests, the server sends answers, each frame one encoded
// API message (proto/shoal.proto Request / Response) whose request_id pairs an answer with its
// request; many are in flight at once and answers come in any order.
//
// Thread-safety: pure functions (random_nonce reads OpenSSL's generator, which is thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shoal/base/status.hpp"

namespace shoal {

constexpr std::string_view data_plane_magic = "SHOAL-DATA/1";
constexpr size_t data_plane_nonce_bytes = 32;
constexpr std::string_view data_plane_ok = "OK";

/// Appends one frame holding `payload` to `out`.
void append_frame(std::string& out, std::string_view payload);

/// Takes the first whole frame off the front of `buffer` and returns its payload (a view into
/// `buffer`'s old contents), or nullopt when no whole frame is there yet. A frame announced over
/// `max_bytes` is an error (the peer is broken or hostile: close the connection).
result<std::optional<std::string_view>> next_frame(std::string_view& buffer, size_t max_bytes);

/// Returns 32 random bytes.
std::string random_nonce();

/// The client's hello.
std::string make_hello(std::string_view client_nonce, std::string_view node_id);

/// A hello as read: the client's nonce and node id.
struct data_plane_hello {
  std::string nonce;
  std::string node_id;
};

/// Returns the hello in `frame`, or invalid_argument saying why it is none.
result<data_plane_hello> parse_hello(std::string_view frame);

/// The server's challenge: its nonce and its proof of the secret.
std::string make_challenge(const std::string& secret, std::string_view client_nonce,
                           std::string_view server_nonce);

/// Returns the server's nonce from its challenge when the challenge proves the server knows
/// `secret`; else unauthenticated saying so.
result<std::string> check_challenge(const std::string& secret, std::string_view client_nonce,
                                    std::string_view frame);

/// The client's proof of the secret, answering the server's nonce.
std::string make_proof(const std::string& secret, std::string_view client_nonce,
                       std::string_view server_nonce);

/// Returns ok when `frame` is the client's proof for these nonces; else unauthenticated.
status check_proof(const std::string& secret, std::string_view client_nonce,
                   std::string_view server_nonce, std::string_view frame);

}  // namespace shoal
