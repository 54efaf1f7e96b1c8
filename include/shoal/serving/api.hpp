// The plain request/response values both front ends (HTTP/JSON and ZeroMQ/protobuf) convert to and
// from. Codecs live at the edges; inside the node only these structs travel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/cluster/membership.hpp"
#include "shoal/serving/model.hpp"
#include "shoal/serving/tensor.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/store/label.hpp"

namespace shoal {

struct infer_request {
  model_id id;
  std::optional<uint32_t> version;  // exact version; wins over label
  std::string label;                // empty: "production"
  std::vector<std::string> texts;   // a batch of texts (a text model), or empty when inputs
  uint32_t top_k = 1;
  // A tensor model's request: one tensor per model input, and the outputs to answer in that order
  // (empty: all). Texts and inputs are never both given.
  std::vector<tensor> inputs{};
  std::vector<std::string> outputs{};

  /// Returns the rows of the batch: texts, else the first input's first dimension (1 for a
  /// scalar input).
  size_t batch_size() const {
    if (!texts.empty() || inputs.empty()) return texts.size();
    return inputs.front().shape.empty() ? 1 : size_t(std::max<int64_t>(inputs.front().shape[0], 0));
  }
};

struct infer_result {
  model_id id;
  uint32_t version = 0;
  std::vector<std::vector<prediction>> rows;  // one per text, each at most top_k long
  std::vector<tensor> outputs{};              // a tensor model's answer, in the asked order
};

/// Returns ok when `m` takes what `req` sends (texts: a text model; inputs: a tensor model), else
/// an invalid_argument naming the model, its version and what it takes.
status check_fits(const model& m, const infer_request& req, uint32_t version);

/// Returns the answer of `version` of `id` from `outputs` (a tensor model's run); a failed run is
/// its status, the message prefixed with the model and version.
result<infer_result> tensor_answer(const model_id& id, uint32_t version,
                                   result<std::vector<tensor>> outputs);

/// Answers a tensor request with `m` at once (outside a micro-batch); a bad input is the model's
/// invalid_argument.
/// @pre !req.inputs.empty()
result<infer_result> answer_tensors(const model& m, const infer_request& req, uint32_t version);

/// Returns a request that loads and runs `version` of `id` once: a text for a text model, inputs of
/// zeros for a tensor model (dynamic dims 1) as `signature_json` (snapshot_info's) describes it.
infer_request warm_up_request(const model_id& id, uint32_t version,
                              const std::string& signature_json);

struct push_request {
  model_id id;
  std::string bytes;     // the model file
  std::string label;     // move this label to the new version (optional)
  std::string note;      // free text kept with the snapshot
  // Registry metadata (store/registry.hpp checks it).
  std::string user{};                         // who pushes, as the client says
  std::map<std::string, std::string> tags{};  // KEY=VALUE
  std::string metrics_json{};                 // a JSON object (training metrics, parameters)
  std::string source{};                       // what it was built from
  bool force = false;  // with label production: move it even if the validation gate refuses
  // Set by the node from the caller's key (never by the client): the key's name.
  std::string pushed_with{};
};

struct push_result {
  uint32_t version = 0;
  std::string sha256;
  std::vector<std::string> labels;  // labels now pointing at the new version
  uint32_t copies = 1;              // nodes holding the bytes durably when the push answered
  uint32_t replication_factor = 1;  // copies the cluster keeps (fewer: fewer nodes were alive)
  std::string replication_note;     // why copies < replication_factor, for people
};

struct label_result {
  std::string label;
  uint32_t from = 0;  // 0: the label did not exist before
  uint32_t to = 0;
  std::optional<validation_report_info> report{};  // when the validation gate ran
  std::string gate_note{};  // "no validation set: nothing was checked", "forced past: ..."
};

/// `shoal validation set` (bytes: labelled examples) and `shoal validation rollback` (no bytes:
/// use set `to`, or the previous one, again).
struct validation_set_request {
  model_id id;
  std::string bytes;
  std::optional<uint32_t> to;
  std::string user;
  std::string by;  // set by the node from the caller's key
};

struct validation_set_result {
  uint32_t number = 0;
  uint32_t examples = 0;
  std::string sha256;
};

/// `shoal snapshot validate`: compare `version` with the version `label` points at.
struct validate_request {
  model_id id;
  uint32_t version = 0;
  std::string label;  // empty: production
};

/// `shoal policy set|show`: key=value settings of the model's validation and watch rules (an
/// empty value goes back to the default); no settings: only show the policy in force.
struct policy_request {
  model_id id;
  std::map<std::string, std::string> settings;
  std::string user;
  std::string by;  // set by the node
};

struct policy_result {
  std::map<std::string, std::string> settings;  // every rule in force, defaults included
};

/// `shoal snapshot shadow|canary`: start (or with stop, end) a trial of a version.
struct trial_request {
  model_id id;
  uint32_t version = 0;
  trial_info::mode what = trial_info::mode::shadow;
  uint32_t share_ppm = 0;
  bool stop = false;
  std::string user;
  std::string by;  // set by the node
};

/// `snapshot list TENANT/MODEL` and `GET /v2/models/TENANT/MODEL`.
struct list_request {
  model_id id;
};

/// `shoal models`.
struct models_request {};

/// Node status (name, version, counts).
struct status_request {};

struct node_status {
  std::string name;
  std::string version;
  uint64_t models = 0;
  uint64_t snapshots = 0;
};

/// `shoal cluster status`: every member this node knows.
struct cluster_status_request {};

struct cluster_status {
  std::vector<member_view> members;  // ourselves included
};

/// `shoal cluster forget NODE`: voter NODE (a name, an id, or the first 8 or more characters of
/// one) stops counting toward the numbering majority. Refused while this node sees it alive or
/// suspect. Admin keys only.
struct forget_request {
  std::string node;
  std::string user;
  std::string by;  // set by the node
};

struct forget_result {
  std::string id;       // the node forgotten
  std::string name;     // its name, when known
  uint32_t voters = 0;  // nodes that number versions now
};

/// Any call a front end can make; both codecs decode into this.
using api_call =
    std::variant<infer_request, push_request, list_request, models_request, label_request,
                 status_request, cluster_status_request, validation_set_request, validate_request,
                 policy_request, trial_request, forget_request>;

}  // namespace shoal
