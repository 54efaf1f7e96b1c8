// shoal: the one executable. `shoal node …` runs a node (the actor system); every other command is
// a CLI call to a node and needs no actor system. This is the one place the cores and the actors
// meet.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "actors/node.hpp"
#include "shoal/ops/cli.hpp"
#include "shoal/ops/health_check.hpp"
#include "shoal/ops/load_test.hpp"
#include "shoal/ops/node_config.hpp"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "node") {
    std::vector<std::string> args(argv + 2, argv + argc);
    auto cmd = shoal::parse_node_args(args);
    if (!cmd) {
      std::fprintf(stderr, "shoal: node: %s (try 'shoal node --help')\n", cmd.error().message().c_str());
      return 2;
    }
    if (cmd->help) {
      std::fputs(shoal::node_usage().c_str(), stdout);
      return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);
    return shoal::run_node(cmd->config);
  }
  if (argc >= 2 && std::string(argv[1]) == "bench") {
    std::signal(SIGPIPE, SIG_IGN);
    return shoal::run_bench_command(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc >= 2 && std::string(argv[1]) == "health") {
    std::signal(SIGPIPE, SIG_IGN);
    return shoal::run_health_check(std::vector<std::string>(argv + 2, argv + argc));
  }
  return shoal::run_cli(argc, argv);
}
