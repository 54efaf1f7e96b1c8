// v2_codec: the KServe V2 routes, infer bodies and answers (v2_codec.hpp). Over 500 lines: one
// codec, mostly the checks that give each bad body its own message; tensors of other datatypes
// (the ONNX issue) are the point to split it into routes, requests and answers.
#include "shoal/wire/v2_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "shoal/base/json_string.hpp"
#include "shoal/base/utf8.hpp"

namespace shoal {
namespace {

using json = nlohmann::json;

// ---- JSON output -------------------------------------------------------------------------------


void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// Appends the shortest decimal that reads back as the same float; JSON has no NaN or infinity, so
// those (which a probability never is) become null.
void append_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- errors ------------------------------------------------------------------------------------

// Keeps messages readable when the offending text is huge or binary (render_error escapes it).
std::string excerpt(std::string_view text) {
  constexpr size_t max = 60;
  std::string out;
  for (char c : text.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (text.size() > max) out += "...";
  return out;
}

const char* const example_body =
    R"(send {"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["some text"]}]})";

status bad_body(std::string what) {
  return status::invalid_argument(std::move(what) + "; " + example_body);
}

std::string json_type(const json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "an array";
  return "an object";
}

// ---- routes ------------------------------------------------------------------------------------

result<uint32_t> parse_version(std::string_view text) {
  auto fail = [&] {
    return status::invalid_argument("invalid version '" + excerpt(text) +
                                    "': a version is a positive integer such as 3");
  };
  if (text.empty() || text.size() > 10) return fail();
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail();
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > std::numeric_limits<uint32_t>::max()) return fail();
  return static_cast<uint32_t>(v);
}

route_result not_found(std::string_view path) {
  return status::not_found(
      "no such path " + excerpt(path) +
      ": try /v2, /v2/health/live, /v2/health/ready, /v2/models/TENANT/MODEL[/versions/N]"
      "[/ready|/infer]");
}

// HEAD is GET without the body (RFC 9110 9.3.2): every GET route takes it, and the server writes
// the GET answer's headers only.
route_result with_method(std::string_view method, std::string_view path, http_route route) {
  const char* allow = allowed_method(route.what);
  if (method == allow) return route;
  const bool get_route = std::string_view(allow) == "GET";
  if (get_route && method == "HEAD") return route;
  return route_result::method_not_allowed(
      "method " + excerpt(method) + " is not allowed on " + excerpt(path) + ": use " + allow,
      get_route ? "GET, HEAD" : allow);
}

}  // namespace

result<std::string> percent_decode(std::string_view segment) {
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out += segment[i];
      continue;
    }
    int hi = i + 1 < segment.size() ? hex_value(segment[i + 1]) : -1;
    int lo = i + 2 < segment.size() ? hex_value(segment[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return status::invalid_argument("invalid percent-escape in path segment '" +
                                      excerpt(segment) + "': '%' must be followed by two hex "
                                      "digits (write %25 for a literal '%')");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

const char* allowed_method(http_route::kind k) {
  return k == http_route::kind::infer ? "POST" : "GET";
}

route_result route_result::method_not_allowed(std::string message, std::string allow) {
  route_result r(status::invalid_argument(std::move(message)));
  r.allow_ = std::move(allow);
  return r;
}

int route_result::http_status() const {
  if (is_ok()) return 200;
  if (!allow_.empty()) return 405;
  return shoal::http_status(error().code());
}

route_result parse_route(std::string_view method, std::string_view target) {
  // Absolute-form ("http://host/path") routes by its path.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      auto slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path[0] != '/') return not_found(path);
  std::string_view rest = path.substr(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // one trailing slash is fine

  // Split on literal slashes first, then decode each segment, so %2F never makes a new segment.
  // The longest valid path has 7 segments; anything longer is 404 without decoding it all.
  constexpr size_t max_segments = 8;
  std::string segs[max_segments];
  size_t n = 0;
  while (true) {
    if (n == max_segments) return not_found(path);
    auto slash = rest.find('/');
    auto raw = rest.substr(0, slash);
    auto decoded = percent_decode(raw);
    if (!decoded) return decoded.error();
    segs[n++] = std::move(decoded).value();
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  for (size_t i = 0; i < n; ++i) {
    if (segs[i].empty()) return not_found(path);
  }

  using kind = http_route::kind;
  if (n == 1 && segs[0] == "metrics") return with_method(method, path, {kind::metrics, {}, {}});
  if (segs[0] != "v2") return not_found(path);
  if (n == 1) return with_method(method, path, {kind::server_meta, {}, {}});
  if (segs[1] == "health" && n == 3) {
    if (segs[2] == "live") return with_method(method, path, {kind::live, {}, {}});
    if (segs[2] == "ready") return with_method(method, path, {kind::ready, {}, {}});
    return not_found(path);
  }
  if (segs[1] != "models" || n < 3) return not_found(path);

  // The model id is one segment holding an (escaped) slash, or two segments.
  std::string id_text;
  size_t next = 0;
  if (segs[2].find('/') != std::string::npos) {
    id_text = segs[2];
    next = 3;
  } else if (n >= 4) {
    id_text = segs[2] + "/" + segs[3];
    next = 4;
  } else {
    return status::invalid_argument("invalid model id '" + excerpt(segs[2]) +
                                    "': expected TENANT/MODEL, e.g. /v2/models/acme/intents");
  }
  auto id = parse_model_id(id_text);
  if (!id) return id.error();

  http_route route{kind::model_meta, std::move(id).value(), std::nullopt};
  if (next < n && segs[next] == "versions") {
    if (next + 1 >= n) {
      return status::invalid_argument("missing version after /versions/: give a positive integer, "
                                      "e.g. /versions/3");
    }
    auto version = parse_version(segs[next + 1]);
    if (!version) return version.error();
    route.version = *version;
    next += 2;
  }
  if (next == n) return with_method(method, path, std::move(route));
  if (next + 1 == n) {
    if (segs[next] == "ready") {
      route.what = kind::model_ready;
      return with_method(method, path, std::move(route));
    }
    if (segs[next] == "infer") {
      route.what = kind::infer;
      return with_method(method, path, std::move(route));
    }
  }
  return not_found(path);
}

// ---- infer body --------------------------------------------------------------------------------

namespace {

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

// Reads the request's "outputs": which of labels and scores to answer (both when absent or empty),
// and Triton's classification parameter of an output (`class_count` in tritonclient), which
// asks for the top N classes: Shoal's outputs are already the top-k labels and their scores, so
// it sets top_k. binary_data is accepted; the answer is JSON either way (V2 clients read both).
status parse_outputs(const json& doc, v2_outputs& wanted, std::optional<uint32_t>& class_count) {
  auto it = doc.find("outputs");
  if (it == doc.end()) return status::ok();
  const json& outputs = *it;
  const char* const example = "e.g. \"outputs\":[{\"name\":\"labels\"},{\"name\":\"scores\"}]";
  if (!outputs.is_array()) {
    return bad_body("\"outputs\" must be an array of {\"name\":...} objects, " +
                    std::string(example) + ", not " + json_type(outputs));
  }
  if (outputs.empty()) return status::ok();
  v2_outputs named{false, false};
  for (size_t i = 0; i < outputs.size(); ++i) {
    const json& o = outputs[i];
    const std::string where = "outputs[" + std::to_string(i) + "]";
    auto name_it = o.is_object() ? o.find("name") : o.end();
    if (!o.is_object() || name_it == o.end() || !name_it->is_string()) {
      return bad_body(where + " must be an object with a \"name\", " + example);
    }
    const std::string& name = name_it->get_ref<const std::string&>();
    bool* slot = name == "labels" ? &named.labels : name == "scores" ? &named.scores : nullptr;
    if (slot == nullptr) {
      return bad_body("unknown output '" + excerpt(name) +
                      "': this model's outputs are labels (BYTES) and scores (FP32)");
    }
    if (*slot) return bad_body("output '" + name + "' is asked for twice");
    *slot = true;
    auto params_it = o.find("parameters");
    if (params_it == o.end()) continue;
    if (!params_it->is_object()) {
      return bad_body(where + ".parameters must be an object, not " + json_type(*params_it));
    }
    if (auto b = params_it->find("binary_data"); b != params_it->end() && !b->is_boolean()) {
      return bad_body(where + ".parameters.binary_data must be true or false, not " + json_type(*b));
    }
    auto c = params_it->find("classification");
    if (c == params_it->end()) continue;
    auto parsed = parse_top_count(*c, where + ".parameters.classification");
    if (!parsed) return parsed.error();
    const uint32_t count = *parsed;
    if (class_count && *class_count != count) {
      return bad_body("the outputs ask for classification " + std::to_string(*class_count) +
                      " and " + std::to_string(count) + ": give the same number");
    }
    class_count = count;
  }
  wanted = named;
  return status::ok();
}

}  // namespace


result<v2_infer> parse_infer_body(const http_route& route, std::string_view body, size_t max_batch) {
  if (body.empty()) return bad_body("the request body is empty");
  if (auto bad = utf8::first_invalid_byte(body); bad != std::string_view::npos) {
    return status::invalid_argument("the request body is not valid UTF-8 (byte " +
                                    std::to_string(bad) + "): JSON and every text must be UTF-8");
  }
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
    return bad_body("the request body is not valid JSON (" + excerpt(what) + ")");
  }
  if (!doc.is_object()) return bad_body("the request body must be a JSON object, not " + json_type(doc));

  v2_infer out;
  infer_request& req = out.request;
  req.id = route.id;
  req.version = route.version;

  if (auto it = doc.find("id"); it != doc.end()) {
    if (!it->is_string()) return bad_body("\"id\" must be a string, not " + json_type(*it));
    out.request_id = it->get<std::string>();
  }

  auto inputs_it = doc.find("inputs");
  if (inputs_it == doc.end()) return bad_body("the request has no \"inputs\"");
  json& inputs = *inputs_it;
  if (!inputs.is_array()) return bad_body("\"inputs\" must be an array, not " + json_type(inputs));
  if (inputs.empty()) return bad_body("\"inputs\" is empty: give exactly one input named text");
  if (inputs.size() > 1) {
    return bad_body("\"inputs\" has " + std::to_string(inputs.size()) +
                    " inputs: this model takes exactly one, named text");
  }
  json& input = inputs[0];
  if (!input.is_object()) return bad_body("inputs[0] must be an object, not " + json_type(input));

  auto name_it = input.find("name");
  if (name_it == input.end() || !name_it->is_string()) {
    return bad_body("inputs[0] needs \"name\":\"text\"");
  }
  if (name_it->get_ref<const std::string&>() != "text") {
    return bad_body("unknown input '" + excerpt(name_it->get_ref<const std::string&>()) +
                    "': this model's only input is named text");
  }
  auto type_it = input.find("datatype");
  if (type_it == input.end() || !type_it->is_string()) {
    return bad_body("inputs[0] needs \"datatype\":\"BYTES\"");
  }
  if (type_it->get_ref<const std::string&>() != "BYTES") {
    return bad_body("inputs[0].datatype is '" + excerpt(type_it->get_ref<const std::string&>()) +
                    "': texts are \"datatype\":\"BYTES\"");
  }

  auto data_it = input.find("data");
  if (data_it == input.end()) return bad_body("inputs[0] has no \"data\" (the texts)");
  json& data = *data_it;
  if (!data.is_array()) return bad_body("inputs[0].data must be an array of strings, not " + json_type(data));
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
      const std::string what =
          !item.is_array()     ? json_type(item)
          : item.size() == 1 ? "an array holding " + json_type(item[0])
                             : "an array of " + std::to_string(item.size()) + " items";
      return bad_body("inputs[0].data[" + std::to_string(i) + "] is " + what +
                      ": nested data holds one text per row, e.g. [[\"a\"],[\"b\"]]");
    }
  }

  auto shape_it = input.find("shape");
  if (shape_it == input.end()) {
    return bad_body("inputs[0] has no \"shape\": give [" + std::to_string(data.size()) + "]");
  }
  const json& shape = *shape_it;
  const std::string rows = std::to_string(data.size());
  const std::string expect_shape = nested ? "[" + rows + ",1]" : "[" + rows + "] or [" + rows + ",1]";
  if (!shape.is_array() || shape.empty() ||
      !std::all_of(shape.begin(), shape.end(), [](const json& d) { return d.is_number_unsigned(); })) {
    return bad_body("inputs[0].shape " + excerpt(dump(shape)) +
                    " is not a list of sizes: give " + expect_shape);
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

  // Texts need no UTF-8 check of their own: the whole body was checked above, and the JSON parser
  // refuses a \u escape that would make ill-formed UTF-8 (a lone surrogate).
  req.texts.reserve(data.size());
  for (json& item : data) {
    req.texts.push_back(std::move((nested ? item[0] : item).get_ref<std::string&>()));
  }

  std::optional<uint32_t> class_count;  // Triton's classification parameter of an output
  SHOAL_RETURN_IF_ERROR(parse_outputs(doc, out.outputs, class_count));

  if (auto params_it = doc.find("parameters"); params_it != doc.end()) {
    const json& params = *params_it;
    if (!params.is_object()) {
      return bad_body("\"parameters\" must be an object such as {\"top_k\":3}, not " + json_type(params));
    }
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
        return bad_body("parameters.label must be a string such as \"staging\", not " + json_type(*l));
      }
      const std::string& label = l->get_ref<const std::string&>();
      if (!is_valid_label(label)) {
        return bad_body("invalid label '" + excerpt(label) +
                        "': a label matches [a-z0-9][a-z0-9_.-]{0,63}, e.g. \"staging\"");
      }
      if (route.version) {
        return status::invalid_argument(
            "the path names version " + std::to_string(*route.version) + " and the body names label '" +
            label + "': give one of them (drop /versions/N to serve a label)");
      }
      req.label = label;
    }
  }
  if (class_count) req.top_k = *class_count;
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

std::string render_model_meta(const model_entry& m, std::optional<uint32_t> version) {
  json versions = json::array();
  json snapshots = json::array();
  std::string platform = "fasttext";
  for (const snapshot_info& s : m.snapshots) {
    if (version && s.version != *version) continue;
    versions.push_back(std::to_string(s.version));
    json labels = json::array();
    for (const auto& [name, state] : m.labels) {  // std::map: sorted by name
      if (state.current() == s.version) labels.push_back(name);
    }
    json tags = json::object();
    for (const auto& [k, v] : s.tags) tags[k] = v;
    json metrics =
        s.metrics_json.empty() ? json(nullptr) : json::parse(s.metrics_json, nullptr, false);
    if (metrics.is_discarded()) metrics = nullptr;
    snapshots.push_back({{"version", std::to_string(s.version)},
                         {"sha256", s.sha256},
                         {"created_ms", s.created_ms},
                         {"size_bytes", s.size_bytes},
                         {"format", s.format},
                         {"note", s.note},
                         {"user", s.user},
                         {"pushed_with", s.pushed_with},
                         {"tags", std::move(tags)},
                         {"metrics", std::move(metrics)},
                         {"source", s.source},
                         {"labels", std::move(labels)}});
    if (!s.format.empty()) platform = s.format;  // the newest shown version decides
  }
  json labels = json::object();
  for (const auto& [name, state] : m.labels) {
    if (state.current() != 0) labels[name] = std::to_string(state.current());
  }
  json meta = {
      {"name", m.id.str()},
      {"versions", std::move(versions)},
      {"platform", platform},
      {"inputs", json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}})},
      {"outputs", json::array({{{"name", "labels"}, {"datatype", "BYTES"}, {"shape", {-1, -1}}},
                               {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {-1, -1}}}})},
      {"labels", std::move(labels)},
      {"snapshots", std::move(snapshots)},
  };
  return dump(meta);
}

std::string render_server_meta() {
#ifndef SHOAL_VERSION
#define SHOAL_VERSION "0.0.0"
#endif
  std::string out = "{\"name\":\"shoal\",\"version\":";
  append_json_string(out, SHOAL_VERSION);
  out += ",\"extensions\":[]}";
  return out;
}

std::string render_live(bool live) { return live ? "{\"live\":true}" : "{\"live\":false}"; }

std::string render_ready(bool ready) { return ready ? "{\"ready\":true}" : "{\"ready\":false}"; }

std::string render_model_ready(const model_id& id, bool ready) {
  std::string out = "{\"name\":";
  append_json_string(out, id.str());
  out += ready ? ",\"ready\":true}" : ",\"ready\":false}";
  return out;
}

v2_reply answer_server_ready(bool draining) {
  return {draining ? 503 : 200, render_ready(!draining)};
}

v2_reply answer_model_ready(const model_entry& m, std::optional<uint32_t> version, bool draining) {
  const auto production = m.labels.find(default_label);
  const bool labelled = production != m.labels.end() && production->second.current() != 0;
  const bool ready = !draining && (version.has_value() || labelled);
  return {ready ? 200 : 503, render_model_ready(m.id, ready)};
}

std::string render_error(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 16);
  out += "{\"error\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

}  // namespace shoal
