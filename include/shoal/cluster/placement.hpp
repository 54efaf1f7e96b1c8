// placement: where each model's snapshot bytes belong, and what one node must do about it. Pure
// functions of the catalog, the live members and what this node has on disk; the catalog actor
// calls them each tick and after every push, and does the copying, committing and deleting they
// decide (actors/catalog_actor.cpp).
//
// The rule: a model's bytes belong on the first replication_factor live members (alive or
// suspect, this node included) in rendezvous-hash order of the model id. A member placement
// names holds every version of the model; a copy placement does not name (the pushing node's, or
// one from before a node joined) is released once every member placement names holds it, so the
// cluster never has fewer than replication_factor copies while it moves them.
// Thread-safety: every function is pure.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// Live members: member id -> cluster address (this node included).
using live_members = std::map<std::string, std::string>;

/// Returns the member ids that should hold `id`'s bytes: the first `replication_factor` of `live`
/// in rendezvous order, or `self_id` alone when nobody is live (a node alone keeps what it has).
std::vector<std::string> placement_for(const model_id& id, const live_members& live,
                                       const std::string& self_id, size_t replication_factor);

/// What this node should do to hold what placement names (plan_copies).
struct copy_plan {
  /// A version to copy here from a live holder.
  struct fetch {
    model_id id;
    snapshot_info snap;
  };
  /// Catalog changes to commit: holds of bytes this node has but never recorded, and releases
  /// of copies placement no longer names here.
  std::vector<catalog_change> changes;
  /// Versions placement names here whose bytes are not stored, in catalog order (the caller
  /// bounds how many copies run at once).
  std::vector<fetch> fetches;
  /// The sha256s of `fetches`: wanted here and not stored yet (the replication lag).
  std::set<std::string> missing;
  /// The sha256s whose bytes may be deleted once `changes` are committed: released, and no
  /// version this node keeps shares them.
  std::set<std::string> remove;
};

/// Returns what `self_id` should do given the catalog `view`, the `live` members and
/// `stored_here` (whether the snapshot store has a sha256). Copies in `kept_for_traffic` (this
/// node's traffic-following copies, by (model, version)) are never released here: the traffic
/// rule (serving/traffic.hpp) lets them go.
copy_plan plan_copies(const catalog& view, const std::string& self_id, const live_members& live,
                      size_t replication_factor,
                      const std::function<bool(const std::string& sha256)>& stored_here,
                      const std::set<std::pair<model_id, uint32_t>>& kept_for_traffic = {});

/// Returns the cluster addresses to copy `snap` here from: its live holders other than
/// `self_id`, in member-id order (the caller picks one at random, so a holder with a damaged copy
/// is not asked every time).
std::vector<std::string> copy_sources(const snapshot_info& snap, const live_members& live,
                                      const std::string& self_id);

/// Returns the cluster addresses a push through `self_id` sends its bytes to: the other live
/// members placement names for `id`.
std::vector<std::string> push_targets(const model_id& id, const live_members& live,
                                      const std::string& self_id, size_t replication_factor);

/// Returns why a push cannot have all its copies now ("only 1 node is alive; copies are added
/// when nodes join"), or "" when enough members are live.
std::string replication_shortfall(size_t live_count, size_t replication_factor);

}  // namespace shoal
