// v2_codec: the KServe V2 routes, metadata and small answers (v2_codec.hpp); infer bodies and
// their answers are in v2_infer.cpp.
#include "shoal/wire/v2_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "shoal/base/json_string.hpp"
#include "shoal/base/utf8.hpp"
#include "wire/v2_detail.hpp"

namespace shoal {
namespace v2_detail {

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// Appends the shortest decimal that reads back as the same float; JSON has no NaN or infinity, so
// those (which a probability never is) become null.
template <typename T>
void append_real(std::string& out, T v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_float(std::string& out, float v) { append_real(out, v); }

void append_double(std::string& out, double v) { append_real(out, v); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

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

}  // namespace v2_detail

using namespace v2_detail;

namespace {

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
      "[/ready|/infer|/stats], /v2/repository/index, /v2/repository/models/TENANT/MODEL/load");
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
  using kind = http_route::kind;
  const bool post =
      k == kind::infer || k == kind::repo_index || k == kind::repo_load || k == kind::repo_unload;
  return post ? "POST" : "GET";
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
  // The repository extension: /v2/repository/index, /v2/repository/models/ID/load|unload.
  const bool repository = segs[1] == "repository";
  if (repository && n == 3 && segs[2] == "index") {
    return with_method(method, path, {kind::repo_index, {}, {}});
  }
  if (repository ? (n < 5 || segs[2] != "models") : (segs[1] != "models" || n < 3)) {
    return not_found(path);
  }
  const size_t first = repository ? 3 : 2;  // where the model id starts

  // The model id is one segment holding an (escaped) slash, or two segments.
  std::string id_text;
  size_t next = 0;
  if (segs[first].find('/') != std::string::npos) {
    id_text = segs[first];
    next = first + 1;
  } else if (n >= first + 2) {
    id_text = segs[first] + "/" + segs[first + 1];
    next = first + 2;
  } else {
    return status::invalid_argument("invalid model id '" + excerpt(segs[first]) +
                                    "': expected TENANT/MODEL, e.g. /v2/models/acme/intents");
  }
  auto id = parse_model_id(id_text);
  if (!id) return id.error();

  http_route route{kind::model_meta, std::move(id).value(), std::nullopt};
  if (repository) {
    if (next + 1 == n && segs[next] == "load") route.what = kind::repo_load;
    if (next + 1 == n && segs[next] == "unload") route.what = kind::repo_unload;
    if (route.what == kind::model_meta) return not_found(path);
    return with_method(method, path, std::move(route));
  }
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
    if (segs[next] == "stats") {
      route.what = kind::model_stats;
      return with_method(method, path, std::move(route));
    }
  }
  return not_found(path);
}

// ---- answers ---------------------------------------------------------------------------------

std::string render_model_meta(const model_entry& m, std::optional<uint32_t> version) {
  json versions = json::array();
  json snapshots = json::array();
  std::string platform = "fasttext";
  const std::string* signature = nullptr;
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
    if (!s.signature_json.empty()) signature = &s.signature_json;
  }
  // The newest shown version's inputs and outputs; a snapshot stored before signatures were kept
  // is a text model.
  json inputs = json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  json outputs = json::array({{{"name", "labels"}, {"datatype", "BYTES"}, {"shape", {-1, -1}}},
                              {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {-1, -1}}}});
  if (signature != nullptr) {
    json parsed = json::parse(*signature, nullptr, false);
    if (parsed.is_object() && parsed.contains("inputs") && parsed.contains("outputs")) {
      inputs = std::move(parsed["inputs"]);
      outputs = std::move(parsed["outputs"]);
    }
  }
  json labels = json::object();
  for (const auto& [name, state] : m.labels) {
    if (state.current() != 0) labels[name] = std::to_string(state.current());
  }
  json meta = {
      {"name", m.id.str()},
      {"versions", std::move(versions)},
      {"platform", platform},
      {"inputs", std::move(inputs)},
      {"outputs", std::move(outputs)},
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
  out += ",\"extensions\":[\"binary_tensor_data\",\"model_repository\",\"statistics\"]}";
  return out;
}

std::string render_model_stats(const model_id& id, std::optional<uint32_t> version,
                               const v2_model_counts& c) {
  const uint64_t ok = c.requests - std::min(c.errors, c.requests);
  const uint64_t ns = c.total_us * 1000;
  auto pair = [](uint64_t count, uint64_t ns) { return json{{"count", count}, {"ns", ns}}; };
  json stats = {{"name", id.str()},
                {"version", version ? std::to_string(*version) : std::string()},
                {"inference_count", c.requests},
                {"execution_count", c.requests},
                {"inference_stats",
                 {{"success", pair(ok, c.requests > 0 ? ns / c.requests * ok : 0)},
                  {"fail", pair(c.errors, c.requests > 0 ? ns / c.requests * c.errors : 0)},
                  {"queue", pair(0, 0)},
                  {"compute_input", pair(0, 0)},
                  {"compute_infer", pair(c.requests, ns)},
                  {"compute_output", pair(0, 0)}}}};
  return dump(json{{"model_stats", json::array({std::move(stats)})}});
}

std::string render_repository_index(const std::vector<model_entry>& models, bool ready_only) {
  json out = json::array();
  for (const model_entry& m : models) {
    const auto production = m.labels.find(default_label);
    const uint32_t v = production != m.labels.end() ? production->second.current() : 0;
    if (ready_only && v == 0) continue;
    out.push_back({{"name", m.id.str()},
                   {"version", v != 0 ? std::to_string(v) : std::string()},
                   {"state", v != 0 ? "READY" : "UNAVAILABLE"},
                   {"reason", v != 0 ? "" : "no production label: promote a version"}});
  }
  return dump(out);
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
