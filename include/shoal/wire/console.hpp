// console: the operator's console at /ui, served by every node from assets built into the binary
// (console/ in the source tree; no other web server, nothing fetched from the internet), and the
// JSON it reads and writes under /ui/api/.
//
//   GET  /ui/                              the page (its script and style: /ui/console.js, .css)
//   GET  /ui/api/session                   who the key is (admin or tenant), this node's name
//   GET  /ui/api/cluster                   every member (as `shoal cluster status --json`)
//   GET  /ui/api/models                    a summary of every model the key may see, with this
//                                          node's counts of it (all versions together)
//   GET  /ui/api/models/TENANT/MODEL       one model (as `shoal snapshot list --json`) and counts
//   POST /ui/api/models/TENANT/MODEL/promote   {"version":N, "label":"production", "force":false}
//   POST /ui/api/models/TENANT/MODEL/rollback  {"label":"production", "to":N}
//   POST /ui/api/models/TENANT/MODEL/trial     {"mode":"shadow"|"canary", "version":N,
//                                               "share":0.1} or {"mode":..., "stop":true}
//
// Every /ui/api/ call goes through the front door with the caller's key (Authorization: Bearer,
// as for the V2 routes), so the console can do exactly what the CLI can with the same key: a
// tenant key sees and changes only its tenant's models. The page itself needs no key. Actions
// take an optional "user" (who, as the operator typed it; the key's name is recorded too).
//
// Thread-safety: runs on the HTTP I/O threads; replies may come from actor threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "shoal/serving/front_door.hpp"
#include "shoal/wire/http_server.hpp"

namespace shoal {

struct console_settings {
  std::string node_name;          // shown in the page's header
  size_t replication_factor = 2;  // copies the cluster keeps (the page flags versions with fewer)
};

/// Returns true if `path` (a request target without its query) belongs to the console.
bool is_console_path(std::string_view path);

/// Answers a request whose path is_console_path().
void serve_console(const std::shared_ptr<front_door>& door, const console_settings& settings,
                   http_request&& req, const http_respond& respond);

}  // namespace shoal
