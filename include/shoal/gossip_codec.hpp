// gossip_codec: the one codec of the node-to-node membership boundary. A gossip_msg travels as a
// GossipEnvelope (proto/shoal.proto) in a std::string: the serialized GossipMessage plus, when
// the cluster has a secret, an HMAC-SHA256 of it under that secret. A peer without the secret
// can neither join nor inject member entries.
//
// Everything a peer sends is validated here before it reaches the membership core: enum values,
// address shapes, string lengths, the number of entries. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include "shoal/membership.hpp"
#include "shoal/status.hpp"

namespace shoal {

/// Returns `m` as envelope bytes, authenticated with `secret` when it is not empty.
std::string encode_gossip(const gossip_msg& m, const std::string& secret);

/// A decoded envelope: who claims to have sent it (unauthenticated; for log lines), and the
/// message or why it was refused.
struct decoded_gossip {
  std::string sender_address;
  result<gossip_msg> msg = status::invalid_argument("empty");
};

/// Decodes and checks envelope bytes against `secret` (empty: none required). Refuses, with a
/// one-line reason: bytes that are no envelope, a wrong or missing MAC, a MAC when we have no
/// secret, more than `max_updates` entries, and malformed entries.
decoded_gossip decode_gossip(const std::string& bytes, const std::string& secret,
                             size_t max_updates);

}  // namespace shoal
