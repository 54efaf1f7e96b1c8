#include "shoal/wire/front_ends.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "shoal/base/json_string.hpp"
#include "shoal/serving/access.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/console.hpp"
#include "shoal/wire/v2_codec.hpp"
#include "wire/http_auth.hpp"

namespace shoal {
namespace {

http_reply json_reply(int code, std::string body) {
  http_reply r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

http_reply error_reply(const status& s) {
  return json_reply(http_status(s.code()), render_error(s.message()));
}

http_reply unauthenticated_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// A refusal for a limit (429) or while draining (503). The connection's next request is read
// only 50 ms later: a client that floods over its limit is held back at its own sockets (64
// connections then cost the node at most 1,280 refusals a second, not as many as it can parse),
// which keeps the CPU for the tenants within their limits.
constexpr std::chrono::milliseconds refusal_pause{50};

http_reply refusal_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("Retry-After", "1");
  r.pause_reading = refusal_pause;
  return r;
}

// A refusal because this thread is behind (overload.hpp): 429 at the end of the round, and the
// connection is read again at once. Pausing it would leave its next request waiting unread, which
// is the very delay this refusal exists to prevent; the refusal itself is what keeps the thread's
// queue short.
http_reply shed_reply(const status& s) {
  http_reply r = error_reply(s);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

// The Shoal-Max-Queue-Ms header: how long the client lets the request wait for a thread
// (overload.hpp); absent: 0 (max_queue_ms applies).
result<double> queue_budget(const std::string& header) {
  if (header.empty()) return 0.0;
  char* end = nullptr;
  errno = 0;
  const double ms = std::strtod(header.c_str(), &end);
  if (errno != 0 || end == header.c_str() || *end != '\0' || !(ms > 0) || ms > 3600000) {
    return status::invalid_argument(
        "the Shoal-Max-Queue-Ms header must be the milliseconds this request may wait for the "
        "node, above 0 and at most 3600000 (e.g. 5 or 0.5), got '" +
        header.substr(0, 40) + "'");
  }
  return ms;
}

// An inference's outcome as HTTP, the answer written as the request asked (`form`).
http_reply outcome_reply(infer_outcome& o, const v2_answer_form& form) {
  switch (o.what) {
    case infer_outcome::kind::answered: {
      v2_answer a = render_answer(o.answer, form);
      http_reply r = json_reply(200, std::move(a.body));
      if (a.json_length) {
        r.content_type = "application/octet-stream";
        r.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*a.json_length));
      }
      return r;
    }
    case infer_outcome::kind::failed:
      return error_reply(o.error);
    case infer_outcome::kind::limited:
      return refusal_reply(o.error);
    case infer_outcome::kind::shed:
      return shed_reply(o.error);
  }
  return error_reply(o.error);
}

// HTTP threads answer their round's micro-batched requests after the round (http_defer), and send
// shed refusals after its answers (each is a socket write).
const front_end http_front_end{"thread", &http_defer, true, true};

// The ZeroMQ thread ends its rounds itself (after_requests), and reads a serving view per request:
// it may idle for hours, and a cached view would keep unloaded models in memory all that time
// (one lock per call is nothing here).
const front_end zmq_front_end{"ZeroMQ thread", nullptr, false, false};

// The data plane runs on the HTTP I/O threads: their deferral and view; a refusal goes back at
// once (the asking node tries the next holder).
const front_end peer_front_end{"thread", &http_defer, false, true};

// The repository index's body: empty, or {"ready":true|false}.
result<bool> repository_index_ready(const std::string& body) {
  if (body.empty()) return false;
  auto j = json_nesting(body, max_json_nesting) > max_json_nesting
               ? nlohmann::json(nlohmann::json::value_t::discarded)
               : nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return status::invalid_argument(
        "the repository index body must be a JSON object such as {\"ready\":true}, or empty");
  }
  auto it = j.find("ready");
  if (it == j.end()) return false;
  if (!it->is_boolean()) {
    return status::invalid_argument("\"ready\" must be true or false");
  }
  return it->get<bool>();
}

}  // namespace

http_handler make_http_handler(std::shared_ptr<front_door> door, size_t max_batch,
                               console_settings console) {
  return [door, max_batch, console](http_request&& req, http_respond respond) {
    if (is_console_path(std::string_view(req.target).substr(0, req.target.find('?')))) {
      return serve_console(door, console, std::move(req), respond);
    }
    auto route = parse_route(req.method, req.target);
    if (!route) {
      http_reply r = json_reply(route.http_status(), render_error(route.error().message()));
      if (!route.allow().empty()) r.headers.emplace_back("Allow", route.allow());
      respond(std::move(r));
      return;
    }
    switch (route->what) {
      case http_route::kind::live:
        respond(json_reply(200, render_live(true)));
        return;
      case http_route::kind::ready: {
        auto ready = answer_server_ready(door->draining());
        respond(json_reply(ready.status, std::move(ready.body)));
        return;
      }
      case http_route::kind::server_meta:
        respond(json_reply(200, render_server_meta()));
        return;
      default:
        break;
    }
    // Everything below reaches models: it needs a key when the node has a keys file.
    auto who = http_caller(*door, req);
    if (!who) {
      respond(unauthenticated_reply(who.error()));
      return;
    }
    switch (route->what) {
      case http_route::kind::metrics: {
        // Tenant and model names of every tenant: operators only when the node has keys.
        if (!who->admin) {
          respond(json_reply(403, render_error(
                                      "/metrics needs an admin key: it shows every tenant's "
                                      "models")));
          return;
        }
        http_reply r;
        r.status = 200;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = door->render_metrics();
        respond(std::move(r));
        return;
      }
      case http_route::kind::model_meta:
      case http_route::kind::model_ready: {
        auto r = *route;
        door->call(*who, list_request{r.id}, [r, respond, door](api_reply reply) {
          if (auto* err = std::get_if<status>(&reply)) {
            respond(error_reply(*err));
            return;
          }
          const auto& entry = std::get<model_entry>(reply);
          if (r.version) {
            if (auto missing = entry.check_version(*r.version); !missing.is_ok()) {
              respond(error_reply(missing));
              return;
            }
          }
          if (r.what == http_route::kind::model_meta) {
            respond(json_reply(200, render_model_meta(entry, r.version)));
            return;
          }
          auto ready = answer_model_ready(entry, r.version, door->draining());
          respond(json_reply(ready.status, std::move(ready.body)));
        });
        return;
      }
      case http_route::kind::model_stats: {
        // Through the catalog first: a model the caller may not see is 404, as for metadata.
        auto r = *route;
        door->call(*who, list_request{r.id}, [r, respond, door](api_reply reply) {
          if (auto* err = std::get_if<status>(&reply)) return respond(error_reply(*err));
          const auto& entry = std::get<model_entry>(reply);
          if (r.version) {
            if (auto missing = entry.check_version(*r.version); !missing.is_ok()) {
              return respond(error_reply(missing));
            }
          }
          const auto c = door->model_counts(r.id);
          respond(json_reply(
              200, render_model_stats(r.id, r.version, {c.requests, c.errors, c.sum_us})));
        });
        return;
      }
      case http_route::kind::repo_index: {
        auto ready_only = repository_index_ready(req.body);
        if (!ready_only) return respond(error_reply(ready_only.error()));
        door->call(*who, models_request{}, [respond, ready = *ready_only](api_reply reply) {
          if (auto* err = std::get_if<status>(&reply)) return respond(error_reply(*err));
          respond(json_reply(
              200, render_repository_index(std::get<std::vector<model_entry>>(reply), ready)));
        });
        return;
      }
      case http_route::kind::repo_load: {
        // Loads production on this node: a warm-up inference through the actors, which load it
        // here (this node's memory budget decides how long it stays).
        auto r = *route;
        door->call(*who, list_request{r.id}, [r, respond, door, who = *who](api_reply reply) {
          if (auto* err = std::get_if<status>(&reply)) return respond(error_reply(*err));
          const auto& entry = std::get<model_entry>(reply);
          const auto production = entry.labels.find(default_label);
          const uint32_t v = production != entry.labels.end() ? production->second.current() : 0;
          const snapshot_info* snap = v != 0 ? entry.find(v) : nullptr;
          if (snap == nullptr) {
            return respond(error_reply(status::failed_precondition(
                r.id.str() + " has no production version to load: promote one first")));
          }
          door->call(who, warm_up_request(r.id, v, snap->signature_json),
                     [respond](api_reply warmed) {
                       if (auto* err = std::get_if<status>(&warmed)) {
                         return respond(error_reply(*err));
                       }
                       respond(json_reply(200, "{}"));
                     });
        });
        return;
      }
      case http_route::kind::repo_unload:
        respond(error_reply(status::invalid_argument(
            "Shoal does not unload on request: it keeps the models in use in memory and unloads "
            "the least recently used above model_memory_mb by itself; a model stays servable "
            "(to stop serving a version, move its labels)")));
        return;
      case http_route::kind::infer: {
        // Admitted before the body is parsed, so a refusal under overload costs little.
        auto budget = queue_budget(req.max_queue_ms);
        if (!budget) {
          respond(error_reply(budget.error()));
          return;
        }
        auto pass = door->admit(http_front_end, *budget, [&respond] {
          return [respond](infer_outcome o) { respond(outcome_reply(o, v2_answer_form{})); };
        });
        if (!pass) return;
        auto parsed = parse_infer_body(*route, req.body, max_batch, req.inference_header_length);
        if (!parsed) {
          respond(error_reply(parsed.error()));
          return;
        }
        door->infer(std::move(*pass), *who, std::move(parsed->request), http_front_end,
                    [respond, form = std::move(parsed->form)](infer_outcome o) {
                      respond(outcome_reply(o, form));
                    });
        return;
      }
      default:
        return;  // health and metadata routes: answered above
    }
  };
}

zmq_handler make_zmq_handler(std::shared_ptr<front_door> door) {
  return [door](std::string bytes, zmq_respond respond) {
    auto decoded = decode_request(bytes);
    if (!decoded) {
      respond(encode_error(decoded.error().request_id, decoded.error().error));
      return;
    }
    const uint64_t id = decoded->request_id;
    std::optional<std::string_view> key;
    if (!decoded->api_key.empty()) key = decoded->api_key;
    auto who = door->authenticate(key, "--key KEY or SHOAL_KEY");
    if (!who) {
      respond(encode_error(id, who.error()));
      return;
    }
    if (auto* infer = std::get_if<infer_request>(&decoded->call)) {
      auto answer = [id, respond](infer_outcome o) {
        respond(o.what == infer_outcome::kind::answered ? encode_response(id, o.answer)
                                                         : encode_error(id, o.error));
      };
      auto pass = door->admit(zmq_front_end, 0, [&answer] { return answer; });
      if (!pass) return;
      door->infer(std::move(*pass), *who, std::move(*infer), zmq_front_end, std::move(answer));
      return;
    }
    door->call(*who, std::move(decoded->call), [id, respond](api_reply reply) {
      respond(std::visit([id](auto& value) -> std::string {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, status>) {
          return encode_error(id, value);
        } else {
          return encode_response(id, value);
        }
      }, reply));
    });
  };
}

data_plane_handler make_peer_handler(std::shared_ptr<front_door> door) {
  return [door](infer_request req, std::function<void(result<infer_result>)> reply) {
    door->serve_peer(std::move(req), peer_front_end, [reply = std::move(reply)](infer_outcome o) {
      if (o.what == infer_outcome::kind::answered) return reply(std::move(o.answer));
      reply(std::move(o.error));
    });
  };
}

}  // namespace shoal
