// api_codec: the one codec of the ZeroMQ boundary. Converts proto/shoal.proto's Request and
// Response messages to and from the plain values of api.hpp and catalog.hpp, so protobuf objects
// never travel past the edge. The node uses decode_request and the encode_response/encode_error
// family; clients (the CLI, tests, SDK glue) use encode_request and the decode_*_response family.
//
// Everything a client can send is validated here, once, before it reaches the node: model ids,
// label names, batch size, top_k, UTF-8. A failure is invalid_argument with a message that says
// what was wrong and what is allowed. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// The largest batch an infer request may carry.
inline constexpr size_t max_infer_batch = 1024;
/// The largest top_k an infer request may ask for.
inline constexpr uint32_t max_top_k = 1000;
/// Limits of a tensor request, on every front end: tensors per request (inputs, or outputs asked
/// for), dimensions, and elements of all its tensors together (the body limit usually binds first).
inline constexpr size_t max_tensors = 64;
inline constexpr size_t max_tensor_rank = 8;
inline constexpr size_t max_tensor_elements = size_t(64) << 20;

/// A request the node can act on.
struct decoded_request {
  uint64_t request_id = 0;
  api_call call;
  std::string api_key;  // "" when the request carries none
};

/// Why a request was refused, and the id to answer it with (0 when the bytes did not carry one).
struct request_error {
  uint64_t request_id = 0;
  status error;
};

/// The decoded request, or the error to send back with encode_error(request_id, error).
class request_decode_result {
 public:
  request_decode_result(decoded_request value) : v_(std::move(value)) {}  // NOLINT: implicit
  request_decode_result(request_error err) : v_(std::move(err)) {}        // NOLINT: implicit

  /// Returns true when a request was decoded.
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  /// @pre is_ok()
  decoded_request& value() & { return std::get<0>(v_); }
  const decoded_request& value() const& { return std::get<0>(v_); }
  decoded_request& operator*() & { return value(); }
  decoded_request* operator->() { return &value(); }
  const decoded_request* operator->() const { return &value(); }
  /// @pre !is_ok()
  const request_error& error() const { return std::get<1>(v_); }

 private:
  std::variant<decoded_request, request_error> v_;
};

// ---- node side ---------------------------------------------------------------------------------

/// Returns the call in `bytes` (one serialized shoal.pb.Request), validated: model ids parse,
/// labels are valid names, an infer batch holds 1..max_infer_batch texts of valid UTF-8 or up to
/// max_tensors tensors whose bytes fit their datatype and shape, top_k is at most max_top_k (0 on
/// the wire means 1), a push carries bytes, a promote names a version.
/// Every failure is invalid_argument.
request_decode_result decode_request(std::string_view bytes);

/// Returns a serialized Response for each kind of result.
std::string encode_response(uint64_t request_id, const infer_result& r);
std::string encode_response(uint64_t request_id, const push_result& r);
std::string encode_response(uint64_t request_id, const model_entry& r);               // list
std::string encode_response(uint64_t request_id, const std::vector<model_entry>& r);  // models
std::string encode_response(uint64_t request_id, const label_result& r);
std::string encode_response(uint64_t request_id, const node_status& r);
std::string encode_response(uint64_t request_id, const cluster_status& r);
std::string encode_response(uint64_t request_id, const validation_set_result& r);
std::string encode_response(uint64_t request_id, const validation_report_info& r);  // validate
std::string encode_response(uint64_t request_id, const policy_result& r);
std::string encode_response(uint64_t request_id, const trial_info& r);
std::string encode_response(uint64_t request_id, const forget_result& r);

/// Returns a serialized Response carrying `error`'s code and message.
/// @pre !error.is_ok() (an ok status is sent as internal "no error given")
std::string encode_error(uint64_t request_id, const status& error);

// ---- client side -------------------------------------------------------------------------------

/// Returns the serialized Request for `call`.
/// @pre the call's strings are valid UTF-8 (the node refuses them otherwise)
std::string encode_request(uint64_t request_id, const api_call& call,
                           const std::string& api_key = "");

/// Returns the request id a Response carries, or 0 when `bytes` is not a Response.
uint64_t response_request_id(std::string_view bytes);

/// Each decoder returns the result in a Response; a node error comes back as a status with the
/// node's code and message; a reply that does not parse or answers a different kind of call is
/// internal.
result<infer_result> decode_infer_response(std::string_view bytes);
result<push_result> decode_push_response(std::string_view bytes);
result<model_entry> decode_list_response(std::string_view bytes);
result<std::vector<model_entry>> decode_models_response(std::string_view bytes);
result<label_result> decode_label_response(std::string_view bytes);
result<node_status> decode_status_response(std::string_view bytes);
result<cluster_status> decode_cluster_status_response(std::string_view bytes);
result<validation_set_result> decode_validation_set_response(std::string_view bytes);
result<validation_report_info> decode_validate_response(std::string_view bytes);
result<policy_result> decode_policy_response(std::string_view bytes);
result<trial_info> decode_trial_response(std::string_view bytes);
result<forget_result> decode_forget_response(std::string_view bytes);

/// Returns "promote" or "rollback", the spelling the wire and JSON use.
const char* label_action_name(label_action a);

}  // namespace shoal
