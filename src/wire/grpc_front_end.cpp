#include "shoal/wire/grpc_front_end.hpp"

#include <grpcpp/grpcpp.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "shoal/base/log.hpp"
#include "shoal/base/utf8.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/v2_codec.hpp"
#include "v2_grpc.grpc.pb.h"
#include "wire/v2_detail.hpp"

namespace shoal {
namespace {

namespace pb = ::inference;
using json = nlohmann::json;


// gRPC threads end their own rounds (front_door::end_round after each request) and read a serving
// view per request: gRPC's thread pool may leave a thread idle for hours.
const front_end grpc_thread{"gRPC thread", nullptr, false, false};

grpc::Status to_grpc(const status& s) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case status_code::ok:
      return grpc::Status::OK;
    case status_code::invalid_argument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case status_code::not_found:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case status_code::already_exists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case status_code::failed_precondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case status_code::too_large:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case status_code::resource_exhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case status_code::unavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case status_code::unauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case status_code::permission_denied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case status_code::corruption:
    case status_code::io_error:
    case status_code::internal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, s.message());
}

status bad(std::string what) { return status::invalid_argument(std::move(what)); }

result<model_id> model_of(const std::string& name) {
  auto id = parse_model_id(name);
  if (!id) return bad("model name '" + v2_detail::excerpt(name) + "': " + id.error().message());
  return id;
}

result<std::optional<uint32_t>> version_of(const std::string& text) {
  if (text.empty()) return std::optional<uint32_t>();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0 ||
      v > std::numeric_limits<uint32_t>::max()) {
    return bad("model_version '" + v2_detail::excerpt(text) +
               "' is not a version: give a positive integer such as \"3\", or nothing for "
               "production");
  }
  return std::optional<uint32_t>(uint32_t(v));
}

template <typename T, typename Field>
void pack(std::string& out, const Field& values) {
  out.resize(size_t(values.size()) * sizeof(T));
  for (int i = 0; i < values.size(); ++i) {
    const T v = T(values.Get(i));
    std::memcpy(out.data() + size_t(i) * sizeof(T), &v, sizeof(T));
  }
}

// One input's tensor: its typed contents, or its raw bytes (`raw`, when the request has them).
result<tensor> input_of(const pb::ModelInferRequest::InferInputTensor& in, const std::string* raw,
                        size_t& total) {
  tensor t;
  t.name = in.name();
  const std::string where = "input '" + v2_detail::excerpt(t.name) + "'";
  if (t.name.empty()) return bad("an input has no name");
  auto type = parse_v2_datatype(in.datatype());
  if (!type) {
    return bad(where + " has datatype '" + v2_detail::excerpt(in.datatype()) +
               "': Shoal's models take FP32, FP64, INT32, INT64, BOOL and BYTES");
  }
  t.type = *type;
  if (size_t(in.shape_size()) > max_tensor_rank) {
    return bad(where + " has " + std::to_string(in.shape_size()) + " dimensions: at most " +
               std::to_string(max_tensor_rank));
  }
  for (int64_t d : in.shape()) {
    if (d < 0 || d > std::numeric_limits<int32_t>::max()) {
      return bad(where + " has shape " + shape_text({in.shape().begin(), in.shape().end()}) +
                 ": every size is from 0 to 2^31");
    }
    t.shape.push_back(d);
  }
  auto n = element_count(t.shape, max_tensor_elements);
  if (!n || total + *n > max_tensor_elements) {
    return status::too_large(where + ": the request's tensors hold more than " +
                             std::to_string(max_tensor_elements) + " elements");
  }
  total += *n;
  if (raw != nullptr) {
    if (in.has_contents()) {
      return bad(where + " has contents while the request has raw_input_contents: use one");
    }
    if (t.type == data_type::bytes) {
      auto strings = v2_detail::split_bytes(*raw, *n, where);
      if (!strings) return bad(strings.error().message());
      t.strings = std::move(*strings);
    } else {
      t.data = *raw;
      if (t.type == data_type::boolean) {
        for (char& c : t.data) c = c != 0 ? 1 : 0;
      }
    }
  } else {
    const auto& c = in.contents();
    switch (t.type) {
      case data_type::fp32:
        pack<float>(t.data, c.fp32_contents());
        break;
      case data_type::fp64:
        pack<double>(t.data, c.fp64_contents());
        break;
      case data_type::int32:
        pack<int32_t>(t.data, c.int_contents());
        break;
      case data_type::int64:
        pack<int64_t>(t.data, c.int64_contents());
        break;
      case data_type::boolean:
        pack<uint8_t>(t.data, c.bool_contents());
        break;
      case data_type::bytes:
        t.strings.assign(c.bytes_contents().begin(), c.bytes_contents().end());
        break;
    }
  }
  if (status size = t.check_size(); !size) return bad(size.message());
  return t;
}

// What a ModelInferRequest asks: the request for the front door and how to answer it. The rules
// are HTTP's (parse_infer_body): one BYTES input named "text" is a text request.
result<v2_infer> request_of(const pb::ModelInferRequest& m, size_t max_batch) {
  v2_infer out;
  infer_request& req = out.request;
  auto id = model_of(m.model_name());
  if (!id) return id.error();
  req.id = std::move(*id);
  auto version = version_of(m.model_version());
  if (!version) return version.error();
  req.version = *version;
  out.form.request_id = m.id();
  if (m.inputs_size() == 0) return bad("the request has no inputs");
  if (size_t(m.inputs_size()) > max_tensors) {
    return bad("the request has " + std::to_string(m.inputs_size()) + " inputs: at most " +
               std::to_string(max_tensors));
  }
  if (m.raw_input_contents_size() > 0 && m.raw_input_contents_size() != m.inputs_size()) {
    return bad("raw_input_contents has " + std::to_string(m.raw_input_contents_size()) +
               " entries for " + std::to_string(m.inputs_size()) + " inputs: give one per input");
  }
  std::vector<tensor> inputs;
  size_t total = 0;
  for (int i = 0; i < m.inputs_size(); ++i) {
    const std::string* raw = m.raw_input_contents_size() > 0 ? &m.raw_input_contents(i) : nullptr;
    auto t = input_of(m.inputs(i), raw, total);
    if (!t) return t.error();
    for (const auto& seen : inputs) {
      if (seen.name == t->name) return bad("input '" + t->name + "' is given twice");
    }
    inputs.push_back(std::move(*t));
  }
  const bool text = inputs.size() == 1 && inputs[0].name == "text";
  std::optional<uint32_t> class_count;
  std::vector<std::string> names;
  for (const auto& o : m.outputs()) {
    if (std::find(names.begin(), names.end(), o.name()) != names.end()) {
      return bad("output '" + v2_detail::excerpt(o.name()) + "' is asked for twice");
    }
    names.push_back(o.name());
    if (auto c = o.parameters().find("classification"); c != o.parameters().end()) {
      if (!text) return bad("classification applies to text models' labels");
      const int64_t k = c->second.int64_param();
      if (k < 1 || k > int64_t(v2_max_top_k)) {
        return bad("classification must be from 1 to " + std::to_string(v2_max_top_k));
      }
      if (class_count && *class_count != uint32_t(k)) {
        return bad("the outputs ask for two different classification counts: give one");
      }
      class_count = uint32_t(k);
    }
  }
  const auto& params = m.parameters();
  if (auto l = params.find("label"); l != params.end()) {
    const std::string& label = l->second.string_param();
    if (!is_valid_label(label)) {
      return bad("invalid label '" + v2_detail::excerpt(label) +
                 "': a label matches [a-z0-9][a-z0-9_.-]{0,63}, e.g. \"staging\"");
    }
    if (req.version) {
      return bad("model_version and parameters.label are both given: give one of them");
    }
    req.label = label;
  }
  if (!text) {
    req.inputs = std::move(inputs);
    req.outputs = std::move(names);
    if (req.batch_size() > max_batch) {
      return bad("a batch of " + std::to_string(req.batch_size()) + " rows is over the limit of " +
                 std::to_string(max_batch) + ": split it into several requests");
    }
    return out;
  }
  tensor& texts = inputs[0];
  if (texts.type != data_type::bytes || texts.shape.empty() || texts.shape.size() > 2 ||
      (texts.shape.size() == 2 && texts.shape[1] != 1)) {
    return bad("input 'text' must be BYTES of shape [B] or [B,1] (one text per row), got " +
               std::string(v2_datatype_name(texts.type)) + " " + shape_text(texts.shape));
  }
  if (texts.strings.empty()) return bad("input 'text' holds no texts: give at least one");
  if (texts.strings.size() > max_batch) {
    return bad("a batch of " + std::to_string(texts.strings.size()) +
               " texts is over the limit of " + std::to_string(max_batch) +
               ": split it into several requests");
  }
  for (size_t i = 0; i < texts.strings.size(); ++i) {
    if (auto at = utf8::first_invalid_byte(texts.strings[i]); at != std::string_view::npos) {
      return bad("text " + std::to_string(i) + " is not valid UTF-8 (byte " + std::to_string(at) +
                 "): every text must be UTF-8");
    }
  }
  req.texts = std::move(texts.strings);
  if (!names.empty()) {
    v2_outputs named{false, false};
    for (const auto& n : names) {
      if (n == "labels") {
        named.labels = true;
      } else if (n == "scores") {
        named.scores = true;
      } else {
        return bad("unknown output '" + v2_detail::excerpt(n) +
                   "': this model's outputs are labels (BYTES) and scores (FP32)");
      }
    }
    out.form.outputs = named;
  }
  if (auto k = params.find("top_k"); k != params.end()) {
    const int64_t v = k->second.int64_param();
    if (v < 1 || v > int64_t(v2_max_top_k)) {
      return bad("parameters.top_k must be an int64_param from 1 to " +
                 std::to_string(v2_max_top_k));
    }
    if (class_count && *class_count != uint32_t(v)) {
      return bad("parameters.top_k and an output's classification differ: give one");
    }
    req.top_k = uint32_t(v);
  }
  if (class_count) req.top_k = *class_count;
  out.form.top_k = req.top_k;
  return out;
}

void answer_of(const infer_result& r, const v2_answer_form& form, pb::ModelInferResponse* out) {
  out->set_model_name(r.id.str());
  out->set_model_version(std::to_string(r.version));
  out->set_id(form.request_id);
  std::vector<tensor> text;
  if (r.outputs.empty()) text = v2_detail::text_tensors(r, form.top_k, form.outputs);
  for (const tensor& t : r.outputs.empty() ? text : r.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(v2_datatype_name(t.type));
    for (int64_t d : t.shape) o->add_shape(d);
    v2_detail::append_binary(*out->add_raw_output_contents(), t);
  }
}

// The caller's key from the "authorization" metadata (gRPC lower-cases metadata names).
result<principal> caller(const grpc::CallbackServerContext& ctx, const front_door& door) {
  const auto& meta = ctx.client_metadata();
  auto it = meta.find("authorization");
  std::optional<std::string_view> key;
  if (it != meta.end()) {
    const std::string_view value(it->second.data(), it->second.size());
    key = bearer_key(value);
    if (!key) {
      return status::unauthenticated("the authorization metadata must be 'Bearer KEY'");
    }
  }
  return door.authenticate(key, "'authorization: Bearer KEY' metadata");
}

class v2_service final : public pb::GRPCInferenceService::CallbackService {
 public:
  v2_service(std::shared_ptr<front_door> door, size_t max_batch)
      : door_(std::move(door)), max_batch_(max_batch) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const pb::ServerLiveRequest*,
                                       pb::ServerLiveResponse* out) override {
    out->set_live(true);
    return finish(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const pb::ServerReadyRequest*,
                                        pb::ServerReadyResponse* out) override {
    out->set_ready(!door_->draining());
    return finish(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const pb::ServerMetadataRequest*,
                                           pb::ServerMetadataResponse* out) override {
    const json meta = json::parse(render_server_meta());
    out->set_name(meta["name"].get<std::string>());
    out->set_version(meta["version"].get<std::string>());
    for (const auto& e : meta["extensions"]) out->add_extensions(e.get<std::string>());
    return finish(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const pb::ModelReadyRequest* in,
                                       pb::ModelReadyResponse* out) override {
    return with_model(
        ctx, in->name(), in->version(),
        [this, out](const model_entry& m, std::optional<uint32_t> version) {
          out->set_ready(answer_model_ready(m, version, door_->draining()).status == 200);
        });
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const pb::ModelMetadataRequest* in,
                                          pb::ModelMetadataResponse* out) override {
    return with_model(ctx, in->name(), in->version(),
                      [out](const model_entry& m, std::optional<uint32_t> version) {
                        // HTTP's metadata, so both protocols always say the same.
                        const json meta = json::parse(render_model_meta(m, version));
                        out->set_name(meta["name"].get<std::string>());
                        for (const auto& v : meta["versions"])
                          out->add_versions(v.get<std::string>());
                        out->set_platform(meta["platform"].get<std::string>());
                        auto fill = [](const json& list, auto add) {
                          for (const auto& t : list) {
                            auto* spec = add();
                            spec->set_name(t["name"].get<std::string>());
                            spec->set_datatype(t["datatype"].get<std::string>());
                            for (const auto& d : t["shape"]) spec->add_shape(d.get<int64_t>());
                          }
                        };
                        fill(meta["inputs"], [out] { return out->add_inputs(); });
                        fill(meta["outputs"], [out] { return out->add_outputs(); });
                      });
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const pb::ModelInferRequest* in,
                                       pb::ModelInferResponse* out) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto pass = door_->admit(grpc_thread, 0, [reactor] {
      return [reactor](infer_outcome o) { reactor->Finish(to_grpc(o.error)); };
    });
    if (!pass) return reactor;
    auto who = caller(*ctx, *door_);
    if (!who) {
      reactor->Finish(to_grpc(who.error()));
      return reactor;
    }
    auto parsed = request_of(*in, max_batch_);
    if (!parsed) {
      reactor->Finish(to_grpc(parsed.error()));
      return reactor;
    }
    door_->infer(std::move(*pass), *who, std::move(parsed->request), grpc_thread,
                 [reactor, out, form = std::move(parsed->form)](infer_outcome o) {
                   if (o.what != infer_outcome::kind::answered) {
                     reactor->Finish(to_grpc(o.error));
                     return;
                   }
                   answer_of(o.answer, form, out);
                   reactor->Finish(grpc::Status::OK);
                 });
    door_->end_round();
    return reactor;
  }

 private:
  static grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, grpc::Status s) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(std::move(s));
    return reactor;
  }

  // Looks the model up as the caller may see it, checks the version, then fills the answer.
  template <typename Fill>
  grpc::ServerUnaryReactor* with_model(grpc::CallbackServerContext* ctx, const std::string& name,
                                       const std::string& version_text, Fill fill) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto who = caller(*ctx, *door_);
    if (!who) {
      reactor->Finish(to_grpc(who.error()));
      return reactor;
    }
    auto id = model_of(name);
    if (!id) {
      reactor->Finish(to_grpc(id.error()));
      return reactor;
    }
    auto version = version_of(version_text);
    if (!version) {
      reactor->Finish(to_grpc(version.error()));
      return reactor;
    }
    door_->call(*who, list_request{*id},
                [reactor, version = *version, fill = std::move(fill)](api_reply reply) {
                  if (auto* err = std::get_if<status>(&reply)) {
                    reactor->Finish(to_grpc(*err));
                    return;
                  }
                  const auto& entry = std::get<model_entry>(reply);
                  if (version) {
                    if (status missing = entry.check_version(*version); !missing.is_ok()) {
                      reactor->Finish(to_grpc(missing));
                      return;
                    }
                  }
                  fill(entry, version);
                  reactor->Finish(grpc::Status::OK);
                });
    return reactor;
  }

  std::shared_ptr<front_door> door_;
  size_t max_batch_;
};

}  // namespace

struct grpc_front_end::impl {
  std::unique_ptr<v2_service> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

result<std::unique_ptr<grpc_front_end>> grpc_front_end::start(grpc_front_end_options options,
                                                              std::shared_ptr<front_door> door) {
  auto i = std::make_unique<impl>();
  i->service = std::make_unique<v2_service>(std::move(door), options.max_batch);
  grpc::ServerBuilder builder;
  const std::string address = options.host + ":" + std::to_string(options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &i->port);
  builder.RegisterService(i->service.get());
  builder.SetMaxReceiveMessageSize(int(std::min<size_t>(options.max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(int(std::min<size_t>(options.max_message_bytes * 4, INT32_MAX)));
  i->server = builder.BuildAndStart();
  if (!i->server || i->port == 0) {
    return status::unavailable("cannot listen for gRPC on " + address +
                               " (is another node running there?)");
  }
  return std::unique_ptr<grpc_front_end>(new grpc_front_end(std::move(i)));
}

grpc_front_end::grpc_front_end(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

grpc_front_end::~grpc_front_end() { stop(); }

uint16_t grpc_front_end::port() const { return uint16_t(impl_->port); }

void grpc_front_end::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  impl_->server->Wait();
}

}  // namespace shoal
