// catalog_sync: how replicas of the catalog (replicated_catalog.hpp) catch each other up, and
// the codec of those messages (payloads of the CATALOG channel of gossip_codec's envelope).
//
// A sync message carries changes the receiver may lack and/or the sender's frontier:
// - a change made here is pushed at once to every live member (changes only);
// - every second a node sends its frontier to one random live member (anti-entropy), and a
//   node that just joined or restarted sends it to its first peer at once;
// - a frontier is answered with what the sender lacks (at most max_changes; the sender's
//   answer to that brings the rest), plus our frontier when the sender holds changes we lack;
// - changes that leave a gap (a seq arrived before its predecessors) are answered with our
//   frontier, so the peer sends the missing ones.
// Nothing here blocks or keeps time: the catalog actor calls sync_reply() after adding a
// message's changes.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/cluster/replicated_catalog.hpp"

namespace shoal {

struct catalog_sync_msg {
  std::string from_address;                // the sender's cluster address: where answers go
  std::vector<catalog_change> changes;
  std::optional<catalog_frontier> frontier;
};

/// Most changes one message carries (a few hundred bytes each).
inline constexpr size_t max_sync_changes = 256;

/// Returns `m` as a CatalogSync payload.
std::string encode_catalog_sync(const catalog_sync_msg& m);

/// Decodes a CatalogSync payload, checked: HOST:PORT sender, at most max_sync_changes changes,
/// each with an origin, a seq and a known kind, bounded strings. Otherwise invalid_argument
/// saying what is wrong. (Whether a change fits the catalog is replicated_catalog::add's to say.)
result<catalog_sync_msg> decode_catalog_sync(const std::string& payload);

/// Returns the answer to `in` (whose changes `replica` has just added; `gap` if one was refused
/// as out of order), or nullopt when nothing needs saying. `self_address` is ours.
std::optional<catalog_sync_msg> sync_reply(const replicated_catalog& replica,
                                           const catalog_sync_msg& in, bool gap,
                                           const std::string& self_address);

/// Returns true if `theirs` holds a change `ours` lacks.
bool holds_more(const catalog_frontier& theirs, const catalog_frontier& ours);

/// A request one node makes of another: fetch or store snapshot bytes (placement), or answer an
/// inference (routing). Payload of the REQUEST channel.
struct peer_request {
  // store with version 0: keep the bytes only (a validation set). validate: run versions
  // `version` (candidate) and `baseline` of `id` over the validation set `sha256`.
  enum class kind : uint8_t { fetch, store, infer, reserve, validate };
  kind what = kind::fetch;
  std::string sha256;     // fetch, store, validate (the set)
  model_id id;            // store, reserve, validate
  uint32_t version = 0;   // store; reserve: the number asked for; validate: the candidate
  uint32_t baseline = 0;  // validate: 0 = none
  std::string bytes;     // store: the snapshot; infer: a serialized Request (api_codec)
};

/// The answer: an error, or (fetch) the bytes, which the asker checks against the sha256, or
/// (infer) a serialized Response.
struct peer_reply {
  std::string error;     // empty: done
  std::string snapshot;  // fetch
  std::string response;  // infer
};

std::string encode_peer_request(const peer_request& r);
/// Decodes and checks a request: a sha256 of 64 hex digits; for store, a valid model id.
result<peer_request> decode_peer_request(const std::string& payload);
std::string encode_peer_reply(const peer_reply& r);
result<peer_reply> decode_peer_reply(const std::string& payload);

}  // namespace shoal
