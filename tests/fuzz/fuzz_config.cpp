// fuzz_config: the text files an operator hands the node. The input is taken as a node config
// file (apply_config_text, and the same text's lines as `shoal node` flags through
// parse_node_args, minus the flags that read files), as a keys file (key_table::parse) and as one
// tenant_limits value (parse_tenant_limits), whose to_string must read back to the same limits,
// as tenants.hpp promises.
#include <vector>

#include "fuzz_target.hpp"
#include "shoal/ops/node_config.hpp"
#include "shoal/serving/tenants.hpp"

namespace {

void check_limits_round_trip(const std::string& text) {
  using namespace shoal;
  auto l = parse_tenant_limits(text);
  if (!l) return;
  const std::string shown = to_string(*l);
  auto back = parse_tenant_limits(shown);
  if (!back)
    std::fprintf(stderr, "'%s' does not read back: %s\n", shown.c_str(),
                 back.error().to_string().c_str());
  FUZZ_CHECK(back.is_ok());
  auto burst = [](const tenant_limits& t) {
    return t.burst > 0 ? t.burst : t.rate > 0 ? std::max(1.0, t.rate) : 0.0;
  };
  FUZZ_CHECK(back->rate == l->rate);
  FUZZ_CHECK(burst(*back) == burst(*l));
  FUZZ_CHECK(back->in_flight == l->in_flight);
  FUZZ_CHECK(back->models == l->models);
  FUZZ_CHECK(back->stored_bytes == l->stored_bytes);
}

}  // namespace

extern "C" int SHOAL_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace shoal;
  const std::string text(fuzz::view(data, size));

  node_config cfg;
  (void)apply_config_text(text, "fuzz.conf", "/nonexistent/shoal-fuzz", cfg);

  std::vector<std::string> args;
  size_t start = 0;
  while (start <= text.size() && args.size() < 64) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string arg = text.substr(start, end - start);
    if (arg.rfind("--config", 0) != 0 && arg.rfind("--cluster-secret-file", 0) != 0) {
      args.push_back(std::move(arg));
    }
    start = end + 1;
  }
  (void)parse_node_args(args);

  (void)key_table::parse(text, "keys");
  check_limits_round_trip(text);
  return 0;
}
