// Over 500 lines: every case of cli in one suite, so it reads as its specification.
#include "shoal/ops/cli.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/zmq_server.hpp"

namespace shoal {
namespace {

using namespace std::chrono_literals;
using args = std::vector<std::string>;
using kind = cli_command::kind;

cli_env node_env(std::string node) {
  cli_env env;
  env.shoal_node = std::move(node);
  return env;
}

cli_command parsed(const args& a, const cli_env& env = {}) {
  auto c = parse_cli(a, env);
  EXPECT_TRUE(c) << c.error().to_string();
  return c ? *c : cli_command{};
}

// ---- parsing -----------------------------------------------------------------------------------

TEST(cli_parse, snapshot_push) {
  auto c = parsed({"snapshot", "push", "acme/bot", "model.ftz", "--label", "staging", "--note",
                   "May data", "--json"});
  EXPECT_EQ(c.what, kind::push);
  EXPECT_EQ(c.name, "snapshot push");
  EXPECT_EQ(c.id, (model_id{"acme", "bot"}));
  EXPECT_EQ(c.file, "model.ftz");
  EXPECT_EQ(c.label, "staging");
  EXPECT_EQ(c.note, "May data");
  EXPECT_TRUE(c.json);
  EXPECT_EQ(c.node, "127.0.0.1:7421");
  EXPECT_EQ(c.timeout, 60s);
}

TEST(cli_parse, registry_metadata_and_the_commands_of_issue_18) {
  cli_env env;
  env.user = "alice";
  auto c = parsed({"snapshot", "push", "acme/bot", "m.bin", "--tag", "dataset=2026-12-01", "--tag",
                   "team=bots", "--metrics", "m.json", "--source", "git://x@1", "--force"},
                  env);
  EXPECT_EQ(c.user, "alice");  // $USER unless --user
  EXPECT_EQ(c.tags,
            (std::map<std::string, std::string>{{"dataset", "2026-12-01"}, {"team", "bots"}}));
  EXPECT_EQ(c.metrics_file, "m.json");
  EXPECT_EQ(c.source, "git://x@1");
  EXPECT_TRUE(c.force);
  EXPECT_EQ(parsed({"snapshot", "push", "acme/bot", "m.bin", "--user", "bob"}, env).user, "bob");
  c = parsed({"policy", "set", "acme/bot", "accuracy_drop=2", "watch=", "recall_drop=5"});
  EXPECT_EQ(c.what, cli_command::kind::policy_set);
  EXPECT_EQ(c.settings, (std::map<std::string, std::string>{
                            {"accuracy_drop", "2"}, {"recall_drop", "5"}, {"watch", ""}}));
  c = parsed({"policy", "show", "acme"});
  EXPECT_EQ(c.id.tenant, "acme");
  EXPECT_EQ(c.id.model, "");
  c = parsed({"snapshot", "shadow", "acme/bot", "3"});
  EXPECT_EQ(c.share_ppm, 100000u);  // 10% by default
  EXPECT_EQ(*c.version, 3u);
  c = parsed({"snapshot", "canary", "acme/bot", "3", "--share", "0.5%"});
  EXPECT_EQ(c.share_ppm, 5000u);
  c = parsed({"snapshot", "canary", "acme/bot", "--stop"});
  EXPECT_TRUE(c.stop);
  EXPECT_FALSE(c.version);
  c = parsed({"snapshot", "show", "acme/bot", "2", "--json"});
  EXPECT_EQ(c.what, cli_command::kind::show);
  c = parsed({"validation", "rollback", "acme/bot", "--to", "1"});
  EXPECT_EQ(c.what, cli_command::kind::validation_rollback);
  for (const args& bad :
       std::vector<args>{{"snapshot", "push", "acme/bot", "m.bin", "--tag", "novalue"},
                         {"snapshot", "push", "acme/bot", "m.bin", "--tag", "a=1", "--tag", "a=2"},
                         {"snapshot", "canary", "acme/bot", "3"},
                         {"snapshot", "canary", "acme/bot", "3", "--share", "0"},
                         {"snapshot", "shadow", "acme/bot", "--stop", "--share", "5%"},
                         {"policy", "set", "acme/bot", "nokey"},
                         {"validation", "frobnicate", "acme/bot"}}) {
    EXPECT_FALSE(parse_cli(bad, {})) << bad.size();
  }
}

TEST(cli_parse, snapshot_push_dir) {
  auto c = parsed({"snapshot", "push-dir", "acme", "models/", "--jobs", "8", "--label", "staging"});
  EXPECT_EQ(c.what, kind::push_dir);
  EXPECT_EQ(c.tenant, "acme");
  EXPECT_EQ(c.file, "models/");
  EXPECT_EQ(c.jobs, 8u);
  EXPECT_EQ(c.label, "staging");
  EXPECT_EQ(c.timeout, 60s);
  EXPECT_EQ(parsed({"snapshot", "push-dir", "acme", "d"}).jobs, 16u);
  auto bad_tenant = parse_cli({"snapshot", "push-dir", "acme/bot", "d"}, {});
  ASSERT_FALSE(bad_tenant);
  EXPECT_EQ(bad_tenant.error().message(),
            "snapshot push-dir: invalid tenant 'acme/bot': a tenant name must match "
            "[a-z0-9][a-z0-9_-]{0,63}");
  auto bad_jobs = parse_cli({"snapshot", "push-dir", "acme", "d", "--jobs", "0"}, {});
  ASSERT_FALSE(bad_jobs);
  EXPECT_EQ(bad_jobs.error().message(),
            "snapshot push-dir: --jobs must be an integer from 1 to 64, got '0'");
  auto missing = parse_cli({"snapshot", "push-dir", "acme"}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "snapshot push-dir: missing DIR");
  auto jobs_elsewhere = parse_cli({"snapshot", "push", "acme/bot", "f", "--jobs", "2"}, {});
  ASSERT_FALSE(jobs_elsewhere);
  EXPECT_EQ(jobs_elsewhere.error().message(), "snapshot push: unknown option '--jobs'");
}

TEST(cli_parse, options_go_anywhere_and_take_either_form) {
  auto c = parsed({"--node", "10.0.0.5:9000", "snapshot", "--json", "push", "--label=staging",
                   "acme/bot", "--timeout=2.5", "model.ftz"});
  EXPECT_EQ(c.what, kind::push);
  EXPECT_EQ(c.node, "10.0.0.5:9000");
  EXPECT_EQ(c.timeout, 2500ms);
  EXPECT_EQ(c.label, "staging");
  EXPECT_EQ(c.file, "model.ftz");
  EXPECT_TRUE(c.json);
}

TEST(cli_parse, snapshot_list_and_models) {
  auto l = parsed({"snapshot", "list", "acme/bot"});
  EXPECT_EQ(l.what, kind::list);
  EXPECT_EQ(l.id, (model_id{"acme", "bot"}));
  EXPECT_FALSE(l.json);
  EXPECT_EQ(l.timeout, 10s);
  EXPECT_TRUE(parsed({"snapshot", "list", "--json", "acme/bot"}).json);
  auto m = parsed({"models"});
  EXPECT_EQ(m.what, kind::models);
  EXPECT_EQ(m.name, "models");
  EXPECT_TRUE(parsed({"models", "--json"}).json);
}

TEST(cli_parse, snapshot_promote_and_rollback) {
  auto p = parsed({"snapshot", "promote", "acme/bot", "2"});
  EXPECT_EQ(p.what, kind::promote);
  EXPECT_EQ(p.version, std::optional<uint32_t>(2));
  EXPECT_EQ(p.label, "");
  EXPECT_EQ(parsed({"snapshot", "promote", "--label", "staging", "acme/bot", "4294967295"}).version,
            std::optional<uint32_t>(4294967295u));

  auto r = parsed({"snapshot", "rollback", "acme/bot"});
  EXPECT_EQ(r.what, kind::rollback);
  EXPECT_FALSE(r.version.has_value());
  auto to = parsed({"snapshot", "rollback", "acme/bot", "--to", "1", "--label", "canary"});
  EXPECT_EQ(to.version, std::optional<uint32_t>(1));
  EXPECT_EQ(to.label, "canary");
}

TEST(cli_parse, infer) {
  auto c = parsed({"infer", "acme/bot", "where is my order", "--k", "3", "--version", "2"});
  EXPECT_EQ(c.what, kind::infer);
  EXPECT_EQ(c.text, "where is my order");
  EXPECT_EQ(c.top_k, 3u);
  EXPECT_EQ(c.version, std::optional<uint32_t>(2));
  auto l = parsed({"infer", "--label", "staging", "--json", "acme/bot", "hi"});
  EXPECT_EQ(l.label, "staging");
  EXPECT_TRUE(l.json);
  EXPECT_EQ(l.top_k, 1u);
  // "--" lets a text start with a dash.
  EXPECT_EQ(parsed({"infer", "acme/bot", "--", "-5 degrees"}).text, "-5 degrees");
  EXPECT_EQ(parsed({"infer", "acme/bot", "-3 is a number"}).text, "-3 is a number");
  EXPECT_EQ(parsed({"infer", "acme/bot", ""}).text, "");
}

TEST(cli_parse, the_key_comes_from_the_flag_then_the_environment) {
  cli_env env;
  env.shoal_key = "env-key-0123456789";
  EXPECT_EQ(parsed({"models"}, env).api_key, "env-key-0123456789");
  EXPECT_EQ(parsed({"models", "--key", "flag-key-0123456789"}, env).api_key, "flag-key-0123456789");
  EXPECT_EQ(parsed({"snapshot", "push-dir", "acme", "d", "--key=k"}).api_key, "k");
  EXPECT_EQ(parsed({"models"}).api_key, "");
  auto empty = parse_cli({"models", "--key", ""}, {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "models: --key needs the API key (or set SHOAL_KEY)");
}

TEST(cli_parse, node_comes_from_the_flag_then_the_environment_then_the_default) {
  cli_env env = node_env("10.1.2.3:7000");
  EXPECT_EQ(parsed({"models"}, env).node, "10.1.2.3:7000");
  EXPECT_EQ(parsed({"models", "--node", "[::1]:7421"}, env).node, "[::1]:7421");
  EXPECT_EQ(parsed({"models"}).node, "127.0.0.1:7421");
  // A bad environment does not matter when the flag overrides it.
  EXPECT_EQ(parsed({"models", "--node", "h:1"}, node_env("junk")).node, "h:1");
}

TEST(cli_parse, help_everywhere) {
  struct row {
    args a;
    std::string name;
  };
  for (const auto& r :
       std::vector<row>{{{"--help"}, ""},
                        {{"-h"}, ""},
                        {{"snapshot", "--help"}, "snapshot"},
                        {{"snapshot", "-h"}, "snapshot"},
                        {{"snapshot", "push", "--help"}, "snapshot push"},
                        {{"snapshot", "list", "-h"}, "snapshot list"},
                        {{"snapshot", "promote", "--help"}, "snapshot promote"},
                        {{"snapshot", "rollback", "--help"}, "snapshot rollback"},
                        {{"models", "--help"}, "models"},
                        {{"infer", "--help"}, "infer"},
                        // help wins over the other mistakes on the line
                        {{"infer", "--bogus", "x", "--help"}, "infer"},
                        {{"snapshot", "promote", "acme/bot", "x", "-h"}, "snapshot promote"}}) {
    auto c = parsed(r.a);
    EXPECT_EQ(c.what, kind::help);
    EXPECT_EQ(c.name, r.name);
    EXPECT_FALSE(cli_help(r.name).empty());
  }
  EXPECT_NE(cli_help("").find("shoal node --help"), std::string::npos);
  for (const char* cmd : {"snapshot push", "snapshot list", "snapshot promote", "snapshot rollback",
                          "models", "infer"}) {
    EXPECT_NE(cli_help("").find(cmd), std::string::npos) << cmd;
    EXPECT_NE(cli_help(cmd).find("usage: shoal " + std::string(cmd)), std::string::npos) << cmd;
    EXPECT_NE(cli_help(cmd).find("--node HOST:PORT"), std::string::npos) << cmd;
  }
}

TEST(cli_parse, usage_errors_say_what_is_wrong_and_where_to_look) {
  struct row {
    args a;
    std::string message;
    std::string hint;
  };
  const std::vector<row> table = {
      {{},
       "missing command: try snapshot push|list|show|promote|rollback, validation, policy, models, "
       "infer or cluster status",
       "try 'shoal --help'"},
      {{"deploy"},
       "unknown command 'deploy': expected snapshot push|list|show|promote|rollback, validation, "
       "policy, models, infer or cluster status",
       "try 'shoal --help'"},
      {{"snapshot"},
       "snapshot: missing subcommand: push, push-dir, list, show, validate, shadow, canary, "
       "promote or rollback",
       "try 'shoal snapshot --help'"},
      {{"snapshot", "delete", "acme/bot"},
       "snapshot: unknown subcommand 'delete': expected push, push-dir, list, show, validate, "
       "shadow, canary, promote or rollback",
       "try 'shoal snapshot --help'"},
      {{"snapshot", "promote", "acme/bot", "x"},
       "snapshot promote: VERSION must be a positive integer, got 'x'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot", "0"},
       "snapshot promote: VERSION must be a positive integer, got '0'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot", "-1"},
       "snapshot promote: VERSION must be a positive integer, got '-1'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot", "4294967296"},
       "snapshot promote: VERSION must be a positive integer, got '4294967296'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot"},
       "snapshot promote: missing VERSION",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote"},
       "snapshot promote: missing TENANT/MODEL",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot", "2", "3"},
       "snapshot promote: unexpected argument '3'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "promote", "acme/bot", "2", "--to", "1"},
       "snapshot promote: unknown option '--to'",
       "try 'shoal snapshot promote --help'"},
      {{"snapshot", "rollback", "acme/bot", "--json"},
       "snapshot rollback: unknown option '--json'",
       "try 'shoal snapshot rollback --help'"},
      {{"snapshot", "rollback", "acme/bot", "--to", "two"},
       "snapshot rollback: --to must be a positive integer, got 'two'",
       "try 'shoal snapshot rollback --help'"},
      {{"snapshot", "rollback", "acme/bot", "--label"},
       "snapshot rollback: option '--label' needs a value",
       "try 'shoal snapshot rollback --help'"},
      {{"snapshot", "rollback", "acme/bot", "--label", "Prod"},
       "snapshot rollback: invalid label 'Prod': a label name must match [a-z0-9][a-z0-9_.-]{0,63}",
       "try 'shoal snapshot rollback --help'"},
      {{"snapshot", "push", "acme/bot"},
       "snapshot push: missing FILE",
       "try 'shoal snapshot push --help'"},
      {{"snapshot", "push", "../x", "f"},
       "snapshot push: invalid model id '../x': tenant must match [a-z0-9][a-z0-9_-]{0,63}",
       "try 'shoal snapshot push --help'"},
      {{"snapshot", "push", "acme", "f"},
       "snapshot push: invalid model id 'acme': expected TENANT/MODEL",
       "try 'shoal snapshot push --help'"},
      {{"snapshot", "push", "acme/bot", "f", "--note", "a", "--note", "b"},
       "snapshot push: option '--note' given twice",
       "try 'shoal snapshot push --help'"},
      {{"snapshot", "push", "acme/bot", "f", "--note", "\xFF"},
       "snapshot push: --note is not valid UTF-8",
       "try 'shoal snapshot push --help'"},
      {{"snapshot", "list", "acme/bot", "--k", "2"},
       "snapshot list: unknown option '--k'",
       "try 'shoal snapshot list --help'"},
      {{"snapshot", "list", "acme/bot", "--json=yes"},
       "snapshot list: option '--json' takes no value",
       "try 'shoal snapshot list --help'"},
      {{"models", "extra"}, "models: unexpected argument 'extra'", "try 'shoal models --help'"},
      {{"models", "--verbose"}, "models: unknown option '--verbose'", "try 'shoal models --help'"},
      {{"models", "--timeout", "0"},
       "models: --timeout must be a positive number of seconds, got '0'",
       "try 'shoal models --help'"},
      {{"models", "--timeout", "soon"},
       "models: --timeout must be a positive number of seconds, got 'soon'",
       "try 'shoal models --help'"},
      {{"models", "--node", "localhost"},
       "models: --node: invalid node address 'localhost': expected HOST:PORT, e.g. 127.0.0.1:7421",
       "try 'shoal models --help'"},
      {{"infer", "acme/bot", "hi", "--version", "2", "--label", "staging"},
       "infer: --version and --label cannot be used together: pick one",
       "try 'shoal infer --help'"},
      {{"infer", "acme/bot", "hi", "--version", "v2"},
       "infer: --version must be a positive integer, got 'v2'",
       "try 'shoal infer --help'"},
      {{"infer", "acme/bot", "hi", "--k", "0"},
       "infer: --k must be an integer from 1 to 1000, got '0'",
       "try 'shoal infer --help'"},
      {{"infer", "acme/bot", "hi", "--k", "1001"},
       "infer: --k must be an integer from 1 to 1000, got '1001'",
       "try 'shoal infer --help'"},
      {{"infer", "acme/bot"}, "infer: missing TEXT", "try 'shoal infer --help'"},
      {{"infer", "acme/bot", "caf\xE9"},
       "infer: TEXT is not valid UTF-8",
       "try 'shoal infer --help'"},
      {{"infer", "acme/bot", "-x"}, "infer: unknown option '-x'", "try 'shoal infer --help'"},
  };
  for (const auto& r : table) {
    auto c = parse_cli(r.a, {});
    std::string line;
    for (const auto& a : r.a) line += " " + a;
    ASSERT_FALSE(c) << "shoal" << line;
    EXPECT_EQ(c.error().code(), status_code::invalid_argument);
    EXPECT_EQ(c.error().message(), r.message) << "shoal" << line;
    EXPECT_EQ(cli_usage_hint(r.a), r.hint) << "shoal" << line;
  }
  auto env = parse_cli({"models"}, node_env("nope"));
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error().message(),
            "models: SHOAL_NODE: invalid node address 'nope': expected HOST:PORT, e.g. "
            "127.0.0.1:7421");
}

// ---- running against a fake node ---------------------------------------------------------------

model_entry sample_entry() {
  model_entry e;
  e.id = model_id{"acme", "bot"};
  e.snapshots.push_back(
      {1, "3f5a9c0e1b2d" + std::string(52, '0'), 1714564800000, 812, "fasttext", "first",
       {"n1", "n2"}});
  e.snapshots.push_back({2, "9a8b7c6d5e4f" + std::string(52, '1'), 1714653000000, 1572864,
                         "fasttext", "retrained\ton May data", {}});
  snapshot_info& v2 = e.snapshots.back();
  v2.user = "alice";
  v2.pushed_with = "ci";
  v2.tags = {{"dataset", "2024-05"}};
  v2.metrics_json = "{\"accuracy\":0.91}";
  v2.source = "git://example/bots@abc";
  label_state prod;
  prod.stack = {1};
  prod.history = {{0, 1, label_action::promote, 1714564800000},
                  {1, 2, label_action::promote, 1714653100000},
                  {2, 1, label_action::rollback, 1714653200000}};
  prod.history[1].forced = true;
  prod.history[1].by = "bob";
  e.labels["production"] = prod;
  label_state staging;
  staging.stack = {2};
  staging.history = {{0, 2, label_action::promote, 1714653000000}};
  e.labels["staging"] = staging;
  return e;
}

// A node that answers from a script and remembers what it was asked.
class fake_node {
 public:
  fake_node() {
    zmq_server_options o;
    o.port = 0;
    auto s = zmq_server::start(
        o, [this](std::string bytes, zmq_respond respond) { respond(answer(bytes)); });
    EXPECT_TRUE(s) << s.error().to_string();
    server_ = std::move(s).value();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  api_call last_call() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::string answer(const std::string& bytes) {
    auto req = decode_request(bytes);
    if (!req) return encode_error(req.error().request_id, req.error().error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = req->call;
    }
    uint64_t id = req->request_id;
    const api_call& call = req->call;
    if (auto* p = std::get_if<push_request>(&call)) {
      return encode_response(
          id, push_result{3, std::string(64, 'c'), {p->label.empty() ? "production" : p->label},
                          p->label == "lonely" ? 1u : 2u, 2, p->label == "lonely" ? "only 1 node is alive" : ""});
    }
    if (auto* l = std::get_if<list_request>(&call)) {
      if (l->id.model != "bot")
        return encode_error(id, status::not_found("no model " + l->id.str()));
      return encode_response(id, sample_entry());
    }
    if (std::holds_alternative<models_request>(call)) {
      model_entry other;
      other.id = model_id{"zeta", "faq"};
      other.snapshots.push_back({1, "ab", 0, 1, "fasttext", "", {}});
      return encode_response(id, std::vector<model_entry>{sample_entry(), other});
    }
    if (auto* l = std::get_if<label_request>(&call)) {
      if (l->version == 7u) {
        return encode_error(id,
                            status::not_found("model acme/bot has no version 7 (versions: 1-2)"));
      }
      return l->action == label_action::promote
                 ? encode_response(id, label_result{"production", 1, 2})
                 : encode_response(id, label_result{"production", 2, 1});
    }
    if (auto* i = std::get_if<infer_request>(&call)) {
      infer_result r{i->id, 2, {{{"greet", 0.9f}, {"bye", 0.0625f}}}};
      r.rows[0].resize(std::min<size_t>(i->top_k, 2));
      return encode_response(id, r);
    }
    if (std::holds_alternative<cluster_status_request>(call)) return encode_response(id, sample_cluster());
    return encode_error(id, status::internal("unexpected call"));
  }

 public:
  static cluster_status sample_cluster() {
    cluster_status st;
    member_view self;
    self.entry = {"a1", "n1", "127.0.0.1:7420", "127.0.0.1:7422", "127.0.0.1:7421",
                  "127.0.0.1:7423", 100, member_status::alive, 57,
                  {2, 3, 3ull << 30, 1500, 700, 42, 2}};
    self.is_self = true;
    self.snapshots_held = 12;
    member_view peer;
    peer.entry = {"b2", "n2", "127.0.0.1:7430", "127.0.0.1:7432", "127.0.0.1:7431", "", 205,
                  member_status::suspect, 40, {0, 1, 700ull << 20}};
    peer.phi = 9.25;
    peer.since_heard_ms = 1250;
    member_view gone;
    gone.entry = {"c3", "n3", "127.0.0.1:7440", "", "", "", 7, member_status::dead, 3, {}};
    gone.phi = 123.4567;
    st.members = {self, peer, gone};
    return st;
  }

 private:
  std::mutex mu_;
  api_call last_ = status_request{};
  std::unique_ptr<zmq_server> server_;
};

struct run_output {
  int code;
  std::string out;
  std::string err;
};

run_output run(const args& a, const cli_env& env = {}) {
  std::ostringstream out;
  std::ostringstream err;
  int code = run_cli(a, env, out, err);
  return {code, out.str(), err.str()};
}

class cli_run : public ::testing::Test {
 protected:
  run_output shoal(args a) {
    a.push_back("--node");
    a.push_back(node_.address());
    return run(a);
  }
  fake_node node_;
};

TEST_F(cli_run, push_prints_the_version) {
  char path[] = "/tmp/shoal-cli-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string bytes("model\0bytes\xFF", 12);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
  close(fd);

  auto r = shoal({"snapshot", "push", "acme/bot", path, "--label", "staging", "--note", "n"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "3\n");
  EXPECT_EQ(r.err, "");
  auto sent = std::get<push_request>(node_.last_call());
  EXPECT_EQ(sent.bytes, bytes);
  EXPECT_EQ(sent.label, "staging");
  EXPECT_EQ(sent.note, "n");

  r = shoal({"snapshot", "push", "acme/bot", path, "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"version\":3,\"sha256\":\"" + std::string(64, 'c') +
                       "\",\"labels\":[\"production\"],\"copies\":2,\"replication_factor\":2,"
                       "\"replication_note\":\"\"}\n");
  EXPECT_EQ(r.err, "");
  // Fewer copies than the cluster keeps: stdout stays the version, stderr says why.
  r = shoal({"snapshot", "push", "acme/bot", path, "--label", "lonely"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "3\n");
  EXPECT_EQ(r.err, "shoal: note: version 3 is stored on 1 of 2 nodes: only 1 node is alive\n");
  std::remove(path);
}

TEST_F(cli_run, push_of_a_missing_file_names_the_path) {
  auto r = shoal({"snapshot", "push", "acme/bot", "/nonexistent/model.ftz"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "shoal: cannot read model file '/nonexistent/model.ftz': No such file or directory\n");
  auto dir = shoal({"snapshot", "push", "acme/bot", "/tmp"});
  EXPECT_EQ(dir.code, 1);
  EXPECT_EQ(dir.err, "shoal: cannot read model file '/tmp': Is a directory\n");
}

TEST_F(cli_run, list_prints_a_table_and_label_history) {
  auto r = shoal({"snapshot", "list", "acme/bot"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "VERSION  CREATED               SIZE     SHA256        LABELS      HELD BY  PUSHED BY  "
            "     NOTE\n"
            "1        2024-05-01T12:00:00Z  812 B    3f5a9c0e1b2d  production  n1,n2    -          "
            "     first\n"
            "2        2024-05-02T12:30:00Z  1.5 MiB  9a8b7c6d5e4f  staging     -        alice (key "
            "ci)  retrained on May data\n"
            "\n"
            "production: 1 -> 2 (forced by bob) -> 1 (rollback)\n"
            "staging: 2\n");
}

TEST_F(cli_run, list_json) {
  auto r = shoal({"snapshot", "list", "acme/bot", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["snapshots"].size(), 2u);
  const auto& v1 = j["snapshots"][0];
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["sha256"], "3f5a9c0e1b2d" + std::string(52, '0'));
  EXPECT_EQ(v1["created_ms"], 1714564800000);
  EXPECT_EQ(v1["size_bytes"], 812);
  EXPECT_EQ(v1["note"], "first");
  EXPECT_EQ(v1["labels"], nlohmann::json::array({"production"}));
  EXPECT_EQ(v1["holders"], nlohmann::json::array({"n1", "n2"}));
  EXPECT_EQ(v1["user"], "");
  EXPECT_TRUE(v1["metrics"].is_null());
  const auto& v2 = j["snapshots"][1];
  EXPECT_EQ(v2["note"], "retrained\ton May data");
  EXPECT_EQ(v2["user"], "alice");
  EXPECT_EQ(v2["pushed_with"], "ci");
  EXPECT_EQ(v2["tags"]["dataset"], "2024-05");
  EXPECT_EQ(v2["metrics"]["accuracy"], 0.91);
  EXPECT_EQ(v2["source"], "git://example/bots@abc");
  const auto& history = j["labels"]["production"]["history"];
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1]["forced"], true);
  EXPECT_EQ(history[1]["by"], "bob");
  EXPECT_EQ(history[2]["action"], "rollback");
  EXPECT_EQ(j["labels"]["staging"]["version"], 2);
  EXPECT_TRUE(j["validation_set"].is_null());
  EXPECT_TRUE(j["trial"].is_null());
}

TEST_F(cli_run, models_prints_one_line_per_model) {
  auto r = shoal({"models"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "acme/bot  2 versions  production: 1\n"
            "zeta/faq  1 version   production: none\n");
  auto j = shoal({"models", "--json"});
  EXPECT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(j.out.rfind("{\"models\":[{\"model\":\"acme/bot\",\"snapshots\":[", 0), 0u) << j.out;
  EXPECT_NE(j.out.find("{\"model\":\"zeta/faq\",\"snapshots\":[{\"version\":1,"),
            std::string::npos);
}

TEST_F(cli_run, promote_and_rollback_print_the_move) {
  auto p = shoal({"snapshot", "promote", "acme/bot", "2"});
  EXPECT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.out, "acme/bot production: 1 -> 2\n");
  auto sent = std::get<label_request>(node_.last_call());
  EXPECT_EQ(sent.action, label_action::promote);
  EXPECT_EQ(sent.version, std::optional<uint32_t>(2));

  auto r = shoal({"snapshot", "rollback", "acme/bot", "--to", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "acme/bot production: 2 -> 1\n");
  sent = std::get<label_request>(node_.last_call());
  EXPECT_EQ(sent.action, label_action::rollback);
  EXPECT_EQ(sent.version, std::optional<uint32_t>(1));
}

TEST_F(cli_run, infer_prints_label_tab_score) {
  auto r = shoal({"infer", "acme/bot", "hello there", "--k", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "greet\t0.900000\nbye\t0.062500\n");
  auto sent = std::get<infer_request>(node_.last_call());
  EXPECT_EQ(sent.texts, std::vector<std::string>{"hello there"});
  EXPECT_EQ(sent.top_k, 2u);

  auto j = shoal({"infer", "acme/bot", "hi", "--json", "--label", "staging"});
  EXPECT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(j.out,
            "{\"model\":\"acme/bot\",\"version\":2,\"predictions\":[{\"label\":\"greet\","
            "\"score\":0.9}]}\n");
  EXPECT_EQ(std::get<infer_request>(node_.last_call()).label, "staging");
}

TEST_F(cli_run, node_errors_exit_1_with_the_node_message) {
  auto r = shoal({"snapshot", "promote", "acme/bot", "7"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "shoal: model acme/bot has no version 7 (versions: 1-2)\n");
  auto l = shoal({"snapshot", "list", "acme/none"});
  EXPECT_EQ(l.code, 1);
  EXPECT_EQ(l.err, "shoal: no model acme/none\n");
}

TEST(cli_run_alone, usage_errors_exit_2_with_one_line) {
  auto r = run({"snapshot", "promote", "acme/bot", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "shoal: snapshot promote: VERSION must be a positive integer, got 'x' "
            "(try 'shoal snapshot promote --help')\n");
}

TEST(cli_run_alone, help_goes_to_stdout_and_exits_0) {
  auto r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, cli_help(""));
  auto p = run({"snapshot", "push", "-h"});
  EXPECT_EQ(p.code, 0);
  EXPECT_EQ(p.out, cli_help("snapshot push"));
}

TEST(cli_run_alone, an_absent_node_is_one_line_and_exit_1) {
  uint16_t port = 0;
  {
    zmq_server_options o;
    o.port = 0;
    auto s = zmq_server::start(o, [](std::string, zmq_respond) {});
    ASSERT_TRUE(s);
    port = (*s)->port();
  }
  std::string address = "127.0.0.1:" + std::to_string(port);
  auto r = run({"models", "--timeout", "0.2"}, node_env(address));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "shoal: no answer from node " + address +
                       " within 200ms: is `shoal node` running there?\n");
}

TEST_F(cli_run, cluster_status_prints_a_table_and_json) {
  auto r = shoal({"cluster", "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "NAME  ADDRESS         STATUS   INCARNATION  PHI    HEARD     IN-FLIGHT  LOADED  HELD  "
            "EXTRA  FREE MEM  LOCAL  FORWARDED  FOR PEERS\n"
            "n1 *  127.0.0.1:7420  alive    100          -      -         2          3       12    "
            "2      3.0G      1500   700        42\n"
            "n2    127.0.0.1:7430  suspect  205          9.2    1.2s ago  0          1       0     "
            "0      700M      0      0          0\n"
            "n3    127.0.0.1:7440  dead     7            123.5  -         0          0       0     "
            "0      0         0      0          0\n"
            "(* this node. EXTRA: of the versions HELD, copies taken for the node's own traffic.\n"
            " LOCAL, FORWARDED: its clients' requests it answered, and sent to a holder; FOR PEERS:\n"
            " requests other nodes sent it. Counts since each node started.)\n");
  EXPECT_TRUE(std::holds_alternative<cluster_status_request>(node_.last_call()));

  auto j = shoal({"cluster", "status", "--json"});
  EXPECT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["members"].size(), 3u);
  EXPECT_EQ(doc["members"][0]["name"], "n1");
  EXPECT_EQ(doc["members"][0]["self"], true);
  EXPECT_TRUE(doc["members"][0]["since_heard_ms"].is_null());
  EXPECT_EQ(doc["members"][1]["status"], "suspect");
  EXPECT_EQ(doc["members"][1]["incarnation"], 205);
  EXPECT_EQ(doc["members"][1]["phi"], 9.25);
  EXPECT_EQ(doc["members"][1]["since_heard_ms"], 1250);
  EXPECT_EQ(doc["members"][1]["zmq_address"], "127.0.0.1:7431");
  EXPECT_EQ(doc["members"][1]["load"]["loaded_models"], 1);
  EXPECT_EQ(doc["members"][1]["load"]["free_model_memory"], 700ull << 20);
  EXPECT_EQ(doc["members"][0]["snapshots_held"], 12);
  EXPECT_EQ(doc["members"][0]["data_address"], "127.0.0.1:7423");
  EXPECT_EQ(doc["members"][0]["load"]["served_local"], 1500);
  EXPECT_EQ(doc["members"][0]["load"]["forwarded"], 700);
  EXPECT_EQ(doc["members"][0]["load"]["served_for_peers"], 42);
  EXPECT_EQ(doc["members"][0]["load"]["traffic_copies"], 2);
  EXPECT_EQ(doc["members"][2]["status"], "dead");
}

TEST(cli_parse, cluster_commands_and_their_usage_errors) {
  auto c = parse_cli({"cluster", "status", "--json"}, {});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->what, cli_command::kind::cluster_status);
  EXPECT_TRUE(c->json);
  auto f = parse_cli({"cluster", "forget", "n3", "--user", "ops"}, {});
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->what, cli_command::kind::cluster_forget);
  EXPECT_EQ(f->forget, "n3");
  EXPECT_EQ(f->user, "ops");
  struct row {
    std::vector<std::string> a;
    std::string message;
    std::string hint;
  };
  const row table[] = {
      {{"cluster"}, "cluster: missing subcommand: status or forget", "try 'shoal cluster --help'"},
      {{"cluster", "stats"},
       "cluster: unknown subcommand 'stats': expected status or forget",
       "try 'shoal cluster --help'"},
      {{"cluster", "forget"}, "cluster forget: missing NODE", "try 'shoal cluster forget --help'"},
      {{"cluster", "forget", "n1", "n2"},
       "cluster forget: unexpected argument 'n2'",
       "try 'shoal cluster forget --help'"},
      {{"cluster", "forget", ""},
       "cluster forget: NODE must be a node's name or id (see 'shoal "
       "cluster status'), got ''",
       "try 'shoal cluster forget --help'"},
      {{"cluster", "status", "x"},
       "cluster status: unexpected argument 'x'",
       "try 'shoal cluster status --help'"},
      {{"cluster", "status", "--k", "2"},
       "cluster status: unknown option '--k'",
       "try 'shoal cluster status --help'"},
  };
  for (const auto& r : table) {
    auto p = parse_cli(r.a, {});
    ASSERT_FALSE(p) << r.message;
    EXPECT_EQ(p.error().message(), r.message);
    EXPECT_EQ(cli_usage_hint(r.a), r.hint);
  }
  EXPECT_NE(cli_help("cluster status").find("usage: shoal cluster status [--json]"), std::string::npos);
  EXPECT_NE(cli_help("").find("cluster status"), std::string::npos);
}

}  // namespace
}  // namespace shoal
