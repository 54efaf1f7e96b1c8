// v2_infer: V2 infer bodies (JSON, and the binary data extension) and their answers
// (v2_codec.hpp). Mostly the checks that give each bad body its own message.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "shoal/base/json_string.hpp"
#include "shoal/base/utf8.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/v2_codec.hpp"
#include "wire/v2_detail.hpp"

namespace shoal {

using namespace v2_detail;

namespace {

// ---- outputs -----------------------------------------------------------------------------------

// Reads a count of top classes (parameters.top_k, an output's classification): an integer from 1
// to v2_max_top_k. `what` names the field in the message.
result<uint32_t> parse_top_count(const json& j, const std::string& what) {
  const std::string range = "an integer from 1 to " + std::to_string(v2_max_top_k);
  if (!j.is_number_integer()) return bad_body(what + " must be " + range + ", not " + json_type(j));
  if (!j.is_number_unsigned() || j.get<uint64_t>() < 1 || j.get<uint64_t>() > v2_max_top_k) {
    return bad_body(what + " must be " + range + ", not " + excerpt(dump(j)));
  }
  return static_cast<uint32_t>(j.get<uint64_t>());
}

// One entry of the request's "outputs".
struct output_ask {
  std::string name;
  bool binary = false;
  std::optional<uint32_t> classification;  // Triton's class_count
};

const char* const outputs_example =
    "e.g. \"outputs\":[{\"name\":\"labels\"},{\"name\":\"scores\"}]";

// Reads the request's "outputs" (absent: none named), each name once.
result<std::vector<output_ask>> parse_outputs(const json& doc) {
  std::vector<output_ask> out;
  auto it = doc.find("outputs");
  if (it == doc.end()) return out;
  const json& outputs = *it;
  if (!outputs.is_array()) {
    return bad_body("\"outputs\" must be an array of {\"name\":...} objects, " +
                    std::string(outputs_example) + ", not " + json_type(outputs));
  }
  if (outputs.size() > max_tensors) {
    return bad_body("\"outputs\" names " + std::to_string(outputs.size()) + " outputs: at most " +
                    std::to_string(max_tensors));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const json& o = outputs[i];
    const std::string where = "outputs[" + std::to_string(i) + "]";
    auto name_it = o.is_object() ? o.find("name") : o.end();
    if (!o.is_object() || name_it == o.end() || !name_it->is_string()) {
      return bad_body(where + " must be an object with a \"name\", " + outputs_example);
    }
    output_ask ask;
    ask.name = name_it->get<std::string>();
    for (const auto& seen : out) {
      if (seen.name == ask.name) {
        return bad_body("output '" + excerpt(ask.name) + "' is asked for twice");
      }
    }
    auto params_it = o.find("parameters");
    if (params_it != o.end()) {
      if (!params_it->is_object()) {
        return bad_body(where + ".parameters must be an object, not " + json_type(*params_it));
      }
      if (auto b = params_it->find("binary_data"); b != params_it->end()) {
        if (!b->is_boolean()) {
          return bad_body(where + ".parameters.binary_data must be true or false, not " +
                          json_type(*b));
        }
        ask.binary = b->get<bool>();
      }
      if (auto c = params_it->find("classification"); c != params_it->end()) {
        auto parsed = parse_top_count(*c, where + ".parameters.classification");
        if (!parsed) return parsed.error();
        ask.classification = *parsed;
      }
    }
    out.push_back(std::move(ask));
  }
  return out;
}

// ---- binary data -------------------------------------------------------------------------------

// The binary part of a body, taken by the inputs in order.
class binary_part {
 public:
  explicit binary_part(std::string_view bytes) : rest_(bytes) {}

  // Takes the next `n` bytes for `where`, or says how many there were.
  result<std::string_view> take(size_t n, const std::string& where) {
    if (n > rest_.size()) {
      return bad_body(where + ".parameters.binary_data_size is " + std::to_string(n) +
                      " but only " + std::to_string(rest_.size()) +
                      " bytes of binary data are left after the JSON");
    }
    auto out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }
  size_t left() const { return rest_.size(); }

 private:
  std::string_view rest_;
};

}  // namespace

result<std::vector<std::string>> v2_detail::split_bytes(std::string_view data, size_t count,
                                                        const std::string& where) {
  std::vector<std::string> out;
  out.reserve(std::min<size_t>(count, data.size() / 4 + 1));
  while (!data.empty()) {
    if (data.size() < 4) {
      return bad_body(where + ": binary BYTES data ends inside an element's 4-byte length");
    }
    uint32_t n = 0;
    for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(data[size_t(i)]);
    data.remove_prefix(4);
    if (n > data.size()) {
      return bad_body(where + ": binary BYTES element " + std::to_string(out.size()) + " says " +
                      std::to_string(n) + " bytes but " + std::to_string(data.size()) +
                      " are left");
    }
    if (out.size() == count) {
      return bad_body(where + ": binary BYTES data holds more than the " + std::to_string(count) +
                      " elements its shape says");
    }
    out.emplace_back(data.substr(0, n));
    data.remove_prefix(n);
  }
  if (out.size() != count) {
    return bad_body(where + ": binary BYTES data holds " + std::to_string(out.size()) +
                    " elements, its shape says " + std::to_string(count));
  }
  return out;
}

namespace {

// Reads an input's parameters.binary_data_size: nullopt when it has none.
result<std::optional<size_t>> binary_size_of(const json& input, const std::string& where) {
  auto params = input.find("parameters");
  if (params == input.end()) return std::optional<size_t>();
  if (!params->is_object()) {
    return bad_body(where + ".parameters must be an object, not " + json_type(*params));
  }
  auto size = params->find("binary_data_size");
  if (size == params->end()) return std::optional<size_t>();
  if (!size->is_number_unsigned()) {
    return bad_body(where + ".parameters.binary_data_size must be a byte count, not " +
                    excerpt(dump(*size)));
  }
  return std::optional<size_t>(size->get<uint64_t>());
}

// ---- a text request ----------------------------------------------------------------------------

// The texts of the one input named "text": JSON data or binary data.
status parse_text_input(json& input, size_t max_batch, binary_part& binary, infer_request& req) {
  auto type_it = input.find("datatype");
  if (type_it == input.end() || !type_it->is_string()) {
    return bad_body("inputs[0] needs \"datatype\":\"BYTES\"");
  }
  if (type_it->get_ref<const std::string&>() != "BYTES") {
    return bad_body("inputs[0].datatype is '" + excerpt(type_it->get_ref<const std::string&>()) +
                    "': texts are \"datatype\":\"BYTES\"");
  }
  auto binary_size = binary_size_of(input, "inputs[0]");
  if (!binary_size) return binary_size.error();

  auto shape_it = input.find("shape");
  auto data_it = input.find("data");
  if (*binary_size) {
    if (data_it != input.end()) {
      return bad_body("inputs[0] has both \"data\" and parameters.binary_data_size: give one");
    }
    if (shape_it == input.end() || !shape_it->is_array() || shape_it->empty() ||
        shape_it->size() > 2 || !(*shape_it)[0].is_number_unsigned() ||
        (shape_it->size() == 2 && (*shape_it)[1] != 1)) {
      return bad_body("inputs[0].shape must be [B] or [B,1] for B texts");
    }
    const size_t rows = (*shape_it)[0].get<uint64_t>();
    if (rows == 0) return bad_body("inputs[0] holds no texts: give at least one text");
    if (rows > max_batch) {
      return status::invalid_argument("a batch of " + std::to_string(rows) +
                                      " texts is over the limit of " + std::to_string(max_batch) +
                                      ": split it into several requests");
    }
    auto bytes = binary.take(**binary_size, "inputs[0]");
    if (!bytes) return bytes.error();
    auto texts = split_bytes(*bytes, rows, "inputs[0]");
    if (!texts) return texts.error();
    for (size_t i = 0; i < texts->size(); ++i) {
      if (auto bad = utf8::first_invalid_byte((*texts)[i]); bad != std::string_view::npos) {
        return status::invalid_argument("text " + std::to_string(i) + " is not valid UTF-8 (byte " +
                                        std::to_string(bad) + "): every text must be UTF-8");
      }
    }
    req.texts = std::move(*texts);
    return status::ok();
  }

  if (data_it == input.end()) return bad_body("inputs[0] has no \"data\" (the texts)");
  json& data = *data_it;
  if (!data.is_array())
    return bad_body("inputs[0].data must be an array of strings, not " + json_type(data));
  if (data.empty()) return bad_body("inputs[0].data is empty: give at least one text");
  if (data.size() > max_batch) {
    return status::invalid_argument("a batch of " + std::to_string(data.size()) +
                                    " texts is over the limit of " + std::to_string(max_batch) +
                                    ": split it into several requests");
  }
  // The protocol lets data be flat (row-major) or nested like the shape: for texts of shape [B,1]
  // clients send ["a","b"] or [["a"],["b"]]. Nested data must be nested all the way.
  const bool nested = data[0].is_array();
  for (size_t i = 0; i < data.size(); ++i) {
    const json& item = data[i];
    if (!nested && !item.is_string()) {
      return bad_body("inputs[0].data[" + std::to_string(i) + "] is " + json_type(item) +
                      ": every item must be a string (one text)");
    }
    if (nested && !(item.is_array() && item.size() == 1 && item[0].is_string())) {
      const std::string what = !item.is_array() ? json_type(item)
                               : item.size() == 1
                                   ? "an array holding " + json_type(item[0])
                                   : "an array of " + std::to_string(item.size()) + " items";
      return bad_body("inputs[0].data[" + std::to_string(i) + "] is " + what +
                      ": nested data holds one text per row, e.g. [[\"a\"],[\"b\"]]");
    }
  }

  if (shape_it == input.end()) {
    return bad_body("inputs[0] has no \"shape\": give [" + std::to_string(data.size()) + "]");
  }
  const json& shape = *shape_it;
  const std::string rows = std::to_string(data.size());
  const std::string expect_shape =
      nested ? "[" + rows + ",1]" : "[" + rows + "] or [" + rows + ",1]";
  if (!shape.is_array() || shape.empty() ||
      !std::all_of(shape.begin(), shape.end(),
                   [](const json& d) { return d.is_number_unsigned(); })) {
    return bad_body("inputs[0].shape " + excerpt(dump(shape)) + " is not a list of sizes: give " +
                    expect_shape);
  }
  if (shape.size() > 2 || (shape.size() == 2 && shape[1].get<uint64_t>() != 1)) {
    return bad_body("inputs[0].shape " + excerpt(dump(shape)) +
                    " is not supported: texts are one-dimensional, give " + expect_shape);
  }
  if (nested && shape.size() != 2) {
    return bad_body("inputs[0].data[0] is an array, so data is nested two deep, but shape " +
                    excerpt(dump(shape)) + " has one dimension: give " + expect_shape +
                    " or flat data [\"a\",\"b\"]");
  }
  if (shape[0].get<uint64_t>() != data.size()) {
    return bad_body("inputs[0].shape " + excerpt(dump(shape)) + " does not match the " + rows +
                    " texts in data: give " + expect_shape);
  }

  // Texts need no UTF-8 check of their own: the whole JSON was checked, and the JSON parser
  // refuses a \u escape that would make ill-formed UTF-8 (a lone surrogate).
  req.texts.reserve(data.size());
  for (json& item : data) {
    req.texts.push_back(std::move((nested ? item[0] : item).get_ref<std::string&>()));
  }
  return status::ok();
}

// Sets a text request's outputs and top_k from "outputs" and "parameters".
status apply_text_options(const json& doc, const std::vector<output_ask>& asks,
                          const http_route& route, v2_infer& out) {
  infer_request& req = out.request;
  std::optional<uint32_t> class_count;  // Triton's classification parameter of an output
  if (!asks.empty()) {
    v2_outputs named{false, false};
    for (const auto& ask : asks) {
      bool* slot = ask.name == "labels"   ? &named.labels
                   : ask.name == "scores" ? &named.scores
                                          : nullptr;
      if (slot == nullptr) {
        return bad_body("unknown output '" + excerpt(ask.name) +
                        "': this model's outputs are labels (BYTES) and scores (FP32)");
      }
      *slot = true;
      if (ask.binary) out.form.binary_outputs.push_back(ask.name);
      if (!ask.classification) continue;
      if (class_count && *class_count != *ask.classification) {
        return bad_body("the outputs ask for classification " + std::to_string(*class_count) +
                        " and " + std::to_string(*ask.classification) + ": give the same number");
      }
      class_count = ask.classification;
    }
    out.form.outputs = named;
  }
  if (auto params_it = doc.find("parameters"); params_it != doc.end()) {
    const json& params = *params_it;
    if (auto k = params.find("top_k"); k != params.end()) {
      auto count = parse_top_count(*k, "parameters.top_k");
      if (!count) return count.error();
      req.top_k = *count;
      if (class_count && *class_count != req.top_k) {
        return bad_body("parameters.top_k is " + std::to_string(req.top_k) +
                        " but an output asks for classification " + std::to_string(*class_count) +
                        ": give one of them, or the same number");
      }
    }
    if (auto l = params.find("label"); l != params.end()) {
      if (!l->is_string()) {
        return bad_body("parameters.label must be a string such as \"staging\", not " +
                        json_type(*l));
      }
      const std::string& label = l->get_ref<const std::string&>();
      if (!is_valid_label(label)) {
        return bad_body("invalid label '" + excerpt(label) +
                        "': a label matches [a-z0-9][a-z0-9_.-]{0,63}, e.g. \"staging\"");
      }
      if (route.version) {
        return status::invalid_argument("the path names version " + std::to_string(*route.version) +
                                        " and the body names label '" + label +
                                        "': give one of them (drop /versions/N to serve a label)");
      }
      req.label = label;
    }
  }
  if (class_count) req.top_k = *class_count;
  out.form.top_k = req.top_k;
  return status::ok();
}

// ---- a tensor request --------------------------------------------------------------------------

status bad_tensor(std::string what) {
  return status::invalid_argument(
      std::move(what) +
      R"(; send each input the model takes, e.g. {"inputs":[{"name":"x","datatype":"FP32",)"
      R"("shape":[1,2],"data":[[0.5,1.0]]}]} (GET /v2/models/TENANT/MODEL lists them))");
}

template <typename T>
void append_raw(std::string& data, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  data.append(b, sizeof(T));
}

// Appends one JSON element to `t` as its datatype, or says why it cannot be one.
status append_element(const json& item, tensor& t, const std::string& where) {
  auto wrong = [&](const char* want) {
    return bad_tensor(where + " is " + json_type(item) + ": " + v2_datatype_name(t.type) +
                      " elements are " + want);
  };
  switch (t.type) {
    case data_type::fp32: {
      if (!item.is_number()) return wrong("numbers");
      const double v = item.get<double>();
      if (std::isfinite(v) && std::fabs(v) > double(std::numeric_limits<float>::max())) {
        return bad_tensor(where + " (" + excerpt(dump(item)) + ") is out of FP32's range");
      }
      append_raw(t.data, float(v));
      return status::ok();
    }
    case data_type::fp64:
      if (!item.is_number()) return wrong("numbers");
      append_raw(t.data, item.get<double>());
      return status::ok();
    case data_type::int32: {
      if (!item.is_number_integer()) return wrong("integers");
      const bool fits = item.is_number_unsigned()
                            ? item.get<uint64_t>() <= uint64_t(std::numeric_limits<int32_t>::max())
                            : item.get<int64_t>() >= std::numeric_limits<int32_t>::min() &&
                                  item.get<int64_t>() <= std::numeric_limits<int32_t>::max();
      if (!fits)
        return bad_tensor(where + " (" + excerpt(dump(item)) + ") is out of INT32's range");
      append_raw(t.data, int32_t(item.get<int64_t>()));
      return status::ok();
    }
    case data_type::int64:
      if (!item.is_number_integer()) return wrong("integers");
      if (item.is_number_unsigned() &&
          item.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
        return bad_tensor(where + " (" + excerpt(dump(item)) + ") is out of INT64's range");
      }
      append_raw(t.data, item.get<int64_t>());
      return status::ok();
    case data_type::boolean:
      if (!item.is_boolean()) return wrong("true or false");
      t.data.push_back(item.get<bool>() ? 1 : 0);
      return status::ok();
    case data_type::bytes:
      if (!item.is_string()) return wrong("strings");
      t.strings.push_back(item.get<std::string>());
      return status::ok();
  }
  return wrong("?");
}

// Appends `data`'s elements to `t` in row-major order: flat, or nested like the shape (any
// nesting is flattened, as V2 servers do; the count is checked against the shape after).
status flatten(const json& data, tensor& t, const std::string& where, size_t depth, size_t& count) {
  if (!data.is_array()) {
    if (++count > max_tensor_elements) {
      return status::too_large("the request's tensors hold more than " +
                               std::to_string(max_tensor_elements) + " elements");
    }
    return append_element(data, t, where);
  }
  if (depth > max_tensor_rank)
    return bad_tensor(where + " is nested deeper than " + std::to_string(max_tensor_rank) + " levels");
  for (size_t i = 0; i < data.size(); ++i) {
    SHOAL_RETURN_IF_ERROR(
        flatten(data[i], t, where + "[" + std::to_string(i) + "]", depth + 1, count));
  }
  return status::ok();
}

result<tensor> parse_tensor_input(const json& input, size_t i, binary_part& binary, size_t& count) {
  const std::string where = "inputs[" + std::to_string(i) + "]";
  tensor t;
  t.name = input["name"].get<std::string>();
  auto type_it = input.find("datatype");
  if (type_it == input.end() || !type_it->is_string()) {
    return bad_tensor(where + " ('" + excerpt(t.name) +
                      "') needs a \"datatype\": FP32, FP64, "
                      "INT32, INT64, BOOL or BYTES");
  }
  auto type = parse_v2_datatype(type_it->get_ref<const std::string&>());
  if (!type) {
    return bad_tensor(where + ".datatype is '" + excerpt(type_it->get_ref<const std::string&>()) +
                      "': Shoal's models take FP32, FP64, INT32, INT64, BOOL and BYTES");
  }
  t.type = *type;
  auto shape_it = input.find("shape");
  if (shape_it == input.end() || !shape_it->is_array() || shape_it->size() > max_tensor_rank ||
      !std::all_of(shape_it->begin(), shape_it->end(),
                   [](const json& d) { return d.is_number_unsigned(); })) {
    return bad_tensor(where + " ('" + excerpt(t.name) + "') needs a \"shape\": a list of at most " +
                      std::to_string(max_tensor_rank) + " sizes, e.g. [2,300]");
  }
  for (const json& d : *shape_it) {
    if (d.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max())) {
      return bad_tensor(where + ".shape " + excerpt(dump(*shape_it)) + " has a size over 2^31");
    }
    t.shape.push_back(int64_t(d.get<uint64_t>()));
  }
  auto elements = element_count(t.shape, max_tensor_elements);
  if (!elements) {
    return status::too_large(where + ".shape " + shape_text(t.shape) + " holds more than " +
                             std::to_string(max_tensor_elements) + " elements");
  }
  auto binary_size = binary_size_of(input, where);
  if (!binary_size) return binary_size.error();
  auto data_it = input.find("data");
  if (*binary_size) {
    if (data_it != input.end()) {
      return bad_tensor(where + " has both \"data\" and parameters.binary_data_size: give one");
    }
    auto bytes = binary.take(**binary_size, where);
    if (!bytes) return bytes.error();
    if (t.type == data_type::bytes) {
      auto strings = split_bytes(*bytes, *elements, where);
      if (!strings) return strings.error();
      t.strings = std::move(*strings);
    } else {
      const size_t want = *elements * element_size(t.type);
      if (bytes->size() != want) {
        return bad_tensor(where + " ('" + t.name + "'): shape " + shape_text(t.shape) + " of " +
                          v2_datatype_name(t.type) + " needs " + std::to_string(want) +
                          " bytes of binary data, parameters.binary_data_size says " +
                          std::to_string(bytes->size()));
      }
      t.data.assign(bytes->data(), bytes->size());
      if (t.type == data_type::boolean) {
        for (char& c : t.data) c = c != 0 ? 1 : 0;
      }
    }
    count += *elements;
    return t;
  }
  if (data_it == input.end()) {
    return bad_tensor(where + " ('" + excerpt(t.name) +
                      "') has no \"data\" and no "
                      "parameters.binary_data_size");
  }
  if (!data_it->is_array()) {
    return bad_tensor(where + ".data must be an array, not " + json_type(*data_it));
  }
  const size_t before = count;
  if (t.type != data_type::bytes) t.data.reserve(*elements * element_size(t.type));
  SHOAL_RETURN_IF_ERROR(flatten(*data_it, t, where + ".data", 1, count));
  if (count - before != *elements) {
    return bad_tensor(where + " ('" + excerpt(t.name) + "'): shape " + shape_text(t.shape) +
                      " holds " + std::to_string(*elements) + " elements but data has " +
                      std::to_string(count - before));
  }
  return t;
}

status parse_tensor_request(json& inputs, const std::vector<output_ask>& asks, const json& doc,
                            const http_route& route, binary_part& binary, v2_infer& out) {
  if (inputs.size() > max_tensors) {
    return bad_tensor("\"inputs\" has " + std::to_string(inputs.size()) + " inputs: at most " +
                      std::to_string(max_tensors));
  }
  size_t count = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (inputs[j]["name"] == inputs[i]["name"]) {
        return bad_tensor("input '" + excerpt(inputs[i]["name"].get<std::string>()) +
                          "' is given twice");
      }
    }
    auto t = parse_tensor_input(inputs[i], i, binary, count);
    if (!t) return t.error();
    out.request.inputs.push_back(std::move(*t));
  }
  for (const auto& ask : asks) {
    if (ask.classification) {
      return bad_tensor("output '" + excerpt(ask.name) +
                        "' asks for classification: that applies to text models' labels; a "
                        "tensor model's outputs are returned as they are");
    }
    out.request.outputs.push_back(ask.name);
    if (ask.binary) out.form.binary_outputs.push_back(ask.name);
  }
  if (auto params_it = doc.find("parameters"); params_it != doc.end()) {
    if (auto l = params_it->find("label"); l != params_it->end()) {
      if (!l->is_string() || !is_valid_label(l->get<std::string>())) {
        return bad_tensor("parameters.label must be a label such as \"staging\"");
      }
      if (route.version) {
        return status::invalid_argument("the path names version " + std::to_string(*route.version) +
                                        " and the body names a label: give one of them");
      }
      out.request.label = l->get<std::string>();
    }
  }
  return status::ok();
}

// Reads the Inference-Header-Content-Length header: the JSON's length within the body.
result<size_t> header_length_of(std::string_view text, size_t body_size) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return status::invalid_argument(
        "the Inference-Header-Content-Length header must be the "
        "byte length of the JSON part of the body, got '" +
        excerpt(text) + "'");
  }
  if (n > body_size) {
    return status::invalid_argument("the Inference-Header-Content-Length header says " +
                                    std::to_string(n) + " bytes of JSON, but the body has only " +
                                    std::to_string(body_size));
  }
  return size_t(n);
}

}  // namespace

result<v2_infer> parse_infer_body(const http_route& route, std::string_view body, size_t max_batch,
                                  std::string_view header_length) {
  std::string_view json_text = body;
  std::string_view binary_bytes;
  if (!header_length.empty()) {
    auto n = header_length_of(header_length, body.size());
    if (!n) return n.error();
    json_text = body.substr(0, *n);
    binary_bytes = body.substr(*n);
  }
  if (json_text.empty()) return bad_body("the request body is empty");
  if (auto bad = utf8::first_invalid_byte(json_text); bad != std::string_view::npos) {
    return status::invalid_argument(
        "the request body is not valid UTF-8 (byte " + std::to_string(bad) +
        "): JSON and every text must be UTF-8" +
        (header_length.empty() ? "; binary tensor data needs an Inference-Header-Content-Length "
                                 "header giving the JSON's length"
                               : ""));
  }
  if (json_nesting(json_text, max_json_nesting) > max_json_nesting) {
    return bad_body("the request body nests arrays and objects deeper than " +
                    std::to_string(max_json_nesting) + " levels");
  }
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    // parse_error, or out_of_range for a number beyond a double ("1e999")
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
    return bad_body("the request body is not valid JSON (" + excerpt(what) + ")");
  }
  if (!doc.is_object())
    return bad_body("the request body must be a JSON object, not " + json_type(doc));

  v2_infer out;
  infer_request& req = out.request;
  req.id = route.id;
  req.version = route.version;

  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_string()) return bad_body("\"id\" must be a string, not " + json_type(*it));
    out.form.request_id = it->get<std::string>();
  }
  if (auto params_it = doc.find("parameters"); params_it != doc.end()) {
    if (!params_it->is_object()) {
      return bad_body("\"parameters\" must be an object such as {\"top_k\":3}, not " +
                      json_type(*params_it));
    }
    if (auto b = params_it->find("binary_data_output"); b != params_it->end()) {
      if (!b->is_boolean()) {
        return bad_body("parameters.binary_data_output must be true or false, not " +
                        json_type(*b));
      }
      out.form.binary_all = b->get<bool>();
    }
  }

  auto inputs_it = doc.find("inputs");
  if (inputs_it == doc.end()) return bad_body("the request has no \"inputs\"");
  json& inputs = *inputs_it;
  if (!inputs.is_array()) return bad_body("\"inputs\" must be an array, not " + json_type(inputs));
  if (inputs.empty()) return bad_body("\"inputs\" is empty: give exactly one input named text");
  bool all_text = true;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& input = inputs[i];
    const std::string where = "inputs[" + std::to_string(i) + "]";
    if (!input.is_object()) return bad_body(where + " must be an object, not " + json_type(input));
    auto name_it = input.find("name");
    if (name_it == input.end() || !name_it->is_string() ||
        name_it->get_ref<const std::string&>().empty()) {
      return bad_body(where +
                      " needs a \"name\": a text model's input is \"name\":\"text\", a "
                      "tensor model's are in its metadata");
    }
    all_text = all_text && name_it->get_ref<const std::string&>() == "text";
  }
  auto asks = parse_outputs(doc);
  if (!asks) return asks.error();
  binary_part binary(binary_bytes);
  if (all_text) {
    if (inputs.size() > 1) {
      return bad_body("\"inputs\" has " + std::to_string(inputs.size()) +
                      " inputs: this model takes exactly one, named text");
    }
    SHOAL_RETURN_IF_ERROR(parse_text_input(inputs[0], max_batch, binary, req));
    SHOAL_RETURN_IF_ERROR(apply_text_options(doc, *asks, route, out));
  } else {
    SHOAL_RETURN_IF_ERROR(parse_tensor_request(inputs, *asks, doc, route, binary, out));
    if (req.batch_size() > max_batch) {
      return status::invalid_argument("a batch of " + std::to_string(req.batch_size()) +
                                      " rows is over the limit of " + std::to_string(max_batch) +
                                      ": split it into several requests");
    }
  }
  if (binary.left() > 0) {
    return bad_body(std::to_string(binary.left()) +
                    " bytes of binary data follow the JSON that no input's "
                    "parameters.binary_data_size takes");
  }
  return out;
}

// ---- answers -----------------------------------------------------------------------------------

std::string render_infer(const infer_result& r, uint32_t top_k, const std::string& request_id,
                         v2_outputs outputs) {
  size_t k = r.rows.empty() ? 0 : top_k;
  for (const auto& row : r.rows) k = std::min(k, row.size());
  const size_t b = r.rows.size();

  std::string shape = "[";
  append_uint(shape, b);
  shape += ',';
  append_uint(shape, k);
  shape += ']';

  std::string out;
  out.reserve(160 + b * k * 32);
  out += "{\"model_name\":";
  append_json_string(out, r.id.str());
  out += ",\"model_version\":\"";
  append_uint(out, r.version);
  out += '"';
  if (!request_id.empty()) {
    out += ",\"id\":";
    append_json_string(out, request_id);
  }
  out += ",\"outputs\":[";
  if (outputs.labels) {
    out += "{\"name\":\"labels\",\"datatype\":\"BYTES\",\"shape\":";
    out += shape;
    out += ",\"data\":[";
    for (size_t i = 0; i < b; ++i) {
      for (size_t j = 0; j < k; ++j) {
        if (i + j > 0) out += ',';
        append_json_string(out, r.rows[i][j].label);
      }
    }
    out += "]}";
  }
  if (outputs.scores) {
    if (outputs.labels) out += ',';
    out += "{\"name\":\"scores\",\"datatype\":\"FP32\",\"shape\":";
    out += shape;
    out += ",\"data\":[";
    for (size_t i = 0; i < b; ++i) {
      for (size_t j = 0; j < k; ++j) {
        if (i + j > 0) out += ',';
        append_float(out, r.rows[i][j].score);
      }
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

std::vector<tensor> v2_detail::text_tensors(const infer_result& r, uint32_t top_k,
                                            v2_outputs outputs) {
  size_t k = r.rows.empty() ? 0 : top_k;
  for (const auto& row : r.rows) k = std::min(k, row.size());
  const std::vector<int64_t> shape{int64_t(r.rows.size()), int64_t(k)};
  std::vector<tensor> out;
  if (outputs.labels) {
    tensor t{"labels", data_type::bytes, shape, {}, {}};
    for (const auto& row : r.rows) {
      for (size_t j = 0; j < k; ++j) t.strings.push_back(row[j].label);
    }
    out.push_back(std::move(t));
  }
  if (outputs.scores) {
    tensor t{"scores", data_type::fp32, shape, {}, {}};
    for (const auto& row : r.rows) {
      for (size_t j = 0; j < k; ++j) append_raw(t.data, row[j].score);
    }
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

template <typename T>
T read_raw(const std::string& data, size_t i) {
  T v;
  std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
  return v;
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_json_data(std::string& out, const tensor& t) {
  out += '[';
  const size_t n = t.type == data_type::bytes
                       ? t.strings.size()
                       : t.data.size() / std::max<size_t>(1, element_size(t.type));
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    switch (t.type) {
      case data_type::fp32:
        append_float(out, read_raw<float>(t.data, i));
        break;
      case data_type::fp64:
        append_double(out, read_raw<double>(t.data, i));
        break;
      case data_type::int32:
        append_int(out, read_raw<int32_t>(t.data, i));
        break;
      case data_type::int64:
        append_int(out, read_raw<int64_t>(t.data, i));
        break;
      case data_type::boolean:
        out += t.data[i] != 0 ? "true" : "false";
        break;
      case data_type::bytes:
        append_json_string(out, t.strings[i]);
        break;
    }
  }
  out += ']';
}

}  // namespace

void v2_detail::append_binary(std::string& out, const tensor& t) {
  if (t.type != data_type::bytes) {
    out += t.data;
    return;
  }
  for (const auto& s : t.strings) {
    const auto n = uint32_t(s.size());
    const char len[4] = {char(n & 0xff), char((n >> 8) & 0xff), char((n >> 16) & 0xff),
                         char((n >> 24) & 0xff)};
    out.append(len, 4);
    out += s;
  }
}

v2_answer render_answer(const infer_result& r, const v2_answer_form& form) {
  const bool text = r.outputs.empty();  // a tensor model answers at least one output
  const bool any_binary = form.binary_all || !form.binary_outputs.empty();
  if (text && !any_binary) {
    return {render_infer(r, form.top_k, form.request_id, form.outputs), std::nullopt};
  }
  std::vector<tensor> text_outputs;
  if (text) text_outputs = text_tensors(r, form.top_k, form.outputs);
  const std::vector<tensor>& outputs = text ? text_outputs : r.outputs;
  auto binary = [&](const std::string& name) {
    return form.binary_all || std::find(form.binary_outputs.begin(), form.binary_outputs.end(),
                                        name) != form.binary_outputs.end();
  };
  std::string out;
  std::string tail;
  out += "{\"model_name\":";
  append_json_string(out, r.id.str());
  out += ",\"model_version\":\"";
  append_uint(out, r.version);
  out += '"';
  if (!form.request_id.empty()) {
    out += ",\"id\":";
    append_json_string(out, form.request_id);
  }
  out += ",\"outputs\":[";
  for (size_t i = 0; i < outputs.size(); ++i) {
    const tensor& t = outputs[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, t.name);
    out += ",\"datatype\":\"";
    out += v2_datatype_name(t.type);
    out += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d > 0) out += ',';
      append_int(out, t.shape[d]);
    }
    out += ']';
    if (binary(t.name)) {
      const size_t before = tail.size();
      append_binary(tail, t);
      out += ",\"parameters\":{\"binary_data_size\":";
      append_uint(out, tail.size() - before);
      out += "}}";
    } else {
      out += ",\"data\":";
      append_json_data(out, t);
      out += '}';
    }
  }
  out += "]}";
  if (!any_binary) return {std::move(out), std::nullopt};
  const size_t json_length = out.size();
  out += tail;
  return {std::move(out), json_length};
}

}  // namespace shoal
