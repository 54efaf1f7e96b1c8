// fuzz_catalog_sync: what a peer holding the cluster secret sends besides membership gossip (the
// envelope's MAC passed; these decoders see the payload). The input is taken as a CatalogSync
// payload (decode_catalog_sync), applied the way the catalog actor's receive_sync applies it to a
// replicated_catalog (check_shape, the origin's next seq, add, sync_reply), as a peer request and a
// peer reply (decode_peer_request, decode_peer_reply), and as the data plane's stream of frames
// (next_frame, then each frame as hello, challenge and proof).
#include <google/protobuf/stubs/logging.h>

#include <map>

#include "fuzz_target.hpp"
#include "shoal/cluster/catalog_sync.hpp"
#include "shoal/cluster/data_plane_protocol.hpp"
#include "shoal/cluster/replicated_catalog.hpp"

namespace {

// protobuf logs each string field of invalid UTF-8 it refuses: millions of lines in a campaign.
[[maybe_unused]] const bool protobuf_quiet = (google::protobuf::SetLogHandler(nullptr), true);

const std::string secret = "fuzz-cluster-secret";
const std::string client_nonce(shoal::data_plane_nonce_bytes, 'c');
const std::string server_nonce(shoal::data_plane_nonce_bytes, 's');
constexpr int64_t now_ms = 1700000000000;

void apply_sync(const shoal::catalog_sync_msg& m) {
  using namespace shoal;
  replicated_catalog replica("n1:7420");
  catalog_frontier taken;
  bool gap = false;
  for (const auto& c : m.changes) {
    if (!replica.check_shape(c).is_ok()) continue;
    uint64_t held = replica.frontier().count(c.origin) ? replica.frontier().at(c.origin) : 0;
    if (taken.count(c.origin)) held = taken[c.origin];
    if (c.seq <= held) continue;
    if (c.seq != held + 1) {
      gap = true;
      continue;
    }
    taken[c.origin] = c.seq;
    // The actor journals the change before this add; a refusal here is a bug it can only log.
    auto added = replica.add(c, now_ms);
    if (!added) std::fprintf(stderr, "add refused: %s\n", added.error().to_string().c_str());
    FUZZ_CHECK(added.is_ok());
  }
  (void)replica.conflicts();
  (void)sync_reply(replica, m, gap, "n1:7420");
  if (m.frontier) (void)replica.missing_for(*m.frontier, max_sync_changes);
}

void data_plane_frames(std::string_view buffer) {
  using namespace shoal;
  for (int i = 0; i < 64; ++i) {
    auto frame = next_frame(buffer, 1 << 20);
    if (!frame || !*frame) return;
    const std::string_view f = **frame;
    (void)parse_hello(f);
    (void)check_challenge(secret, client_nonce, f);
    (void)check_challenge("", client_nonce, f);
    (void)check_proof(secret, client_nonce, server_nonce, f);
  }
}

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string payload(fuzz::view(data, size));

  if (auto sync = decode_catalog_sync(payload)) {
    FUZZ_CHECK(sync->changes.size() <= max_sync_changes);
    auto again = decode_catalog_sync(encode_catalog_sync(*sync));
    if (!again)
      std::fprintf(stderr, "re-encoded sync refused: %s\n", again.error().to_string().c_str());
    FUZZ_CHECK(again.is_ok());
    FUZZ_CHECK(again->changes.size() == sync->changes.size());
    FUZZ_CHECK(again->from_address == sync->from_address);
    apply_sync(*sync);
  }
  if (auto r = decode_peer_request(payload)) {
    auto again = decode_peer_request(encode_peer_request(*r));
    FUZZ_CHECK(again.is_ok());
  }
  if (auto r = decode_peer_reply(payload)) {
    auto again = decode_peer_reply(encode_peer_reply(*r));
    FUZZ_CHECK(again.is_ok() && again->error == r->error);
  }
  data_plane_frames(payload);
  return 0;
}
