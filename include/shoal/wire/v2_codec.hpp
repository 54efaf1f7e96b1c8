// v2_codec: the KServe V2 inference protocol over HTTP/JSON, as pure functions of strings: which
// route a request target names, what an infer body asks for, and the JSON every answer carries.
// No sockets, no threads, no catalog lookups: the HTTP server hands bytes in, the node resolves
// models and versions, and these functions turn both into bytes again.
// Thread-safety: every function is pure; call from any thread.
//
// Routes (everything else is 404; a known path with the wrong method is 405 with an Allow header;
// HEAD is taken wherever GET is, and answered without a body):
//   GET  /v2                                          server metadata
//   GET  /v2/health/live                              {"live":true}
//   GET  /v2/health/ready                             {"ready":true}
//   GET  /v2/models/TENANT/MODEL[/versions/N]         model metadata
//   GET  /v2/models/TENANT/MODEL[/versions/N]/ready   {"name":"TENANT/MODEL","ready":true}
//   POST /v2/models/TENANT/MODEL[/versions/N]/infer   inference
//   GET  /v2/models/TENANT/MODEL[/versions/N]/stats   statistics extension (this node's counts)
//   POST /v2/repository/index                         model repository extension: the models
//   POST /v2/repository/models/TENANT/MODEL/load      loads production on this node (a warm-up)
//   POST /v2/repository/models/TENANT/MODEL/unload    refused: Shoal unloads by use (400, why)
//   GET  /metrics                                     Prometheus text (metrics.hpp)
// Path rules:
// - Each '/'-separated segment is percent-decoded on its own; an invalid escape ("%zz", "%4") is
//   400. So TENANT%2FMODEL (what V2 clients send for a name holding a slash) is the same model as
//   TENANT/MODEL, and an escaped slash never creates a path segment.
// - The model id is checked with parse_model_id: "../x" or "Acme/Bot" is 400, never a path.
// - One trailing slash is ignored ("/v2/health/live/" is live); an empty segment elsewhere
//   ("/v2//health/live") is 404. The query string is ignored. Absolute-form targets
//   ("http://host/v2") route by their path.
// - N in versions/N is a decimal integer from 1 to 4294967295; anything else is 400.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/base/status.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// Defaults and hard limits of the infer body. The batch limit is the caller's (max_batch).
inline constexpr uint32_t v2_max_top_k = 1000;
inline constexpr size_t v2_default_max_batch = 1024;

/// What a request target names.
struct http_route {
  enum class kind : uint8_t {
    server_meta,
    live,
    ready,
    model_meta,
    model_ready,
    infer,
    metrics,
    model_stats,  // the statistics extension
    repo_index,   // the model repository extension: index, load, unload
    repo_load,
    repo_unload,
  };
  kind what = kind::server_meta;
  model_id id;                      // model_meta, model_ready, infer
  std::optional<uint32_t> version;  // set when the path says /versions/N

  friend bool operator==(const http_route& a, const http_route& b) {
    return a.what == b.what && a.id == b.id && a.version == b.version;
  }
};

/// Returns the only method `k` answers ("GET" or "POST").
const char* allowed_method(http_route::kind k);

/// parse_route's answer: a route, or the status that explains why there is none. A wrong method on
/// a known path carries the methods to put in the Allow header; answer http_status() either way.
class route_result : public result<http_route> {
 public:
  using result<http_route>::result;

  /// Returns a 405 answer: `message` says what was wrong, `allow` is the Allow header value.
  static route_result method_not_allowed(std::string message, std::string allow);

  /// Returns the Allow header value for a 405, else "".
  const std::string& allow() const { return allow_; }
  /// Returns the HTTP status to answer: 200 on success, 405 when allow() is set, else the status
  /// code's (400 for a bad id, version or escape; 404 for an unknown path).
  int http_status() const;

 private:
  std::string allow_;
};

/// Returns the route that `method` on the raw request `target` (path, optional query) names.
route_result parse_route(std::string_view method, std::string_view target);

/// Which outputs a text model's answer carries: those the request's "outputs" names, all when it
/// names none.
struct v2_outputs {
  bool labels = true;
  bool scores = true;
};

/// How the answer to an infer request is written: what the request asked of it.
struct v2_answer_form {
  uint32_t top_k = 1;       // a text model's labels per text
  std::string request_id;   // the client's "id", echoed; empty when the body had none
  v2_outputs outputs;       // a text model's outputs
  bool binary_all = false;  // parameters.binary_data_output: every output as binary data
  std::vector<std::string> binary_outputs;  // outputs asked for with "binary_data":true
};

/// An infer body decoded: the request for the node and how to write its answer.
struct v2_infer {
  infer_request request;
  v2_answer_form form;
};

/// Returns what an infer body asks for. The model id and version come from `route`.
///
/// `header_length` is the Inference-Header-Content-Length header ("" when absent): with it, the
/// body's first that many bytes are the JSON and the rest is binary tensor data (V2's binary data
/// extension), which inputs with parameters.binary_data_size take in order; numeric tensors as
/// packed little-endian elements, BYTES as a 4-byte little-endian length before each element.
///
/// A text request is one input named "text" (BYTES, shape [B] or [B,1], B strings of valid UTF-8,
/// 1 <= B <= max_batch; data flat, or nested as [["a"],["b"]] with shape [B,1]), optional
/// parameters top_k (1 to v2_max_top_k, default 1) and label, and optional "outputs": a list of
/// {"name":"labels"|"scores"} (others are refused), where an output's parameter
/// "classification": N (Triton's class_count) sets top_k to N. A version in the path and a label in
/// the body together are refused as ambiguous, and so is a top_k that differs from a
/// classification count.
///
/// Any other inputs make a tensor request: each input has a name, a datatype (FP32, FP64, INT32,
/// INT64, BOOL, BYTES), a shape, and its elements as "data" (flat in row-major order, or nested
/// like the shape) or as binary data; "outputs" names the outputs to answer, in order (the model
/// checks the names). Parameters Shoal does not know are ignored, as V2 lets servers do.
///
/// Every error is invalid_argument (400) whose message says what was wrong and what to send
/// instead.
/// @pre route.what == http_route::kind::infer
result<v2_infer> parse_infer_body(const http_route& route, std::string_view body, size_t max_batch,
                                  std::string_view header_length = {});

/// Returns the V2 infer answer of a text model as JSON: outputs "labels" (BYTES) and "scores"
/// (FP32), those of `outputs` only, each of shape [B,K], data flat in row-major order. K is `top_k`
/// clamped to the shortest row, so a model with fewer labels than top_k yields all it has and every
/// row has the same length. "id" is present when `request_id` is not empty. Label bytes that are
/// not UTF-8 are replaced by U+FFFD.
std::string render_infer(const infer_result& r, uint32_t top_k, const std::string& request_id,
                         v2_outputs outputs = {});

/// An infer answer's body, and when it carries binary data, the length of its JSON part (the
/// Inference-Header-Content-Length header; the body is then application/octet-stream).
struct v2_answer {
  std::string body;
  std::optional<size_t> json_length;
};

/// Returns the answer to a request of `form`: a text model's rows as render_infer writes them, a
/// tensor model's outputs with their datatypes and shapes; the outputs `form` asks for as binary
/// data (and all with binary_all) are written after the JSON. JSON has no NaN or infinity: such
/// elements are null in JSON data (binary data carries them as they are).
v2_answer render_answer(const infer_result& r, const v2_answer_form& form);

/// Returns the V2 model metadata of `m`: name, versions (strings), platform, inputs, outputs, plus
/// "labels" ({"production":"3"}) and "snapshots" (per version: version, sha256, created_ms,
/// size_bytes, format, note, labels). With `version`, versions and snapshots hold that version only.
/// @pre version is empty or m has it (resolve it through the catalog first for a good 404)
std::string render_model_meta(const model_entry& m, std::optional<uint32_t> version);

/// A readiness answer: the HTTP status and its body.
struct v2_reply {
  int status = 200;
  std::string body;
};

/// Returns the answer to GET /v2/health/ready: 200 {"ready":true}, or 503 {"ready":false} while the
/// node drains (load balancers stop sending).
v2_reply answer_server_ready(bool draining);

/// Returns the answer to GET /v2/models/M[/versions/N]/ready: ready when the node is not draining
/// and `m` has a production label (or `version` was named: the caller checked that it exists).
/// Not ready is 503 with the same body, {"name":…,"ready":false}: V2 clients (tritonclient,
/// KServe's is_model_ready) read the status code only.
v2_reply answer_model_ready(const model_entry& m, std::optional<uint32_t> version, bool draining);

/// Returns {"name":"shoal","version":SHOAL_VERSION,"extensions":[...]}: binary_tensor_data,
/// model_repository, statistics.
std::string render_server_meta();

/// This node's counts of one model for the statistics extension.
struct v2_model_counts {
  uint64_t requests = 0;  // answered, errors included
  uint64_t errors = 0;
  uint64_t total_us = 0;  // the time all of them took, reading to answering
};

/// Returns the statistics extension's answer for `id` (Triton's shape: model_stats with
/// inference_count, execution_count and inference_stats success/fail/queue/compute_*). Shoal counts
/// per model, not per version: "version" is what the path named, or "".
std::string render_model_stats(const model_id& id, std::optional<uint32_t> version,
                               const v2_model_counts& counts);

/// Returns the repository index: one entry per model, [{"name","version","state","reason"}], the
/// version being production's; state READY when production is set, else UNAVAILABLE with why.
/// `ready_only` (the request's {"ready":true}) keeps the READY ones.
std::string render_repository_index(const std::vector<model_entry>& models, bool ready_only);

/// Returns {"live":<live>}.
std::string render_live(bool live);

/// Returns {"ready":<ready>}.
std::string render_ready(bool ready);

/// Returns {"name":"TENANT/MODEL","ready":<ready>}.
std::string render_model_ready(const model_id& id, bool ready);

/// Returns {"error":"<message>"}, JSON-escaped.
std::string render_error(std::string_view message);

/// Returns `segment` with %XX escapes decoded, or invalid_argument for a '%' not followed by two
/// hex digits. '+' stays '+' (paths are not form data).
result<std::string> percent_decode(std::string_view segment);

}  // namespace shoal
