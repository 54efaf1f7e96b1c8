#include "shoal/cluster/gossip_codec.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cluster/member_proto.hpp"
#include "proto/shoal.pb.h"
#include "shoal/base/host_port.hpp"

namespace shoal {
namespace {

std::string hmac_sha256(const std::string& secret, const std::string& payload) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out,
           &len) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool is_address(const std::string& a) { return parse_host_port(a).is_ok(); }

}  // namespace

std::string seal_envelope(envelope_channel channel, const std::string& payload,
                          const std::string& sender_address, const std::string& secret) {
  pb::GossipEnvelope env;
  env.set_sender_address(sender_address);
  env.set_channel(static_cast<pb::GossipEnvelope::Channel>(channel));
  env.set_payload(payload);
  // The channel is under the MAC: a catalog payload cannot be replayed as gossip or back.
  if (!secret.empty()) env.set_mac(hmac_sha256(secret, char(channel) + payload));
  return env.SerializeAsString();
}

opened_envelope open_envelope(const std::string& bytes, const std::string& secret) {
  opened_envelope out;
  pb::GossipEnvelope env;
  if (!env.ParseFromString(bytes)) {
    out.payload = status::invalid_argument("not a Shoal node-to-node message (another program, "
                                           "or another version, on the cluster port?)");
    return out;
  }
  if (env.sender_address().size() <= max_member_field) out.sender_address = env.sender_address();
  if (env.channel() != pb::GossipEnvelope::MEMBERSHIP &&
      env.channel() != pb::GossipEnvelope::CATALOG &&
      env.channel() != pb::GossipEnvelope::REQUEST) {
    out.payload = status::invalid_argument("unknown channel " + std::to_string(env.channel()) +
                                           " (a newer Shoal version?)");
    return out;
  }
  out.channel = static_cast<envelope_channel>(env.channel());
  if (secret.empty() && !env.mac().empty()) {
    out.payload = status::invalid_argument(
        "the peer authenticates with a cluster secret but this node has none configured");
    return out;
  }
  if (!secret.empty()) {
    if (env.mac().empty()) {
      out.payload = status::invalid_argument(
          "the peer sent no cluster secret but this node requires one");
      return out;
    }
    std::string expected = hmac_sha256(secret, char(out.channel) + env.payload());
    if (expected.size() != env.mac().size() ||
        CRYPTO_memcmp(expected.data(), env.mac().data(), expected.size()) != 0) {
      out.payload = status::invalid_argument("wrong cluster secret");
      return out;
    }
  }
  out.payload = std::move(*env.mutable_payload());
  return out;
}

std::string encode_gossip(const gossip_msg& m, const std::string& secret) {
  pb::GossipMessage g;
  g.set_kind(static_cast<pb::GossipMessage::Kind>(m.kind));
  g.set_seq(m.seq);
  g.set_from_address(m.from_address);
  g.set_target_id(m.target_id);
  g.set_target_address(m.target_address);
  for (const auto& u : m.updates) member_to_proto(u, *g.add_updates());
  return seal_envelope(envelope_channel::membership, g.SerializeAsString(), m.from_address,
                       secret);
}

decoded_gossip decode_gossip(const std::string& bytes, const std::string& secret,
                             size_t max_updates) {
  decoded_gossip out;
  auto env = open_envelope(bytes, secret);
  out.sender_address = env.sender_address;
  if (!env.payload) {
    out.msg = env.payload.error();
    return out;
  }
  if (env.channel != envelope_channel::membership) {
    out.msg = status::invalid_argument("not a gossip message (channel " +
                                       std::to_string(int(env.channel)) + ")");
    return out;
  }
  return decode_gossip_payload(*env.payload, max_updates, std::move(out));
}

decoded_gossip decode_gossip_payload(const std::string& payload, size_t max_updates,
                                     decoded_gossip out) {
  pb::GossipMessage g;
  if (!g.ParseFromString(payload)) {
    out.msg = status::invalid_argument("the gossip payload is not a GossipMessage");
    return out;
  }
  if (g.kind() < pb::GossipMessage::PING || g.kind() > pb::GossipMessage::SYNC) {
    out.msg = status::invalid_argument("unknown gossip kind " + std::to_string(g.kind()));
    return out;
  }
  if (static_cast<size_t>(g.updates_size()) > max_updates) {
    out.msg = status::invalid_argument("a gossip message carries " +
                                       std::to_string(g.updates_size()) +
                                       " member entries; the limit is " +
                                       std::to_string(max_updates));
    return out;
  }
  if (!g.from_address().empty() && !is_address(g.from_address())) {
    out.msg = status::invalid_argument("the sender's address is not HOST:PORT");
    return out;
  }
  if (!g.target_address().empty() && !is_address(g.target_address())) {
    out.msg = status::invalid_argument("the target address is not HOST:PORT");
    return out;
  }
  if (g.target_id().size() > max_member_field) {
    out.msg = status::invalid_argument("the target id is over " +
                                       std::to_string(max_member_field) + " bytes");
    return out;
  }
  gossip_msg m;
  m.kind = static_cast<gossip_kind>(g.kind());
  m.seq = g.seq();
  m.from_address = g.from_address();
  m.target_id = g.target_id();
  m.target_address = g.target_address();
  for (const auto& u : g.updates()) {
    auto entry = member_from_proto(u);
    if (!entry) {
      out.msg = entry.error();
      return out;
    }
    m.updates.push_back(std::move(*entry));
  }
  out.msg = std::move(m);
  return out;
}

}  // namespace shoal
