#include "shoal/wire/console.hpp"

#include <cmath>
#include <map>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "shoal/base/json_string.hpp"
#include "shoal/base/utf8.hpp"
#include "shoal/serving/access.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/api_json.hpp"
#include "shoal/wire/v2_codec.hpp"
#include "wire/console_assets.hpp"
#include "wire/http_auth.hpp"

namespace shoal {
namespace {

using json = api_json;

constexpr std::string_view ui_prefix = "/ui";
constexpr std::string_view api_prefix = "/ui/api/";
constexpr size_t max_user_bytes = 128;  // as the CLI's --user

http_reply reply_with(int code, std::string body, std::string content_type = "application/json") {
  http_reply r;
  r.status = code;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  // Answers hold a tenant's models: never kept by a cache between two keys.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http_reply json_reply(int code, const json& j) {
  return reply_with(code, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

http_reply error_reply(const status& s) {
  http_reply r = reply_with(http_status(s.code()), render_error(s.message()));
  if (s.code() == status_code::unauthenticated)
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

http_reply method_not_allowed(std::string_view path, const char* allow) {
  http_reply r = reply_with(405, render_error(std::string(path) + " takes " + allow));
  r.headers.emplace_back("Allow", allow);
  return r;
}

bool is_read(const std::string& method) { return method == "GET" || method == "HEAD"; }

// The page and its files (console_assets.hpp); "/ui" itself redirects to "/ui/" so the page's
// relative links resolve under it.
void serve_asset(std::string_view path, const http_request& req, const http_respond& respond) {
  if (!is_read(req.method)) return respond(method_not_allowed(path, "GET, HEAD"));
  if (path == ui_prefix) {
    http_reply r = reply_with(308, "", "text/plain; charset=utf-8");
    r.headers.emplace_back("Location", "/ui/");
    return respond(std::move(r));
  }
  std::string_view name = path.substr(ui_prefix.size() + 1);  // after "/ui/"
  if (name.empty()) name = "index.html";
  for (size_t i = 0; i < console_asset_count; ++i) {
    const console_asset& a = console_assets[i];
    if (name != a.name) continue;
    http_reply r;
    r.status = 200;
    r.body.assign(reinterpret_cast<const char*>(a.data), a.size);
    r.content_type = a.content_type;
    // The assets change only with the binary; a short life so an upgrade shows at once.
    r.headers.emplace_back("Cache-Control", "max-age=60");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    // Everything the page loads comes from this node: no inline script, no other origin.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    return respond(std::move(r));
  }
  respond(reply_with(404, render_error("no console page " + std::string(path) + ": open /ui/")));
}

// A JSON object body of an action; an empty body is {}.
result<json> object_body(const std::string& body) {
  if (body.empty()) return json::object();
  json j = json_nesting(body, max_json_nesting) > max_json_nesting
               ? json(json::value_t::discarded)
               : json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return status::invalid_argument("the body must be a JSON object, e.g. {\"version\":3}");
  }
  return j;
}

// Reads optional field `name` of `j` as a version (1 .. 2^32-1).
result<std::optional<uint32_t>> version_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::optional<uint32_t>();
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 4294967295LL) {
    return status::invalid_argument(std::string("\"") + name +
                                    "\" must be a version number (a positive integer)");
  }
  return std::optional<uint32_t>(static_cast<uint32_t>(it->get<int64_t>()));
}

result<std::string> string_field(const json& j, const char* name, size_t max_bytes) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return status::invalid_argument(std::string("\"") + name + "\" must be a string");
  std::string v = it->get<std::string>();
  if (v.size() > max_bytes || !utf8::is_valid_utf8(v)) {
    return status::invalid_argument(std::string("\"") + name + "\" must be UTF-8 of at most " +
                                    std::to_string(max_bytes) + " bytes");
  }
  return v;
}

result<bool> bool_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    return status::invalid_argument(std::string("\"") + name + "\" must be true or false");
  return it->get<bool>();
}

result<label_request> label_body(const model_id& id, label_action action, const json& j) {
  label_request req;
  req.id = id;
  req.action = action;
  auto label = string_field(j, "label", 64);
  if (!label) return label.error();
  req.label = label->empty() ? default_label : *label;
  auto user = string_field(j, "user", max_user_bytes);
  if (!user) return user.error();
  req.user = *user;
  auto version = version_field(j, action == label_action::promote ? "version" : "to");
  if (!version) return version.error();
  req.version = *version;
  if (action == label_action::promote && !req.version) {
    return status::invalid_argument("promote needs \"version\": the version the label moves to");
  }
  auto force = bool_field(j, "force");
  if (!force) return force.error();
  if (*force && action != label_action::promote) {
    return status::invalid_argument("\"force\" applies to promote only");
  }
  req.force = *force;
  return req;
}

result<trial_request> trial_body(const model_id& id, const json& j) {
  trial_request req;
  req.id = id;
  auto mode = string_field(j, "mode", 16);
  if (!mode) return mode.error();
  if (*mode == "shadow") {
    req.what = trial_info::mode::shadow;
  } else if (*mode == "canary") {
    req.what = trial_info::mode::canary;
  } else {
    return status::invalid_argument("\"mode\" must be \"shadow\" or \"canary\"");
  }
  auto stop = bool_field(j, "stop");
  if (!stop) return stop.error();
  req.stop = *stop;
  auto user = string_field(j, "user", max_user_bytes);
  if (!user) return user.error();
  req.user = *user;
  auto version = version_field(j, "version");
  if (!version) return version.error();
  auto share = j.find("share");
  const bool has_share = share != j.end() && !share->is_null();
  if (req.stop) {
    if (has_share)
      return status::invalid_argument("\"stop\" and \"share\" cannot be used together");
    req.version = version->value_or(0);
    return req;
  }
  if (!*version) return status::invalid_argument("\"version\" is required: the version to try");
  req.version = **version;
  double fraction = 0.1;  // a shadow's default, as the CLI's
  if (has_share) {
    if (!share->is_number() || !(share->get<double>() > 0) || share->get<double>() > 1 ||
        std::llround(share->get<double>() * 1e6) < 1) {
      return status::invalid_argument(
          "\"share\" must be a fraction above 0 and at most 1 (0.1 is 10%)");
    }
    fraction = share->get<double>();
  } else if (req.what == trial_info::mode::canary) {
    return status::invalid_argument(
        "\"share\" is required: the share of production requests "
        "the canary answers (0.05 is 5%)");
  }
  req.share_ppm = static_cast<uint32_t>(std::llround(fraction * 1e6));
  return req;
}

json counts_json(const std::vector<version_figures>& figures) {
  json out = json::array();
  for (const auto& f : figures) out.push_back(version_figures_json(f));
  return out;
}

json total_json(const std::vector<version_figures>& figures) {
  version_figures sum;
  for (const auto& f : figures) {
    sum.requests += f.requests;
    sum.errors += f.errors;
    sum.sum_us += f.sum_us;
    sum.scored += f.scored;
    sum.top1_sum_ppm += f.top1_sum_ppm;
    for (size_t i = 0; i < sum.buckets.size(); ++i) sum.buckets[i] += f.buckets[i];
  }
  if (sum.requests == 0) return nullptr;
  json j = version_figures_json(sum);
  j.erase("version");
  return j;
}

// A model as the list page shows it: no history, no reports; the holders of labelled versions
// only (under-replication that matters); this node's counts of all its versions together, null
// when it has none (a list of thousands of models stays small).
json model_summary(const model_entry& e, const std::vector<version_figures>* counts) {
  json labels = json::object();
  json last_move = nullptr;
  int64_t last_ms = -1;
  json holders = json::object();
  for (const auto& [name, st] : e.labels) {
    labels[name] = st.current();
    if (!st.history.empty() && st.history.back().time_ms > last_ms) {
      const auto& mv = st.history.back();
      last_ms = mv.time_ms;
      last_move = {{"label", name},
                   {"action", label_action_name(mv.action)},
                   {"from", mv.from},
                   {"to", mv.to},
                   {"time_ms", mv.time_ms},
                   {"by", mv.by},
                   {"automatic", mv.automatic},
                   {"reason", mv.reason}};
    }
    if (const snapshot_info* s = e.find(st.current()); s != nullptr) {
      holders[std::to_string(s->version)] = s->holders;
    }
  }
  const uint32_t latest = e.snapshots.empty() ? 0 : e.snapshots.back().version;
  return {{"model", e.id.str()},
          {"versions", e.snapshots.size()},
          {"latest", latest},
          {"labels", std::move(labels)},
          {"holders", std::move(holders)},
          {"last_move", std::move(last_move)},
          {"trial", trial_json(e.trial)},
          {"total", counts != nullptr ? total_json(*counts) : json(nullptr)}};
}

json label_result_json(const label_result& r) {
  return {{"label", r.label},
          {"from", r.from},
          {"to", r.to},
          {"gate_note", r.gate_note},
          {"validation", r.report ? report_json_value(*r.report) : json(nullptr)}};
}

// Sends `reply` as JSON (its value through `render`), or its error.
template <typename T, typename Render>
void answer(const http_respond& respond, api_reply& reply, Render render) {
  if (auto* err = std::get_if<status>(&reply)) return respond(error_reply(*err));
  if (auto* v = std::get_if<T>(&reply)) return respond(json_reply(200, render(*v)));
  respond(error_reply(status::internal("the node answered with an unexpected value")));
}

// /ui/api/models/TENANT/MODEL[/ACTION]: the id and the action ("" for the model itself).
struct model_path {
  model_id id;
  std::string action;
};

result<model_path> parse_model_path(std::string_view rest) {
  std::vector<std::string> segs;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    auto decoded = percent_decode(rest.substr(0, slash));
    if (!decoded) return decoded.error();
    segs.push_back(std::move(decoded).value());
    if (slash == std::string_view::npos || segs.size() > 3) break;
    rest = rest.substr(slash + 1);
  }
  if (segs.size() < 2 || segs.size() > 3) {
    return status::not_found("expected /ui/api/models/TENANT/MODEL[/promote|rollback|trial]");
  }
  auto id = parse_model_id(segs[0] + "/" + segs[1]);
  if (!id) return id.error();
  return model_path{std::move(id).value(), segs.size() == 3 ? segs[2] : ""};
}

void serve_api(const std::shared_ptr<front_door>& door, const console_settings& settings,
               std::string_view path, http_request& req, const http_respond& respond) {
  auto who = http_caller(*door, req);
  if (!who) return respond(error_reply(who.error()));

  std::string_view route = path.substr(api_prefix.size());
  if (!route.empty() && route.back() == '/') route.remove_suffix(1);
  if (route == "session") {
    if (!is_read(req.method)) return respond(method_not_allowed(path, "GET, HEAD"));
    return respond(json_reply(200, {{"node", settings.node_name},
                                    {"admin", who->admin},
                                    {"tenant", who->tenant},
                                    {"open", who->open},
                                    {"name", who->open ? std::string() : who->display_name()},
                                    {"replication_factor", settings.replication_factor}}));
  }
  if (route == "cluster") {
    if (!is_read(req.method)) return respond(method_not_allowed(path, "GET, HEAD"));
    return door->call(*who, cluster_status_request{}, [respond, settings](api_reply reply) {
      answer<cluster_status>(respond, reply, [&](const cluster_status& st) {
        json j = cluster_json(st);
        j["node"] = settings.node_name;
        j["replication_factor"] = settings.replication_factor;
        return j;
      });
    });
  }
  if (route == "models") {
    if (!is_read(req.method)) return respond(method_not_allowed(path, "GET, HEAD"));
    return door->call(*who, models_request{}, [respond, door](api_reply reply) {
      answer<std::vector<model_entry>>(respond, reply, [&](const std::vector<model_entry>& all) {
        const auto counts = door->version_counts();
        json models = json::array();
        for (const auto& e : all) {
          auto it = counts.find(e.id);
          models.push_back(model_summary(e, it != counts.end() ? &it->second : nullptr));
        }
        return json{{"models", std::move(models)}};
      });
    });
  }
  if (route.substr(0, 7) != "models/") {
    return respond(reply_with(404, render_error("no console call " + std::string(path))));
  }
  auto target = parse_model_path(route.substr(7));
  if (!target) return respond(error_reply(target.error()));
  const model_id id = target->id;
  if (target->action.empty()) {
    if (!is_read(req.method)) return respond(method_not_allowed(path, "GET, HEAD"));
    return door->call(*who, list_request{id}, [respond, door, id](api_reply reply) {
      answer<model_entry>(respond, reply, [&](const model_entry& e) {
        json j = model_json(e);
        json reports = json::array();
        for (const auto& r : e.reports) reports.push_back(report_json_value(r));
        j["reports"] = std::move(reports);
        j["counts"] = counts_json(door->version_counts(id));
        return j;
      });
    });
  }
  const std::string& action = target->action;
  if (action != "promote" && action != "rollback" && action != "trial") {
    return respond(reply_with(
        404, render_error("no console action '" + action + "': promote, rollback or trial")));
  }
  if (req.method != "POST") return respond(method_not_allowed(path, "POST"));
  auto body = object_body(req.body);
  if (!body) return respond(error_reply(body.error()));
  if (action == "trial") {
    auto call = trial_body(id, *body);
    if (!call) return respond(error_reply(call.error()));
    return door->call(*who, std::move(call).value(), [respond](api_reply reply) {
      answer<trial_info>(respond, reply, [](const trial_info& t) {
        return json{{"trial", trial_json(t)}};
      });
    });
  }
  auto call =
      label_body(id, action == "promote" ? label_action::promote : label_action::rollback, *body);
  if (!call) return respond(error_reply(call.error()));
  door->call(*who, std::move(call).value(), [respond](api_reply reply) {
    answer<label_result>(respond, reply, label_result_json);
  });
}

}  // namespace

bool is_console_path(std::string_view path) {
  return path.substr(0, ui_prefix.size()) == ui_prefix &&
         (path.size() == ui_prefix.size() || path[ui_prefix.size()] == '/');
}

void serve_console(const std::shared_ptr<front_door>& door, const console_settings& settings,
                   http_request&& req, const http_respond& respond) {
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));
  if (path.substr(0, api_prefix.size()) == api_prefix) {
    return serve_api(door, settings, path, req, respond);
  }
  serve_asset(path, req, respond);
}

}  // namespace shoal
