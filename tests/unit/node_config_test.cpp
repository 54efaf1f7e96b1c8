#include "shoal/node_config.hpp"

#include <cstdio>
#include <fstream>

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
  EXPECT_EQ(c.name, "127.0.0.1:7422");
  EXPECT_EQ(c.max_body_bytes, 4u << 20);
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

TEST(node_config, help_is_recognised_anywhere) {
  auto cmd = parse_node_args({"--data-dir", "/d", "--help"});
  ASSERT_TRUE(cmd.is_ok());
  EXPECT_TRUE(cmd->help);
  EXPECT_NE(node_usage().find("--data-dir DIR"), std::string::npos);
}

}  // namespace
}  // namespace shoal
