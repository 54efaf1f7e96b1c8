// What counting one request costs on the request path: the per-(model, version) counts of
// serving/version_stats (the console's charts) against the per-model counts of node_metrics
// (/metrics), which every request already paid before the console existed. Same run, same
// thread, 1 model or 1,000 models round robin (lookups that miss a cache line).
//
//   build/bench/request_counts_bench [--benchmark_repetitions=5 ...]
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/serving/metrics.hpp"
#include "shoal/serving/version_stats.hpp"

namespace {

std::vector<shoal::model_id> models(size_t n) {
  std::vector<shoal::model_id> out;
  for (size_t i = 0; i < n; ++i) out.push_back({"acme", "bot" + std::to_string(i)});
  return out;
}

void per_model_metrics(benchmark::State& state) {
  shoal::node_metrics metrics(2000);
  const auto ids = models(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    const auto& id = ids[i++ % ids.size()];
    metrics.observe_inference(id.tenant, id.model, 200, 0.0007);
  }
}

void per_version_counts(benchmark::State& state) {
  shoal::version_stats stats;
  const auto ids = models(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    const auto& id = ids[i++ % ids.size()];
    stats.observe(id, 3, false, 0.0007, 0.91);
  }
}

BENCHMARK(per_model_metrics)->Arg(1)->Arg(1000);
BENCHMARK(per_version_counts)->Arg(1)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
