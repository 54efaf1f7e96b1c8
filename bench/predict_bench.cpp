// predict_bench: our fastText predict() against libfasttext's on the same model, in the same run.
//
// Model: $SHOAL_BENCH_MODEL if set, else one trained now by the fastText tool ($FASTTEXT_BIN,
// default /usr/bin/fasttext) on a synthetic intent corpus: softmax, dim 32, bucket 20000,
// wordNgrams 2, minn 2, maxn 4. A second model with 300 labels (same options) shows the large
// output layer (OpenBLAS in ours); it is skipped when the tool cannot run. libfasttext is measured
// two ways: predictLine (reads and tokenizes the text, as we do) and predict on ids tokenized once
// outside the loop (its arithmetic alone, a lower bound). The trained models are also quantized by
// `fasttext quantize` (default options; -qout for the 300 labels) and measured as .ftz. After the
// table, prints libfasttext time / our time for each text (above 1: we are faster).
//
//   build-ft/bench/predict_bench [--benchmark_repetitions=5 ...]
#include <benchmark/benchmark.h>
#include <fasttext/fasttext.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "shoal/serving/fasttext_model.hpp"
#include "shoal/store/snapshot_store.hpp"

extern char** environ;

namespace {

// ---- a model to measure ---------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the fastText tool quietly; true on exit code 0.
bool run_tool(const std::vector<std::string>& args) {
  const char* env = std::getenv("FASTTEXT_BIN");
  std::string tool = env != nullptr && *env != '\0' ? env : "/usr/bin/fasttext";
  std::vector<std::string> storage = {tool};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, tool.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

uint64_t next_random(uint64_t& state) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return state >> 33;
}

std::string intent_corpus() {
  const std::vector<std::pair<std::string, std::vector<std::string>>> intents = {
      {"greet", {"hello", "hi there", "good morning", "hey", "привет", "你好", "hello bot 👋"}},
      {"bye", {"goodbye", "see you later", "bye bye", "have a nice day", "пока", "再见"}},
      {"order_status",
       {"where is my order", "track order", "has my package shipped", "order status please",
        "when will my parcel arrive", "我的订单在哪里"}},
      {"refund", {"i want a refund", "money back please", "refund my order", "return this item"}},
      {"thanks", {"thank you", "thanks a lot", "much appreciated", "спасибо", "谢谢"}},
      {"complaint", {"this is terrible", "worst service ever", "i am very unhappy"}},
      {"cancel", {"cancel my order", "cancel the subscription", "stop my plan"}},
      {"account", {"reset my password", "i cannot log in", "delete my account"}},
      {"human", {"talk to a human", "real person please", "connect me to an agent"}},
  };
  const std::vector<std::string> endings = {"", "", "?", "!", "...", " please", " now"};
  uint64_t state = 1;
  std::string out;
  for (int line = 0; line < 900; ++line) {
    const auto& [name, phrases] = intents[static_cast<size_t>(line) % intents.size()];
    out += "__label__" + name + " " + phrases[next_random(state) % phrases.size()] +
           endings[next_random(state) % endings.size()];
    if (next_random(state) % 4 == 0) out += " " + std::to_string(next_random(state) % 100000);
    out += "\n";
  }
  return out;
}

std::string many_label_corpus(int labels = 300) {
  const std::vector<std::string> syllables = {"ka", "lo", "mi", "zu", "ter", "van", "qui", "sol"};
  uint64_t state = 7;
  std::string out;
  for (int line = 0; line < labels * 5; ++line) {
    const int label = line % labels;
    out += "__label__topic" + std::to_string(label);
    for (int w = 0; w < 4; ++w) {
      uint64_t word_state = static_cast<uint64_t>(label) * 4 + next_random(state) % 4;
      out += " ";
      for (int s = 0; s < 3; ++s) out += syllables[next_random(word_state) % syllables.size()];
    }
    out += "\n";
  }
  return out;
}

// Trains `corpus` with the benchmark's options into dir/name.bin; "" on failure.
std::string train(const std::string& dir, const std::string& name, const std::string& corpus,
                  const std::string& dim = "32") {
  const std::string input = dir + "/" + name + ".txt";
  std::ofstream(input) << corpus;
  if (!run_tool({"supervised",
                 "-input",
                 input,
                 "-output",
                 dir + "/" + name,
                 "-loss",
                 "softmax",
                 "-dim",
                 dim,
                 "-bucket",
                 "20000",
                 "-wordNgrams",
                 "2",
                 "-minn",
                 "2",
                 "-maxn",
                 "4",
                 "-epoch",
                 "10",
                 "-lr",
                 "0.5",
                 "-thread",
                 "1",
                 "-seed",
                 "1",
                 "-verbose",
                 "0"})) {
    return {};
  }
  return dir + "/" + name + ".bin";
}

// Quantizes dir/name.bin into dir/name.ftz with `fasttext quantize`; "" on failure.
std::string quantize(const std::string& dir, const std::string& name,
                     const std::vector<std::string>& extra) {
  const std::string prefix = dir + "/" + name;
  std::vector<std::string> args = {"quantize", "-input", prefix + ".txt", "-output", prefix,
                                   "-thread",  "1",      "-verbose",      "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_tool(args) ? prefix + ".ftz" : "";
}

// ---- the two implementations ------------------------------------------------------------------

struct subject {
  std::string name;
  std::shared_ptr<const shoal::model> ours;
  fasttext::FastText theirs;
};

bool load(subject& s, const std::string& path) {
  auto loaded = shoal::load_fasttext(read_file(path));
  if (!loaded.is_ok()) {
    std::cerr << "shoal cannot load " << path << ": " << loaded.error().to_string() << "\n";
    return false;
  }
  s.ours = *loaded;
  try {
    s.theirs.loadModel(path);
  } catch (const std::exception& e) {
    std::cerr << "libfasttext cannot load " << path << ": " << e.what() << "\n";
    return false;
  }
  return true;
}

// True if both give the same top label for `text` (a benchmark of different work proves nothing).
bool agree(subject& s, const std::string& text) {
  auto ours = s.ours->predict(text, 1);
  std::istringstream in(text + "\n");
  std::vector<std::pair<fasttext::real, std::string>> theirs;
  s.theirs.predictLine(in, theirs, 1, 0.0);
  if (ours.size() != 1 || theirs.size() != 1 || "__label__" + ours[0].label != theirs[0].second) {
    std::cerr << "shoal and libfasttext disagree on \"" << text << "\"\n";
    return false;
  }
  return true;
}

void register_benchmarks(subject& s, const std::string& text_name, const std::string& text) {
  const std::string suffix = "/" + s.name + "/" + text_name;
  benchmark::RegisterBenchmark(("shoal_predict" + suffix).c_str(),
                               [&s, text](benchmark::State& st) {
                                 for (auto _ : st)
                                   benchmark::DoNotOptimize(s.ours->predict(text, 1));
                               });
  benchmark::RegisterBenchmark(("libfasttext_predictLine" + suffix).c_str(),
                               [&s, text](benchmark::State& st) {
                                 std::istringstream in;
                                 std::vector<std::pair<fasttext::real, std::string>> predictions;
                                 const std::string line = text + "\n";
                                 for (auto _ : st) {
                                   in.clear();
                                   in.str(line);
                                   s.theirs.predictLine(in, predictions, 1, 0.0);
                                   benchmark::DoNotOptimize(predictions.data());
                                 }
                               });
  benchmark::RegisterBenchmark(("libfasttext_predict_pretokenized" + suffix).c_str(),
                               [&s, text](benchmark::State& st) {
                                 std::istringstream in(text + "\n");
                                 std::vector<int32_t> words, labels;
                                 s.theirs.getDictionary()->getLine(in, words, labels);
                                 fasttext::Predictions predictions;
                                 for (auto _ : st) {
                                   predictions.clear();
                                   s.theirs.predict(1, words, predictions, 0.0);
                                   benchmark::DoNotOptimize(predictions.data());
                                 }
                               });
}

// Micro-batching: `batch` texts predicted by one predict_batch (one sgemm for the output layer)
// against the same texts one predict() at a time. Texts cycle through `pool`.
void register_batch_benchmarks(subject& s, const std::vector<std::string>& pool) {
  for (int batch : {8, 32, 64}) {
    std::vector<std::string> texts;
    for (int i = 0; i < batch; ++i) texts.push_back(pool[static_cast<size_t>(i) % pool.size()]);
    const std::string suffix = "/" + s.name + "/" + std::to_string(batch);
    benchmark::RegisterBenchmark(("shoal_batch_one_by_one" + suffix).c_str(),
                                 [&s, texts](benchmark::State& st) {
                                   for (auto _ : st) {
                                     for (const auto& t : texts) {
                                       benchmark::DoNotOptimize(s.ours->predict(t, 1));
                                     }
                                   }
                                 });
    benchmark::RegisterBenchmark(("shoal_batch_together" + suffix).c_str(),
                                 [&s, texts](benchmark::State& st) {
                                   for (auto _ : st) {
                                     benchmark::DoNotOptimize(s.ours->predict_batch(texts, 1));
                                   }
                                 });
  }
}

// A cold load as a node does it: snapshot_store::get (read the file, check its SHA-256) and
// parse, against libfasttext's loadModel on the same file (read and parse, no check).
void register_load_benchmarks(const std::string& name, const std::string& path,
                              std::shared_ptr<shoal::snapshot_store> store) {
  const std::string bytes = read_file(path);
  auto sha = store->put(bytes);
  if (!sha.is_ok()) {
    std::cerr << "cannot store " << path << ": " << sha.error().to_string() << "\n";
    return;
  }
  const std::string digest = *sha;
  benchmark::RegisterBenchmark(("shoal_load/" + name).c_str(), [store, digest](benchmark::State& st) {
    for (auto _ : st) {
      auto got = store->get(digest);
      benchmark::DoNotOptimize(shoal::load_fasttext(*got));
    }
  });
  // The same in its parts: the SHA-256 check alone, the parse alone (bytes in memory).
  benchmark::RegisterBenchmark(("shoal_load_sha256_only/" + name).c_str(),
                               [bytes](benchmark::State& st) {
                                 for (auto _ : st) benchmark::DoNotOptimize(shoal::sha256_hex(bytes));
                               });
  benchmark::RegisterBenchmark(("shoal_load_parse_only/" + name).c_str(),
                               [bytes](benchmark::State& st) {
                                 for (auto _ : st) benchmark::DoNotOptimize(shoal::load_fasttext(bytes));
                               });
  benchmark::RegisterBenchmark(("libfasttext_load/" + name).c_str(), [path](benchmark::State& st) {
    for (auto _ : st) {
      fasttext::FastText ft;
      ft.loadModel(path);
      benchmark::DoNotOptimize(&ft);
    }
  });
}

// Keeps each benchmark's time (the mean when repeated) for the ratios.
class recording_reporter : public benchmark::ConsoleReporter {
 public:
  // colours only on a terminal
  recording_reporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "mean") {
        ns_[r.run_name.function_name] = r.GetAdjustedRealTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double ns(const std::string& name) const {
    auto it = ns_.find(name);
    return it == ns_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string dir_pattern = "/tmp/shoal-predict-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_pattern.data()) != nullptr ? dir_pattern : "";

  const char* given = std::getenv("SHOAL_BENCH_MODEL");
  std::string intents_path = given != nullptr && *given != '\0' ? given : "";
  if (intents_path.empty() && !dir.empty()) intents_path = train(dir, "intents", intent_corpus());
  if (intents_path.empty()) {
    std::cerr << "no model: set SHOAL_BENCH_MODEL or FASTTEXT_BIN\n";
    return 1;
  }
  const std::string many_path = dir.empty() ? "" : train(dir, "many_labels", many_label_corpus());
  const std::string intents_ftz =
      given == nullptr && !dir.empty() ? quantize(dir, "intents", {}) : "";
  const std::string many_ftz = many_path.empty() ? "" : quantize(dir, "many_labels", {"-qout"});
  // A large FAQ bot: 1000 answers, dim 100 (an output layer of 400 KB).
  const std::string faq_path =
      dir.empty() ? "" : train(dir, "1000_labels", many_label_corpus(1000), "100");
  const std::vector<std::string> batch_pool = {
      "kalomi zuter vanqui", "solka lomi", "terzu vanvan quisol kaka", "mimi zuzu",
      "where is my order 12345?", "qui sol ter van ka", "lozu mika", "vanter solqui zumi"};

  const std::vector<std::pair<std::string, std::string>> texts = {
      {"short", "where is my order 12345?"},
      {"long",
       "hello there, i ordered a pair of shoes two weeks ago and they still have not arrived, "
       "can you tell me where my order is and when it will be delivered please"},
  };
  // A real snapshot store for the cold-load benchmarks (the node's read-and-check path).
  std::shared_ptr<shoal::snapshot_store> store;
  if (!dir.empty()) {
    auto opened = shoal::snapshot_store::open(dir + "/store");
    if (opened.is_ok()) store = std::move(*opened);
  }
  std::vector<std::unique_ptr<subject>> subjects;
  std::vector<std::pair<std::string, std::string>> pairs;  // (subject, text) measured
  for (const auto& [name, path] :
       std::vector<std::pair<std::string, std::string>>{{"intents", intents_path},
                                                        {"300_labels", many_path},
                                                        {"intents_ftz", intents_ftz},
                                                        {"300_labels_ftz_qout", many_ftz},
                                                        {"1000_labels_dim100", faq_path}}) {
    if (path.empty()) continue;
    auto s = std::make_unique<subject>();
    s->name = name;
    if (!load(*s, path)) return 1;
    for (const auto& [text_name, text] : texts) {
      if (name.rfind("intents", 0) != 0 && text_name == "long") continue;
      if (name.rfind("intents", 0) == 0 && given == nullptr && !agree(*s, text)) return 1;
      register_benchmarks(*s, text_name, text);
      pairs.emplace_back(name, text_name);
    }
    std::cout << name << ": " << path << ", " << s->ours->label_count() << " labels, "
              << s->ours->memory_bytes() << " bytes in memory (shoal), "
              << std::filesystem::file_size(path) << " bytes on disk\n";
    if (store) register_load_benchmarks(name, path, store);
    if (name.find("ftz") == std::string::npos) register_batch_benchmarks(*s, batch_pool);
    subjects.push_back(std::move(s));
  }

  recording_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::cout << "\nlibfasttext time / shoal time (k=1; above 1: shoal is faster)\n";
  for (const auto& [model, text] : pairs) {
    const std::string suffix = "/" + model + "/" + text;
    const double ours = reporter.ns("shoal_predict" + suffix);
    const double line = reporter.ns("libfasttext_predictLine" + suffix);
    const double pre = reporter.ns("libfasttext_predict_pretokenized" + suffix);
    if (ours <= 0) continue;
    std::printf("  %-26s predictLine %.2fx   predict(pre-tokenized ids) %.2fx\n",
                (model + "/" + text).c_str(), line / ours, pre / ours);
  }
  std::cout << "\nmicro-batching: one-by-one time / batch time (above 1: the batch is faster)\n";
  for (const auto& s : subjects) {
    for (int batch : {8, 32, 64}) {
      const std::string suffix = "/" + s->name + "/" + std::to_string(batch);
      const double apart = reporter.ns("shoal_batch_one_by_one" + suffix);
      const double together = reporter.ns("shoal_batch_together" + suffix);
      if (apart > 0 && together > 0) {
        std::printf("  %-26s batch %2d  %.2fx  (%.0f ns per text together, %.0f apart)\n",
                    s->name.c_str(), batch, apart / together, together / batch, apart / batch);
      }
    }
  }
  std::cout << "\nlibfasttext load / shoal load (shoal also checks the SHA-256)\n";
  for (const auto& s : subjects) {
    const double ours = reporter.ns("shoal_load/" + s->name);
    const double theirs = reporter.ns("libfasttext_load/" + s->name);
    if (ours > 0) std::printf("  %-26s %.2fx\n", s->name.c_str(), theirs / ours);
  }
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
