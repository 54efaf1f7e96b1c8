// fuzz_gossip: the node-to-node envelope and membership gossip (gossip_codec.hpp). The input is
// taken twice: as raw envelope bytes (what a stranger can send: open_envelope and decode_gossip
// with and without a secret), and as a membership payload sealed with the cluster secret (what a
// compromised secret holder can send), so the decoding behind the MAC is reached. A message that
// decodes must survive encode_gossip and decode_gossip unchanged.
#include <google/protobuf/stubs/logging.h>

#include "fuzz_target.hpp"
#include "shoal/cluster/gossip_codec.hpp"

namespace {

// protobuf logs each string field of invalid UTF-8 it refuses: millions of lines in a campaign.
[[maybe_unused]] const bool protobuf_quiet = (google::protobuf::SetLogHandler(nullptr), true);

const std::string secret = "fuzz-cluster-secret";
constexpr size_t max_updates = 16;  // node_config's max_gossip_updates

void check_round_trip(const shoal::gossip_msg& m) {
  const std::string again = shoal::encode_gossip(m, secret);
  auto redecoded = shoal::decode_gossip(again, secret, max_updates);
  if (!redecoded.msg) {
    std::fprintf(stderr, "re-encoded gossip refused: %s\n",
                 redecoded.msg.error().to_string().c_str());
  }
  FUZZ_CHECK(redecoded.msg.is_ok());
  FUZZ_CHECK(*redecoded.msg == m);
}

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string bytes(fuzz::view(data, size));

  // raw bytes: an envelope from anyone
  (void)open_envelope(bytes, "");
  (void)open_envelope(bytes, secret);
  if (auto d = decode_gossip(bytes, "", max_updates); d.msg) check_round_trip(*d.msg);
  if (auto d = decode_gossip(bytes, secret, max_updates); d.msg) check_round_trip(*d.msg);

  // sealed with the secret: the payload decoder itself
  const std::string sealed =
      seal_envelope(envelope_channel::membership, bytes, "10.0.0.7:7420", secret);
  auto opened = open_envelope(sealed, secret);
  FUZZ_CHECK(opened.payload.is_ok() && *opened.payload == bytes);
  auto d = decode_gossip(sealed, secret, max_updates);
  if (d.msg) {
    FUZZ_CHECK(d.msg->updates.size() <= max_updates);
    check_round_trip(*d.msg);
  }
  return 0;
}
