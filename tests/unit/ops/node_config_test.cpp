#include "shoal/ops/node_config.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(node_config, defaults_match_the_documentation) {
  auto cmd = parse_node_args({"--data-dir", "/tmp/d"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  const auto& c = cmd->config;
  EXPECT_EQ(c.data_dir, "/tmp/d");
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.http_port, 7422);
  EXPECT_EQ(c.zmq_port, 7421);
  EXPECT_EQ(c.cluster_port, 7420);
  EXPECT_FALSE(c.grpc_port.has_value()) << "unset: the HTTP port + 1 (7423), decided at start";
  EXPECT_EQ(c.name, "127.0.0.1:7422");
  EXPECT_EQ(c.max_body_bytes, 4u << 20);
  EXPECT_EQ(c.model_memory_mb, 0u) << "0: half of the machine's RAM, decided at start";
  EXPECT_EQ(c.keep_replaced_warm_s, 600);
}

TEST(node_config, tenants_keys_and_overload_settings) {
  node_config cfg;
  ASSERT_TRUE(apply_config_text("keys_file = keys\n"
                                "tenant_limits = rate=100/s in_flight=10\n"
                                "tenant_limits.acme = models=5 stored_mb=64   # big customer\n"
                                "max_in_flight = 256\ndrain_timeout_ms = 0\n",
                                "n.conf", "/etc/shoal", cfg)
                  .is_ok());
  EXPECT_EQ(cfg.keys_file, "/etc/shoal/keys") << "relative to the config file";
  EXPECT_EQ(cfg.limits.defaults.rate, 100);
  EXPECT_EQ(cfg.limits.defaults.in_flight, 10u);
  EXPECT_EQ(cfg.limits.of("acme").models, 5u);
  EXPECT_EQ(cfg.limits.of("acme").stored_bytes, 64ull << 20);
  EXPECT_EQ(cfg.limits.of("acme").rate, 0) << "a tenant's line replaces the default line";
  EXPECT_EQ(cfg.max_in_flight, 256u);
  EXPECT_EQ(cfg.drain_timeout_ms, 0u);
  node_config bad;
  auto s = apply_config_text("tenant_limits.Acme = models=5\n", "n.conf", "", bad);
  EXPECT_EQ(s.message(),
            "n.conf line 1: tenant_limits.Acme: 'Acme' is no tenant name ([a-z0-9][a-z0-9_-]{0,63})");
  s = apply_config_text("tenant_limits = modles=5\n", "n.conf", "", bad);
  EXPECT_EQ(s.message(),
            "n.conf line 1: tenant_limits: unknown limit 'modles' (known: rate, burst, in_flight, "
            "models, stored_mb)");
  auto flags = parse_node_args({"--data-dir", "/d", "--keys-file", "k", "--max-in-flight", "7"});
  ASSERT_TRUE(flags.is_ok()) << flags.error().message();
  EXPECT_EQ(flags->config.keys_file, "k");
  EXPECT_EQ(flags->config.max_in_flight, 7u);
  EXPECT_NE(node_usage().find("--keys-file FILE"), std::string::npos);
}

TEST(node_config, model_memory_from_flag_and_file) {
  auto cmd = parse_node_args({"--data-dir", "/tmp/d", "--model-memory-mb", "512",
                              "--keep-replaced-warm-s=30"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.model_memory_mb, 512u);
  EXPECT_EQ(cmd->config.keep_replaced_warm_s, 30);
  node_config cfg;
  ASSERT_TRUE(apply_config_text("model_memory_mb = 2048\n", "n.conf", "", cfg).is_ok());
  EXPECT_EQ(cfg.model_memory_mb, 2048u);
  auto bad = parse_node_args({"--data-dir", "/tmp/d", "--model-memory-mb", "lots"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.error().message().find("--model-memory-mb"), std::string::npos)
      << bad.error().message();
  EXPECT_NE(node_usage().find("--model-memory-mb"), std::string::npos);
}

TEST(node_config, flags_override_the_config_file_in_any_order) {
  char dir[] = "/tmp/shoal-config-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/node.conf";
  std::ofstream(path) << "# a comment\n data_dir = data  # relative to the file\nhttp_port=9000\n"
                         "zmq_port = 9001\nname = \"shop node\"\n";
  auto cmd = parse_node_args({"--http-port", "9100", "--config", path});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.http_port, 9100);
  EXPECT_EQ(cmd->config.zmq_port, 9001);
  EXPECT_EQ(cmd->config.data_dir, std::string(dir) + "/data");
  EXPECT_EQ(cmd->config.name, "shop node");
  auto eq_form = parse_node_args({"--config", path, "--zmq-port=9200"});
  ASSERT_TRUE(eq_form.is_ok());
  EXPECT_EQ(eq_form->config.zmq_port, 9200);
  std::remove(path.c_str());
  rmdir(dir);
}

TEST(node_config, grpc_port_from_flag_and_file) {
  auto flag = parse_node_args({"--data-dir", "/tmp/d", "--grpc-port", "9001"});
  ASSERT_TRUE(flag.is_ok()) << flag.error().message();
  EXPECT_EQ(flag->config.grpc_port, std::optional<uint16_t>(9001));
  auto any = parse_node_args({"--data-dir", "/tmp/d", "--grpc-port", "0"});
  ASSERT_TRUE(any.is_ok());
  EXPECT_EQ(any->config.grpc_port, std::optional<uint16_t>(0));
  auto bad = parse_node_args({"--data-dir", "/tmp/d", "--grpc-port", "70000"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.error().message().find("--grpc-port must be between 0 and 65535"),
            std::string::npos)
      << bad.error().message();
}

TEST(node_config, bad_input_names_the_problem) {
  struct row {
    std::vector<std::string> args;
    const char* says;
  };
  for (const auto& r : std::vector<row>{
           {{}, "--data-dir DIR is required"},
           {{"--data-dir", "/d", "--http-port", "70000"}, "between 0 and 65535"},
           {{"--data-dir", "/d", "--http-port", "x"}, "whole number"},
           {{"--data-dir", "/d", "--bogus"}, "unknown option '--bogus'"},
           {{"--data-dir", "/d", "stray"}, "unexpected argument 'stray'"},
           {{"--data-dir"}, "needs a value"},
           {{"--config", "/nonexistent/x.conf"}, "cannot read config file"},
       }) {
    auto cmd = parse_node_args(r.args);
    ASSERT_FALSE(cmd.is_ok());
    EXPECT_NE(cmd.error().message().find(r.says), std::string::npos) << cmd.error().message();
  }
  node_config cfg;
  auto s = apply_config_text("http_port = 1\nhtp_port = 2\n", "node.conf", "", cfg);
  EXPECT_NE(s.message().find("node.conf line 2"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unknown setting 'htp_port'"), std::string::npos);
  EXPECT_FALSE(apply_config_text("just words\n", "n.conf", "", cfg).is_ok());
}

TEST(node_config, log_format_from_flag_and_file) {
  auto cmd = parse_node_args({"--data-dir", "/d"});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_EQ(cmd->config.log_format, log_format::human);
  cmd = parse_node_args({"--data-dir", "/d", "--log-format", "json"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.log_format, log_format::json);
  node_config cfg;
  ASSERT_TRUE(apply_config_text("log_format = json\n", "n.conf", "", cfg).is_ok());
  EXPECT_EQ(cfg.log_format, log_format::json);
  auto bad = parse_node_args({"--data-dir", "/d", "--log-format", "xml"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.error().message(), "--log-format must be human or json, got 'xml'");
  EXPECT_NE(node_usage().find("--log-format FMT"), std::string::npos);
}

TEST(node_config, help_is_recognised_anywhere) {
  auto cmd = parse_node_args({"--data-dir", "/d", "--help"});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_TRUE(cmd->help);
  EXPECT_NE(node_usage().find("--data-dir DIR"), std::string::npos);
}


// A temp dir with files, removed at the end.
struct config_dir {
  config_dir() {
    char tmpl[] = "/tmp/shoal-config-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~config_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name) << text;
    return path + "/" + name;
  }
  std::string path;
};

TEST(node_config, cluster_defaults_match_the_documentation) {
  auto cmd = parse_node_args({"--data-dir", "/tmp/d"});
  ASSERT_TRUE(cmd.is_ok());
  const auto& c = cmd->config;
  EXPECT_TRUE(c.seeds.empty());
  EXPECT_TRUE(c.cluster_secret.empty());
  EXPECT_EQ(c.gossip_interval_ms, 200);
  EXPECT_EQ(c.phi_threshold, 8);
  EXPECT_EQ(c.probe_timeout_ms, 300);
  EXPECT_EQ(c.indirect_probe_timeout_ms, 500);
  EXPECT_EQ(c.indirect_probes, 3u);
  EXPECT_EQ(c.suspicion_timeout_ms, 3000);
  EXPECT_EQ(c.dead_retention_ms, 30000);
  EXPECT_EQ(c.max_gossip_updates, 16u);
  EXPECT_EQ(c.seed_interval_ms, 5000);
  EXPECT_EQ(c.sync_interval_ms, 30000);
  EXPECT_EQ(c.monitored_peers, 8u);
  EXPECT_EQ(c.replication_factor, 2u);
  EXPECT_EQ(c.data_port, 0) << "any free port, gossiped";
  EXPECT_EQ(c.follow_traffic_rps, 20);
  EXPECT_EQ(c.follow_idle_s, 300);
  EXPECT_EQ(c.follow_max_copies, 1000u);
}

TEST(node_config, data_plane_and_traffic_copies_from_flags_and_file) {
  config_dir d;
  auto path = d.write("n.conf", "data_dir = data\ndata_port = 7423\nfollow_traffic_rps = 2.5\n"
                                "follow_idle_s = 60\nfollow_max_copies = 10\n");
  auto cmd = parse_node_args({"--config", path});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.data_port, 7423);
  EXPECT_EQ(cmd->config.follow_traffic_rps, 2.5);
  EXPECT_EQ(cmd->config.follow_idle_s, 60);
  EXPECT_EQ(cmd->config.follow_max_copies, 10u);
  auto flags = parse_node_args({"--config", path, "--data-port", "0", "--follow-traffic-rps", "0",
                                "--follow-idle-s", "5", "--follow-max-copies", "0"});
  ASSERT_TRUE(flags.is_ok()) << flags.error().message();
  EXPECT_EQ(flags->config.data_port, 0);
  EXPECT_EQ(flags->config.follow_traffic_rps, 0) << "0 turns traffic copies off";
  EXPECT_EQ(flags->config.follow_idle_s, 5);
  EXPECT_EQ(flags->config.follow_max_copies, 0u);
}

TEST(node_config, seeds_and_timings_from_flags_and_file) {
  config_dir d;
  auto path = d.write("n.conf", "data_dir = data\nseeds = 10.0.0.1:7420, node-2.lan:7420\n"
                                "gossip_interval_ms = 100\nphi_threshold = 9.5\n"
                                "suspicion_timeout_ms = 5000\nmax_gossip_updates = 32\n");
  auto cmd = parse_node_args({"--config", path});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.seeds, (std::vector<std::string>{"10.0.0.1:7420", "node-2.lan:7420"}));
  EXPECT_EQ(cmd->config.gossip_interval_ms, 100);
  EXPECT_EQ(cmd->config.phi_threshold, 9.5);
  EXPECT_EQ(cmd->config.suspicion_timeout_ms, 5000);
  EXPECT_EQ(cmd->config.max_gossip_updates, 32u);
  auto flag = parse_node_args({"--config", path, "--seeds", "127.0.0.1:7430", "--indirect-probes=0"});
  ASSERT_TRUE(flag.is_ok()) << flag.error().message();
  EXPECT_EQ(flag->config.seeds, std::vector<std::string>{"127.0.0.1:7430"});
  EXPECT_EQ(flag->config.indirect_probes, 0u);
}

TEST(node_config, the_cluster_secret_comes_from_the_file_or_a_secret_file_never_a_flag) {
  config_dir d;
  d.write("secret.txt", "  s3cret value \n\n");
  auto file_secret = d.write("a.conf", "data_dir = x\ncluster_secret_file = secret.txt\n");
  auto cmd = parse_node_args({"--config", file_secret});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.cluster_secret, "  s3cret value") << "trailing whitespace dropped";

  auto inline_secret = d.write("b.conf", "data_dir = x\ncluster_secret = abc\n");
  cmd = parse_node_args({"--config", inline_secret});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_EQ(cmd->config.cluster_secret, "abc");

  d.write("other.txt", "other\n");
  cmd = parse_node_args({"--config", inline_secret, "--cluster-secret-file", d.path + "/other.txt"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.cluster_secret, "other") << "the flag overrides the file";

  auto both = d.write("c.conf", "data_dir = x\ncluster_secret = abc\ncluster_secret_file = secret.txt\n");
  cmd = parse_node_args({"--config", both});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_NE(cmd.error().message().find("set twice"), std::string::npos) << cmd.error().message();

  EXPECT_FALSE(parse_node_args({"--data-dir", "x", "--cluster-secret", "abc"}).is_ok())
      << "no flag carries a secret itself";
  d.write("empty.txt", "\n");
  cmd = parse_node_args({"--data-dir", "x", "--cluster-secret-file", d.path + "/empty.txt"});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_NE(cmd.error().message().find("is empty"), std::string::npos);
  cmd = parse_node_args({"--data-dir", "x", "--cluster-secret-file", d.path + "/none.txt"});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_NE(cmd.error().message().find("cannot read"), std::string::npos);
}

// Regression: '#' was taken for a comment before quotes were looked at, so
// `cluster_secret = "ab#cd"` became the secret `"ab` (quote included) without a word.
TEST(node_config, a_quoted_value_keeps_its_hash_and_spaces) {
  node_config cfg;
  ASSERT_TRUE(apply_config_text("cluster_secret = \"ab#cd\"  # the secret\n", "n.conf", "", cfg)
                  .is_ok());
  EXPECT_EQ(cfg.cluster_secret, "ab#cd");
  cfg = {};
  ASSERT_TRUE(apply_config_text("name = \" shop \\\"one\\\" \\\\ # x\"\n", "n.conf", "", cfg).is_ok());
  EXPECT_EQ(cfg.name, " shop \"one\" \\ # x") << "\\\" and \\\\ stand for a quote and a backslash";
  cfg = {};
  ASSERT_TRUE(apply_config_text("name = plain # comment\n# name = ignored\n", "n.conf", "", cfg)
                  .is_ok());
  EXPECT_EQ(cfg.name, "plain") << "unquoted: '#' starts a comment, as before";
  cfg = {};
  ASSERT_TRUE(apply_config_text("name = \"\"\n", "n.conf", "", cfg).is_ok());
  EXPECT_EQ(cfg.name, "");
}

TEST(node_config, an_unbalanced_or_stray_quote_is_refused_naming_the_line) {
  const std::pair<const char*, const char*> cases[] = {
      {"cluster_secret = \"ab#cd\n", "n.conf line 2: cluster_secret: the value's opening quote is never closed"},
      {"cluster_secret = \"ab\\\"\n", "n.conf line 2: cluster_secret: the value's opening quote is never closed"},
      {"name = \"a\" b\n", "n.conf line 2: name: unexpected text after the closing quote: 'b'"},
      {"name = ab\"cd\n", "n.conf line 2: name: a quote inside an unquoted value"},
      {"name = ab\"\n", "n.conf line 2: name: a quote inside an unquoted value"},
  };
  for (const auto& [line, message] : cases) {
    node_config cfg;
    auto s = apply_config_text(std::string("http_port = 1\n") + line, "n.conf", "", cfg);
    ASSERT_FALSE(s.is_ok()) << line;
    EXPECT_EQ(s.code(), status_code::invalid_argument);
    EXPECT_EQ(s.message().rfind(message, 0), 0u) << line << " -> " << s.message();
  }
}

TEST(node_config, bad_cluster_settings_name_the_problem) {
  struct row {
    std::vector<std::string> args;
    std::string message;
  };
  const row table[] = {
      {{"--seeds", "nohost"}, "--seeds: invalid node address 'nohost': expected HOST:PORT, e.g. 127.0.0.1:7421"},
      {{"--seeds", "a:1,b:0"}, "--seeds: invalid node address 'b:0'"},
      {{"--gossip-interval-ms", "5"}, "--gossip-interval-ms must be between 10 and 60000, got 5"},
      {{"--phi-threshold", "0.5"}, "--phi-threshold must be a number between 1 and 50, got '0.5'"},
      {{"--phi-threshold", "x"}, "--phi-threshold must be a number between 1 and 50, got 'x'"},
      {{"--indirect-probes", "17"}, "--indirect-probes must be between 0 and 16, got 17"},
      {{"--max-gossip-updates", "1"}, "--max-gossip-updates must be between 2 and 256, got 1"},
      {{"--max-gossip-updates", "257"}, "--max-gossip-updates must be between 2 and 256, got 257"},
      {{"--gossip-interval-ms", "60001"}, "--gossip-interval-ms must be between 10 and 60000, got 60001"},
      {{"--phi-threshold", "50.5"}, "--phi-threshold must be a number between 1 and 50, got '50.5'"},
      {{"--phi-threshold", "8x"}, "--phi-threshold must be a number between 1 and 50, got '8x'"},
      {{"--probe-timeout-ms", "5"}, "--probe-timeout-ms must be between 10 and 60000, got 5"},
      {{"--indirect-probe-timeout-ms", "-1"}, "--indirect-probe-timeout-ms must be a whole number, got '-1'"},
      {{"--suspicion-timeout-ms", "50"}, "--suspicion-timeout-ms must be between 100 and 3600000, got 50"},
      {{"--dead-retention-ms", "999"}, "--dead-retention-ms must be between 1000 and 86400000, got 999"},
      {{"--seed-interval-ms", "99"}, "--seed-interval-ms must be between 100 and 3600000, got 99"},
      {{"--sync-interval-ms", "999"},
       "--sync-interval-ms must be 0 (only when joining) or at least 1000, got 999"},
      {{"--sync-interval-ms", "-1"}, "--sync-interval-ms must be a whole number, got '-1'"},
      {{"--monitored-peers", "0"}, "--monitored-peers must be between 1 and 64, got 0"},
      {{"--replication-factor", "0"}, "--replication-factor must be between 1 and 16, got 0"},
      {{"--data-port", "65536"}, "--data-port must be between 0 and 65535, got 65536"},
      {{"--follow-traffic-rps", "-1"}, "--follow-traffic-rps must be a number of requests a second"},
      {{"--follow-traffic-rps", "fast"}, "--follow-traffic-rps must be a number of requests a second"},
      {{"--follow-idle-s", "0"}, "--follow-idle-s must be between 1 and 2592000, got 0"},
      {{"--seeds", "127.0.0.1:7420,127.0.0.1:65536"}, "--seeds: invalid node address '127.0.0.1:65536'"},
      {{"--cluster-secret-file"}, "--cluster-secret-file needs a value"},
  };
  for (const auto& r : table) {
    std::vector<std::string> args = {"--data-dir", "x"};
    args.insert(args.end(), r.args.begin(), r.args.end());
    auto cmd = parse_node_args(args);
    ASSERT_FALSE(cmd.is_ok()) << r.args[0];
    EXPECT_EQ(cmd.error().message().rfind(r.message, 0), 0u) << cmd.error().message();
  }
}

TEST(node_config, a_wildcard_host_in_a_cluster_needs_an_advertised_address) {
  auto cmd = parse_node_args({"--data-dir", "x", "--host", "0.0.0.0", "--seeds", "10.0.0.1:7420"});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_NE(cmd.error().message().find("--advertise-host"), std::string::npos);
  cmd = parse_node_args({"--data-dir", "x", "--host", "0.0.0.0", "--seeds", "10.0.0.1:7420",
                         "--advertise-host", "10.0.0.2"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.advertise_host, "10.0.0.2");
  cmd = parse_node_args({"--data-dir", "x", "--host", "10.0.0.3"});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_EQ(cmd->config.advertise_host, "10.0.0.3") << "defaults to host";
}

// The shipped configs parse as they are (with the secret file they tell people to create).
TEST(node_config, the_example_configs_in_cluster_config_parse) {
  const char* src = std::getenv("SHOAL_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (SHOAL_SOURCE_DIR)";
  std::string root = std::string(src) + "/cluster-config";
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  config_dir d;
  d.write("secret.txt", "example secret\n");
  for (int i = 1; i <= 3; ++i) {
    std::string name = "n" + std::to_string(i) + ".conf";
    auto path = d.write(name, read(root + "/local-3/" + name));
    auto cmd = parse_node_args({"--config", path});
    ASSERT_TRUE(cmd.is_ok()) << name << ": " << cmd.error().message();
    EXPECT_EQ(cmd->config.name, "n" + std::to_string(i));
    EXPECT_EQ(cmd->config.seeds, (std::vector<std::string>{"127.0.0.1:7420", "127.0.0.1:7430"}));
    EXPECT_EQ(cmd->config.cluster_secret, "example secret");
  }
  auto embedded = parse_node_args({"--config", root + "/embedded.conf"});
  ASSERT_TRUE(embedded.is_ok()) << embedded.error().message();
  std::string multi = read(root + "/multi-host.conf");
  auto at = multi.find("cluster_secret_file = /etc/shoal/cluster.secret");
  ASSERT_NE(at, std::string::npos);
  multi.replace(at, std::string("cluster_secret_file = /etc/shoal/cluster.secret").size(),
                "cluster_secret_file = secret.txt");
  node_config cfg;
  auto st = apply_config_text(multi, "multi-host.conf", d.path, cfg);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(cfg.seeds.size(), 3u);
  EXPECT_EQ(cfg.host, "10.0.0.11");
}

TEST(node_config, timings_at_their_limits_are_accepted) {
  auto cmd = parse_node_args({"--data-dir", "x", "--gossip-interval-ms", "10", "--phi-threshold", "50",
                              "--probe-timeout-ms", "60000", "--indirect-probe-timeout-ms", "10",
                              "--indirect-probes", "16", "--suspicion-timeout-ms", "100",
                              "--dead-retention-ms", "1000", "--max-gossip-updates", "256",
                              "--seed-interval-ms", "100", "--sync-interval-ms", "0",
                              "--monitored-peers", "64"});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  const auto& c = cmd->config;
  EXPECT_EQ(c.gossip_interval_ms, 10);
  EXPECT_EQ(c.phi_threshold, 50);
  EXPECT_EQ(c.probe_timeout_ms, 60000);
  EXPECT_EQ(c.indirect_probe_timeout_ms, 10);
  EXPECT_EQ(c.indirect_probes, 16u);
  EXPECT_EQ(c.suspicion_timeout_ms, 100);
  EXPECT_EQ(c.dead_retention_ms, 1000);
  EXPECT_EQ(c.max_gossip_updates, 256u);
  EXPECT_EQ(c.seed_interval_ms, 100);
  EXPECT_EQ(c.sync_interval_ms, 0);
  EXPECT_EQ(c.monitored_peers, 64u);
  cmd = parse_node_args({"--data-dir", "x", "--phi-threshold", "1"});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_EQ(cmd->config.phi_threshold, 1);
}

TEST(node_config, an_empty_seed_list_is_a_one_node_cluster) {
  config_dir d;
  auto path = d.write("n.conf", "data_dir = x\nseeds =\n");
  auto cmd = parse_node_args({"--config", path});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_TRUE(cmd->config.seeds.empty());
  cmd = parse_node_args({"--config", path, "--seeds", ""});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_TRUE(cmd->config.seeds.empty());
}

TEST(node_config, a_bad_cluster_setting_in_a_file_names_the_file_and_line) {
  config_dir d;
  auto seeds = d.write("s.conf", "data_dir = x\n\nseeds = 10.0.0.1:7420, nohost\n");
  auto cmd = parse_node_args({"--config", seeds});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_EQ(cmd.error().message().rfind(seeds + " line 3: seeds: invalid node address 'nohost'", 0),
            0u)
      << cmd.error().message();
  auto secret = d.write("m.conf", "data_dir = x\ncluster_secret_file = missing.txt\n");
  cmd = parse_node_args({"--config", secret});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_EQ(cmd.error().message(), secret + " line 2: cluster_secret_file: cannot read '" + d.path +
                                       "/missing.txt'")
      << "relative to the config file's directory";
}

TEST(node_config, tls_needs_all_three_paths_relative_to_the_config_file) {
  config_dir d;
  auto partial = d.write("p.conf", "data_dir = x\ntls_certificate = node.crt\n");
  auto cmd = parse_node_args({"--config", partial});
  ASSERT_FALSE(cmd.is_ok());
  EXPECT_NE(cmd.error().message().find("all of tls_certificate, tls_key and tls_ca"),
            std::string::npos);
  auto full = d.write("f.conf", "data_dir = x\ntls_certificate = node.crt\ntls_key = node.key\n"
                                "tls_ca = /etc/shoal/ca.crt\n");
  cmd = parse_node_args({"--config", full});
  ASSERT_TRUE(cmd.is_ok()) << cmd.error().message();
  EXPECT_EQ(cmd->config.tls_certificate, d.path + "/node.crt");
  EXPECT_EQ(cmd->config.tls_key, d.path + "/node.key");
  EXPECT_EQ(cmd->config.tls_ca, "/etc/shoal/ca.crt");
}

}  // namespace
}  // namespace shoal
