// catalog: which snapshots each model has and where its labels point, with every label's history.
// Pure data and functions: no I/O, no clock (callers pass `now_ms`), no threads. The node's catalog
// actor plans a change, makes it durable in the journal, then applies it; replaying the journal
// applies the same changes in the same order and rebuilds the same catalog.
// Thread-safety: none; one owner.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/base/status.hpp"
#include "shoal/store/hlc.hpp"
#include "shoal/store/label.hpp"

namespace shoal {

/// An immutable stored model version.
struct snapshot_info {
  uint32_t version = 0;      // 1, 2, 3… per model
  std::string sha256;        // hex digest of the bytes; the store's key
  int64_t created_ms = 0;    // unix time, milliseconds
  uint64_t size_bytes = 0;
  std::string format;        // "fasttext"
  std::string note;
  /// Ids of the nodes that hold the bytes (derived from hold/release changes; empty in the
  /// add_snapshot change itself).
  std::set<std::string> holders{};
  // Registry metadata, set at push and never changed (registry.hpp checks it). After `holders`
  // and with braced defaults, so aggregate initializers that stop at `holders` keep meaning what
  // they meant.
  std::string user{};         // who pushed, as the client said (--user, else the login name)
  std::string pushed_with{};  // the name of the API key the node saw; "" on an open node
  std::map<std::string, std::string> tags{};  // --tag KEY=VALUE
  std::string metrics_json{};  // training metrics and hyper-parameters: a compact JSON object
  std::string source{};        // what it was built from (--source URI)
  // The model's inputs and outputs as the node that stored it read them from the file (JSON:
  // {"inputs":[{"name","datatype","shape"}],"outputs":[...]}); "" for snapshots stored before it
  // was kept, which are text models.
  std::string signature_json{};
};

/// One move of a label, kept forever for `snapshot list`.
struct label_move {
  uint32_t from = 0;  // 0: the label was new
  uint32_t to = 0;
  label_action action = label_action::promote;
  int64_t time_ms = 0;
  std::string reason{};    // automatic and forced moves say why
  std::string by{};        // who moved it ("" when nobody said)
  bool forced = false;     // past a validation gate that refused it
  bool automatic = false;  // the watch rolled it back
};

/// A model's validation set: labelled examples in fastText's format, stored by sha256 like
/// snapshot bytes. Numbered 1, 2, ... in the order the catalog learned of them.
struct validation_set_info {
  uint32_t number = 0;
  std::string sha256;
  uint64_t size_bytes = 0;
  uint32_t examples = 0;
  int64_t created_ms = 0;
  std::string user;
};

/// One comparison of a candidate version with a baseline over a validation set (the figures
/// are serving/validation.hpp's report, as JSON).
struct validation_report_info {
  uint32_t candidate = 0;
  uint32_t baseline = 0;  // 0: there was nothing to compare with
  uint32_t set_number = 0;
  std::string set_sha256;
  std::string report_json;
  bool passed = false;
  std::string verdict;  // "passed", or the rules that failed
  bool forced = false;  // a label moved anyway
  std::string by;
  int64_t time_ms = 0;
  std::string ran_on;  // the node's name
};

/// A shadow (a share of production traffic also predicted by `version`, answers discarded) or
/// canary (a share answered by it) trial, or the watch after a production move (the previous
/// production, `version`, predicts a share of the new one's requests until `until_ms`, so the
/// node can compare them). Ended by a production move or a stop; a watch also by its end.
struct trial_info {
  enum class mode : uint8_t { none, shadow, canary, watch };
  mode what = mode::none;
  uint32_t version = 0;
  uint32_t share_ppm = 0;  // parts per million of the model's requests
  int64_t started_ms = 0;
  std::string by;
  uint32_t watched = 0;  // watch: the version being watched (production when it started)
  int64_t until_ms = 0;  // watch: when it ends (unix ms)
};

struct label_state {
  /// Rollback targets: back() is where the label points now. promote pushes; rollback pops;
  /// rollback --to N pops down to N when N is on the stack, else pushes N.
  std::vector<uint32_t> stack;
  /// Every move, oldest first.
  std::vector<label_move> history;

  /// Returns the version the label points at.
  uint32_t current() const { return stack.empty() ? 0 : stack.back(); }
};

struct model_entry {
  model_id id;
  std::vector<snapshot_info> snapshots;         // ascending version
  std::map<std::string, label_state> labels;
  std::vector<validation_set_info> validation_sets;  // by number
  std::vector<uint32_t> validation_stack;            // sets in use, back() = current
  std::vector<validation_report_info> reports;       // oldest first, the last max_reports
  std::map<std::string, std::string> policy;         // settings set for this model
  trial_info trial;

  /// Reports kept per model (older ones stay in the journal).
  static constexpr size_t max_reports = 64;

  /// Returns the validation set in use, or nullptr.
  const validation_set_info* current_set() const;
  /// Returns the snapshot with `version`, or nullptr.
  const snapshot_info* find(uint32_t version) const;
  /// Returns ok if `version` exists, else not_found naming the versions that do
  /// ("model acme/bot has no version 7 (versions: 1-3)").
  status check_version(uint32_t version) const;
  /// Returns the version a request names (see catalog::resolve), for this model.
  result<uint32_t> resolve(std::optional<uint32_t> version, const std::string& label) const;
  /// Returns the labels that point at `version`, sorted.
  std::vector<std::string> labels_at(uint32_t version) const;
};

/// A change to the catalog: what the journal stores and replay applies.
struct catalog_change {
  // hold/release: the change's origin node now holds (or no longer holds) the bytes of version
  // `to` (placement). join: the origin node takes part in numbering versions (a voter; `by`: its
  // name). retire: node `node` no longer does (`shoal cluster forget`; `reason`: its name, `by`:
  // who asked, `time_ms`: when). grant:
  // the origin voter gives version number `to` of `id` to the bytes `snapshot.sha256` (see
  // replicated_catalog.hpp, "Version numbers"). join, retire and grant leave the view unchanged.
  // validation_set: `validation_set` becomes the set in use (added when new). validation_report:
  // `report` was made. policy: `policy` replaces the model's settings (with an empty model
  // name: the tenant's, for all its models). trial: `trial` starts (mode none: ends) a shadow,
  // canary or watch.
  enum class kind : uint8_t {
    add_snapshot,
    move_label,
    hold,
    release,
    join,
    grant,
    validation_set,
    validation_report,
    policy,
    trial,
    retire
  };
  kind what = kind::add_snapshot;
  model_id id;
  snapshot_info snapshot;  // add_snapshot
  std::string label;       // move_label
  label_action action = label_action::promote;
  uint32_t to = 0;         // move_label: the version the label points at afterwards;
                           // hold, release: the version whose bytes
  int64_t time_ms = 0;     // move_label
  // move_label: who and why; applies only while the label points at `expect_from` (0: always),
  // so that two nodes rolling back the same move at once move the label once.
  std::string reason;
  std::string by;
  bool forced = false;
  bool automatic = false;
  uint32_t expect_from = 0;
  validation_set_info validation_set;         // validation_set
  validation_report_info report;              // validation_report
  std::map<std::string, std::string> policy;  // policy
  trial_info trial;                           // trial
  std::string node;                           // retire: the node id

  // Who made it and when, for replication (replicated_catalog.hpp): the node's id, the change's
  // number among that node's changes (1, 2, ...) and its hybrid-logical-clock time. Empty and
  // zero in journals written before the catalog was replicated (every change was made here).
  std::string origin;
  uint64_t seq = 0;
  hlc_timestamp at;
};

/// Returns the change by which this node says it holds (or no longer holds) the bytes of
/// `version` of `id`, to be stamped as its own.
catalog_change hold_change(const model_id& id, uint32_t version);
catalog_change release_change(const model_id& id, uint32_t version);
/// Returns the change by which this node (called `name`) becomes a voter in numbering versions.
catalog_change join_change(const std::string& name = "");
/// Returns the change by which voter `node_id` (called `name`) stops numbering versions, asked
/// for by `by` at `time_ms`.
catalog_change retire_change(const std::string& node_id, const std::string& name,
                             const std::string& by, int64_t time_ms);
/// Returns this voter's grant of `number` of `id` to the bytes `sha256`.
catalog_change grant_change(const model_id& id, uint32_t number, const std::string& sha256);

class catalog {
 public:
  /// Returns the model, or nullptr.
  const model_entry* find(const model_id& id) const;

  /// Returns every model, sorted by id.
  std::vector<const model_entry*> models() const;

  /// What one tenant has: its models, and the bytes of all their snapshots.
  struct usage {
    size_t models = 0;
    uint64_t stored_bytes = 0;
  };
  /// Returns `tenant`'s usage (per-tenant limits check pushes against it).
  usage tenant_usage(const std::string& tenant) const;

  /// Returns the policy settings set for every model of `tenant` (a policy change whose model
  /// is empty), or an empty map. A model's own settings win over these.
  const std::map<std::string, std::string>& tenant_policy(const std::string& tenant) const;
  /// Sets them (the replicated catalog's refold of a tenant's policy changes).
  void set_tenant_policy(const std::string& tenant, std::map<std::string, std::string> settings);

  /// Returns the changes a push makes: add the snapshot as the next version (the first version
  /// also becomes "production"), and move `label` to it when not empty.
  /// `snap.version` is ignored: the version is `version` when given (a number the cluster
  /// granted), else the highest known + 1.
  /// @pre the label, when not empty, is a valid label name
  std::vector<catalog_change> plan_push(const model_id& id, snapshot_info snap,
                                        const std::string& label, int64_t now_ms,
                                        std::optional<uint32_t> version = std::nullopt) const;

  /// Returns the change a promote or rollback makes, or why it cannot be made
  /// ("model acme/bot has no version 7 (versions: 1-3)", "label production has no earlier
  /// version to roll back to").
  result<catalog_change> plan_label(const label_request& req, int64_t now_ms) const;

  /// Applies a change planned above or read from the journal; refuses one that does not fit
  /// (unknown model or version for a label move, a version number that is taken or 0) and then
  /// changes nothing. Version numbers need not be dense: replicas may learn of them out of order.
  status apply(const catalog_change& change);

  /// Replaces (or adds) the whole entry of one model: the replicated catalog refolds a model when
  /// a change arrives that sorts before others. An entry without snapshots removes the model.
  void put(model_entry entry);

  /// Returns the version a request names: `version` when set (it must exist), else the version
  /// `label` ("production" when empty) points at.
  result<uint32_t> resolve(const model_id& id, std::optional<uint32_t> version,
                           const std::string& label) const;

 private:
  // Returns the entry behind `slot` for changing it: a copy when another catalog shares it.
  static model_entry& writable(std::shared_ptr<const model_entry>& slot);

  using slot = std::shared_ptr<const model_entry>;
  // Applies a validation_set, validation_report, policy or trial change to `entry`.
  static status apply_model_setting(const catalog_change& change, slot& entry);
  // The slot of `id` (where it is or would go: sorted by id).
  std::vector<slot>::iterator lower(const model_id& id);
  std::vector<slot>::const_iterator lower(const model_id& id) const;

  // Entries are shared between copies of a catalog and copied only when one of them changes
  // an entry, so copying a catalog of 10,000 models (the catalog actor publishes one after
  // every group commit) copies pointers, not snapshots and label histories. An entry is never
  // changed while another catalog shares it, so shared entries are safe to read from any
  // thread. A sorted vector, not a map: a copy is one allocation and a reference count per
  // model (a map's was an allocation per model, the bulk of a bulk push at 10,000 models);
  // adding a model moves the pointers after it.
  std::vector<slot> models_;
  // Tenant-wide policy settings (few: copied whole with the catalog).
  std::map<std::string, std::map<std::string, std::string>> tenant_policies_;
};

/// Returns what a request for a model that does not exist is answered ("no model acme/bot").
status model_not_found(const model_id& id);

/// Returns true if `name` is a valid label name: [a-z0-9][a-z0-9_.-]{0,63}.
bool is_valid_label(const std::string& name);

}  // namespace shoal
