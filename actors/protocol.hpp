// protocol: the one message contract between Shoal's actors: atoms, the error enum, and every
// typed-actor interface.
//
// The request values (shoal::infer_request, …) are the plain structs of
// include/shoal/serving/api.hpp.
// In this release every message stays inside one node, so they travel as node-local values
// (CAF_ALLOW_UNSAFE_MESSAGE_TYPE: CAF 0.17's inspectors know neither std::optional nor
// std::variant). Messages that cross nodes (the cluster issues) get inspect() functions and
// type IDs in this file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "shoal/base/status.hpp"
#include "shoal/cluster/membership.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/serving/front_door.hpp"
#include "shoal/serving/model.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// A loaded model, shared read-only between the host actor and whoever holds it.
using model_ptr = std::shared_ptr<const model>;
/// An immutable copy of the catalog; the catalog actor publishes a new one after each change.
using catalog_ptr = std::shared_ptr<const catalog>;
/// A pushed snapshot's bytes, shared read-only (the catalog actor and a writer; no copy).
using snapshot_bytes = std::shared_ptr<const std::string>;

/// Errors at the actor boundary: the same codes as status_code; the context carries the message.
enum class shoal_errc : uint8_t {
  invalid_argument = static_cast<uint8_t>(status_code::invalid_argument),
  not_found = static_cast<uint8_t>(status_code::not_found),
  already_exists = static_cast<uint8_t>(status_code::already_exists),
  failed_precondition = static_cast<uint8_t>(status_code::failed_precondition),
  too_large = static_cast<uint8_t>(status_code::too_large),
  resource_exhausted = static_cast<uint8_t>(status_code::resource_exhausted),
  unavailable = static_cast<uint8_t>(status_code::unavailable),
  corruption = static_cast<uint8_t>(status_code::corruption),
  io_error = static_cast<uint8_t>(status_code::io_error),
  internal = static_cast<uint8_t>(status_code::internal),
  unauthenticated = static_cast<uint8_t>(status_code::unauthenticated),
};

std::string to_string(shoal_errc x);

/// Returns a CAF error carrying `s` (code and message). @pre !s.is_ok()
caf::error to_error(const status& s);

/// Returns the status a CAF error stands for: ours keep code and message; a request timeout
/// becomes unavailable; anything else internal.
status to_status(const caf::error& e, const std::string& what);

}  // namespace shoal

CAF_ERROR_CODE_ENUM(shoal::shoal_errc, "shoal")

CAF_BEGIN_TYPE_ID_BLOCK(shoal, caf::first_custom_type_id)
  CAF_ADD_ATOM(shoal, shoal, infer_atom, "infer")
  CAF_ADD_ATOM(shoal, shoal, push_atom, "push")
  CAF_ADD_ATOM(shoal, shoal, label_atom, "label")
  CAF_ADD_ATOM(shoal, shoal, list_atom, "list")
  CAF_ADD_ATOM(shoal, shoal, models_atom, "models")
  CAF_ADD_ATOM(shoal, shoal, load_atom, "load")
  CAF_ADD_ATOM(shoal, shoal, subscribe_atom, "subscribe")
  CAF_ADD_ATOM(shoal, shoal, catalog_atom, "catalog")
  CAF_ADD_ATOM(shoal, shoal, call_atom, "call")
  CAF_ADD_ATOM(shoal, shoal, status_atom, "status")
  CAF_ADD_ATOM(shoal, shoal, loaded_atom, "loaded")
  CAF_ADD_ATOM(shoal, shoal, gossip_atom, "gossip")
  CAF_ADD_ATOM(shoal, shoal, refused_atom, "refused")
  CAF_ADD_ATOM(shoal, shoal, tick_atom, "tick")
  CAF_ADD_ATOM(shoal, shoal, members_atom, "members")
  CAF_ADD_ATOM(shoal, shoal, leave_atom, "leave")
  CAF_ADD_ATOM(shoal, shoal, replicate_atom, "replicate")
  CAF_ADD_ATOM(shoal, shoal, sync_atom, "sync")
  CAF_ADD_ATOM(shoal, shoal, cluster_atom, "cluster")
  CAF_ADD_ATOM(shoal, shoal, peer_atom, "peer")
  CAF_ADD_ATOM(shoal, shoal, damaged_atom, "damaged")
  CAF_ADD_ATOM(shoal, shoal, flush_atom, "flush")
CAF_END_TYPE_ID_BLOCK(shoal)

// Node-local values (see the file comment). Between nodes only atoms and strings travel: gossip is
// a protobuf envelope in a std::string (proto/shoal.proto, gossip_codec), so no inspect() needed.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::model_id)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::infer_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::infer_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::push_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::push_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::label_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::label_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::model_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<shoal::model_entry>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::node_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::model_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::catalog_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::snapshot_bytes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::api_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::api_callback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::api_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<shoal::member_view>)

namespace shoal {

/// Anyone who keeps a catalog copy: gets every new catalog after a change.
using catalog_listener = caf::typed_actor<caf::reacts_to<catalog_atom, catalog_ptr>>;

/// Serves inference for one snapshot (model, version). Loads it lazily through the catalog.
/// (leave): the router unloaded it (memory budget); it answers what is already in its mailbox,
/// then quits. (flush): sent to itself; predicts the micro-batch gathered from its mailbox.
using model_host_actor =
    caf::typed_actor<caf::replies_to<infer_atom, infer_request>::with<infer_result>,
                     caf::reacts_to<leave_atom>, caf::reacts_to<flush_atom>>;

/// Where the membership actor hands a peer's inference request (the router).
using peer_request_sink =
    caf::typed_actor<caf::replies_to<peer_atom, std::string>::with<std::string>>;

using catalog_sync_sink = caf::typed_actor<
    caf::reacts_to<sync_atom, std::string>,
    caf::replies_to<peer_atom, std::string>::with<std::string>>;  // PeerRequest -> PeerReply

/// Cluster membership on one node, and the node's door to its peers. Peers send it
/// (gossip, envelope bytes) over the middleman: membership gossip goes to the core, catalog sync
/// payloads (once authenticated) to the catalog actor; (refused, their address, reason) when they
/// drop our messages. The rest is node-local: the gossip timer, `shoal cluster status`
/// (members), a graceful leave on shutdown, and (replicate, peer address, payload): send a
/// catalog sync payload to a peer.
using membership_actor = caf::typed_actor<
    caf::reacts_to<gossip_atom, std::string>,
    caf::reacts_to<refused_atom, std::string, std::string>,
    caf::reacts_to<tick_atom>,
    caf::reacts_to<replicate_atom, std::string, std::string>,
    // From a peer: a sealed PeerRequest; answered with PeerReply bytes (by the catalog actor).
    caf::replies_to<peer_atom, std::string>::with<std::string>,
    // Node-local: make a PeerRequest (payload) of the peer at address; yields its PeerReply.
    caf::replies_to<peer_atom, std::string, std::string>::with<std::string>,
    caf::replies_to<members_atom>::with<std::vector<member_view>>,
    caf::replies_to<leave_atom>::with<bool>>;

/// Owns the snapshot store, the journal and the authoritative catalog; runs detached because it
/// does blocking disk work (fsync, reading snapshots).
using catalog_actor = caf::typed_actor<
    caf::replies_to<push_atom, push_request>::with<push_result>,
    caf::replies_to<label_atom, label_request>::with<label_result>,
    // Validation sets, validation runs, policies, shadow and canary trials (the reply holds the
    // result or the status that refused the call).
    caf::replies_to<call_atom, api_call>::with<api_reply>,
    caf::replies_to<load_atom, model_id, uint32_t>::with<model_ptr>,
    caf::reacts_to<subscribe_atom, catalog_listener>,
    // Start replicating: membership, our cluster address, the router (warms versions here).
    caf::reacts_to<cluster_atom, membership_actor, std::string, peer_request_sink>,
    caf::reacts_to<sync_atom, std::string>,                      // a peer's CatalogSync payload
    caf::replies_to<peer_atom, std::string>::with<std::string>,  // PeerRequest -> PeerReply
    caf::reacts_to<tick_atom>,                                   // anti-entropy timer
    // A loader found this node's copy of (model, version) damaged: remove it, release holds.
    caf::reacts_to<damaged_atom, model_id, uint32_t>,
    caf::reacts_to<flush_atom>>;  // the group commit of the changes queued so far

/// Reads, checks and parses snapshots for model hosts, several at once (a pool, detached:
/// reading is blocking disk work). Keeps a catalog copy to find a version's bytes.
using model_loader_actor =
    caf::typed_actor<caf::replies_to<load_atom, model_id, uint32_t>::with<model_ptr>,
                     caf::reacts_to<catalog_atom, catalog_ptr>>;

/// Resolves labels to versions on its catalog copy and forwards inference to model hosts; its
/// hosts tell it when their snapshot is in memory (it publishes that to the serving board).
using router_actor = caf::typed_actor<
    caf::replies_to<infer_atom, infer_request>::with<infer_result>,
    caf::reacts_to<catalog_atom, catalog_ptr>,
    caf::reacts_to<loaded_atom, model_id, uint32_t, model_ptr>,
    caf::reacts_to<cluster_atom, membership_actor, std::string>,   // start routing to peers
    caf::reacts_to<tick_atom>,                                      // refresh the live members
    caf::replies_to<peer_atom, std::string>::with<std::string>>;    // a peer's inference

/// Where the membership actor hands authenticated catalog sync payloads from peers (the catalog
/// actor, seen through this narrower handle).
/// The front ends' door into the actor system: takes an api_call and a callback.
using gateway_actor = caf::typed_actor<caf::reacts_to<call_atom, api_call, api_callback>,
                                       caf::reacts_to<catalog_atom, catalog_ptr>>;

/// What the membership actor needs from the middleman: an asynchronous connect to HOST:PORT that
/// yields the actor published there. The middleman actor (plain or TLS) is used through this
/// narrower handle; actor tests give an in-process address book instead.
using peer_connector = caf::typed_actor<
    caf::replies_to<caf::connect_atom, std::string, uint16_t>::with<
        caf::node_id, caf::strong_actor_ptr, std::set<std::string>>>;

}  // namespace shoal
