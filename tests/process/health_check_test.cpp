// `shoal health` against a real node: exit 0 when ready, 1 with the reason when nothing answers
// or the answer is not HTTP, 2 for a wrong flag. (What the container image's health check runs.)
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "support/node_process.hpp"

namespace shoal::testing {
namespace {

TEST(health_command, exits_0_for_a_ready_node_and_1_with_the_reason_when_none_answers) {
  temp_dir dir;
  node_process node(dir.path() + "/data");
  const std::string http = "127.0.0.1:" + std::to_string(node.http_port());
  auto ok = run_shoal({"health", "--http", http});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.err, "");

  node.stop(SIGTERM);
  auto down = run_shoal({"health", "--http", http, "--timeout", "2"});
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  EXPECT_NE(down.err.find("cannot connect to " + http), std::string::npos) << down.err;
  EXPECT_EQ(down.err.find('\n'), down.err.size() - 1) << "one line: " << down.err;
}

TEST(health_command, times_out_on_a_port_that_accepts_and_never_answers) {
  // A listening socket nobody accepts from: connect succeeds (the backlog), no answer comes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const auto started = std::chrono::steady_clock::now();
  auto r = run_shoal(
      {"health", "--http", "127.0.0.1:" + std::to_string(ntohs(a.sin_port)), "--timeout", "0.5"});
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("timed out waiting for"), std::string::npos) << r.err;
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(health_command, exits_2_for_a_wrong_flag_and_0_for_help) {
  auto bad = run_shoal({"health", "--htp", "127.0.0.1:7422"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "shoal: health: unknown option '--htp' (try 'shoal health --help')\n");
  auto help = run_shoal({"health", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: shoal health"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace shoal::testing
