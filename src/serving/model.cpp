#include "shoal/serving/model.hpp"

#include <nlohmann/json.hpp>

#include "shoal/serving/api.hpp"
#include "shoal/serving/fasttext_model.hpp"
#include "shoal/serving/onnx_model.hpp"

namespace shoal {

std::vector<std::vector<prediction>> model::predict_batch(const std::vector<std::string>& texts,
                                                          size_t k) const {
  std::vector<std::vector<prediction>> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(predict(t, k));
  return out;
}

std::vector<tensor_spec> model::inputs() const {
  return {tensor_spec{"text", data_type::bytes, {-1}}};
}

std::vector<tensor_spec> model::outputs() const {
  return {tensor_spec{"labels", data_type::bytes, {-1, -1}},
          tensor_spec{"scores", data_type::fp32, {-1, -1}}};
}

result<std::vector<tensor>> model::run(const std::vector<tensor>&,
                                       const std::vector<std::string>&) const {
  return status::invalid_argument("this " + format() +
                                  " model answers texts: send one BYTES input of texts");
}

namespace {

std::string specs_text(const std::vector<tensor_spec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    if (!out.empty()) out += ", ";
    out += s.name + " (" + v2_datatype_name(s.type) + " " + shape_text(s.shape) + ")";
  }
  return out;
}

}  // namespace

status check_fits(const model& m, const infer_request& req, uint32_t version) {
  const bool tensors = !req.inputs.empty();
  if (tensors != m.takes_texts()) return status::ok();
  const std::string what = req.id.str() + " version " + std::to_string(version) + " is " +
                           (m.format() == "onnx" ? "an ONNX" : "a " + m.format()) + " model";
  if (tensors) {
    return status::invalid_argument(what +
                                    " that answers texts: send one BYTES input named "
                                    "text (its outputs are labels and scores)");
  }
  return status::invalid_argument(what + " that takes tensors: " + specs_text(m.inputs()) +
                                  "; send each as an input by name");
}

result<infer_result> tensor_answer(const model_id& id, uint32_t version,
                                   result<std::vector<tensor>> outputs) {
  if (!outputs) {
    return status(outputs.error().code(), id.str() + " version " + std::to_string(version) +
                                              ": " + outputs.error().message());
  }
  infer_result r;
  r.id = id;
  r.version = version;
  r.outputs = std::move(*outputs);
  return r;
}

result<infer_result> answer_tensors(const model& m, const infer_request& req, uint32_t version) {
  return tensor_answer(req.id, version, m.run(req.inputs, req.outputs));
}

std::string signature_json(const model& m) {
  auto list = [](const std::vector<tensor_spec>& specs) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : specs) {
      out.push_back({{"name", s.name}, {"datatype", v2_datatype_name(s.type)}, {"shape", s.shape}});
    }
    return out;
  };
  nlohmann::json j = {{"inputs", list(m.inputs())}, {"outputs", list(m.outputs())}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

infer_request warm_up_request(const model_id& id, uint32_t version,
                              const std::string& signature_json) {
  infer_request r;
  r.id = id;
  r.version = version;
  const auto sig = nlohmann::json::parse(signature_json, nullptr, false);
  const nlohmann::json* inputs =
      sig.is_object() && sig.contains("inputs") && sig["inputs"].is_array() ? &sig["inputs"]
                                                                            : nullptr;
  const bool text = inputs == nullptr || inputs->empty() ||
                    (inputs->size() == 1 && (*inputs)[0].value("name", "") == "text");
  if (text) {
    r.texts = {"warm-up"};
    return r;
  }
  for (const auto& in : *inputs) {
    tensor t;
    t.name = in.value("name", "");
    t.type = parse_v2_datatype(in.value("datatype", "FP32")).value_or(data_type::fp32);
    for (const auto& d : in.value("shape", nlohmann::json::array())) {
      t.shape.push_back(d.is_number_integer() && d.get<int64_t>() > 0 ? d.get<int64_t>() : 1);
    }
    const size_t n = element_count(t.shape, size_t(1) << 24).value_or(0);
    if (t.type == data_type::bytes) {
      t.strings.assign(n, std::string());
    } else {
      t.data.assign(n * element_size(t.type), '\0');
    }
    r.inputs.push_back(std::move(t));
  }
  return r;
}

result<std::shared_ptr<const model>> load_model(std::string_view bytes, load_use use) {
  if (bytes.empty()) return status::invalid_argument("model file is empty");
  if (looks_like_fasttext(bytes)) return load_fasttext(bytes, use == load_use::serve);
  if (looks_like_onnx(bytes)) return load_onnx(bytes);
  return status::invalid_argument(
      "unknown model format: expected a fastText supervised model (.bin or .ftz) or an ONNX "
      "model (.onnx)");
}

}  // namespace shoal
