// gossip_codec: the codec of the node-to-node boundary. Everything between nodes travels as a
// GossipEnvelope (proto/shoal.proto) in a std::string: a channel (membership gossip or catalog
// replication), the serialized payload, and, when the cluster has a secret, an HMAC-SHA256 of
// channel and payload under that secret. A peer without the secret can neither join, nor inject
// member entries, nor change the catalog.
//
// Everything a peer sends is validated here before it reaches the membership core: enum values,
// address shapes, string lengths, the number of entries. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "shoal/base/status.hpp"
#include "shoal/cluster/membership.hpp"

namespace shoal {

enum class envelope_channel : uint8_t { membership = 0, catalog = 1, request = 2 };

/// Returns `payload` on `channel` as envelope bytes, authenticated with `secret` when it is not
/// empty. `sender_address` travels unauthenticated, for log lines about refusals.
std::string seal_envelope(envelope_channel channel, const std::string& payload,
                          const std::string& sender_address, const std::string& secret);

/// An opened envelope: who claims to have sent it (unauthenticated; for log lines), its channel,
/// and the payload or why the envelope was refused.
struct opened_envelope {
  std::string sender_address;
  envelope_channel channel = envelope_channel::membership;
  result<std::string> payload = status::invalid_argument("empty");
};

/// Opens envelope bytes and checks them against `secret` (empty: none required). Refuses, with a
/// one-line reason: bytes that are no envelope, an unknown channel, a wrong or missing MAC, a MAC
/// when we have no secret.
opened_envelope open_envelope(const std::string& bytes, const std::string& secret);

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

/// Decodes an opened membership payload into `out` (its sender_address already set), with the
/// checks above.
decoded_gossip decode_gossip_payload(const std::string& payload, size_t max_updates,
                                     decoded_gossip out = {});

}  // namespace shoal
