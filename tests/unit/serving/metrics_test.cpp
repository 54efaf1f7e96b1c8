// node_metrics: the Prometheus exposition, bounded series per (tenant, model), and counters that
// never go backwards when models take or lose a series.
#include "shoal/serving/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace shoal {
namespace {

// The value of each sample line ("name{labels} value"), keyed by "name{labels}".
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

std::string requests_of(const std::string& tenant, const std::string& model) {
  return "shoal_inference_requests_total{tenant=\"" + tenant + "\",model=\"" + model + "\"}";
}

TEST(metrics, every_metric_has_help_and_type_and_histograms_are_cumulative) {
  node_metrics m;
  m.observe_inference("acme", "bot", 200, 0.0003);
  m.observe_inference("acme", "bot", 200, 0.002);
  m.observe_inference("acme", "bot", 429, 0.0001);
  m.observe_inference("acme", "bot", 200, 7.0);  // past the last bound: only +Inf
  m.count_refusal(refusal_reason::tenant_rate);
  const std::string text = m.render({3, 1024});
  auto s = samples(text);
  EXPECT_EQ(s[requests_of("acme", "bot")], 4);
  EXPECT_EQ(s["shoal_inference_errors_total{tenant=\"acme\",model=\"bot\"}"], 1);
  const std::string h = "shoal_inference_duration_seconds_bucket{tenant=\"acme\",model=\"bot\",le=";
  EXPECT_EQ(s[h + "\"0.0005\"}"], 2);
  EXPECT_EQ(s[h + "\"0.001\"}"], 2);
  EXPECT_EQ(s[h + "\"0.0025\"}"], 3);
  EXPECT_EQ(s[h + "\"5\"}"], 3);
  EXPECT_EQ(s[h + "\"+Inf\"}"], 4);
  EXPECT_EQ(s["shoal_inference_duration_seconds_count{tenant=\"acme\",model=\"bot\"}"], 4);
  EXPECT_NEAR(s["shoal_inference_duration_seconds_sum{tenant=\"acme\",model=\"bot\"}"], 7.0024,
              1e-5);
  EXPECT_EQ(s["shoal_refusals_total{reason=\"tenant_rate\"}"], 1);
  EXPECT_EQ(s["shoal_refusals_total{reason=\"overload\"}"], 0);
  EXPECT_EQ(s["shoal_in_flight_requests"], 3);
  EXPECT_EQ(s["shoal_max_in_flight_requests"], 1024);
  EXPECT_EQ(s["shoal_build_info{version=\"" SHOAL_VERSION "\"}"], 1);

  // Every metric name that has samples was declared with HELP and TYPE first.
  std::istringstream in(text);
  std::string line;
  std::map<std::string, std::string> types;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0 &&
          types.count(name.substr(0, name.size() - sfx.size())) > 0) {
        name = name.substr(0, name.size() - sfx.size());
      }
    }
    EXPECT_EQ(types.count(name), 1u) << "no TYPE before " << line;
  }
}

TEST(metrics, series_are_bounded_and_no_counter_ever_goes_backwards) {
  node_metrics m(2);  // two models with series of their own
  for (int i = 0; i < 3; ++i) m.observe_inference("acme", "a", 200, 0.001);
  m.observe_inference("acme", "b", 200, 0.001);
  m.observe_inference("globex", "c", 200, 0.001);  // no room: _other
  m.observe_inference("acme", "typo", 404, 0.0001);  // a model that does not exist: _other
  auto s1 = samples(m.render({}));
  EXPECT_EQ(s1[requests_of("acme", "a")], 3);
  EXPECT_EQ(s1[requests_of("acme", "b")], 1);
  EXPECT_EQ(s1.count(requests_of("globex", "c")), 0u);
  EXPECT_EQ(s1[requests_of("_other", "_other")], 2);
  EXPECT_EQ(s1.count(requests_of("acme", "typo")), 0u) << "a 404 makes no series";

  // c becomes busier than twice b: it takes b's series from zero; b's count joins _other.
  for (int i = 0; i < 20; ++i) m.observe_inference("globex", "c", 200, 0.001);
  auto s2 = samples(m.render({}));
  EXPECT_EQ(s2[requests_of("acme", "a")], 3);
  EXPECT_EQ(s2.count(requests_of("acme", "b")), 0u);
  EXPECT_EQ(s2[requests_of("globex", "c")], 0) << "what c counted before stays in _other";
  EXPECT_EQ(s2[requests_of("_other", "_other")], 2 + 20 + 1) << "c's 21 and b's 1, plus the 404";
  m.observe_inference("globex", "c", 500, 0.001);
  auto s3 = samples(m.render({}));
  EXPECT_EQ(s3[requests_of("globex", "c")], 1);
  EXPECT_EQ(s3["shoal_inference_errors_total{tenant=\"globex\",model=\"c\"}"], 1);
  EXPECT_EQ(s3[requests_of("_other", "_other")], 23);

  // No swap for a small lead (b: 1 + 2 = 3 is not more than twice a's 3), and the total of every
  // series always equals the requests observed.
  m.observe_inference("acme", "b", 200, 0.001);
  m.observe_inference("acme", "b", 200, 0.001);
  auto s4 = samples(m.render({}));
  EXPECT_EQ(s4[requests_of("acme", "a")], 3);
  double total = 0;
  for (const auto& [name, v] : s4) {
    if (name.rfind("shoal_inference_requests_total", 0) == 0) total += v;
  }
  EXPECT_EQ(total, 3 + 3 + 21 + 1 + 1);
}

TEST(metrics, label_values_are_escaped_and_threads_count_without_losing_any) {
  node_metrics m;
  m.set_members({{"node \"a\"\\1", "alive", 0.5, false}, {"me", "alive", 0, true},
                 {"gone", "dead", 12.25, false}});
  m.set_replication(3, 4.5);
  m.load_queue.store(5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 5000; ++i) m.observe_inference("acme", "m" + std::to_string(i % 3), 200, 0.0001 * t);
    });
  }
  for (auto& th : threads) th.join();
  auto s = samples(m.render({}));
  EXPECT_EQ(s[requests_of("acme", "m0")] + s[requests_of("acme", "m1")] + s[requests_of("acme", "m2")],
            20000);
  EXPECT_EQ(s["shoal_cluster_member_phi{member=\"node \\\"a\\\"\\\\1\",status=\"alive\"}"], 0.5);
  EXPECT_EQ(s["shoal_cluster_member_phi{member=\"gone\",status=\"dead\"}"], 12.25);
  EXPECT_EQ(s["shoal_cluster_members{status=\"alive\"}"], 2);
  EXPECT_EQ(s["shoal_cluster_members{status=\"dead\"}"], 1);
  EXPECT_EQ(s["shoal_replication_pending_snapshots"], 3);
  EXPECT_EQ(s["shoal_replication_lag_seconds"], 4.5);
  EXPECT_EQ(s["shoal_model_load_queue_requests"], 5);
}

}  // namespace
}  // namespace shoal
