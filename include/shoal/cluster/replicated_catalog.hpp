// replicated_catalog: the catalog every node holds a replica of, as the set of changes made
// anywhere in the cluster. Nodes converge by exchanging changes; two nodes holding the same
// changes show the same catalog, whatever order the changes arrived in.
//
// - Every change is stamped where it is made: origin (node id), seq (1, 2, 3, ... per origin) and
//   a hybrid-logical-clock time `at` (hlc.hpp). (at, origin) orders all changes totally, and a
//   change made after seeing another orders after it.
// - A replica holds a prefix of every origin's changes: it takes a change only when it is the
//   next of its origin (seq = held + 1). So a frontier (origin -> highest seq held) says exactly
//   what a replica has, and missing_for(their frontier) is exactly what a peer lacks
//   (anti-entropy), however changes were lost or reordered on the way.
// - The catalog users see (view()) is, for each model, the fold of that model's changes in
//   (at, origin) order: adds insert their version, label moves move labels (promote pushes,
//   rollback pops, as catalog::apply does). A label move to a version not known yet is skipped
//   until the version arrives (it always sorts before the move: whoever moved the label had seen
//   the version). Folding is deterministic, so it commutes with arrival order; nothing is ever
//   dropped from the change set, so a merge never loses a snapshot or a label move.
// - Two adds of the same version number with different content (numbering is the caller's job;
//   see the README's "Catalog" section) fold deterministically: the earlier in (at, origin)
//   order keeps the number, the other is kept in the change set and reported by conflicts().
//
// Version numbers (so that two nodes never give one number to different bytes): the nodes that
// have joined (a join change each) are the voters. A node numbering a new version asks them
// for a grant of (model, number, sha256); each voter grants a number at most once (its grants
// are its own changes, durable and replicated), and a number granted by a majority of the
// voters is the version's. Two majorities always share a voter, so two different snapshots can
// never both win one number. Without a majority (a minority partition) a node cannot number
// new versions and says so; promote and rollback need no vote. A voter that is gone for good is
// retired (`shoal cluster forget`, a retire change naming it): it stops counting toward the
// majority. Joins and retires of one node fold in (at, origin) order like everything else, so
// every replica agrees on the voters whatever order the changes arrived in; a node retired and
// started again later joins again (its new join orders after the retire).
//
// Journals written before replication hold changes with no origin: add() stamps them as this
// node's, in order, so every restart stamps them the same way.
// Thread-safety: none; one owner (the catalog actor).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/store/hlc.hpp"

namespace shoal {

/// Highest seq held per origin node id.
using catalog_frontier = std::map<std::string, uint64_t>;

class replicated_catalog {
 public:
  /// `self_id`: this node's id, the origin of the changes stamp() makes.
  explicit replicated_catalog(std::string self_id, int64_t max_clock_offset_ms = 60000);

  /// Stamps changes planned here (catalog::plan_push/plan_label) as ours, in order, at
  /// `physical_ms`, and returns them; add() them after they are durable.
  std::vector<catalog_change> stamp(std::vector<catalog_change> changes, int64_t physical_ms);

  /// Takes in one change (ours or a peer's, new or replayed). Returns true if it was new, false
  /// if it was held already. Refuses (failed_precondition, nothing changed) a change that is not
  /// the next of its origin ("missing 3-4 of n2"), and (invalid_argument) one that is malformed.
  /// A change stamped far ahead of our clock is still taken (replicas must converge), but our
  /// clock does not follow it.
  result<bool> add(catalog_change change, int64_t physical_ms);

  /// Returns ok if `change` is well formed (a valid model id, a known kind, a seq when it has an
  /// origin), whatever its place among its origin's changes.
  status check_shape(const catalog_change& change) const;

  /// Returns what add(change) would: true (new), false (held already), or why it would refuse
  /// it, without changing anything. For making a peer's changes durable before adding them.
  result<bool> check(const catalog_change& change) const;

  /// Returns the catalog as folded from every change held.
  const catalog& view() const { return view_; }

  /// Returns the highest seq held per origin.
  const catalog_frontier& frontier() const { return frontier_; }

  /// Returns what a replica at `theirs` lacks, oldest first per origin, at most `max` changes
  /// (the peer asks again from its new frontier for the rest).
  std::vector<catalog_change> missing_for(const catalog_frontier& theirs, size_t max) const;

  /// Returns the changes held for `origin` with seq in [from, to], in order (for a peer that
  /// saw a gap).
  std::vector<catalog_change> range(const std::string& origin, uint64_t from, uint64_t to) const;

  /// Returns the number of changes held.
  size_t size() const { return count_; }

  /// Returns one line per add that lost its version number to an earlier one (see above).
  std::vector<std::string> conflicts() const;

  /// Returns the nodes that take part in numbering versions (joined and not retired since).
  const std::set<std::string>& voters() const { return voters_; }
  /// Returns the name a node gave in its join (empty for joins from before names were kept).
  std::string voter_name(const std::string& node_id) const;
  /// Returns the nodes retired (and not joined again since).
  std::set<std::string> retired() const;

  /// Returns the number a new version of `id` should ask for: above every version and every
  /// grant known for `id`.
  uint32_t next_number(const model_id& id) const;

  /// Returns ok if this node, as a voter, may grant `number` of `id` to `sha256`: it has granted
  /// that number to nothing else, and no known version has it with other bytes. Otherwise
  /// failed_precondition naming the holder of the number.
  status may_grant(const model_id& id, uint32_t number, const std::string& sha256) const;

  /// Returns this node's id.
  const std::string& self_id() const { return self_; }

  /// Returns the clock (for status and tests).
  const hybrid_clock& clock() const { return clock_; }

 private:
  // A change's place in the fold: (at, origin, seq).
  using order_key = std::tuple<hlc_timestamp, std::string, uint64_t>;
  static order_key key_of(const catalog_change& c) { return {c.at, c.origin, c.seq}; }

  void refold(const model_id& id);
  const catalog_change& change_at(const order_key& k) const;

  std::string self_;
  hybrid_clock clock_;
  catalog_frontier frontier_;
  std::map<std::string, std::vector<catalog_change>> by_origin_;  // [seq - 1]
  std::map<model_id, std::set<order_key>> by_model_;                // fold order
  catalog view_;
  std::map<std::pair<std::string, uint64_t>, std::string> conflicts_;  // by (origin, seq)
  std::set<std::string> voters_;
  // The last join or retire of each node, in fold order: it decides whether the node votes.
  struct voter_event {
    order_key key;
    bool joined = false;
  };
  std::map<std::string, voter_event> voter_events_;
  std::map<std::string, std::string> voter_names_;  // node id -> the name in its join
  void take_voter_event(const std::string& node, const catalog_change& c, bool joined);
  // Grants per model and number: voter -> sha256.
  std::map<model_id, std::map<uint32_t, std::map<std::string, std::string>>> grants_;
  size_t count_ = 0;
};

}  // namespace shoal
