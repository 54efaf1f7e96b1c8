// `shoal health`'s command line: defaults, HOST:PORT forms, and the errors a wrong flag gets.
// (tests/process/health_check_test.cpp asks a real node.)
#include "shoal/ops/health_check.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(health_check_args, default_to_the_local_node_s_http_port) {
  auto o = parse_health_check_args({});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 7422);
  EXPECT_EQ(o->timeout, std::chrono::milliseconds(3000));
  EXPECT_FALSE(o->help);
}

TEST(health_check_args, take_a_host_a_bracketed_ipv6_address_and_fractional_seconds) {
  auto o = parse_health_check_args({"--http", "node-1.example:8080", "--timeout", "0.25"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->host, "node-1.example");
  EXPECT_EQ(o->port, 8080);
  EXPECT_EQ(o->timeout, std::chrono::milliseconds(250));
  auto v6 = parse_health_check_args({"--http", "[::1]:7422"});
  ASSERT_TRUE(v6) << v6.error().to_string();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(parse_health_check_args({"-h"})->help);
}

TEST(health_check_args, refuse_what_they_cannot_use_and_say_what_is_wanted) {
  struct row {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<row> table = {
      {{"--port", "1"}, "unknown option '--port'"},
      {{"--http"}, "--http needs a value"},
      {{"--http", "7422"}, "--http wants HOST:PORT"},
      {{"--http", "localhost:"}, "--http wants HOST:PORT"},
      {{"--http", "localhost:70000"}, "a port 1-65535"},
      {{"--http", "localhost:80x"}, "a port 1-65535"},
      {{"--http", "localhost:-1"}, "a port 1-65535"},
      {{"--timeout", "0"}, "--timeout wants seconds above 0"},
      {{"--timeout", "soon"}, "--timeout wants seconds above 0"},
      {{"--timeout", "nan"}, "--timeout wants seconds above 0"},
  };
  for (const auto& r : table) {
    auto o = parse_health_check_args(r.args);
    ASSERT_FALSE(o) << r.args[0];
    EXPECT_EQ(o.error().code(), status_code::invalid_argument);
    EXPECT_NE(o.error().message().find(r.says), std::string::npos) << o.error().message();
  }
}

TEST(health_check, is_unavailable_with_the_reason_when_nothing_listens) {
  health_check_options o;
  o.port = 1;  // privileged and unused: refused at once
  o.timeout = std::chrono::milliseconds(2000);
  status s = check_ready(o);
  EXPECT_EQ(s.code(), status_code::unavailable);
  EXPECT_NE(s.message().find("cannot connect to 127.0.0.1:1"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace shoal
