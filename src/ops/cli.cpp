// cli: every `shoal` command (cli.hpp). Over 500 lines: the parser, the help texts and the
// renderers of each command; parse / render / push-dir are the planned cut.
#include "shoal/ops/cli.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

#include "shoal/base/host_memory.hpp"
#include "shoal/base/utf8.hpp"
#include "shoal/serving/api.hpp"
#include "shoal/serving/onnx_model.hpp"
#include "shoal/serving/validation.hpp"
#include "shoal/store/catalog.hpp"
#include "shoal/store/registry.hpp"
#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/api_json.hpp"
#include "shoal/wire/zmq_client.hpp"

namespace shoal {
namespace {

using json = nlohmann::ordered_json;
using kind = cli_command::kind;

// ---- the option and command tables -------------------------------------------------------------

struct option_spec {
  std::string_view name;
  bool takes_value;
};

// Every option of every command: the tokenizer must know which take a value before it knows the
// command, so a name means the same thing everywhere.
constexpr option_spec option_table[] = {
    {"--node", true},  {"--timeout", true}, {"--label", true},  {"--note", true},
    {"--to", true},    {"--jobs", true},    {"--key", true},    {"--user", true},
    {"--tag", true},   {"--metrics", true}, {"--source", true}, {"--force", false},
    {"--share", true}, {"--stop", false},   {"--k", true},      {"--version", true},
    {"--json", false}, {"--help", false},   {"-h", false},      {"--tokenizer", true},
    {"--vocab", true}, {"--labels", true},  {"--scores", true}, {"--max-tokens", true},
    {"--unk", true},   {"--cased", false},
};

const option_spec* find_option(std::string_view name) {
  for (const auto& o : option_table) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

struct command_spec {
  kind what;
  const char* name;
  std::vector<std::string_view> options;  // besides --node, --timeout, --help
  std::vector<const char*> positionals;   // names as help and errors spell them
};

const std::vector<command_spec>& command_table() {
  static const std::vector<command_spec> table = {
      {kind::push,
       "snapshot push",
       {"--label", "--note", "--json", "--user", "--tag", "--metrics", "--source", "--force",
        "--tokenizer", "--vocab", "--labels", "--scores", "--max-tokens", "--unk", "--cased"},
       {"TENANT/MODEL", "FILE"}},
      {kind::push_dir,
       "snapshot push-dir",
       {"--label", "--note", "--json", "--jobs", "--user", "--tag", "--metrics", "--source"},
       {"TENANT", "DIR"}},
      {kind::list, "snapshot list", {"--json"}, {"TENANT/MODEL"}},
      {kind::show, "snapshot show", {"--json"}, {"TENANT/MODEL", "VERSION"}},
      {kind::validate, "snapshot validate", {"--label", "--json"}, {"TENANT/MODEL", "VERSION"}},
      {kind::promote,
       "snapshot promote",
       {"--label", "--force", "--user", "--json"},
       {"TENANT/MODEL", "VERSION"}},
      {kind::shadow,
       "snapshot shadow",
       {"--share", "--stop", "--user"},
       {"TENANT/MODEL", "VERSION"}},
      {kind::canary,
       "snapshot canary",
       {"--share", "--stop", "--user"},
       {"TENANT/MODEL", "VERSION"}},
      {kind::validation_set, "validation set", {"--user"}, {"TENANT/MODEL", "FILE"}},
      {kind::validation_rollback, "validation rollback", {"--to", "--user"}, {"TENANT/MODEL"}},
      {kind::policy_set, "policy set", {"--user", "--json"}, {"TENANT[/MODEL]", "KEY=VALUE"}},
      {kind::policy_show, "policy show", {"--json"}, {"TENANT[/MODEL]"}},
      {kind::rollback, "snapshot rollback", {"--label", "--to"}, {"TENANT/MODEL"}},
      {kind::models, "models", {"--json"}, {}},
      {kind::infer, "infer", {"--k", "--version", "--label", "--json"}, {"TENANT/MODEL", "TEXT"}},
      {kind::cluster_status, "cluster status", {"--json"}, {}},
      {kind::cluster_forget, "cluster forget", {"--user", "--json"}, {"NODE"}},
  };
  return table;
}

// ---- tokenizing --------------------------------------------------------------------------------

struct tokens {
  std::vector<std::string> positionals;
  std::vector<std::pair<std::string, std::string>> options;  // "--help" also stands for "-h"
  bool help = false;
  std::string error;  // the first problem, without the command prefix
};

std::string shown(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (text.size() > 80) out += "...";
  return utf8::to_valid_utf8(out + "'");
}

tokens tokenize(const std::vector<std::string>& args) {
  tokens t;
  auto fail = [&t](std::string msg) {
    if (t.error.empty()) t.error = std::move(msg);
  };
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // "-1" is a (bad) version or a text, not an option: let the positional checks explain it.
    bool negative_number = a.size() >= 2 && a[0] == '-' && a[1] >= '0' && a[1] <= '9';
    if (options_done || a.size() < 2 || a[0] != '-' || negative_number) {
      t.positionals.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name = a;
    std::string value;
    bool inline_value = false;
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
    }
    const option_spec* spec = find_option(name);
    if (spec == nullptr) {
      fail("unknown option " + shown(name));
      continue;
    }
    if (name == "-h") name = "--help";
    if (!spec->takes_value) {
      if (inline_value) {
        fail("option '" + name + "' takes no value");
        continue;
      }
      if (name == "--help") t.help = true;
      t.options.emplace_back(name, "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        fail("option '" + name + "' needs a value");
        continue;
      }
      value = args[++i];
    }
    t.options.emplace_back(name, std::move(value));
  }
  return t;
}

// Which command the positionals name. `spec` is null for the overview and the snapshot group.
struct identified {
  const command_spec* spec = nullptr;
  std::string name;   // "snapshot promote", "snapshot" (group), "" (none)
  size_t words = 0;   // positionals the command name used
  std::string error;  // with its prefix, when the command is not known
};

identified identify(const std::vector<std::string>& pos) {
  identified id;
  auto find = [](std::string_view name) -> const command_spec* {
    for (const auto& c : command_table()) {
      if (name == c.name) return &c;
    }
    return nullptr;
  };
  if (pos.empty()) {
    id.error =
        "missing command: try snapshot push|list|show|promote|rollback, validation, policy, "
        "models, infer or cluster status";
    return id;
  }
  if (pos[0] == "cluster") {
    id.name = "cluster";
    if (pos.size() < 2) {
      id.error = "cluster: missing subcommand: status or forget";
      return id;
    }
    id.spec = find("cluster " + pos[1]);
    if (id.spec == nullptr) {
      id.error = "cluster: unknown subcommand " + shown(pos[1]) + ": expected status or forget";
      return id;
    }
    id.name = id.spec->name;
    id.words = 2;
    return id;
  }
  for (const char* group : {"validation", "policy"}) {
    if (pos[0] != group) continue;
    const std::string g = group;
    const char* subs = g == "validation" ? "set or rollback" : "set or show";
    id.name = g;
    if (pos.size() < 2) {
      id.error = g + ": missing subcommand: " + subs;
      return id;
    }
    id.spec = find(g + " " + pos[1]);
    if (id.spec == nullptr) {
      id.error = g + ": unknown subcommand " + shown(pos[1]) + ": expected " + subs;
      return id;
    }
    id.name = id.spec->name;
    id.words = 2;
    return id;
  }
  if (pos[0] == "snapshot") {
    id.name = "snapshot";
    if (pos.size() < 2) {
      id.error =
          "snapshot: missing subcommand: push, push-dir, list, show, validate, shadow, "
          "canary, promote or rollback";
      return id;
    }
    id.spec = find("snapshot " + pos[1]);
    if (id.spec == nullptr) {
      id.error = "snapshot: unknown subcommand " + shown(pos[1]) +
                 ": expected push, push-dir, list, show, validate, shadow, canary, promote or "
                 "rollback";
      return id;
    }
    id.name = id.spec->name;
    id.words = 2;
    return id;
  }
  id.spec = (pos[0] == "models" || pos[0] == "infer") ? find(pos[0]) : nullptr;
  if (id.spec == nullptr) {
    id.error = "unknown command " + shown(pos[0]) +
               ": expected snapshot push|list|show|promote|rollback, validation, policy, models, "
               "infer or cluster status";
    if (pos[0] == "node") id.error = "'shoal node' runs a node: see 'shoal node --help'";
    return id;
  }
  id.name = id.spec->name;
  id.words = 1;
  return id;
}

// ---- values
// --------------------------------------------------------------------------------------

// Returns the value of a decimal integer 1..max, or nothing.
std::optional<uint64_t> positive_integer(const std::string& text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v == 0 || v > max) return std::nullopt;
  return v;
}

std::optional<std::chrono::milliseconds> seconds_value(const std::string& text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  for (char c : text) {
    if ((c < '0' || c > '9') && c != '.') return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  double s = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(s) || s <= 0 ||
      s > 86400.0) {
    return std::nullopt;
  }
  auto ms = static_cast<int64_t>(std::llround(s * 1000.0));
  return std::chrono::milliseconds(ms < 1 ? 1 : ms);
}

// ---- output
// --------------------------------------------------------------------------------------

std::string iso_utc(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "-";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string size_text(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

// One table cell: no tabs or newlines, valid UTF-8.
std::string cell(std::string_view text) {
  std::string out = utf8::to_valid_utf8(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

// Returns the display width of UTF-8 text (code points; good enough for alignment).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string version_text(uint32_t v) { return v == 0 ? "none" : std::to_string(v); }

// "production: 1 -> 2 -> 1 (rollback)"
std::string history_line(const std::string& label, const label_state& st) {
  std::string out = cell(label) + ": ";
  if (st.history.empty()) return out + version_text(st.current());
  bool first = true;
  if (st.history.front().from != 0) {
    out += std::to_string(st.history.front().from);
    first = false;
  }
  for (const auto& mv : st.history) {
    out += (first ? "" : " -> ") + std::to_string(mv.to);
    if (mv.automatic) {
      out += " (auto: " + cell(mv.reason) + ")";
    } else if (mv.forced) {
      out += " (forced" + (mv.by.empty() ? std::string() : " by " + cell(mv.by)) + ")";
    } else if (mv.action == label_action::rollback) {
      out += " (rollback)";
    }
    first = false;
  }
  return out;
}

// "alice (key ops)": who pushed a snapshot, as the client said and as its key says.
std::string pushed_by(const snapshot_info& s) { return author_text(s.user, s.pushed_with); }

std::string percent_text(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
  return buf;
}

// "accuracy 91.0% (was 90.5%), macro-F1 0.874 (0.866), top label changed 3.2%, ..."
std::string report_summary(const validation_report_info& info) {
  auto r = report_from_json(info.report_json);
  if (!r) return "(the report does not parse: " + r.error().message() + ")";
  const model_figures& c = r->candidate;
  const model_figures* b = r->baseline ? &*r->baseline : nullptr;
  char buf[512];
  std::string out = std::to_string(c.examples) + " examples: accuracy " + percent_text(c.accuracy) +
                    (b ? " (was " + percent_text(b->accuracy) + ")" : "");
  std::snprintf(buf, sizeof buf, ", macro-F1 %.3f", c.macro_f1);
  out += buf;
  if (b) {
    std::snprintf(buf, sizeof buf, " (%.3f)", b->macro_f1);
    out += buf;
    out += ", top label changed " + percent_text(r->top_changed);
  }
  std::snprintf(buf, sizeof buf, ", mean top-1 %.3f", c.mean_top1);
  out += buf;
  if (b) {
    std::snprintf(buf, sizeof buf, " (%.3f)", b->mean_top1);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, ", p99 predict %.0f us", c.p99_predict_us);
  out += buf;
  if (b) {
    std::snprintf(buf, sizeof buf, " (%.0f us)", b->p99_predict_us);
    out += buf;
  }
  out +=
      ", memory " + size_text(c.memory_bytes) + (b ? " (" + size_text(b->memory_bytes) + ")" : "");
  return out;
}

// One report in `snapshot show` and `snapshot validate`.
std::string render_report(const validation_report_info& r) {
  std::string head =
      iso_utc(r.time_ms) + "  version " + std::to_string(r.candidate) +
      (r.baseline != 0 ? " vs " + std::to_string(r.baseline) : std::string()) + " on set " +
      std::to_string(r.set_number) +
      (r.ran_on.empty() ? std::string() : ", run on " + cell(r.ran_on)) + ": " +
      (r.passed ? std::string("passed") : "refused: " + cell(r.verdict)) +
      (r.forced ? " (forced" + (r.by.empty() ? std::string() : " by " + cell(r.by)) + ")"
                : std::string());
  return head + "\n    " + report_summary(r) + "\n";
}

// `snapshot show`: everything known about one version.
std::string render_show(const model_entry& e, const snapshot_info& s) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto labels = e.labels_at(s.version);
  std::vector<std::string> holders(s.holders.begin(), s.holders.end());
  std::string tags;
  for (const auto& [k, v] : s.tags) tags += (tags.empty() ? "" : ", ") + k + "=" + v;
  rows.emplace_back("created", iso_utc(s.created_ms));
  rows.emplace_back("size", size_text(s.size_bytes));
  rows.emplace_back("sha256", s.sha256);
  rows.emplace_back("format", s.format);
  rows.emplace_back("labels", labels.empty() ? "-" : join(labels, ", "));
  rows.emplace_back("held by", holders.empty() ? "-" : join(holders, ", "));
  const std::string by = pushed_by(s);
  rows.emplace_back("pushed by", by.empty() ? "-" : by);
  rows.emplace_back("note", s.note.empty() ? "-" : s.note);
  rows.emplace_back("source", s.source.empty() ? "-" : s.source);
  rows.emplace_back("tags", tags.empty() ? "-" : tags);
  rows.emplace_back("metrics", s.metrics_json.empty() ? "-" : s.metrics_json);
  std::string out = e.id.str() + " version " + std::to_string(s.version) + "\n";
  for (const auto& [k, v] : rows)
    out += "  " + k + std::string(11 - k.size(), ' ') + cell(v) + "\n";
  out += "\nvalidation reports:\n";
  bool any = false;
  for (const auto& r : e.reports) {
    if (r.candidate != s.version) continue;
    out += "  " + render_report(r);
    any = true;
  }
  if (!any) {
    out += e.current_set() == nullptr
               ? "  none (the model has no validation set: 'shoal validation set " + e.id.str() +
                     " FILE')\n"
               : "  none yet ('shoal snapshot validate " + e.id.str() + " " +
                     std::to_string(s.version) + "' runs one)\n";
  }
  const trial_info& t = e.trial;
  if ((t.what == trial_info::mode::shadow || t.what == trial_info::mode::canary) &&
      t.version == s.version) {
    out += "\n" + std::string(trial_mode_name(t.what)) + ": " +
           percent_text(double(t.share_ppm) / 1e6) + " of production traffic since " +
           iso_utc(t.started_ms) + (t.by.empty() ? std::string() : " (by " + cell(t.by) + ")") +
           "\n";
  }
  if (t.what == trial_info::mode::watch && t.watched == s.version) {
    out += "\nwatch: production since " + iso_utc(t.started_ms) + ", watched until " +
           iso_utc(t.until_ms) + "; version " + std::to_string(t.version) + " predicts " +
           percent_text(double(t.share_ppm) / 1e6) + " of its requests to compare\n";
  }
  return out;
}

// `policy set|show`: the settings in policy_keys() order.
std::string render_policy(const std::map<std::string, std::string>& settings) {
  std::string out;
  for (const auto& key : policy_keys()) {
    auto it = settings.find(key);
    if (it != settings.end()) out += key + std::string(20 - key.size(), ' ') + it->second + "\n";
  }
  return out;
}

// Columns aligned two spaces apart, no trailing spaces; the first row is the header.
std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], width(r[i]));
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - width(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string render_list(const model_entry& e) {
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "CREATED", "SIZE", "SHA256", "LABELS", "HELD BY", "PUSHED BY", "NOTE"}};
  for (const auto& s : e.snapshots) {
    auto labels = e.labels_at(s.version);
    std::vector<std::string> holders(s.holders.begin(), s.holders.end());
    const std::string by = pushed_by(s);
    rows.push_back({std::to_string(s.version), iso_utc(s.created_ms), size_text(s.size_bytes),
                    cell(s.sha256.substr(0, 12)), labels.empty() ? "-" : cell(join(labels, ",")),
                    holders.empty() ? "-" : cell(join(holders, ",")), by.empty() ? "-" : cell(by),
                    cell(s.note)});
  }
  std::string out = render_table(rows);
  if (!e.labels.empty()) {
    out += "\n";
    for (const auto& [name, st] : e.labels) out += history_line(name, st) + "\n";
  }
  return out;
}

std::string render_models(const std::vector<model_entry>& models) {
  if (models.empty()) {
    return "no models yet: push one with 'shoal snapshot push TENANT/MODEL FILE'\n";
  }
  size_t id_width = 0;
  size_t count_width = 0;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& e : models) {
    size_t n = e.snapshots.size();
    rows.emplace_back(e.id.str(), std::to_string(n) + (n == 1 ? " version" : " versions"));
    id_width = std::max(id_width, rows.back().first.size());
    count_width = std::max(count_width, rows.back().second.size());
  }
  std::string out;
  for (size_t i = 0; i < models.size(); ++i) {
    auto it = models[i].labels.find(default_label);
    uint32_t prod = it == models[i].labels.end() ? 0 : it->second.current();
    out += rows[i].first + std::string(id_width - rows[i].first.size() + 2, ' ') + rows[i].second +
           std::string(count_width - rows[i].second.size() + 2, ' ') +
           "production: " + version_text(prod) + "\n";
  }
  return out;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// "0.2s ago", "3m12s ago": how long since a member was last heard from.
std::string ago_text(int64_t ms) {
  char buf[32];
  if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1fs ago", double(ms) / 1000.0);
  } else if (ms < 3600000) {
    std::snprintf(buf, sizeof buf, "%dm%02ds ago", int(ms / 60000), int(ms / 1000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm ago", int(ms / 3600000), int(ms / 60000 % 60));
  }
  return buf;
}

std::string render_cluster(const cluster_status& st) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ADDRESS", "STATUS", "INCARNATION", "PHI", "HEARD", "IN-FLIGHT", "LOADED", "HELD",
       "EXTRA", "FREE MEM", "LOCAL", "FORWARDED", "FOR PEERS"}};
  for (const auto& v : st.members) {
    char phi[32];
    std::snprintf(phi, sizeof phi, "%.1f", v.phi);
    rows.push_back({cell(v.entry.name) + (v.is_self ? " *" : ""), cell(v.entry.cluster_address),
                    to_string(v.entry.status), std::to_string(v.entry.incarnation),
                    v.is_self ? "-" : phi,
                    v.is_self || !v.since_heard_ms ? "-" : ago_text(*v.since_heard_ms),
                    std::to_string(v.entry.load.in_flight),
                    std::to_string(v.entry.load.loaded_models),
                    std::to_string(v.snapshots_held),
                    std::to_string(v.entry.load.traffic_copies),
                    bytes_text(v.entry.load.free_model_memory),
                    std::to_string(v.entry.load.served_local),
                    std::to_string(v.entry.load.forwarded),
                    std::to_string(v.entry.load.served_for_peers)});
  }
  std::string out = render_table(rows);
  return out +
         "(* this node. EXTRA: of the versions HELD, copies taken for the node's own traffic.\n"
         " LOCAL, FORWARDED: its clients' requests it answered, and sent to a holder; FOR PEERS:\n"
         " requests other nodes sent it. Counts since each node started.)\n";
}

// Scores print with 6 decimals in both forms, so JSON and text agree.
double rounded_score(float s) { return std::round(double(s) * 1e6) / 1e6; }

// ---- execution
// -----------------------------------------------------------------------------------

result<std::string> read_file(const std::string& path, const char* what = "model file") {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return status::io_error(std::string("cannot read ") + what + " " + shown(path) + ": " +
                            std::strerror(errno));
  }
  std::string bytes;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) {
    return status::io_error(std::string("cannot read ") + what + " " + shown(path) + ": " +
                            std::strerror(err));
  }
  return bytes;
}

// The push of `bytes` as the command line asks: label, note and registry metadata (the
// --metrics file read and checked here, so a bad one costs no upload).
result<push_request> make_push(const cli_command& c, model_id id, std::string bytes) {
  const bool front_end =
      !c.text_front_end.empty() || !c.vocab_file.empty() || !c.labels_file.empty();
  if (front_end) {
    // An ONNX model with a text front end: the vocabulary and labels go inside the file (as
    // metadata_props), checked here so a bad one costs no upload.
    if (!looks_like_onnx(bytes)) {
      return status::invalid_argument(
          "--tokenizer, --vocab and --labels give an ONNX model a "
          "text front end, but " +
          shown(c.file) + " is not an ONNX model");
    }
    if (c.vocab_file.empty() || c.labels_file.empty() ||
        c.text_front_end.count("shoal.tokenizer") == 0) {
      return status::invalid_argument(
          "a text front end needs --tokenizer whitespace|wordpiece, --vocab FILE and --labels "
          "FILE");
    }
    auto props = c.text_front_end;
    auto vocab = read_file(c.vocab_file, "vocabulary");
    if (!vocab) return vocab.error();
    auto labels = read_file(c.labels_file, "labels file");
    if (!labels) return labels.error();
    props["shoal.vocab"] = std::move(*vocab);
    props["shoal.labels"] = std::move(*labels);
    if (status ok = check_text_front_end(props); !ok) {
      return status::invalid_argument("text front end: " + ok.message());
    }
    bytes = with_text_front_end(std::move(bytes), props);
  }
  push_request req{std::move(id), std::move(bytes), c.label, c.note};
  req.user = c.user;
  req.tags = c.tags;
  req.source = c.source;
  req.force = c.force;
  if (!c.metrics_file.empty()) {
    auto text = read_file(c.metrics_file, "metrics file");
    if (!text) return text.error();
    auto compact = compact_metrics_json(*text);
    if (!compact) {
      return status::invalid_argument("--metrics " + shown(c.metrics_file) + ": " +
                                      compact.error().message());
    }
    req.metrics_json = std::move(*compact);
  }
  return req;
}

// Sends `call` to the command's node and returns the reply bytes.
result<std::string> ask_node(const cli_command& c, const api_call& call) {
  auto client = zmq_client::connect(c.node, c.timeout);
  if (!client) return client.error();
  return client->call(encode_request(1, call, c.api_key));
}

// ---- push-dir -----------------------------------------------------------------------------------

// One file of a push-dir and what became of it.
struct dir_item {
  std::string file;   // the name within the directory
  std::string model;  // the model name taken from it ("" when it is no valid name)
  uint32_t version = 0;
  std::string error;  // empty: pushed as `version`
};

// The model a file names: its name without the last extension ("bot-7.bin" -> "bot-7").
std::string model_name_of(const std::string& file) {
  auto dot = file.rfind('.');
  return dot == std::string::npos || dot == 0 ? file : file.substr(0, dot);
}

// Lists the regular files of `dir` (not hidden ones, not subdirectories), sorted by name, with
// the model each one names; files that name no valid model, or the same model as an earlier
// file, get their error now and are not pushed.
result<std::vector<dir_item>> list_model_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return status::io_error("cannot read directory " + shown(dir) + ": " + ec.message());
  std::vector<dir_item> items;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return status::io_error("cannot read directory " + shown(dir) + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    items.push_back({name, model_name_of(name), 0, ""});
  }
  std::sort(items.begin(), items.end(),
            [](const dir_item& a, const dir_item& b) { return a.file < b.file; });
  std::map<std::string, std::string> seen;  // model -> the file that named it first
  for (auto& item : items) {
    if (!is_valid_id_part(item.model)) {
      item.error = "the file name gives no valid model name (" + shown(item.model) +
                   "; a model name must match [a-z0-9][a-z0-9_-]{0,63}): rename the file";
      item.model.clear();
      continue;
    }
    auto [at, added] = seen.emplace(item.model, item.file);
    if (!added) {
      item.error = "names the same model (" + item.model + ") as " + shown(at->second) +
                   ": one file per model";
    }
  }
  return items;
}

status push_dir(const cli_command& c, std::ostream& out, std::ostream& err, bool tty) {
  auto listed = list_model_files(c.file);
  if (!listed) return listed.error();
  std::vector<dir_item> items = std::move(*listed);
  if (items.empty()) {
    return status::invalid_argument("no model files in " + shown(c.file) +
                                    " (one model per file; hidden files and directories are "
                                    "skipped)");
  }
  const std::string dir = c.file;
  // Every file is read, encoded and sent in buffers of its size: kept on the heap and reused
  // (not mapped, zeroed and unmapped again for each file, which cost more than the sending).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<size_t> failed{0};
  std::atomic<bool> stop{false};  // the node stopped answering: do not try the rest
  std::mutex stop_mutex;          // guards stop_reason
  std::string stop_reason;
  auto worker = [&] {
    auto client = zmq_client::connect(c.node, c.timeout);
    for (size_t i = next++; i < items.size(); i = next++) {
      dir_item& item = items[i];
      if (!item.error.empty() || stop) {
        if (item.error.empty()) item.error = "not pushed: the run stopped";
        ++failed;
        ++done;
        continue;
      }
      auto bytes = read_file(dir + "/" + item.file);
      status s = status::ok();
      if (!bytes) {
        s = bytes.error();
      } else if (!client) {
        s = client.error();
      } else if (auto req = make_push(c, model_id{c.tenant, item.model}, std::move(*bytes)); !req) {
        s = req.error();
      } else {
        auto reply = client->call(encode_request(1, *req, c.api_key));
        if (!reply) {
          s = reply.error();
        } else if (auto r = decode_push_response(*reply); !r) {
          s = r.error();
        } else {
          item.version = r->version;
        }
      }
      if (!s) {
        item.error = s.message();
        ++failed;
        if (s.code() == status_code::unavailable) {
          // No answer: the node is down or overloaded. Stop rather than wait out a timeout
          // per remaining file; what was pushed stays pushed.
          std::lock_guard<std::mutex> lock(stop_mutex);
          if (!stop) stop_reason = s.message();
          stop = true;
        }
      }
      ++done;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (uint32_t j = 0; j < std::min<size_t>(c.jobs, items.size()); ++j) workers.emplace_back(worker);
  // Progress: redrawn in place on a terminal, a line every 5 s otherwise (logs, CI).
  auto progress = [&](bool last) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t n = done;
    std::ostringstream line;
    line << "push-dir " << c.tenant << ": " << n << "/" << items.size() << " files, " << failed
         << " failed, " << static_cast<long>(secs > 0 ? n / secs : 0) << "/s";
    if (!last && n > 0 && n < items.size()) {
      line << ", about " << static_cast<long>(std::ceil(secs / n * (items.size() - n)))
           << " s left";
    }
    if (tty) {
      err << "\r" << line.str() << "\x1b[K" << (last ? "\n" : "") << std::flush;
    } else {
      err << line.str() << "\n" << std::flush;
    }
  };
  auto last_line = start;
  while (done < items.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto now = std::chrono::steady_clock::now();
    if (now - last_line >= (tty ? std::chrono::milliseconds(200) : std::chrono::seconds(5))) {
      progress(false);
      last_line = now;
    }
  }
  for (auto& w : workers) w.join();
  progress(true);

  if (c.json) {
    json pushed = json::array();
    json failures = json::array();
    for (const auto& item : items) {
      if (item.error.empty()) {
        pushed.push_back({{"file", item.file},
                          {"model", c.tenant + "/" + item.model},
                          {"version", item.version}});
      } else {
        failures.push_back({{"file", item.file}, {"error", item.error}});
      }
    }
    out << dump({{"pushed", pushed}, {"failed", failures}});
  } else {
    for (const auto& item : items) {
      if (item.error.empty()) out << c.tenant << "/" << item.model << "\t" << item.version << "\n";
    }
  }
  out.flush();
  if (failed == 0) return status::ok();
  // The failures, each on its own line, after everything that worked.
  err << "shoal: " << failed << " of " << items.size() << " files were not pushed:\n";
  for (const auto& item : items) {
    if (!item.error.empty()) err << "  " << item.file << ": " << item.error << "\n";
  }
  std::string why = items.size() - failed == 0 ? "no file was pushed" : "the others were pushed";
  if (stop) why += "; stopped early: " + stop_reason;
  return status::failed_precondition(std::to_string(failed) + " of " +
                                     std::to_string(items.size()) + " files failed (" + why + ")");
}

status execute(const cli_command& c, std::ostream& out, std::ostream& err, bool tty) {
  switch (c.what) {
    case kind::help:
      out << cli_help(c.name);
      return status::ok();
    case kind::push_dir:
      return push_dir(c, out, err, tty);
    case kind::push: {
      auto bytes = read_file(c.file);
      if (!bytes) return bytes.error();
      auto req = make_push(c, c.id, std::move(*bytes));
      if (!req) return req.error();
      auto reply = ask_node(c, *req);
      if (!reply) return reply.error();
      auto r = decode_push_response(*reply);
      if (!r) return r.error();
      if (c.json) {
        out << dump({{"version", r->version},
                     {"sha256", r->sha256},
                     {"labels", r->labels},
                     {"copies", r->copies},
                     {"replication_factor", r->replication_factor},
                     {"replication_note", r->replication_note}});
      } else {
        out << r->version << "\n";
      }
      if (r->copies < r->replication_factor) {
        // Stored, but with fewer copies than the cluster keeps: say so on stderr (stdout stays
        // the version, for scripts).
        err << "shoal: note: version " << r->version << " is stored on " << r->copies << " of "
            << r->replication_factor << " nodes"
            << (r->replication_note.empty() ? std::string() : ": " + r->replication_note)
            << "\n";
      }
      return status::ok();
    }
    case kind::list: {
      auto reply = ask_node(c, list_request{c.id});
      if (!reply) return reply.error();
      auto r = decode_list_response(*reply);
      if (!r) return r.error();
      out << (c.json ? dump(model_json(*r)) : render_list(*r));
      return status::ok();
    }
    case kind::models: {
      auto reply = ask_node(c, models_request{});
      if (!reply) return reply.error();
      auto r = decode_models_response(*reply);
      if (!r) return r.error();
      if (c.json) {
        json models = json::array();
        for (const auto& e : *r) models.push_back(model_json(e));
        out << dump({{"models", std::move(models)}});
      } else {
        out << render_models(*r);
      }
      return status::ok();
    }
    case kind::promote:
    case kind::rollback: {
      label_request req;
      req.id = c.id;
      req.label = c.label;
      req.action = c.what == kind::promote ? label_action::promote : label_action::rollback;
      req.version = c.version;
      req.force = c.force;
      req.user = c.user;
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_label_response(*reply);
      if (!r) return r.error();
      std::string label = r->label.empty() ? (c.label.empty() ? default_label : c.label) : r->label;
      if (c.json) {
        out << dump({{"model", c.id.str()},
                     {"label", label},
                     {"from", r->from},
                     {"to", r->to},
                     {"validation", r->report ? report_json_value(*r->report) : json(nullptr)},
                     {"note", r->gate_note}});
        return status::ok();
      }
      out << c.id.str() << " " << cell(label) << ": " << version_text(r->from) << " -> "
          << version_text(r->to) << "\n";
      if (r->report) out << "validation " << render_report(*r->report);
      if (!r->gate_note.empty()) err << "shoal: note: " << cell(r->gate_note) << "\n";
      return status::ok();
    }
    case kind::show: {
      auto reply = ask_node(c, list_request{c.id});
      if (!reply) return reply.error();
      auto r = decode_list_response(*reply);
      if (!r) return r.error();
      const snapshot_info* s = r->find(*c.version);
      if (s == nullptr) return r->check_version(*c.version);
      if (c.json) {
        json j = snapshot_json(*r, *s);
        json reports = json::array();
        for (const auto& rep : r->reports) {
          if (rep.candidate == s->version) reports.push_back(report_json_value(rep));
        }
        j["model"] = c.id.str();
        j["validation_reports"] = std::move(reports);
        j["trial"] = r->trial.version == s->version ? trial_json(r->trial) : json(nullptr);
        out << dump(j);
      } else {
        out << render_show(*r, *s);
      }
      return status::ok();
    }
    case kind::validate: {
      validate_request req{c.id, *c.version, c.label};
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_validate_response(*reply);
      if (!r) return r.error();
      out << (c.json ? dump(report_json_value(*r)) : render_report(*r));
      if (!r->passed) {
        return status::failed_precondition("a promote of version " + std::to_string(r->candidate) +
                                           " would be refused: " + r->verdict);
      }
      return status::ok();
    }
    case kind::shadow:
    case kind::canary: {
      trial_request req;
      req.id = c.id;
      req.what = c.what == kind::canary ? trial_info::mode::canary : trial_info::mode::shadow;
      req.version = c.version.value_or(0);
      req.share_ppm = c.share_ppm;
      req.stop = c.stop;
      req.user = c.user;
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_trial_response(*reply);
      if (!r) return r.error();
      const char* mode = c.what == kind::canary ? "canary" : "shadow";
      if (c.stop) {
        out << c.id.str() << " " << mode << " stopped\n";
      } else if (c.what == kind::canary) {
        out << c.id.str() << " canary: version " << r->version << " answers "
            << percent_text(double(r->share_ppm) / 1e6) << " of production requests\n";
      } else {
        out << c.id.str() << " shadow: version " << r->version << " also predicts "
            << percent_text(double(r->share_ppm) / 1e6)
            << " of production requests (answers discarded)\n";
      }
      return status::ok();
    }
    case kind::validation_set:
    case kind::validation_rollback: {
      validation_set_request req;
      req.id = c.id;
      req.user = c.user;
      if (c.what == kind::validation_set) {
        auto bytes = read_file(c.file, "validation set");
        if (!bytes) return bytes.error();
        if (bytes->empty()) {
          return status::invalid_argument("the validation set " + shown(c.file) + " is empty");
        }
        req.bytes = std::move(*bytes);
      } else {
        req.to = c.version;
      }
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_validation_set_response(*reply);
      if (!r) return r.error();
      out << c.id.str() << " validation set " << r->number << " in use: " << r->examples
          << " examples (sha256 " << r->sha256.substr(0, 12) << ")\n";
      return status::ok();
    }
    case kind::policy_set:
    case kind::policy_show: {
      policy_request req;
      req.id = c.id;
      req.user = c.user;
      if (c.what == kind::policy_set) req.settings = c.settings;
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_policy_response(*reply);
      if (!r) return r.error();
      if (c.json) {
        json j = json::object();
        for (const auto& key : policy_keys()) {
          auto it = r->settings.find(key);
          if (it != r->settings.end()) j[key] = it->second;
        }
        out << dump(j);
      } else {
        out << render_policy(r->settings);
      }
      return status::ok();
    }
    case kind::infer: {
      infer_request req;
      req.id = c.id;
      req.version = c.version;
      req.label = c.label;
      req.texts = {c.text};
      req.top_k = c.top_k;
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_infer_response(*reply);
      if (!r) return r.error();
      std::vector<prediction> preds = r->rows.empty() ? std::vector<prediction>{} : r->rows[0];
      if (c.json) {
        json list = json::array();
        for (const auto& p : preds) {
          list.push_back({{"label", p.label}, {"score", rounded_score(p.score)}});
        }
        out << dump({{"model", r->id.str()}, {"version", r->version}, {"predictions", list}});
      } else {
        for (const auto& p : preds) {
          char score[32];
          std::snprintf(score, sizeof score, "%.6f", double(p.score));
          out << cell(p.label) << "\t" << score << "\n";
        }
      }
      return status::ok();
    }
    case kind::cluster_forget: {
      forget_request req;
      req.node = c.forget;
      req.user = c.user;
      auto reply = ask_node(c, req);
      if (!reply) return reply.error();
      auto r = decode_forget_response(*reply);
      if (!r) return r.error();
      if (c.json) {
        out << dump(json{{"id", r->id},
                         {"name", r->name},
                         {"voters", r->voters},
                         {"majority", r->voters / 2 + 1}});
      } else {
        out << "forgot " << (r->name.empty() ? r->id.substr(0, 8) : r->name) << " (id " << r->id
            << "): " << r->voters << (r->voters == 1 ? " node numbers" : " nodes number")
            << " versions now; a push needs " << (r->voters / 2 + 1) << " of them\n";
      }
      return status::ok();
    }
    case kind::cluster_status: {
      auto reply = ask_node(c, cluster_status_request{});
      if (!reply) return reply.error();
      auto r = decode_cluster_status_response(*reply);
      if (!r) return r.error();
      out << (c.json ? dump(cluster_json(*r)) : render_cluster(*r));
      return status::ok();
    }
  }
  return status::internal("unknown command");
}

// ---- help
// ----------------------------------------------------------------------------------------

const char* const common_options =
    "  --node HOST:PORT    the node to ask (default: $SHOAL_NODE, else 127.0.0.1:7421)\n"
    "  --timeout SECONDS   how long to wait for its answer (default 10; 60 for push)\n"
    "  --key KEY           the API key, when the node requires one (default: $SHOAL_KEY;\n"
    "                      prefer SHOAL_KEY: a --key shows in the process list)\n"
    "  -h, --help          show this help\n";

std::string with_common(std::string text, bool has_own_options) {
  return text + (has_own_options ? "" : "\noptions:\n") + common_options;
}

}  // namespace

// ---- public
// --------------------------------------------------------------------------------------

std::string cli_help(const std::string& name) {
  if (name == "snapshot push") {
    return with_common(
               "usage: shoal snapshot push TENANT/MODEL FILE [--label L] [--note TEXT] [--user "
               "NAME]\n"
               "                           [--tag KEY=VALUE]... [--metrics FILE] [--source URI]\n"
               "                           [--force] [--json]\n"
               "\n"
               "Uploads a model file (fastText .bin/.ftz, or ONNX .onnx, told apart by content) as "
               "the\n"
               "model's next version and prints its number. The node checks the model before "
               "storing\n"
               "it (an ONNX model with an operator Shoal does not run is refused, naming it). The "
               "first version of a model\n"
               "becomes production. With --label production and a validation set, the new version\n"
               "must pass the validation gate (see 'shoal snapshot promote --help'); if it does "
               "not,\n"
               "it stays stored and production does not move (exit 1).\n"
               "\n"
               "options:\n"
               "  --label L           also point label L at the new version\n"
               "  --note TEXT         a note kept with the snapshot\n"
               "  --user NAME         who pushes (default: $USER); the node also records the key's "
               "name\n"
               "  --tag KEY=VALUE     a tag kept with the snapshot (repeatable; at most 32)\n"
               "  --metrics FILE      training metrics and hyper-parameters: a JSON object (16 "
               "KiB)\n"
               "  --source URI        what the model was built from (a commit, a job, a bucket)\n"
               "  --force             with --label production: move it even if validation refuses\n"
               "  --json              print {\"version\":N,\"sha256\":...,\"labels\":[...]}\n"
               "\n"
               "an ONNX model that answers texts (a text front end, kept inside the file):\n"
               "  --tokenizer KIND    whitespace (split on spaces, lowercased) or wordpiece "
               "(BERT's)\n"
               "  --vocab FILE        the vocabulary: one token per line, line N is token id N\n"
               "  --labels FILE       label names: line N names output column N\n"
               "  --scores KIND       what the first output holds: logits (default: softmax "
               "taken),\n"
               "                      probabilities or log_probabilities\n"
               "  --max-tokens N      longer texts are cut to N tokens (default 256)\n"
               "  --unk TOKEN         the unknown token (default [UNK] for wordpiece, <unk> for\n"
               "                      whitespace); it must be in the vocabulary\n"
               "  --cased             do not lowercase\n",
               true) +
           "\nexamples:\n  shoal snapshot push acme/bot model.bin --label staging --note \"May "
           "data\"\n"
           "  shoal snapshot push acme/bot intents.onnx --tokenizer wordpiece --vocab vocab.txt "
           "--labels labels.txt\n";
  }
  if (name == "snapshot push-dir") {
    return with_common(
               "usage: shoal snapshot push-dir TENANT DIR [--label L] [--note TEXT] [--jobs N] "
               "[--json]\n"
               "\n"
               "Pushes every file of DIR as a new version of its own model, TENANT/NAME, where "
               "NAME\n"
               "is the file name without its extension (bot-7.bin -> TENANT/bot-7). Hidden files\n"
               "and subdirectories are skipped. Shows progress on stderr; prints a line\n"
               "\"TENANT/NAME<TAB>VERSION\" per pushed file; then lists the files that failed\n"
               "and why (the others stay pushed) and exits 1 if any did. Stops early if the node\n"
               "stops answering.\n"
               "\n"
               "options:\n"
               "  --label L           also point label L at each new version\n"
               "  --note TEXT         a note kept with each snapshot\n"
               "  --user NAME         who pushes (default: $USER); the node also records the key's "
               "name\n"
               "  --tag KEY=VALUE     a tag kept with each snapshot (repeatable; at most 32)\n"
               "  --metrics FILE      training metrics and hyper-parameters: a JSON object (16 "
               "KiB)\n"
               "  --source URI        what the model was built from (a commit, a job, a bucket)\n"
               "  --jobs N            pushes in flight at once (default 16; the node makes the "
               "pushes\n"
               "                      that arrive together durable with one journal fsync)\n"
               "  --json              print {\"pushed\":[{\"file\",\"model\",\"version\"}],"
               "\"failed\":[{\"file\",\"error\"}]}\n",
               true) +
           "\nexample:\n  shoal snapshot push-dir acme ./models/   # models/bot-1.bin -> "
           "acme/bot-1\n";
  }
  if (name == "snapshot list") {
    return with_common(
               "usage: shoal snapshot list TENANT/MODEL [--json]\n"
               "\n"
               "Shows the model's snapshots (version, creation time, size, hash, labels, note) and "
               "the\n"
               "history of each label.\n"
               "\n"
               "options:\n"
               "  --json              print the snapshots and labels as JSON\n",
               true) +
           "\nexample:\n  shoal snapshot list acme/bot\n";
  }
  if (name == "snapshot promote") {
    return with_common(
               "usage: shoal snapshot promote TENANT/MODEL VERSION [--label L] [--force] [--json]\n"
               "\n"
               "Points a label (production unless --label) at VERSION, on every node.\n"
               "Prints \"TENANT/MODEL LABEL: OLD -> NEW\".\n"
               "\n"
               "The validation gate: when the model has a validation set, a promote of production\n"
               "first runs VERSION and the current production version over it (on a node that\n"
               "holds both) and keeps the report. If VERSION is worse than the model's policy\n"
               "allows (default: accuracy down more than 1 point, or any label's recall down more\n"
               "than 10), the promote is refused with the rules that failed, and exits 1.\n"
               "Without a validation set nothing is checked (a note says so). Rollbacks are never\n"
               "gated.\n"
               "\n"
               "options:\n"
               "  --label L           the label to move (default production)\n"
               "  --force             move it even if validation refuses (recorded, with who)\n"
               "  --user NAME         who moves it, for the history (default: $USER)\n"
               "  --json              print {\"from\",\"to\",\"validation\":{...},\"note\"}\n",
               true) +
           "\nexample:\n  shoal snapshot promote acme/bot 3\n";
  }
  if (name == "snapshot show") {
    return with_common(
               "usage: shoal snapshot show TENANT/MODEL VERSION [--json]\n"
               "\n"
               "Shows everything known about one version: size, hash, labels, where it is held,\n"
               "who pushed it, its note, source, tags and training metrics, and its validation\n"
               "reports.\n"
               "\n"
               "options:\n"
               "  --json              print it as one JSON object\n",
               true) +
           "\nexample:\n  shoal snapshot show acme/bot 3\n";
  }
  if (name == "snapshot validate") {
    return with_common(
               "usage: shoal snapshot validate TENANT/MODEL VERSION [--label L] [--json]\n"
               "\n"
               "Runs VERSION and the version label L (production) points at over the model's\n"
               "validation set, as a promote would, and keeps the report; moves nothing. Exits 1\n"
               "when a promote would be refused.\n"
               "\n"
               "options:\n"
               "  --label L           compare with the version L points at (default production)\n"
               "  --json              print the report as JSON\n",
               true) +
           "\nexample:\n  shoal snapshot validate acme/bot 4\n";
  }
  if (name == "snapshot shadow" || name == "snapshot canary") {
    return with_common(
               "usage: shoal snapshot shadow TENANT/MODEL VERSION [--share PERCENT]\n"
               "       shoal snapshot canary TENANT/MODEL VERSION --share PERCENT\n"
               "       shoal snapshot shadow|canary TENANT/MODEL --stop\n"
               "\n"
               "Tries VERSION on live traffic before it is production. shadow: a share of the\n"
               "requests production answers (default 10%) is predicted by VERSION too, after the\n"
               "answer went out, and each node counts how often the two agree, each one's mean\n"
               "top-1 probability and predict time (shoal_trial_* in /metrics). canary: that "
               "share\n"
               "of requests for production is answered by VERSION. One trial per model; a "
               "promote,\n"
               "a rollback of production or --stop ends it.\n"
               "\n"
               "options:\n"
               "  --share PERCENT     the share of production requests, e.g. 10% (0.0001 to 100)\n"
               "  --stop              end the model's shadow (or canary)\n"
               "  --user NAME         who starts it (default: $USER)\n",
               true) +
           "\nexamples:\n  shoal snapshot shadow acme/bot 4 --share 10%\n"
           "  shoal snapshot canary acme/bot 4 --share 5%\n  shoal snapshot canary acme/bot "
           "--stop\n";
  }
  if (name == "validation set" || name == "validation rollback" || name == "validation") {
    return with_common(
               "usage: shoal validation set TENANT/MODEL FILE [--user NAME]\n"
               "       shoal validation rollback TENANT/MODEL [--to N]\n"
               "\n"
               "A model's validation set: labelled examples in fastText's format, one per line\n"
               "(__label__billing how do I pay; the model's own label prefix), at most 16 MiB and\n"
               "100,000 examples. 'set' stores FILE as the model's next set and uses it from now "
               "on;\n"
               "sets are kept, numbered 1, 2, ..., and 'rollback' goes back to the previous one "
               "(or\n"
               "set N). Promotes of production are checked against the set in use.\n"
               "\n"
               "options:\n"
               "  --user NAME         who sets it (default: $USER)\n"
               "  --to N              rollback: the set to use again\n",
               true) +
           "\nexample:\n  shoal validation set acme/bot heldout.txt\n";
  }
  if (name == "policy set" || name == "policy show" || name == "policy") {
    return with_common(
               "usage: shoal policy set TENANT[/MODEL] KEY=VALUE... [--json]\n"
               "       shoal policy show TENANT[/MODEL] [--json]\n"
               "\n"
               "The rules for the validation gate and the watch after a promote, for one model or\n"
               "(TENANT alone) for all of a tenant's models; a model's own settings win over its\n"
               "tenant's, which win over the defaults. 'set' changes the named settings (KEY= "
               "goes\n"
               "back to the tenant's or the default) on every node and prints the policy in "
               "force;\n"
               "'show' prints it.\n"
               "\n"
               "settings:\n"
               "  accuracy_drop=1     points of accuracy a candidate may lose\n"
               "  recall_drop=10      points of any one label's recall it may lose\n"
               "  min_label_examples=1  labels with fewer examples are not judged on recall\n"
               "  watch=10m, watch_share=10%, min_agreement=70%, confidence_drop=20%,\n"
               "  max_error_rate=5%, max_p99_ratio=4, min_requests=200: the watch's rules\n",
               false) +
           "\nexample:\n  shoal policy set acme/bot accuracy_drop=0.5 recall_drop=5\n";
  }
  if (name == "snapshot rollback") {
    return with_common(
               "usage: shoal snapshot rollback TENANT/MODEL [--label L] [--to VERSION]\n"
               "\n"
               "Moves a label (production unless --label) back to where it pointed before, or to\n"
               "VERSION with --to. Prints \"TENANT/MODEL LABEL: OLD -> NEW\".\n"
               "\n"
               "options:\n"
               "  --label L           the label to move (default production)\n"
               "  --to VERSION        the version to go back to (default: the previous one)\n",
               true) +
           "\nexample:\n  shoal snapshot rollback acme/bot\n";
  }
  if (name == "models") {
    return with_common(
        "usage: shoal models [--json]\n"
        "\n"
        "Lists every model with its number of versions and where production points.\n"
        "\n"
        "options:\n"
        "  --json              print {\"models\":[...]} with each model as 'snapshot list "
        "--json'\n",
        true);
  }
  if (name == "infer") {
    return with_common(
               "usage: shoal infer TENANT/MODEL TEXT [--k K] [--version N | --label L] [--json]\n"
               "\n"
               "Classifies TEXT with the model's production version (or --version N, or the "
               "version\n"
               "label L points at) and prints one \"LABEL<TAB>SCORE\" line per prediction.\n"
               "\n"
               "options:\n"
               "  --k K               how many predictions, 1..1000 (default 1)\n"
               "  --version N         use version N\n"
               "  --label L           use the version label L points at\n"
               "  --json              print {\"model\":...,\"version\":N,\"predictions\":[...]}\n",
               true) +
           "\nexamples:\n  shoal infer acme/bot \"where is my order\" --k 3\n"
           "  shoal infer acme/bot -- \"-text starting with a dash\"\n";
  }
  if (name == "cluster status") {
    return with_common(
               "usage: shoal cluster status [--json]\n"
               "\n"
               "Shows every member the node knows (itself marked *): name, cluster address,\n"
               "status (alive, suspect, dead, left), incarnation, the node's phi for it (its\n"
               "suspicion; 8 and above means probing), how long since its heartbeat last rose,\n"
               "and its load (inference requests in flight, snapshots in memory).\n"
               "\n"
               "options:\n"
               "  --json              print {\"members\":[{\"name\":...,\"status\":...,...}]}\n",
               true) +
           "\nexample:\n  shoal cluster status --node 127.0.0.1:7431\n";
  }
  if (name == "cluster forget") {
    return with_common(
               "usage: shoal cluster forget NODE [--user NAME] [--json]\n"
               "\n"
               "Retires a node that is gone for good (its disk died, it was decommissioned):\n"
               "it stops counting toward the majority that must agree on every new version\n"
               "number. Three nodes need two to push; with one of them gone for good, forget it\n"
               "and the other two keep pushing even while one of them is down. NODE is its name\n"
               "or id as 'shoal cluster status --json' shows them (or 8 or more leading\n"
               "characters of the id). Refused while the node asked still hears NODE (alive or\n"
               "suspect) and for the node asked itself; needs an admin key. Forget one node at a\n"
               "time. A forgotten node started again with its old data directory joins again.\n"
               "\n"
               "options:\n"
               "  --user NAME         who asks, kept in the node's log (default: $USER)\n"
               "  --json              print "
               "{\"id\":...,\"name\":...,\"voters\":N,\"majority\":M}\n",
               true) +
           "\nexample:\n  shoal cluster forget n3\n";
  }
  if (name == "cluster") {
    return with_common(
        "usage: shoal cluster status|forget ...\n"
        "\n"
        "commands:\n"
        "  cluster status      the members this node knows and how they are\n"
        "  cluster forget      retire a node gone for good from the numbering majority\n",
        false);
  }
  if (name == "snapshot") {
    return with_common(
        "usage: shoal snapshot push|push-dir|list|show|validate|shadow|canary|promote|rollback "
        "...\n"
        "\n"
        "commands:\n"
        "  snapshot push       upload a model file as a new version\n"
        "  snapshot push-dir   upload every file of a directory, one model per file\n"
        "  snapshot list       show a model's versions and label history\n"
        "  snapshot show       everything known about one version\n"
        "  snapshot validate   compare a version with production over the validation set\n"
        "  snapshot shadow     a share of production traffic also predicted by a version\n"
        "  snapshot canary     a share of production traffic answered by a version\n"
        "  snapshot promote    point a label (production) at a version\n"
        "  snapshot rollback   move a label back to its previous version\n"
        "\n"
        "Run 'shoal snapshot COMMAND --help' for a command's options.\n",
        false);
  }
  return "usage: shoal COMMAND [ARGS] [OPTIONS]\n"
         "\n"
         "Shoal serves many small versioned models from a cluster of nodes. These commands talk\n"
         "to any node over ZeroMQ.\n"
         "\n"
         "commands:\n"
         "  node                run a node (see 'shoal node --help')\n"
         "  snapshot push       upload a model file as a new version\n"
         "  snapshot push-dir   upload every file of a directory, one model per file\n"
         "  snapshot list       show a model's versions and label history\n"
         "  snapshot show       everything known about one version\n"
         "  snapshot validate   compare a version with production over the validation set\n"
         "  snapshot shadow     a share of production traffic also predicted by a version\n"
         "  snapshot canary     a share of production traffic answered by a version\n"
         "  snapshot promote    point a label (production) at a version\n"
         "  snapshot rollback   move a label back to its previous version\n"
         "  validation set      set the labelled examples promotes are checked against\n"
         "  policy set|show     the model's validation rules\n"
         "  models              list the models and where production points\n"
         "  infer               classify a text with a model\n"
         "  cluster status      the cluster's members as this node sees them\n"
         "  cluster forget      retire a node gone for good from the numbering majority\n"
         "  bench               open-loop HTTP load on a node (see 'shoal bench --help')\n"
         "  health              whether a node's HTTP port answers ready (see 'shoal health "
         "--help')\n"
         "\n"
         "options of every command:\n" +
         std::string(common_options) +
         "\n"
         "examples:\n"
         "  shoal node --help\n"
         "  shoal snapshot push acme/bot model.bin\n"
         "  shoal snapshot push-dir acme ./models/\n"
         "  shoal snapshot promote acme/bot 2\n"
         "  shoal snapshot rollback acme/bot\n"
         "  shoal infer acme/bot \"where is my order\" --k 3 --json\n"
         "  SHOAL_NODE=10.0.0.5:7421 shoal models\n"
         "  SHOAL_KEY=$(cat ~/.shoal-key) shoal snapshot rollback acme/bot\n"
         "  shoal cluster status --json\n"
         "\n"
         "Run 'shoal COMMAND --help' for a command's arguments and options.\n";
}

std::string cli_usage_hint(const std::vector<std::string>& args) {
  identified id = identify(tokenize(args).positionals);
  return "try 'shoal " + (id.name.empty() ? std::string() : id.name + " ") + "--help'";
}

result<cli_command> parse_cli(const std::vector<std::string>& args, const cli_env& env) {
  tokens t = tokenize(args);
  identified id = identify(t.positionals);
  cli_command c;
  if (t.help && (id.spec != nullptr || id.name == "snapshot" || id.name == "validation" ||
                 id.name == "policy" || t.positionals.empty())) {
    c.what = kind::help;
    c.name = id.name;
    return c;
  }
  if (!id.error.empty()) return status::invalid_argument(id.error);
  const command_spec& spec = *id.spec;
  const std::string prefix = spec.name + std::string(": ");
  auto usage = [&prefix](const std::string& what) {
    return status::invalid_argument(prefix + what);
  };
  if (!t.error.empty()) return usage(t.error);
  c.what = spec.what;
  c.name = spec.name;
  if (c.what == kind::push || c.what == kind::push_dir) c.timeout = default_push_timeout;

  // Options.
  std::set<std::string> seen;
  std::string node = env.shoal_node;
  bool node_from_env = !node.empty();
  std::optional<std::string> label;
  for (const auto& [name, value] : t.options) {
    bool common = name == "--node" || name == "--timeout" || name == "--help" || name == "--key";
    bool allowed = common;
    for (auto o : spec.options) allowed = allowed || o == name;
    if (!allowed) return usage("unknown option '" + name + "'");
    if (name != "--tag" && !seen.insert(name).second) {
      return usage("option '" + name + "' given twice");
    }
    if (name == "--key") {
      if (value.empty()) return usage("--key needs the API key (or set SHOAL_KEY)");
      c.api_key = value;
    } else if (name == "--node") {
      node = value;
      node_from_env = false;
    } else if (name == "--timeout") {
      auto ms = seconds_value(value);
      if (!ms) return usage("--timeout must be a positive number of seconds, got " + shown(value));
      c.timeout = *ms;
    } else if (name == "--json") {
      c.json = true;
    } else if (name == "--label") {
      if (!is_valid_label(value)) {
        return usage("invalid label " + shown(value) +
                     ": a label name must match [a-z0-9][a-z0-9_.-]{0,63}");
      }
      label = value;
    } else if (name == "--note") {
      if (!utf8::is_valid_utf8(value)) return usage("--note is not valid UTF-8");
      c.note = value;
    } else if (name == "--user") {
      if (value.empty() || value.size() > 128 || !utf8::is_valid_utf8(value)) {
        return usage("--user must be 1 to 128 bytes of UTF-8, got " + shown(value));
      }
      c.user = value;
    } else if (name == "--tag") {
      auto tag = parse_tag(value);
      if (!tag) return usage(tag.error().message());
      if (c.tags.count(tag->first) > 0) return usage("tag " + tag->first + " given twice");
      c.tags.insert(std::move(*tag));
      if (c.tags.size() > max_tags) {
        return usage("at most " + std::to_string(max_tags) + " tags");
      }
    } else if (name == "--metrics") {
      if (value.empty()) return usage("--metrics needs a JSON file");
      c.metrics_file = value;
    } else if (name == "--source") {
      if (value.size() > max_source_bytes || !utf8::is_valid_utf8(value)) {
        return usage("--source must be at most 1024 bytes of UTF-8");
      }
      c.source = value;
    } else if (name == "--force") {
      c.force = true;
    } else if (name == "--tokenizer") {
      if (value != "whitespace" && value != "wordpiece") {
        return usage("--tokenizer must be whitespace or wordpiece, got " + shown(value));
      }
      c.text_front_end["shoal.tokenizer"] = value;
    } else if (name == "--vocab") {
      if (value.empty()) return usage("--vocab needs a FILE (one token per line)");
      c.vocab_file = value;
    } else if (name == "--labels") {
      if (value.empty()) return usage("--labels needs a FILE (one label per line)");
      c.labels_file = value;
    } else if (name == "--scores") {
      if (value != "logits" && value != "probabilities" && value != "log_probabilities") {
        return usage("--scores must be logits, probabilities or log_probabilities, got " +
                     shown(value));
      }
      c.text_front_end["shoal.scores"] = value;
    } else if (name == "--max-tokens") {
      c.text_front_end["shoal.max_tokens"] = value;  // checked with the front end
    } else if (name == "--unk") {
      if (value.empty()) return usage("--unk needs a TOKEN");
      c.text_front_end["shoal.unk"] = value;
    } else if (name == "--cased") {
      c.text_front_end["shoal.lowercase"] = "0";
    } else if (name == "--stop") {
      c.stop = true;
    } else if (name == "--share") {
      // A percentage: "10%" or "10"; 0.0001% to 100%.
      std::string v = value;
      if (!v.empty() && v.back() == '%') v.pop_back();
      char* end = nullptr;
      errno = 0;
      const double pct = v.empty() ? -1 : std::strtod(v.c_str(), &end);
      if (v.empty() || errno != 0 || end != v.c_str() + v.size() || !(pct > 0) || pct > 100 ||
          std::llround(pct * 10000) < 1) {
        return usage("--share must be a percentage above 0 and at most 100 (10%), got " +
                     shown(value));
      }
      c.share_ppm = static_cast<uint32_t>(std::llround(pct * 10000));
    } else if (name == "--to" || name == "--version") {
      auto v = positive_integer(value, UINT32_MAX);
      if (!v) return usage(name + " must be a positive integer, got " + shown(value));
      c.version = uint32_t(*v);
    } else if (name == "--k") {
      auto v = positive_integer(value, max_top_k);
      if (!v) {
        return usage("--k must be an integer from 1 to " + std::to_string(max_top_k) + ", got " +
                     shown(value));
      }
      c.top_k = uint32_t(*v);
    } else if (name == "--jobs") {
      auto v = positive_integer(value, 64);
      if (!v) return usage("--jobs must be an integer from 1 to 64, got " + shown(value));
      c.jobs = uint32_t(*v);
    }
  }
  if (c.api_key.empty()) c.api_key = env.shoal_key;
  if (c.user.empty() && env.user.size() <= 128 && utf8::is_valid_utf8(env.user)) c.user = env.user;
  if (c.what == kind::promote || c.what == kind::validate) {
    // A promote may run the validation gate: two models over the whole set.
    if (!seen.count("--timeout")) c.timeout = default_push_timeout;
  }
  if (c.what == kind::infer && c.version && label) {
    return usage("--version and --label cannot be used together: pick one");
  }
  if (label) c.label = *label;
  if (node.empty()) node = default_node_address;
  auto hp = parse_host_port(node);
  if (!hp) return usage((node_from_env ? "SHOAL_NODE: " : "--node: ") + hp.error().message());
  c.node = hp->str();

  // Positionals.
  std::vector<std::string> pos(t.positionals.begin() + long(id.words), t.positionals.end());
  if ((c.what == kind::shadow || c.what == kind::canary) && c.stop) {
    if (pos.size() == 1) pos.push_back("");  // --stop needs no VERSION
    if (c.share_ppm != 0) return usage("--stop and --share cannot be used together");
  }
  if (c.what == kind::canary && !c.stop && c.share_ppm == 0 && pos.size() == 2) {
    return usage("--share is required: the share of production requests the canary answers");
  }
  if (c.what == kind::shadow && !c.stop && c.share_ppm == 0) c.share_ppm = 100000;  // 10%
  if (c.what == kind::policy_set && pos.size() > 2) {
    // KEY=VALUE ...: one or more settings.
    for (size_t i = 1; i < pos.size(); ++i) {
      auto eq = pos[i].find('=');
      if (eq == std::string::npos || eq == 0) {
        return usage("a setting is KEY=VALUE (an empty VALUE goes back to the default), got " +
                     shown(pos[i]));
      }
      c.settings[pos[i].substr(0, eq)] = pos[i].substr(eq + 1);
    }
    pos.resize(2);
  }
  if (pos.size() > spec.positionals.size()) {
    return usage("unexpected argument " + shown(pos[spec.positionals.size()]));
  }
  if (pos.size() < spec.positionals.size()) {
    return usage(std::string("missing ") + spec.positionals[pos.size()]);
  }
  if (c.what == kind::push_dir) {
    if (!is_valid_id_part(pos[0])) {
      return usage("invalid tenant " + shown(pos[0]) +
                   ": a tenant name must match [a-z0-9][a-z0-9_-]{0,63}");
    }
    if (pos[1].empty()) return usage("DIR is empty: name the directory of model files");
    c.tenant = pos[0];
    c.file = pos[1];
  } else if ((c.what == kind::policy_set || c.what == kind::policy_show) && !pos.empty() &&
             pos[0].find('/') == std::string::npos) {
    if (!is_valid_id_part(pos[0])) {
      return usage("invalid tenant " + shown(pos[0]) +
                   ": a tenant name must match [a-z0-9][a-z0-9_-]{0,63}");
    }
    c.id = model_id{pos[0], ""};  // the tenant's policy, for all its models
  } else if (c.what == kind::cluster_forget) {
    if (pos[0].empty() || pos[0].size() > 256 || !utf8::is_valid_utf8(pos[0])) {
      return usage("NODE must be a node's name or id (see 'shoal cluster status'), got " +
                   shown(pos[0]));
    }
    c.forget = pos[0];
  } else if (!pos.empty()) {
    auto mid = parse_model_id(pos[0]);
    if (!mid) return usage(utf8::to_valid_utf8(mid.error().message()));
    c.id = std::move(*mid);
  }
  switch (c.what) {
    case kind::push:
      if (pos[1].empty()) return usage("FILE is empty: name the model file to push");
      c.file = pos[1];
      break;
    case kind::validation_set:
      if (pos[1].empty()) return usage("FILE is empty: name the validation set file");
      c.file = pos[1];
      break;
    case kind::policy_set: {
      auto eq = pos[1].find('=');
      if (eq == std::string::npos || eq == 0) {
        return usage("a setting is KEY=VALUE (an empty VALUE goes back to the default), got " +
                     shown(pos[1]));
      }
      c.settings[pos[1].substr(0, eq)] = pos[1].substr(eq + 1);
      break;
    }
    case kind::shadow:
    case kind::canary:
      if (c.stop && pos[1].empty()) break;
      [[fallthrough]];
    case kind::show:
    case kind::validate:
    case kind::promote: {
      auto v = positive_integer(pos[1], UINT32_MAX);
      if (!v) return usage("VERSION must be a positive integer, got " + shown(pos[1]));
      c.version = uint32_t(*v);
      break;
    }
    case kind::infer:
      if (!utf8::is_valid_utf8(pos[1])) return usage("TEXT is not valid UTF-8");
      c.text = pos[1];
      break;
    default:
      break;
  }
  return c;
}

int run_cli(const std::vector<std::string>& args, const cli_env& env, std::ostream& out,
            std::ostream& err) {
  auto cmd = parse_cli(args, env);
  if (!cmd) {
    // One line, like every other error: scripts and logs keep it whole.
    err << "shoal: " << cmd.error().message() << " (" << cli_usage_hint(args) << ")\n";
    return 2;
  }
  status s = execute(*cmd, out, err, env.stderr_is_tty);
  out.flush();
  if (!s) {
    err << "shoal: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

int run_cli(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  cli_env env;
  if (const char* node = std::getenv("SHOAL_NODE")) env.shoal_node = node;
  if (const char* key = std::getenv("SHOAL_KEY")) env.shoal_key = key;
  if (const char* user = std::getenv("USER")) env.user = user;
  env.stderr_is_tty = ::isatty(2) == 1;
  return run_cli(args, env, std::cout, std::cerr);
}

}  // namespace shoal
