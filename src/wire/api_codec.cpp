// api_codec: the protobuf client API in both directions for every call (api_codec.hpp). Over 500
// lines because it is one encode and one decode per message type, each checking every field.
#include "shoal/wire/api_codec.hpp"

#include <google/protobuf/descriptor.h>

#include <map>
#include <type_traits>

#include "cluster/member_proto.hpp"
#include "proto/shoal.pb.h"
#include "shoal/base/utf8.hpp"
#include "shoal/store/registry.hpp"
#include "store/catalog_proto.hpp"

namespace shoal {
namespace {

namespace gp = google::protobuf;

// ---- helpers -----------------------------------------------------------------------------------

// Keeps error messages readable (and valid UTF-8, so they fit a protobuf string) when the input is
// huge or binary.
std::string shown(std::string_view text) {
  std::string out = "'";
  std::string_view head = text.substr(0, 80);
  for (char c : head) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (text.size() > head.size()) out += "...";
  return utf8::to_valid_utf8(out + "'");
}

// proto3 `string` fields must hold UTF-8; text from a model file (a label) or from a message that
// quotes client input may not.
std::string wire_text(std::string_view s) { return utf8::to_valid_utf8(s); }

status bad_request(std::string msg) { return status::invalid_argument(std::move(msg)); }

// ---- request wire check ------------------------------------------------------------------------
//
// protobuf refuses to parse a proto3 `string` field that is not UTF-8, and logs an error line when
// it does. We walk the wire format first, guided by the descriptors, so that a bad text gets a
// message naming the field (and the node's log stays quiet), and so that the request id can be
// read even from a request we refuse.

class wire_reader {
 public:
  explicit wire_reader(std::string_view bytes)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  bool skip(uint64_t n) {
    if (n > uint64_t(end_ - p_)) return false;
    p_ += n;
    return true;
  }

  bool bytes(std::string_view& out) {
    uint64_t n = 0;
    if (!varint(n) || n > uint64_t(end_ - p_)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

enum class wire_check { ok, malformed, bad_utf8 };

struct wire_finding {
  wire_check what = wire_check::ok;
  std::string field;  // "infer.texts[2]"
  size_t offset = 0;  // of the first bad byte within the field
};

// Checks every string field of message type `d` in `bytes`, recursing into known message fields.
// The schema bounds the recursion depth (unknown fields are skipped, never descended into).
wire_finding check_wire(std::string_view bytes, const gp::Descriptor* d, const std::string& path,
                        uint64_t* request_id) {
  wire_reader in(bytes);
  std::map<int, int> seen;  // field number → occurrences, for repeated fields' indexes
  while (!in.done()) {
    uint64_t tag = 0;
    if (!in.varint(tag)) return {wire_check::malformed, {}, 0};
    uint64_t number = tag >> 3;
    int wire_type = int(tag & 7);
    if (number == 0 || number > 536870911) return {wire_check::malformed, {}, 0};
    switch (wire_type) {
      case 0: {
        uint64_t v = 0;
        if (!in.varint(v)) return {wire_check::malformed, {}, 0};
        if (request_id != nullptr && number == pb::Request::kRequestIdFieldNumber) *request_id = v;
        break;
      }
      case 1:
        if (!in.skip(8)) return {wire_check::malformed, {}, 0};
        break;
      case 5:
        if (!in.skip(4)) return {wire_check::malformed, {}, 0};
        break;
      case 2: {
        std::string_view payload;
        if (!in.bytes(payload)) return {wire_check::malformed, {}, 0};
        const gp::FieldDescriptor* f = d->FindFieldByNumber(int(number));
        if (f == nullptr) break;
        std::string name = path.empty() ? f->name() : path + "." + f->name();
        if (f->is_repeated()) name += "[" + std::to_string(seen[int(number)]++) + "]";
        if (f->type() == gp::FieldDescriptor::TYPE_STRING) {
          size_t bad = utf8::first_invalid_byte(payload);
          if (bad != std::string_view::npos) return {wire_check::bad_utf8, name, bad};
        } else if (f->type() == gp::FieldDescriptor::TYPE_MESSAGE) {
          wire_finding inner = check_wire(payload, f->message_type(), name, nullptr);
          if (inner.what != wire_check::ok) return inner;
        }
        break;
      }
      default:  // groups (3, 4) are not part of our schema; 6 and 7 do not exist
        return {wire_check::malformed, {}, 0};
    }
  }
  return {};
}

// ---- tensors ------------------------------------------------------------------------------------

void tensor_to_proto(const tensor& t, pb::Tensor* out) {
  out->set_name(t.name);
  out->set_datatype(v2_datatype_name(t.type));
  for (int64_t d : t.shape) out->add_shape(d);
  out->set_raw(t.data);
  for (const auto& s : t.strings) out->add_strings(s);
}

// Checks what a tensor on the wire claims (a known datatype, a shape within limits, exactly the
// bytes or strings the shape needs) before it becomes a tensor.
result<tensor> tensor_from_proto(const pb::Tensor& in) {
  tensor t;
  t.name = in.name();
  if (t.name.empty() || t.name.size() > 256) {
    return status::invalid_argument("a tensor needs a name of 1 to 256 bytes");
  }
  auto type = parse_v2_datatype(in.datatype());
  if (!type) {
    return status::invalid_argument("tensor " + shown(t.name) + " has datatype " +
                                    shown(in.datatype()) +
                                    ": use FP32, FP64, INT32, INT64, BOOL or BYTES");
  }
  t.type = *type;
  if (in.shape_size() > int(max_tensor_rank)) {
    return status::invalid_argument("tensor " + shown(t.name) + " has " +
                                    std::to_string(in.shape_size()) + " dimensions: at most " +
                                    std::to_string(max_tensor_rank));
  }
  t.shape.assign(in.shape().begin(), in.shape().end());
  t.data = in.raw();
  t.strings.assign(in.strings().begin(), in.strings().end());
  SHOAL_RETURN_IF_ERROR(t.check_size());
  return t;
}

// ---- request validation ------------------------------------------------------------------------

result<model_id> request_model(const std::string& text) {
  auto id = parse_model_id(text);
  if (!id) return bad_request(wire_text(id.error().message()));
  return id;
}

status check_label(const std::string& label) {
  if (label.empty() || is_valid_label(label)) return status::ok();
  return bad_request("invalid label " + shown(label) +
                     ": a label name must match [a-z0-9][a-z0-9_.-]{0,63}");
}

result<api_call> decode_infer(pb::InferRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  infer_request r;
  r.id = std::move(*id);
  if (m.texts_size() == 0 && m.inputs_size() == 0) {
    return bad_request("infer request for " + r.id.str() +
                       " has no texts and no inputs: send texts (a text model) or one tensor per "
                       "input (a tensor model)");
  }
  if (m.texts_size() > 0 && m.inputs_size() > 0) {
    return bad_request("infer request for " + r.id.str() +
                       " has both texts and tensor inputs: send one or the other");
  }
  if (m.inputs_size() > 0) {
    if (m.inputs_size() > int(max_tensors)) {
      return bad_request("infer request for " + r.id.str() + " has " +
                         std::to_string(m.inputs_size()) + " inputs: at most " +
                         std::to_string(max_tensors));
    }
    for (auto& in : *m.mutable_inputs()) {
      auto t = tensor_from_proto(in);
      if (!t) return bad_request("infer request for " + r.id.str() + ": " + t.error().message());
      r.inputs.push_back(std::move(*t));
    }
    if (m.outputs_size() > int(max_tensors)) {
      return bad_request("infer request for " + r.id.str() + " asks for " +
                         std::to_string(m.outputs_size()) + " outputs: at most " +
                         std::to_string(max_tensors));
    }
    r.outputs.assign(m.outputs().begin(), m.outputs().end());
  }
  if (size_t(m.texts_size()) > max_infer_batch) {
    return bad_request("infer request for " + r.id.str() + " has " +
                       std::to_string(m.texts_size()) + " texts: at most " +
                       std::to_string(max_infer_batch) + " per request");
  }
  if (m.top_k() > max_top_k) {
    return bad_request("top_k " + std::to_string(m.top_k()) + " is out of range: ask for 1.." +
                       std::to_string(max_top_k) + " predictions (0 means 1)");
  }
  r.top_k = m.top_k() == 0 ? 1 : m.top_k();
  if (m.version() != 0) r.version = m.version();
  SHOAL_RETURN_IF_ERROR(check_label(m.label()));
  r.label = m.label();
  r.texts.assign(m.texts().begin(), m.texts().end());
  return api_call(std::move(r));
}

result<api_call> decode_push(pb::PushRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  push_request r;
  r.id = std::move(*id);
  if (m.data().empty()) {
    return bad_request("push to " + r.id.str() + " carries no model bytes: send the model file");
  }
  SHOAL_RETURN_IF_ERROR(check_label(m.label()));
  r.label = m.label();
  r.note = m.note();
  r.user = m.user();
  r.tags.insert(m.tags().begin(), m.tags().end());
  r.source = m.source();
  r.force = m.force();
  if (!m.metrics_json().empty()) {
    auto compact = compact_metrics_json(m.metrics_json());
    if (!compact) return bad_request("push to " + r.id.str() + ": " + compact.error().message());
    r.metrics_json = std::move(*compact);
  }
  snapshot_info meta;
  meta.user = r.user;
  meta.note = r.note;
  meta.tags = r.tags;
  meta.source = r.source;
  if (status ok = check_snapshot_metadata(meta); !ok) {
    return bad_request("push to " + r.id.str() + ": " + ok.message());
  }
  r.bytes = std::move(*m.mutable_data());
  return api_call(std::move(r));
}

result<api_call> decode_validation_set(pb::ValidationSetRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  validation_set_request r;
  r.id = std::move(*id);
  if (m.user().size() > max_user_bytes) return bad_request("user is over 128 bytes");
  r.user = m.user();
  if (m.to() != 0) {
    if (!m.data().empty()) return bad_request("a validation set carries either bytes or `to`");
    r.to = m.to();
  }
  r.bytes = std::move(*m.mutable_data());
  return api_call(std::move(r));
}

result<api_call> decode_validate(const pb::ValidateRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  validate_request r;
  r.id = std::move(*id);
  if (m.version() == 0) return bad_request("validate of " + r.id.str() + " needs a version");
  r.version = m.version();
  SHOAL_RETURN_IF_ERROR(check_label(m.label()));
  r.label = m.label();
  return api_call(std::move(r));
}

result<api_call> decode_policy(const pb::PolicyRequest& m) {
  policy_request r;
  if (m.model().find('/') == std::string::npos) {  // a tenant: its policy for all its models
    if (!is_valid_id_part(m.model())) {
      return bad_request("invalid tenant " + shown(m.model()) +
                         ": a tenant name must match [a-z0-9][a-z0-9_-]{0,63}");
    }
    r.id = model_id{m.model(), ""};
  } else {
    auto id = request_model(m.model());
    if (!id) return id.error();
    r.id = std::move(*id);
  }
  r.settings.insert(m.settings().begin(), m.settings().end());
  r.user = m.user();
  catalog_change c;
  c.what = catalog_change::kind::policy;
  c.policy = r.settings;
  if (status ok = check_change_text(c); !ok) return bad_request(ok.message());
  if (r.user.size() > max_user_bytes) return bad_request("user is over 128 bytes");
  return api_call(std::move(r));
}

result<api_call> decode_trial(const pb::TrialRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  trial_request r;
  r.id = std::move(*id);
  r.stop = m.stop();
  r.user = m.user();
  if (r.user.size() > max_user_bytes) return bad_request("user is over 128 bytes");
  if (m.mode() == "shadow") {
    r.what = trial_info::mode::shadow;
  } else if (m.mode() == "canary") {
    r.what = trial_info::mode::canary;
  } else {
    return bad_request("unknown trial mode " + shown(m.mode()) + ": expected shadow or canary");
  }
  if (!r.stop) {
    if (m.version() == 0)
      return bad_request("a " + m.mode() + " of " + r.id.str() + " needs a version");
    if (m.share_ppm() == 0 || m.share_ppm() > 1000000) {
      return bad_request("the share must be above 0% and at most 100%");
    }
  }
  r.version = m.version();
  r.share_ppm = m.share_ppm();
  return api_call(std::move(r));
}

result<api_call> decode_label(const pb::LabelRequest& m) {
  auto id = request_model(m.model());
  if (!id) return id.error();
  label_request r;
  r.id = std::move(*id);
  SHOAL_RETURN_IF_ERROR(check_label(m.label()));
  r.label = m.label();
  if (m.user().size() > max_user_bytes) return bad_request("user is over 128 bytes");
  r.user = m.user();
  switch (m.action()) {
    case pb::LabelRequest::PROMOTE:
      if (m.version() == 0) {
        return bad_request("promote of " + r.id.str() + " needs the version to promote (got 0)");
      }
      r.action = label_action::promote;
      r.version = m.version();
      r.force = m.force();
      break;
    case pb::LabelRequest::ROLLBACK:
      r.action = label_action::rollback;
      if (m.version() != 0) r.version = m.version();
      break;
    default:
      return bad_request("unknown label action " + std::to_string(int(m.action())) +
                         ": expected PROMOTE or ROLLBACK");
  }
  return api_call(std::move(r));
}

// ---- responses ---------------------------------------------------------------------------------

pb::Error::Code to_pb(status_code c) {
  switch (c) {
    case status_code::ok:
      return pb::Error::INTERNAL;
    case status_code::invalid_argument:
      return pb::Error::INVALID_ARGUMENT;
    case status_code::not_found:
      return pb::Error::NOT_FOUND;
    case status_code::already_exists:
      return pb::Error::ALREADY_EXISTS;
    case status_code::failed_precondition:
      return pb::Error::FAILED_PRECONDITION;
    case status_code::too_large:
      return pb::Error::TOO_LARGE;
    case status_code::resource_exhausted:
      return pb::Error::RESOURCE_EXHAUSTED;
    case status_code::unavailable:
      return pb::Error::UNAVAILABLE;
    case status_code::corruption:
      return pb::Error::CORRUPTION;
    case status_code::io_error:
      return pb::Error::IO_ERROR;
    case status_code::internal:
      return pb::Error::INTERNAL;
    case status_code::unauthenticated:
      return pb::Error::UNAUTHENTICATED;
    case status_code::permission_denied:
      return pb::Error::PERMISSION_DENIED;
  }
  return pb::Error::INTERNAL;
}

status_code from_pb(int c) {
  switch (c) {
    case pb::Error::INVALID_ARGUMENT:
      return status_code::invalid_argument;
    case pb::Error::NOT_FOUND:
      return status_code::not_found;
    case pb::Error::ALREADY_EXISTS:
      return status_code::already_exists;
    case pb::Error::FAILED_PRECONDITION:
      return status_code::failed_precondition;
    case pb::Error::TOO_LARGE:
      return status_code::too_large;
    case pb::Error::RESOURCE_EXHAUSTED:
      return status_code::resource_exhausted;
    case pb::Error::UNAVAILABLE:
      return status_code::unavailable;
    case pb::Error::CORRUPTION:
      return status_code::corruption;
    case pb::Error::IO_ERROR:
      return status_code::io_error;
    case pb::Error::UNAUTHENTICATED:
      return status_code::unauthenticated;
    case pb::Error::PERMISSION_DENIED:
      return status_code::permission_denied;
    default:
      return status_code::internal;  // UNKNOWN, INTERNAL, codes newer than this client
  }
}

std::string serialize(const gp::MessageLite& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

void fill_model_info(const model_entry& e, pb::ModelInfo* out) {
  out->set_model(e.id.str());
  for (const auto& s : e.snapshots) {
    auto* si = out->add_snapshots();
    snapshot_to_proto(s, si);
    si->set_sha256(wire_text(s.sha256));
    si->set_format(wire_text(s.format));
    si->set_note(wire_text(s.note));
    for (const auto& name : e.labels_at(s.version)) si->add_labels(wire_text(name));
    for (const auto& h : s.holders) si->add_holders(wire_text(h));
  }
  for (const auto& [name, state] : e.labels) {
    auto* li = out->add_labels();
    li->set_name(wire_text(name));
    li->set_version(state.current());
    for (const auto& mv : state.history) {
      auto* m = li->add_history();
      m->set_from(mv.from);
      m->set_to(mv.to);
      m->set_action(label_action_name(mv.action));
      m->set_time_ms(mv.time_ms);
      m->set_reason(wire_text(mv.reason));
      m->set_by(wire_text(mv.by));
      m->set_forced(mv.forced);
      m->set_automatic(mv.automatic);
    }
    for (uint32_t v : state.stack) li->add_stack(v);
  }
  for (const auto& set : e.validation_sets) set_to_proto(set, out->add_validation_sets());
  if (const auto* set = e.current_set()) out->set_validation_current(set->number);
  for (const auto& r : e.reports) report_to_proto(r, out->add_reports());
  for (const auto& [k, v] : e.policy) (*out->mutable_policy())[k] = v;
  if (e.trial.what != trial_info::mode::none) trial_to_proto(e.trial, out->mutable_trial());
}

const char* result_name(pb::Response::ResultCase c) {
  switch (c) {
    case pb::Response::kInfer:
      return "infer";
    case pb::Response::kPush:
      return "push";
    case pb::Response::kList:
      return "list";
    case pb::Response::kModels:
      return "models";
    case pb::Response::kLabel:
      return "label";
    case pb::Response::kStatus:
      return "status";
    case pb::Response::kClusterStatus:
      return "cluster status";
    case pb::Response::kValidationSet:
      return "validation set";
    case pb::Response::kValidate:
      return "validate";
    case pb::Response::kPolicy:
      return "policy";
    case pb::Response::kTrial:
      return "trial";
    case pb::Response::kForget:
      return "cluster forget";
    case pb::Response::RESULT_NOT_SET:
      break;
  }
  return "empty";
}

// Returns the Response in `bytes` when it carries the `expected` kind of result, else the node's
// error or what is wrong with the reply.
result<pb::Response> parse_response(std::string_view bytes, pb::Response::ResultCase expected) {
  pb::Response r;
  if (!r.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return status::internal("the node sent a reply that is not a shoal.pb.Response (" +
                            std::to_string(bytes.size()) + " bytes): is that port a shoal node?");
  }
  if (r.has_error()) {
    std::string msg = r.error().message();
    status_code code = from_pb(r.error().code());
    if (msg.empty())
      msg = std::string("the node reported ") + to_string(code) + " without a message";
    return status(code, std::move(msg));
  }
  if (r.result_case() != expected) {
    return status::internal(std::string("the node answered with a ") +
                            result_name(r.result_case()) + " reply where " + result_name(expected) +
                            " was asked for");
  }
  return r;
}

result<model_id> reply_model(const std::string& text) {
  auto id = parse_model_id(text);
  if (!id) return status::internal("the node sent an invalid model id: " + id.error().message());
  return id;
}

result<model_entry> to_model_entry(const pb::ModelInfo& m) {
  auto id = reply_model(m.model());
  if (!id) return id.error();
  model_entry e;
  e.id = std::move(*id);
  for (const auto& si : m.snapshots()) {
    snapshot_info s = snapshot_from_proto(si);
    s.holders.insert(si.holders().begin(), si.holders().end());
    e.snapshots.push_back(std::move(s));
  }
  for (const auto& li : m.labels()) {
    label_state st;
    st.stack.assign(li.stack().begin(), li.stack().end());
    // A node that predates the stack field sends only where the label points.
    if (st.stack.empty() && li.version() != 0) st.stack.push_back(li.version());
    for (const auto& mv : li.history()) {
      label_move move;
      move.from = mv.from();
      move.to = mv.to();
      move.action = mv.action() == "rollback" ? label_action::rollback : label_action::promote;
      move.time_ms = mv.time_ms();
      move.reason = mv.reason();
      move.by = mv.by();
      move.forced = mv.forced();
      move.automatic = mv.automatic();
      st.history.push_back(move);
    }
    e.labels[li.name()] = std::move(st);
  }
  for (const auto& set : m.validation_sets()) e.validation_sets.push_back(set_from_proto(set));
  // The stack is the node's; a client needs only the set in use.
  if (m.validation_current() != 0) e.validation_stack.push_back(m.validation_current());
  for (const auto& r : m.reports()) e.reports.push_back(report_from_proto(r));
  e.policy.insert(m.policy().begin(), m.policy().end());
  if (m.has_trial()) {
    auto t = trial_from_proto(m.trial());
    if (!t) return status::internal("the node sent a bad trial: " + t.error().message());
    e.trial = std::move(*t);
  }
  return e;
}

}  // namespace

const char* label_action_name(label_action a) {
  return a == label_action::rollback ? "rollback" : "promote";
}

// ---- node side ---------------------------------------------------------------------------------

request_decode_result decode_request(std::string_view bytes) {
  uint64_t request_id = 0;
  wire_finding found = check_wire(bytes, pb::Request::descriptor(), "", &request_id);
  const std::string malformed = "malformed request: " + std::to_string(bytes.size()) +
                                " bytes that are not a shoal.pb.Request protobuf message";
  if (found.what == wire_check::malformed) {
    return request_error{request_id, bad_request(malformed)};
  }
  if (found.what == wire_check::bad_utf8) {
    return request_error{
        request_id,
        bad_request("request field " + found.field + " is not valid UTF-8 (bad byte at offset " +
                    std::to_string(found.offset) + "): send text as UTF-8")};
  }
  pb::Request m;
  if (bytes.size() > size_t(INT32_MAX) || !m.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return request_error{request_id, bad_request(malformed)};
  }
  request_id = m.request_id();
  result<api_call> call = status::internal("unreachable");
  switch (m.call_case()) {
    case pb::Request::kInfer:
      call = decode_infer(*m.mutable_infer());
      break;
    case pb::Request::kPush:
      call = decode_push(*m.mutable_push());
      break;
    case pb::Request::kList: {
      auto id = request_model(m.list().model());
      call = id ? result<api_call>(api_call(list_request{std::move(*id)})) : id.error();
      break;
    }
    case pb::Request::kModels:
      call = api_call(models_request{});
      break;
    case pb::Request::kLabel:
      call = decode_label(m.label());
      break;
    case pb::Request::kStatus:
      call = api_call(status_request{});
      break;
    case pb::Request::kClusterStatus:
      call = api_call(cluster_status_request{});
      break;
    case pb::Request::kValidationSet:
      call = decode_validation_set(*m.mutable_validation_set());
      break;
    case pb::Request::kValidate:
      call = decode_validate(m.validate());
      break;
    case pb::Request::kPolicy:
      call = decode_policy(m.policy());
      break;
    case pb::Request::kTrial:
      call = decode_trial(m.trial());
      break;
    case pb::Request::kForget: {
      forget_request r;
      r.node = m.forget().node();
      r.user = m.forget().user();
      if (r.node.empty() || r.node.size() > 256) {
        call = bad_request("cluster forget needs the node's name or id (at most 256 bytes)");
      } else if (r.user.size() > max_user_bytes) {
        call = bad_request("user is over 128 bytes");
      } else {
        call = api_call(std::move(r));
      }
      break;
    }
    case pb::Request::CALL_NOT_SET:
      call = bad_request("request " + std::to_string(request_id) +
                         " carries no call: expected one of infer, push, list, models, label, "
                         "status, cluster_status");
      break;
  }
  if (!call) return request_error{request_id, call.error()};
  return decoded_request{request_id, std::move(*call), m.api_key()};
}

std::string encode_response(uint64_t request_id, const infer_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_infer();
  out->set_model(r.id.str());
  out->set_version(r.version);
  for (const auto& row : r.rows) {
    auto* pr = out->add_rows();
    for (const auto& p : row) {
      auto* pp = pr->add_predictions();
      pp->set_label(wire_text(p.label));
      pp->set_score(p.score);
    }
  }
  for (const auto& t : r.outputs) tensor_to_proto(t, out->add_outputs());
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const push_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_push();
  out->set_version(r.version);
  out->set_sha256(wire_text(r.sha256));
  for (const auto& l : r.labels) out->add_labels(wire_text(l));
  out->set_copies(r.copies);
  out->set_replication_factor(r.replication_factor);
  out->set_replication_note(wire_text(r.replication_note));
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const model_entry& r) {
  pb::Response m;
  m.set_request_id(request_id);
  fill_model_info(r, m.mutable_list());
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const std::vector<model_entry>& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_models();
  for (const auto& e : r) fill_model_info(e, out->add_models());
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const label_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_label();
  out->set_label(wire_text(r.label));
  out->set_from(r.from);
  out->set_to(r.to);
  if (r.report) report_to_proto(*r.report, out->mutable_report());
  out->set_gate_note(wire_text(r.gate_note));
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const validation_set_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_validation_set();
  out->set_number(r.number);
  out->set_examples(r.examples);
  out->set_sha256(r.sha256);
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const validation_report_info& r) {
  pb::Response m;
  m.set_request_id(request_id);
  report_to_proto(r, m.mutable_validate());
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const policy_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  for (const auto& [k, v] : r.settings) (*m.mutable_policy()->mutable_settings())[k] = v;
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const trial_info& r) {
  pb::Response m;
  m.set_request_id(request_id);
  trial_to_proto(r, m.mutable_trial());
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const forget_result& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_forget();
  out->set_id(r.id);
  out->set_name(r.name);
  out->set_voters(r.voters);
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const node_status& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_status();
  out->set_name(wire_text(r.name));
  out->set_version(wire_text(r.version));
  out->set_models(r.models);
  out->set_snapshots(r.snapshots);
  return serialize(m);
}

std::string encode_response(uint64_t request_id, const cluster_status& r) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* out = m.mutable_cluster_status();
  for (const auto& v : r.members) {
    auto* mv = out->add_members();
    member_to_proto(v.entry, *mv->mutable_member());
    mv->set_is_self(v.is_self);
    mv->set_phi(v.phi);
    mv->set_since_heard_ms(v.since_heard_ms.value_or(-1));
    mv->set_snapshots_held(v.snapshots_held);
    mv->set_rtt_ms(v.rtt_ms.value_or(-1));
  }
  return serialize(m);
}

std::string encode_error(uint64_t request_id, const status& error) {
  pb::Response m;
  m.set_request_id(request_id);
  auto* e = m.mutable_error();
  e->set_code(to_pb(error.code()));
  e->set_message(error.is_ok() ? std::string("no error given") : wire_text(error.message()));
  return serialize(m);
}

// ---- client side -------------------------------------------------------------------------------

std::string encode_request(uint64_t request_id, const api_call& call, const std::string& api_key) {
  pb::Request m;
  m.set_request_id(request_id);
  if (!api_key.empty()) m.set_api_key(api_key);
  std::visit(
      [&m](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, infer_request>) {
          auto* out = m.mutable_infer();
          out->set_model(c.id.str());
          for (const auto& t : c.texts) out->add_texts(t);
          for (const auto& t : c.inputs) tensor_to_proto(t, out->add_inputs());
          for (const auto& name : c.outputs) out->add_outputs(name);
          out->set_top_k(c.top_k);
          out->set_version(c.version.value_or(0));
          out->set_label(c.label);
        } else if constexpr (std::is_same_v<T, push_request>) {
          auto* out = m.mutable_push();
          out->set_model(c.id.str());
          out->set_data(c.bytes);
          out->set_label(c.label);
          out->set_note(c.note);
          out->set_user(c.user);
          for (const auto& [k, v] : c.tags) (*out->mutable_tags())[k] = v;
          out->set_metrics_json(c.metrics_json);
          out->set_source(c.source);
          out->set_force(c.force);
        } else if constexpr (std::is_same_v<T, list_request>) {
          m.mutable_list()->set_model(c.id.str());
        } else if constexpr (std::is_same_v<T, models_request>) {
          m.mutable_models();
        } else if constexpr (std::is_same_v<T, label_request>) {
          auto* out = m.mutable_label();
          out->set_model(c.id.str());
          out->set_label(c.label);
          out->set_action(c.action == label_action::rollback ? pb::LabelRequest::ROLLBACK
                                                             : pb::LabelRequest::PROMOTE);
          out->set_version(c.version.value_or(0));
          out->set_force(c.force);
          out->set_user(c.user);
        } else if constexpr (std::is_same_v<T, status_request>) {
          m.mutable_status();
        } else if constexpr (std::is_same_v<T, validation_set_request>) {
          auto* out = m.mutable_validation_set();
          out->set_model(c.id.str());
          out->set_data(c.bytes);
          out->set_user(c.user);
          out->set_to(c.to.value_or(0));
        } else if constexpr (std::is_same_v<T, validate_request>) {
          auto* out = m.mutable_validate();
          out->set_model(c.id.str());
          out->set_version(c.version);
          out->set_label(c.label);
        } else if constexpr (std::is_same_v<T, policy_request>) {
          auto* out = m.mutable_policy();
          out->set_model(c.id.model.empty() ? c.id.tenant : c.id.str());
          for (const auto& [k, v] : c.settings) (*out->mutable_settings())[k] = v;
          out->set_user(c.user);
        } else if constexpr (std::is_same_v<T, trial_request>) {
          auto* out = m.mutable_trial();
          out->set_model(c.id.str());
          out->set_version(c.version);
          out->set_mode(c.what == trial_info::mode::canary ? "canary" : "shadow");
          out->set_share_ppm(c.share_ppm);
          out->set_stop(c.stop);
          out->set_user(c.user);
        } else if constexpr (std::is_same_v<T, forget_request>) {
          auto* out = m.mutable_forget();
          out->set_node(c.node);
          out->set_user(c.user);
        } else {
          static_assert(std::is_same_v<T, cluster_status_request>);
          m.mutable_cluster_status();
        }
      },
      call);
  return serialize(m);
}

uint64_t response_request_id(std::string_view bytes) {
  uint64_t id = 0;
  check_wire(bytes, pb::Response::descriptor(), "", &id);
  return id;
}

result<infer_result> decode_infer_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kInfer);
  if (!r) return r.error();
  const auto& m = r->infer();
  auto id = reply_model(m.model());
  if (!id) return id.error();
  infer_result out;
  out.id = std::move(*id);
  out.version = m.version();
  for (const auto& row : m.rows()) {
    std::vector<prediction> preds;
    preds.reserve(size_t(row.predictions_size()));
    for (const auto& p : row.predictions()) preds.push_back(prediction{p.label(), p.score()});
    out.rows.push_back(std::move(preds));
  }
  for (const auto& t : m.outputs()) {
    auto decoded = tensor_from_proto(t);
    if (!decoded) return decoded.error();
    out.outputs.push_back(std::move(*decoded));
  }
  return out;
}

result<push_result> decode_push_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kPush);
  if (!r) return r.error();
  push_result out;
  out.version = r->push().version();
  out.sha256 = r->push().sha256();
  out.labels.assign(r->push().labels().begin(), r->push().labels().end());
  out.copies = r->push().copies();
  out.replication_factor = r->push().replication_factor();
  out.replication_note = r->push().replication_note();
  return out;
}

result<model_entry> decode_list_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kList);
  if (!r) return r.error();
  return to_model_entry(r->list());
}

result<std::vector<model_entry>> decode_models_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kModels);
  if (!r) return r.error();
  std::vector<model_entry> out;
  for (const auto& mi : r->models().models()) {
    auto e = to_model_entry(mi);
    if (!e) return e.error();
    out.push_back(std::move(*e));
  }
  return out;
}

result<label_result> decode_label_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kLabel);
  if (!r) return r.error();
  label_result out{r->label().label(), r->label().from(), r->label().to(), std::nullopt,
                   r->label().gate_note()};
  if (r->label().has_report()) out.report = report_from_proto(r->label().report());
  return out;
}

result<validation_set_result> decode_validation_set_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kValidationSet);
  if (!r) return r.error();
  return validation_set_result{r->validation_set().number(), r->validation_set().examples(),
                               r->validation_set().sha256()};
}

result<validation_report_info> decode_validate_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kValidate);
  if (!r) return r.error();
  return report_from_proto(r->validate());
}

result<policy_result> decode_policy_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kPolicy);
  if (!r) return r.error();
  policy_result out;
  out.settings.insert(r->policy().settings().begin(), r->policy().settings().end());
  return out;
}

result<trial_info> decode_trial_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kTrial);
  if (!r) return r.error();
  auto t = trial_from_proto(r->trial());
  if (!t) return status::internal("the node sent a bad trial: " + t.error().message());
  return *t;
}

result<forget_result> decode_forget_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kForget);
  if (!r) return r.error();
  return forget_result{r->forget().id(), r->forget().name(), r->forget().voters()};
}

result<node_status> decode_status_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kStatus);
  if (!r) return r.error();
  node_status out;
  out.name = r->status().name();
  out.version = r->status().version();
  out.models = r->status().models();
  out.snapshots = r->status().snapshots();
  return out;
}

result<cluster_status> decode_cluster_status_response(std::string_view bytes) {
  auto r = parse_response(bytes, pb::Response::kClusterStatus);
  if (!r) return r.error();
  cluster_status out;
  for (const auto& mv : r->cluster_status().members()) {
    auto entry = member_from_proto(mv.member());
    if (!entry) return status::internal("the node sent a bad member: " + entry.error().message());
    member_view v;
    v.entry = std::move(*entry);
    v.is_self = mv.is_self();
    v.phi = mv.phi();
    if (mv.since_heard_ms() >= 0) v.since_heard_ms = mv.since_heard_ms();
    v.snapshots_held = mv.snapshots_held();
    if (mv.rtt_ms() >= 0) v.rtt_ms = mv.rtt_ms();
    out.members.push_back(std::move(v));
  }
  return out;
}

}  // namespace shoal
