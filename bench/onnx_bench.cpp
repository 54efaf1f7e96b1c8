// onnx_bench: Shoal's side of bench/onnx_bench.py (ONNX models against ONNX Runtime). In process,
// one thread: model::run() per request on a loaded model, load_onnx() of bytes already in memory,
// and a cold start (read the file, load, answer one request).
//
// The cases come from a file bench/onnx_bench.py writes, one per line, tab-separated:
//   name  model.onnx  input_name  FP32|INT64  dims(comma-separated)  input.bin  expected.bin|-
// (paths relative to the cases file; .bin files raw little-endian). Models named NAME_identity and
// NAME_slice are the baselines onnx_ort.js runs next to NAME for the binding's per-call cost: they
// are run here too (Shoal's own per-call cost), but not load-timed. Each case is checked once
// against PyTorch's output (max |diff| <= 1e-4 relative to the largest |value|) before anything is
// timed, so a wrong answer never shows up as a fast one.
//
// Every request is timed on its own (steady_clock around run()), so besides Google Benchmark's
// mean the counters give the median and p99 per call, as the ONNX Runtime side reports them.
//
//   build-onnx/bench/onnx_bench CASES_FILE [--seconds S] [--benchmark_format=json ...]
//   (or SHOAL_ONNX_BENCH_CASES=CASES_FILE)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "shoal/serving/onnx_model.hpp"
#include "shoal/serving/tensor.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

// Returns the file's bytes, read at once into a buffer of its size ("" when unreadable).
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::string bytes(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return in ? bytes : "";
}

struct bench_case {
  std::string name;
  std::string model_path;
  shoal::tensor input;
  std::string expected;  // raw FP32 bytes of output 0, or empty
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

bool parse_cases(const std::string& file, std::vector<bench_case>* cases, std::string* error) {
  const std::string dir =
      file.rfind('/') == std::string::npos ? "." : file.substr(0, file.rfind('/'));
  std::ifstream in(file);
  if (!in) {
    *error = "cannot read the cases file " + file + " (bench/onnx_bench.py writes it)";
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, '\t');
    if (f.size() != 7) {
      *error =
          "a line of " + file + " has " + std::to_string(f.size()) + " fields, 7 expected: " + line;
      return false;
    }
    bench_case c;
    c.name = f[0];
    c.model_path = dir + "/" + f[1];
    c.input.name = f[2];
    c.input.type = f[3] == "INT64" ? shoal::data_type::int64 : shoal::data_type::fp32;
    for (const auto& d : split(f[4], ',')) c.input.shape.push_back(std::stoll(d));
    c.input.data = read_file(dir + "/" + f[5]);
    if (f[6] != "-") c.expected = read_file(dir + "/" + f[6]);
    if (auto st = c.input.check_size(); !st) {
      *error = "case " + c.name + ": " + st.to_string();
      return false;
    }
    cases->push_back(std::move(c));
  }
  if (cases->empty()) *error = "no cases in " + file;
  return !cases->empty();
}

// Runs `c` once on `m` and compares output 0 with PyTorch's; "" when it agrees.
std::string check(const shoal::model& m, const bench_case& c) {
  auto out = m.run({c.input}, {});
  if (!out) return out.error().to_string();
  if (c.expected.empty()) return "";
  const std::string& got = out->at(0).data;
  if (got.size() != c.expected.size())
    return "output 0 has " + std::to_string(got.size()) + " bytes, PyTorch's " +
           std::to_string(c.expected.size());
  const size_t n = got.size() / sizeof(float);
  std::vector<float> a(n), b(n);
  std::memcpy(a.data(), got.data(), got.size());
  std::memcpy(b.data(), c.expected.data(), got.size());
  float scale = 1e-6f, diff = 0;
  for (size_t i = 0; i < n; ++i) {
    scale = std::max(scale, std::fabs(b[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  }
  if (diff > 1e-4f * scale)
    return "output 0 differs from PyTorch's by " + std::to_string(diff) + " (largest value " +
           std::to_string(scale) + ")";
  return "";
}

// Sets the median and p99 per call, in microseconds, from the times of single calls.
void report(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  auto at = [&](double p) { return us[std::min(us.size() - 1, size_t(p * double(us.size())))]; };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["calls"] = double(us.size());
}

template <class F>
void timed_loop(benchmark::State& state, F&& call) {
  std::vector<double> us;
  us.reserve(1 << 16);
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    call();
    const auto t1 = clock_type::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(s);
    us.push_back(s * 1e6);
  }
  report(state, us);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string cases_file;
  double seconds = 1.0;
  if (const char* env = std::getenv("SHOAL_ONNX_BENCH_CASES")) cases_file = env;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      cases_file = a;
    } else {
      std::fprintf(stderr, "usage: %s CASES_FILE [--seconds S] [--benchmark_...]\n", argv[0]);
      return 2;
    }
  }
  std::vector<bench_case> cases;
  std::string error;
  if (!parse_cases(cases_file, &cases, &error)) {
    std::fprintf(stderr, "onnx_bench: %s\n", error.c_str());
    return 2;
  }

  // One load per model file, shared by its cases; the first case of a model is its cold start.
  std::map<std::string, std::shared_ptr<const shoal::model>> models;
  std::map<std::string, const bench_case*> first_case;
  for (const auto& c : cases) {
    if (!models.count(c.model_path)) {
      auto m = shoal::load_onnx(read_file(c.model_path));
      if (!m) {
        std::fprintf(stderr, "onnx_bench: %s: %s\n", c.model_path.c_str(),
                     m.error().to_string().c_str());
        return 1;
      }
      models[c.model_path] = *m;
      first_case[c.model_path] = &c;
    }
    if (auto e = check(*models[c.model_path], c); !e.empty()) {
      std::fprintf(stderr, "onnx_bench: case %s: %s\n", c.name.c_str(), e.c_str());
      return 1;
    }
  }

  for (const auto& c : cases) {
    auto m = models[c.model_path];
    const bench_case* cp = &c;
    benchmark::RegisterBenchmark(("run/" + c.name).c_str(),
                                 [m, cp](benchmark::State& state) {
                                   const std::vector<shoal::tensor> inputs = {
                                       cp->input};  // as ONNX Runtime's feeds: made once
                                   const std::vector<std::string> want;
                                   timed_loop(state, [&] {
                                     auto out = m->run(inputs, want);
                                     benchmark::DoNotOptimize(out);
                                   });
                                 })
        ->UseManualTime()
        ->MinTime(seconds);
  }
  for (const auto& [path, c] : first_case) {
    const std::string model_name = c->name.substr(0, c->name.find('/'));
    if (model_name.find('_') != std::string::npos)
      continue;  // a baseline of ONNX Runtime's per-call cost (NAME_identity, NAME_slice)
    const std::string bytes = read_file(path);
    benchmark::RegisterBenchmark(("load/" + model_name).c_str(),
                                 [bytes](benchmark::State& state) {
                                   timed_loop(state, [&] {
                                     auto m = shoal::load_onnx(bytes);
                                     if (!m) state.SkipWithError(m.error().to_string().c_str());
                                     benchmark::DoNotOptimize(m);
                                   });
                                 })
        ->UseManualTime()
        ->MinTime(seconds / 2);
    // From the file on disk (in the page cache after the first read) to the first answer.
    benchmark::RegisterBenchmark(("cold/" + model_name).c_str(),
                                 [c](benchmark::State& state) {
                                   timed_loop(state, [&] {
                                     auto m = shoal::load_onnx(read_file(c->model_path));
                                     if (!m) {
                                       state.SkipWithError(m.error().to_string().c_str());
                                       return;
                                     }
                                     auto out = (*m)->run({c->input}, {});
                                     benchmark::DoNotOptimize(out);
                                   });
                                 })
        ->UseManualTime()
        ->MinTime(seconds / 2);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
