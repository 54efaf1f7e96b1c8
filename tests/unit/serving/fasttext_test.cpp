// Our fastText runtime against the real tool: models trained by `fasttext supervised` on a
// synthetic intent corpus, and those models quantized by `fasttext quantize` (.ftz), must give what
// `fasttext predict-prob` gives, and damaged files must be refused.
// Over 500 lines: every case of the fastText runtime in one suite, so it reads as its specification.
#include "shoal/serving/fasttext_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "support/fasttext_oracle.hpp"

namespace shoal {
namespace {

namespace ts = testing;

// ---- models trained once per run ----------------------------------------------------------------

constexpr size_t k_many_labels = 300;

struct model_config {
  std::string name;
  std::string prefix;  // the -label the corpus and training use
  std::vector<std::string> args;
  bool many_labels = false;  // many_label_corpus (large output layer) instead of the intents
};

void PrintTo(const model_config& c, std::ostream* os) { *os << c.name; }

const std::vector<model_config>& configs() {
  static const std::vector<model_config> all = {
      {"softmax_words",
       "__label__",
       {"-loss", "softmax", "-dim", "16", "-epoch", "15", "-lr", "0.5"}},
      {"softmax_ngrams",
       "__label__",
       {"-loss", "softmax", "-dim", "16", "-epoch", "15", "-lr", "0.5", "-wordNgrams", "2", "-minn",
        "2", "-maxn", "4", "-bucket", "20000"}},
      {"softmax_trigrams_mincount",
       "__label__",
       {"-loss", "softmax", "-dim", "32", "-epoch", "10", "-lr", "0.8", "-wordNgrams", "3",
        "-minCount", "3", "-minn", "3", "-maxn", "6", "-bucket", "20000"}},
      {"hs_words", "__label__", {"-loss", "hs", "-dim", "12", "-epoch", "15", "-lr", "0.5"}},
      {"hs_ngrams",
       "__label__",
       {"-loss", "hs", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2", "-minn", "3",
        "-maxn", "5", "-bucket", "20000"}},
      {"ns_ngrams",
       "__label__",
       {"-loss", "ns", "-neg", "4", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2",
        "-minn", "2", "-maxn", "3", "-bucket", "20000"}},
      {"ova_words", "__label__", {"-loss", "ova", "-dim", "8", "-epoch", "10", "-lr", "0.5"}},
      {"ova_ngrams",
       "__label__",
       {"-loss", "ova", "-dim", "24", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2", "-minn",
        "2", "-maxn", "4", "-bucket", "20000"}},
      {"hash_prefix_softmax",
       "#",
       {"-label", "#", "-loss", "softmax", "-dim", "16", "-epoch", "15", "-lr", "0.5",
        "-wordNgrams", "2", "-minn", "2", "-maxn", "4", "-bucket", "20000"}},
      {"hash_prefix_hs",
       "#",
       {"-label", "#", "-loss", "hs", "-dim", "8", "-epoch", "10", "-lr", "0.5", "-minn", "1",
        "-maxn", "3", "-bucket", "20000"}},
      // 300 labels x dim 32: the output layer is large enough for OpenBLAS
      {"softmax_many_labels",
       "__label__",
       {"-loss", "softmax", "-dim", "32", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2",
        "-bucket", "20000"},
       true},
      {"ova_many_labels",
       "__label__",
       {"-loss", "ova", "-dim", "32", "-epoch", "10", "-lr", "0.5", "-minn", "2", "-maxn", "4",
        "-bucket", "20000"},
       true},
      {"ns_many_labels",
       "__label__",
       {"-loss", "ns", "-neg", "8", "-dim", "32", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2",
        "-bucket", "20000"},
       true},
      {"hs_many_labels",
       "__label__",
       {"-loss", "hs", "-dim", "32", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2", "-bucket",
        "20000"},
       true},
  };
  return all;
}

const model_config& config(const std::string& name) {
  for (const auto& c : configs()) {
    if (c.name == name) return c;
  }
  std::abort();
}

struct suite_state {
  ts::temp_dir dir;
  std::map<std::string, std::string> corpus;  // prefix -> training file
  std::map<std::string, std::string> models;  // config name -> .bin path
};

suite_state& state() {
  static suite_state s;
  return s;
}

// Returns the training file for a label prefix ("many" for many_label_corpus), writing it once.
std::string corpus_file(const std::string& prefix) {
  auto& s = state();
  auto it = s.corpus.find(prefix);
  if (it != s.corpus.end()) return it->second;
  std::string path = s.dir.file("train" + std::to_string(s.corpus.size()) + ".txt");
  const std::string text = prefix == "many" ? ts::many_label_corpus(42, k_many_labels, 4)
                                            : ts::intent_corpus(42, prefix, 720);
  if (!ts::write_file(path, text)) return {};
  s.corpus[prefix] = path;
  return path;
}

// Returns the trained model's path, training it on first use; "" with `error` set on failure.
std::string trained(const model_config& c, std::string& error) {
  auto& s = state();
  auto it = s.models.find(c.name);
  if (it != s.models.end()) return it->second;
  std::vector<std::string> args = c.args;
  args.insert(args.end(), {"-seed", "7"});
  std::string path = ts::train("supervised", corpus_file(c.many_labels ? "many" : c.prefix),
                               s.dir.file(c.name), args, error);
  if (!path.empty()) s.models[c.name] = path;
  return path;
}

std::shared_ptr<const model> load_or_fail(const std::string& bytes) {
  auto loaded = load_fasttext(bytes);
  EXPECT_TRUE(loaded.is_ok()) << loaded.error().to_string();
  return loaded.is_ok() ? *loaded : nullptr;
}

// ---- comparing with the tool --------------------------------------------------------------------

std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.size() > 120 ? out.substr(0, 120) + "...(" + std::to_string(s.size()) + " bytes)"
                          : out;
}

std::string describe(const std::vector<prediction>& ours,
                     const std::vector<ts::tool_prediction>& theirs) {
  std::string s = "ours:";
  for (const auto& p : ours) s += " " + p.label + "=" + std::to_string(p.score);
  s += " | fasttext:";
  for (const auto& p : theirs) s += " " + p.label + "=" + std::to_string(p.prob);
  return s;
}

// Same labels in the same order and probabilities within 1e-4; labels whose printed probabilities
// are equal (within print precision) may come in either order.
::testing::AssertionResult same_predictions(const std::vector<prediction>& ours,
                                            const std::vector<ts::tool_prediction>& theirs,
                                            const std::string& prefix) {
  constexpr double k_tie = 2e-6;
  if (ours.size() != theirs.size()) {
    return ::testing::AssertionFailure() << "different counts; " << describe(ours, theirs);
  }
  std::vector<std::string> labels;
  for (const auto& t : theirs) {
    if (t.label.compare(0, prefix.size(), prefix) != 0) {
      return ::testing::AssertionFailure()
             << "tool label without prefix " << prefix << "; " << describe(ours, theirs);
    }
    labels.push_back(t.label.substr(prefix.size()));
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    if (std::abs(ours[i].score - theirs[i].prob) > 1e-4) {
      return ::testing::AssertionFailure()
             << "probability " << i << " differs; " << describe(ours, theirs);
    }
    if (ours[i].label == labels[i]) continue;
    bool tie = false;
    for (size_t j = 0; j < labels.size(); ++j) {
      if (labels[j] == ours[i].label) tie = std::abs(theirs[j].prob - theirs[i].prob) <= k_tie;
    }
    // a tie at the k-th place may let either label in
    if (std::find(labels.begin(), labels.end(), ours[i].label) == labels.end()) {
      tie = std::abs(ours[i].score - theirs.back().prob) <= k_tie;
    }
    if (!tie) {
      return ::testing::AssertionFailure()
             << "label " << i << " differs; " << describe(ours, theirs);
    }
  }
  return ::testing::AssertionSuccess();
}

// Checks every text at several k against `fasttext predict-prob` on `path`.
void expect_parity(const std::string& path, const model& ours, const std::string& prefix,
                   const std::vector<std::string>& texts) {
  const int all = static_cast<int>(ours.label_count()) + 2;
  for (int k : {1, 3, all}) {
    std::string error;
    auto expected = ts::predict_prob(path, texts, k, error);
    ASSERT_EQ(expected.size(), texts.size()) << error;
    int mismatches = 0;
    // predict_batch takes another path for large output layers (one sgemm per block of texts):
    // it must agree with the tool just the same.
    auto batch = ours.predict_batch(texts, static_cast<size_t>(k));
    ASSERT_EQ(batch.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      auto got = ours.predict(texts[i], static_cast<size_t>(k));
      auto same = same_predictions(got, expected[i], prefix);
      if (!same) ++mismatches;
      EXPECT_TRUE(same) << "k=" << k << " text \"" << escaped(texts[i]) << "\"";
      auto same_in_batch = same_predictions(batch[i], expected[i], prefix);
      if (!same_in_batch) ++mismatches;
      EXPECT_TRUE(same_in_batch) << "in a batch: k=" << k << " text \"" << escaped(texts[i])
                                 << "\"";
      if (mismatches > 5) FAIL() << "giving up after 5 mismatches";
    }
  }
}

class fasttext_parity : public ::testing::TestWithParam<model_config> {};

TEST_P(fasttext_parity, matches_fasttext_predict_prob) {
  std::string error;
  const std::string path = trained(GetParam(), error);
  ASSERT_FALSE(path.empty()) << error;
  auto ours = load_or_fail(ts::read_file(path));
  ASSERT_NE(ours, nullptr);
  auto texts = ts::probe_texts(2024);
  if (GetParam().many_labels) {
    EXPECT_EQ(ours->label_count(), k_many_labels);
    auto topical = ts::many_label_probes(7, k_many_labels);
    texts.insert(texts.begin(), topical.begin(), topical.end());
  } else {
    EXPECT_EQ(ours->label_count(), ts::intent_names().size());
  }
  expect_parity(path, *ours, GetParam().prefix, texts);
}

INSTANTIATE_TEST_SUITE_P(losses_and_options, fasttext_parity, ::testing::ValuesIn(configs()),
                         [](const ::testing::TestParamInfo<model_config>& info) {
                           return info.param.name;
                         });

// ---- quantized models (.ftz) --------------------------------------------------------------------

// Supervised models to quantize: small buckets, since `fasttext quantize` runs k-means over every
// input row (about 0.1 s per 1000 rows at dim 16).
const std::vector<model_config>& quantizable() {
  static const std::vector<model_config> all = {
      {"qb_softmax",
       "__label__",
       {"-loss", "softmax", "-dim", "16", "-epoch", "15", "-lr", "0.5", "-wordNgrams", "2", "-minn",
        "2", "-maxn", "4", "-bucket", "2000"}},
      {"qb_softmax_dim20",
       "__label__",
       {"-loss", "softmax", "-dim", "20", "-epoch", "10", "-lr", "0.8", "-wordNgrams", "3", "-minn",
        "3", "-maxn", "6", "-bucket", "2000"}},
      {"qb_hs",
       "__label__",
       {"-loss", "hs", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2", "-minn", "3",
        "-maxn", "5", "-bucket", "2000"}},
      {"qb_ova",
       "__label__",
       {"-loss", "ova", "-dim", "24", "-epoch", "10", "-lr", "0.5", "-minn", "2", "-maxn", "4",
        "-bucket", "2000"}},
      {"qb_ns",
       "__label__",
       {"-loss", "ns", "-neg", "4", "-dim", "12", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2",
        "-bucket", "2000"}},
      {"qb_hash_prefix",
       "#",
       {"-label", "#", "-loss", "softmax", "-dim", "16", "-epoch", "15", "-lr", "0.5", "-minn", "2",
        "-maxn", "4", "-bucket", "2000"}},
      // 300 labels: enough output rows for -qout (k-means needs at least 256)
      {"qb_many_softmax",
       "__label__",
       {"-loss", "softmax", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2",
        "-bucket", "2000"},
       true},
      {"qb_many_hs",
       "__label__",
       {"-loss", "hs", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-wordNgrams", "2", "-bucket",
        "2000"},
       true},
      {"qb_many_ova",
       "__label__",
       {"-loss", "ova", "-dim", "16", "-epoch", "10", "-lr", "0.5", "-minn", "2", "-maxn", "4",
        "-bucket", "2000"},
       true},
  };
  return all;
}

struct quant_config {
  std::string name;
  std::string base;               // a quantizable() model
  std::vector<std::string> args;  // fasttext quantize options
};

void PrintTo(const quant_config& c, std::ostream* os) { *os << c.name; }

const std::vector<quant_config>& quant_configs() {
  static const std::vector<quant_config> all = {
      {"softmax_default", "qb_softmax", {}},
      // dim 20 in sub-vectors of 8: nsubq 3, the last of 4 columns
      {"softmax_qnorm_dsub8", "qb_softmax_dim20", {"-qnorm", "-dsub", "8"}},
      // pruned dictionaries: -cutoff keeps the rows of largest norm (words and n-grams)
      {"softmax_cutoff_qnorm", "qb_softmax", {"-cutoff", "600", "-qnorm"}},
      {"softmax_cutoff_retrain",
       "qb_softmax_dim20",
       {"-cutoff", "400", "-retrain", "-epoch", "3", "-lr", "0.2", "-dsub", "4"}},
      {"hs_qnorm_dsub4", "qb_hs", {"-qnorm", "-dsub", "4"}},
      {"hs_cutoff", "qb_hs", {"-cutoff", "300"}},
      // 24 columns in sub-vectors of 5: nsubq 5, the last of 4
      {"ova_dsub5", "qb_ova", {"-dsub", "5"}},
      // dsub above dim: one sub-vector of all 24 columns
      {"ova_one_subvector", "qb_ova", {"-dsub", "32", "-qnorm"}},
      {"ns_dsub1_qnorm", "qb_ns", {"-dsub", "1", "-qnorm"}},
      {"hash_prefix_qnorm", "qb_hash_prefix", {"-qnorm"}},
      // -qout: the output layer quantized too (always in sub-vectors of 2)
      {"many_softmax_qout", "qb_many_softmax", {"-qout"}},
      {"many_hs_qout_qnorm", "qb_many_hs", {"-qout", "-qnorm"}},
      {"many_ova_qout_qnorm_cutoff",
       "qb_many_ova",
       {"-qout", "-qnorm", "-cutoff", "500", "-dsub", "4"}},
  };
  return all;
}

const model_config& quantizable(const std::string& name) {
  for (const auto& c : quantizable()) {
    if (c.name == name) return c;
  }
  std::abort();
}

const quant_config& quant_config_named(const std::string& name) {
  for (const auto& c : quant_configs()) {
    if (c.name == name) return c;
  }
  std::abort();
}

// Returns the .ftz of `c`, quantizing (and training its base) on first use; "" with `error` set.
std::string quantized(const quant_config& c, std::string& error) {
  auto& s = state();
  const std::string key = "ftz:" + c.name;
  auto it = s.models.find(key);
  if (it != s.models.end()) return it->second;
  const model_config& base = quantizable(c.base);
  const std::string bin = trained(base, error);
  if (bin.empty()) return {};
  std::string path = ts::quantize(bin, corpus_file(base.many_labels ? "many" : base.prefix),
                                  s.dir.file("ftz_" + c.name), c.args, error);
  if (!path.empty()) s.models[key] = path;
  return path;
}

class fasttext_ftz_parity : public ::testing::TestWithParam<quant_config> {};

TEST_P(fasttext_ftz_parity, matches_fasttext_predict_prob) {
  std::string error;
  const std::string path = quantized(GetParam(), error);
  ASSERT_FALSE(path.empty()) << error;
  const model_config& base = quantizable(GetParam().base);
  const std::string ftz = ts::read_file(path);
  auto ours = load_or_fail(ftz);
  ASSERT_NE(ours, nullptr);
  EXPECT_EQ(ours->format(), "fasttext");
  auto texts = ts::probe_texts(2024);
  if (base.many_labels) {
    EXPECT_EQ(ours->label_count(), k_many_labels);
    auto topical = ts::many_label_probes(7, k_many_labels);
    texts.insert(texts.begin(), topical.begin(), topical.end());
  } else {
    EXPECT_EQ(ours->label_count(), ts::intent_names().size());
  }
  expect_parity(path, *ours, base.prefix, texts);

  // -cutoff prunes the dictionary (Dictionary::save's pruneidx_size, at byte 84, is then >= 0)
  const auto& args = GetParam().args;
  const bool cutoff = std::find(args.begin(), args.end(), "-cutoff") != args.end();
  int64_t pruneidx_size = 0;
  std::memcpy(&pruneidx_size, ftz.data() + 84, sizeof(pruneidx_size));
  EXPECT_EQ(pruneidx_size >= 0, cutoff) << "pruneidx_size " << pruneidx_size;
  RecordProperty("pruneidx_size", static_cast<int>(pruneidx_size));

  // much smaller than the model it was made from, on disk and in memory
  const std::string bin = ts::read_file(trained(base, error));
  auto dense = load_or_fail(bin);
  ASSERT_NE(dense, nullptr);
  EXPECT_LT(ftz.size(), bin.size() / 2);
  EXPECT_LT(ours->memory_bytes(), dense->memory_bytes() / 2);
  // codes and centroids dominate: roughly the file, never wildly more
  EXPECT_GT(ours->memory_bytes(), ftz.size() * 9 / 10);
  EXPECT_LT(ours->memory_bytes(), ftz.size() * 2 + (64u << 10));
  RecordProperty("ftz_bytes", static_cast<int>(ftz.size()));
  RecordProperty("bin_bytes", static_cast<int>(bin.size()));
}

INSTANTIATE_TEST_SUITE_P(quantize_options, fasttext_ftz_parity,
                         ::testing::ValuesIn(quant_configs()),
                         [](const ::testing::TestParamInfo<quant_config>& info) {
                           return info.param.name;
                         });

// ---- behaviour of a loaded model ----------------------------------------------------------------

class fasttext_model_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    path_ = trained(config("softmax_ngrams"), error);
    ASSERT_FALSE(path_.empty()) << error;
    bytes_ = ts::read_file(path_);
    model_ = load_or_fail(bytes_);
    ASSERT_NE(model_, nullptr);
  }
  std::string path_;
  std::string bytes_;
  std::shared_ptr<const model> model_;
};

TEST_F(fasttext_model_test, reports_format_labels_and_memory) {
  EXPECT_EQ(model_->format(), "fasttext");
  EXPECT_EQ(model_->label_count(), ts::intent_names().size());
  // the weights dominate: roughly the file, never wildly more
  EXPECT_GT(model_->memory_bytes(), bytes_.size() * 9 / 10);
  EXPECT_LT(model_->memory_bytes(), bytes_.size() * 3 + (1u << 20));
}

TEST_F(fasttext_model_test, strips_the_default_label_prefix) {
  auto all = model_->predict("where is my order", 100);
  std::set<std::string> labels;
  for (const auto& p : all) labels.insert(p.label);
  auto names = ts::intent_names();
  EXPECT_EQ(labels, std::set<std::string>(names.begin(), names.end()));
}

TEST_F(fasttext_model_test, strips_a_custom_label_prefix) {
  std::string error;
  const std::string path = trained(config("hash_prefix_softmax"), error);
  ASSERT_FALSE(path.empty()) << error;
  auto m = load_or_fail(ts::read_file(path));
  ASSERT_NE(m, nullptr);
  std::set<std::string> labels;
  for (const auto& p : m->predict("hello", 100)) labels.insert(p.label);
  auto names = ts::intent_names();
  EXPECT_EQ(labels, std::set<std::string>(names.begin(), names.end()));
}

TEST_F(fasttext_model_test, is_found_by_the_generic_loader) {
  EXPECT_TRUE(looks_like_fasttext(bytes_));
  EXPECT_FALSE(looks_like_fasttext("hello"));
  auto generic = load_model(bytes_);
  ASSERT_TRUE(generic.is_ok()) << generic.error().to_string();
  EXPECT_EQ((*generic)->predict("refund please", 3), model_->predict("refund please", 3));
}

TEST_F(fasttext_model_test, answers_k_labels_most_probable_first) {
  EXPECT_TRUE(model_->predict("hello", 0).empty());
  auto top = model_->predict("i want a refund", 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].label, "refund");
  auto all = model_->predict("i want a refund", 1000);
  ASSERT_EQ(all.size(), model_->label_count());
  float sum = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_GT(all[i].score, 0.0f);
    EXPECT_LE(all[i].score, 1.0f + 2e-5f);
    if (i > 0) {
      EXPECT_GE(all[i - 1].score, all[i].score);
    }
    sum += all[i].score;
  }
  EXPECT_NEAR(sum, 1.0f + 1e-5f * all.size(), 1e-4);  // softmax, each printed as p + 1e-5
}

TEST_F(fasttext_model_test, treats_a_newline_inside_the_text_as_whitespace) {
  EXPECT_EQ(model_->predict("where is\nmy order\n", 3), model_->predict("where is my order", 3));
  EXPECT_EQ(model_->predict("\n", 3), model_->predict("", 3));
}

TEST_F(fasttext_model_test, ends_the_line_at_a_literal_end_of_sentence_token) {
  EXPECT_EQ(model_->predict("thank you </s> cancel my order now", 3),
            model_->predict("thank you", 3));
}

TEST_F(fasttext_model_test, batch_is_the_same_as_one_by_one) {
  const auto texts = ts::probe_texts(5);
  auto batch = model_->predict_batch(texts, 2);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], model_->predict(texts[i], 2));
}

TEST_F(fasttext_model_test, predicts_the_same_from_many_threads) {
  const auto texts = ts::probe_texts(9);
  std::vector<std::vector<prediction>> expected;
  for (const auto& t : texts) expected.push_back(model_->predict(t, 3));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          size_t j = (i + static_cast<size_t>(t) * 7) % texts.size();
          if (model_->predict(texts[j], 3) != expected[j]) ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(fasttext_model_test, version_11_drops_char_ngrams_like_fasttext) {
  std::string v11 = bytes_;
  const int32_t version = 11;
  std::memcpy(&v11[4], &version, sizeof(version));
  ts::temp_dir dir;
  const std::string path = dir.file("v11.bin");
  ASSERT_TRUE(ts::write_file(path, v11));
  auto m = load_or_fail(v11);
  ASSERT_NE(m, nullptr);
  expect_parity(path, *m, "__label__", ts::probe_texts(2024));
}

// ---- refusing bad files -------------------------------------------------------------------------

// Where the fields of a valid .bin are, read from fastText's save order (FastText::saveModel).
struct layout {
  int32_t nwords = 0, nlabels = 0;
  std::vector<size_t> count_at, type_at;
  size_t quant_input_at = 0, input_rows_at = 0, input_cols_at = 0, quant_output_at = 0,
         output_rows_at = 0, output_cols_at = 0;
};

template <class T>
T get(const std::string& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

template <class T>
std::string patched(std::string b, size_t at, T v) {
  std::memcpy(&b[at], &v, sizeof(T));
  return b;
}

layout parse_layout(const std::string& b) {
  layout l;
  const int32_t size = get<int32_t>(b, 64);
  l.nwords = get<int32_t>(b, 68);
  l.nlabels = get<int32_t>(b, 72);
  const int64_t prune = get<int64_t>(b, 84);
  size_t p = 92;
  for (int32_t i = 0; i < size; ++i) {
    p = b.find('\0', p) + 1;
    l.count_at.push_back(p);
    l.type_at.push_back(p + 8);
    p += 9;
  }
  if (prune > 0) p += static_cast<size_t>(prune) * 8;
  l.quant_input_at = p;
  l.input_rows_at = p + 1;
  l.input_cols_at = p + 9;
  p += 17 +
       static_cast<size_t>(get<int64_t>(b, l.input_rows_at) * get<int64_t>(b, l.input_cols_at)) * 4;
  l.quant_output_at = p;
  l.output_rows_at = p + 1;
  l.output_cols_at = p + 9;
  return l;
}

::testing::AssertionResult refused(const std::string& bytes, std::string_view expect_in_message) {
  auto loaded = load_fasttext(bytes);
  if (loaded.is_ok()) return ::testing::AssertionFailure() << "was accepted";
  const status s = loaded.error();
  if (s.code() != status_code::invalid_argument) {
    return ::testing::AssertionFailure() << "wrong code: " << s.to_string();
  }
  if (s.message().find(expect_in_message) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message \"" << s.message() << "\" lacks \"" << expect_in_message << "\"";
  }
  return ::testing::AssertionSuccess() << s.message();
}

class fasttext_refusal : public fasttext_model_test {};

TEST_F(fasttext_refusal, empty_bytes) {
  EXPECT_TRUE(refused("", "empty"));
  EXPECT_FALSE(load_model("").is_ok());
}

TEST_F(fasttext_refusal, a_truncated_file_at_any_cut) {
  const layout l = parse_layout(bytes_);
  std::vector<size_t> cuts;
  for (size_t c = 1; c < l.input_cols_at + 64; ++c) cuts.push_back(c);  // header and dictionary
  for (size_t c = l.input_cols_at + 64; c < bytes_.size(); c += bytes_.size() / 37)
    cuts.push_back(c);
  for (size_t c : {l.quant_output_at, l.quant_output_at + 1, l.output_rows_at + 12,
                   l.output_cols_at + 8, bytes_.size() - 4, bytes_.size() - 1}) {
    cuts.push_back(c);
  }
  for (size_t cut : cuts) {
    EXPECT_TRUE(refused(bytes_.substr(0, cut), "truncated fastText model")) << "cut at " << cut;
  }
  EXPECT_TRUE(refused(bytes_.substr(0, l.input_cols_at + 100), "input matrix needs"));
}

TEST_F(fasttext_refusal, a_bad_magic_number) {
  std::string b = bytes_;
  b[0] = static_cast<char>(b[0] ^ 0x5a);
  EXPECT_TRUE(refused(b, "bad magic"));
  EXPECT_FALSE(looks_like_fasttext(b));
  auto generic = load_model("just some text, not a model");
  ASSERT_FALSE(generic.is_ok());
  EXPECT_NE(generic.error().message().find("unknown model format"), std::string::npos);
}

TEST_F(fasttext_refusal, an_unknown_version) {
  for (int32_t v : {13, 10, 0, -1, 1 << 30}) {
    EXPECT_TRUE(
        refused(patched(bytes_, 4, v), "unsupported fastText model version " + std::to_string(v)));
  }
}

TEST_F(fasttext_refusal, trailing_garbage) {
  EXPECT_TRUE(refused(bytes_ + std::string(1, '\0'), "1 bytes of trailing garbage"));
  EXPECT_TRUE(refused(bytes_ + std::string(100, 'x'), "trailing garbage"));
}

TEST_F(fasttext_refusal, word_vector_models) {
  ts::temp_dir dir;
  std::string words;
  for (int i = 0; i < 200; ++i)
    words += "the quick brown fox jumps over the lazy dog " + std::to_string(i % 10) + "\n";
  ASSERT_TRUE(ts::write_file(dir.file("words.txt"), words));
  for (std::string command : {"cbow", "skipgram"}) {
    std::string error;
    const std::string path = ts::train(command, dir.file("words.txt"), dir.file(command),
                                       {"-dim", "8", "-epoch", "1", "-minCount", "1", "-bucket",
                                        "1000", "-minn", "2", "-maxn", "3"},
                                       error);
    ASSERT_FALSE(path.empty()) << error;
    EXPECT_TRUE(
        refused(ts::read_file(path), "not a supervised fastText model: this is a " + command));
  }
}

// `fasttext supervised -qout` writes its .bin with the qout flag set and a dense output matrix:
// fastText reads a quantized output only after a quantized input, and so do we.
TEST_F(fasttext_model_test, a_qout_flag_after_a_dense_input_is_ignored_like_fasttext) {
  const layout l = parse_layout(bytes_);
  const std::string flagged = patched(bytes_, l.quant_output_at, uint8_t{1});
  ts::temp_dir dir;
  const std::string path = dir.file("qout_flag.bin");
  ASSERT_TRUE(ts::write_file(path, flagged));
  auto m = load_or_fail(flagged);
  ASSERT_NE(m, nullptr);
  expect_parity(path, *m, "__label__", ts::probe_texts(2024));
  EXPECT_EQ(m->predict("where is my order", 3), model_->predict("where is my order", 3));
}

TEST_F(fasttext_refusal, absurd_or_inconsistent_sizes) {
  const layout l = parse_layout(bytes_);
  const int32_t nwords = l.nwords;
  struct row {
    std::string what;
    std::string bytes;
    std::string message;
  };
  const std::vector<row> rows = {
      {"dim 0", patched(bytes_, 8, int32_t{0}), "dim is 0"},
      {"dim huge", patched(bytes_, 8, INT32_MAX), "input matrix is"},
      {"dim negative", patched(bytes_, 8, int32_t{-16}), "dim is -16"},
      {"wordNgrams", patched(bytes_, 28, int32_t{1 << 20}), "wordNgrams is"},
      {"loss", patched(bytes_, 32, int32_t{9}), "unknown loss 9"},
      {"model", patched(bytes_, 36, int32_t{7}), "unknown model type 7"},
      {"bucket negative", patched(bytes_, 40, int32_t{-1}), "bucket is -1"},
      {"bucket overflows ids", patched(bytes_, 40, INT32_MAX), "32-bit ids"},
      {"minn", patched(bytes_, 44, int32_t{-3}), "minn is -3"},
      {"maxn", patched(bytes_, 48, int32_t{1000000}), "maxn is 1000000"},
      {"dictionary size", patched(patched(bytes_, 64, INT32_MAX), 68, INT32_MAX - l.nlabels),
       "truncated fastText model: dictionary of 2147483647 entries"},
      {"negative nwords", patched(bytes_, 68, int32_t{-5}), "-5 words"},
      {"size mismatch", patched(bytes_, 72, l.nlabels + 1), "labels"},
      {"no labels", patched(patched(bytes_, 64, nwords), 72, int32_t{0}), "no labels"},
      {"pruneidx huge", patched(bytes_, 84, int64_t{1} << 60), "pruned n-gram index"},
      {"pruneidx negative", patched(bytes_, 84, int64_t{-7}), "pruneidx_size is -7"},
      {"pruned but dense", patched(bytes_, 84, int64_t{0}), "pruned"},
      {"entry type", patched(bytes_, l.type_at[0], int8_t{1}), "entry 0 has type 1"},
      {"label type", patched(bytes_, l.type_at.back(), int8_t{0}), "expected 1 (label)"},
      {"quant flag", patched(bytes_, l.quant_input_at, uint8_t{7}), "quant_input flag is 7"},
      {"input rows", patched(bytes_, l.input_rows_at, int64_t{1} << 40), "input matrix is"},
      {"input cols", patched(bytes_, l.input_cols_at, int64_t{1} << 31), "input matrix is"},
      {"output rows", patched(bytes_, l.output_rows_at, int64_t{-1}), "output matrix is -1"},
      {"output cols", patched(bytes_, l.output_cols_at, int64_t{0}), "output matrix is"},
      // header and matrix agree on an absurd size: refused from the byte count, not allocated
      {"consistent but huge",
       patched(patched(patched(patched(bytes_, 40, int32_t{1 << 30}), 8, int32_t{1 << 20}),
                       l.input_rows_at, int64_t{nwords} + (1 << 30)),
               l.input_cols_at, int64_t{1} << 20),
       "input matrix needs 4503"},
      {"non-finite weight",
       patched(bytes_, l.input_cols_at + 8 + 4 * 5, std::numeric_limits<float>::quiet_NaN()),
       "non-finite value at row 0, column 5"},
  };
  for (const auto& r : rows) EXPECT_TRUE(refused(r.bytes, r.message)) << r.what;
}

TEST_F(fasttext_refusal, random_damage_never_crashes) {
  std::string error;
  const std::string path = trained(config("hs_words"), error);
  ASSERT_FALSE(path.empty()) << error;
  const std::string good = ts::read_file(path);
  const layout l = parse_layout(good);
  uint64_t x = 12345;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      // mostly the header and dictionary, sometimes anywhere
      const size_t span = next() % 4 == 0 ? b.size() : l.input_cols_at + 8;
      b[next() % span] = static_cast<char>(next());
    }
    if (next() % 8 == 0) b.resize(next() % b.size());
    auto loaded = load_fasttext(b);
    if (!loaded.is_ok()) {
      EXPECT_EQ(loaded.error().code(), status_code::invalid_argument) << loaded.error().to_string();
      continue;
    }
    ++accepted;
    for (const char* text : {"", "hello there", "where is my order 12345?", "привет 👋"}) {
      auto p = (*loaded)->predict(text, 100);
      EXPECT_LE(p.size(), (*loaded)->label_count());
    }
  }
  RecordProperty("accepted", accepted);
}

// ---- hand-built models: the maths and the prefix rule
// --------------------------------------------

// A QuantMatrix written field by field as QuantMatrix::save does.
struct tiny_quant {
  int64_t rows = 0;
  int32_t dim = 2, dsub = 2;
  bool qnorm = false;
  std::vector<uint8_t> codes;       // rows x nsubq
  std::vector<float> centroids;     // dim x 256, laid out as ProductQuantizer::get_centroids reads
  std::vector<uint8_t> norm_codes;  // rows, with qnorm
  std::vector<float> norms;         // 256, with qnorm

  int32_t nsubq() const { return (dim + dsub - 1) / dsub; }
  int32_t lastdsub() const { return dim % dsub == 0 ? dsub : dim % dsub; }

  /// Random codes, centroids in [-1, 1) and norms in [0.25, 2.25), all from `seed`.
  static tiny_quant random(int64_t rows, int32_t dim, int32_t dsub, bool qnorm, uint64_t seed) {
    tiny_quant q;
    q.rows = rows;
    q.dim = dim;
    q.dsub = dsub;
    q.qnorm = qnorm;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    auto next = [&x] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    auto uniform = [&] { return static_cast<float>(next() % 100000) / 100000.0f; };
    for (int64_t i = 0; i < rows * q.nsubq(); ++i) q.codes.push_back(static_cast<uint8_t>(next()));
    for (int32_t i = 0; i < dim * 256; ++i) q.centroids.push_back(2 * uniform() - 1);
    if (qnorm) {
      for (int64_t i = 0; i < rows; ++i) q.norm_codes.push_back(static_cast<uint8_t>(next()));
      for (int i = 0; i < 256; ++i) q.norms.push_back(0.25f + 2 * uniform());
    }
    return q;
  }

  void put(std::string& b) const {
    auto put = [&b](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
    put(static_cast<uint8_t>(qnorm));
    put(rows);
    put(static_cast<int64_t>(dim));
    put(static_cast<int32_t>(codes.size()));
    b.append(codes.begin(), codes.end());
    for (int32_t v : {dim, nsubq(), dsub, lastdsub()}) put(v);
    for (float f : centroids) put(f);
    if (qnorm) {
      b.append(norm_codes.begin(), norm_codes.end());
      for (int32_t v : {1, 1, 1, 1}) put(v);
      for (float f : norms) put(f);
    }
  }
};

// A .bin (or .ftz) written field by field as FastText::saveModel does.
struct tiny_model {
  int32_t version = 12, dim = 2, loss = 3, bucket = 0, minn = 0, maxn = 0, word_ngrams = 1;
  std::vector<std::pair<std::string, int64_t>> words = {{"</s>", 10}, {"hello", 5}};
  std::vector<std::pair<std::string, int64_t>> labels = {{"__label__a", 3}, {"__label__b", 2}};
  std::vector<float> input = {1, 0, 0, 1};   // (words + bucket) x dim
  std::vector<float> output = {2, 0, 0, 2};  // labels x dim
  // .ftz parts: a pruned dictionary's (bucket, row) pairs, and quantized matrices written instead
  // of `input` / `output`
  int64_t pruneidx_size = -1;
  std::vector<std::pair<int32_t, int32_t>> pruneidx;
  std::optional<tiny_quant> qinput;
  bool qout_flag = false;  // set with qoutput, or alone (then the output stays dense)
  std::optional<tiny_quant> qoutput;

  std::string bytes() const {
    std::string b;
    auto put = [&b](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
    put(int32_t{793712314});
    put(version);
    for (int32_t v : {dim, 5, 5, 1, 5, word_ngrams, loss, 3, bucket, minn, maxn, 100}) put(v);
    put(1e-4);
    put(static_cast<int32_t>(words.size() + labels.size()));
    put(static_cast<int32_t>(words.size()));
    put(static_cast<int32_t>(labels.size()));
    put(int64_t{1000});
    put(pruneidx_size);
    for (const auto* entries : {&words, &labels}) {
      for (const auto& [w, count] : *entries) {
        b += w;
        b += '\0';
        put(count);
        put(static_cast<int8_t>(entries == &words ? 0 : 1));
      }
    }
    for (const auto& [bucket_id, row] : pruneidx) {
      put(bucket_id);
      put(row);
    }
    put(static_cast<uint8_t>(qinput.has_value()));
    if (qinput) {
      qinput->put(b);
    } else {
      put(static_cast<int64_t>(words.size()) + bucket);
      put(static_cast<int64_t>(dim));
      for (float f : input) put(f);
    }
    put(static_cast<uint8_t>(qout_flag || qoutput.has_value()));
    if (qoutput) {
      qoutput->put(b);
    } else {
      put(static_cast<int64_t>(labels.size()));
      put(static_cast<int64_t>(dim));
      for (float f : output) put(f);
    }
    return b;
  }
};

std::shared_ptr<const model> load_tiny(const tiny_model& t) { return load_or_fail(t.bytes()); }

float printed(double p) { return static_cast<float>(p + 1e-5); }

TEST(fasttext_maths, softmax_of_the_averaged_rows) {
  auto m = load_tiny(tiny_model{});
  ASSERT_NE(m, nullptr);
  // "" is just </s>: hidden (1, 0), logits (2, 0)
  auto p = m->predict("", 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "a");
  EXPECT_NEAR(p[0].score, printed(std::exp(2.0) / (std::exp(2.0) + 1)), 1e-6);
  EXPECT_NEAR(p[1].score, printed(1 / (std::exp(2.0) + 1)), 1e-6);
  // hello, hello, </s>: hidden (1/3, 2/3), logits (2/3, 4/3)
  p = m->predict("hello hello", 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "b");
  EXPECT_NEAR(p[0].score, printed(1 / (1 + std::exp(-2.0 / 3))), 1e-6);
}

TEST(fasttext_maths, ova_uses_fastText_sigmoid_table) {
  tiny_model t;
  t.loss = 4;
  t.output = {0.3f, 0, -9, 0};
  auto m = load_tiny(t);
  ASSERT_NE(m, nullptr);
  auto p = m->predict("", 2);
  ASSERT_EQ(p.size(), 2u);
  // 0.3 falls in table cell 265, whose value is sigmoid(265 / 32 - 8), not sigmoid(0.3)
  EXPECT_EQ(p[0].label, "a");
  EXPECT_NEAR(p[0].score, printed(1 / (1 + std::exp(-(265.0 / 32 - 8)))), 1e-6);
  // below -8 the table is not consulted: probability 0
  EXPECT_NEAR(p[1].score, 1e-5, 1e-9);
}

TEST(fasttext_maths, hs_walks_the_huffman_tree) {
  tiny_model t;
  t.loss = 1;
  t.output = {0.3f, 0, 0, 0};  // row 0 is the root's classifier; row 1 is unused with 2 labels
  auto m = load_tiny(t);
  ASSERT_NE(m, nullptr);
  auto p = m->predict("", 2);
  ASSERT_EQ(p.size(), 2u);
  // root's right child is label 0 (higher count): p(a) = sigmoid(0.3), computed exactly
  const double f = 1 / (1 + std::exp(-0.3));
  EXPECT_EQ(p[0].label, "a");
  EXPECT_NEAR(p[0].score, printed(f), 1e-6);
  EXPECT_EQ(p[1].label, "b");
  EXPECT_NEAR(p[1].score, printed(1 - f), 1e-6);
}

TEST(fasttext_maths, an_unknown_text_with_no_known_token_answers_nothing) {
  tiny_model t;
  t.words = {{"hello", 5}};  // no </s>: a line of unknown words has no input rows at all
  t.input = {0, 1};
  auto m = load_tiny(t);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->predict("xyz", 2).empty());
  EXPECT_EQ(m->predict("hello", 1).size(), 1u);
}

TEST(fasttext_maths, refuses_label_counts_that_break_the_huffman_tree) {
  tiny_model t;
  t.loss = 1;
  t.labels = {{"__label__a", int64_t{2000000000000000}}, {"__label__b", int64_t{2000000000000000}}};
  EXPECT_TRUE(refused(t.bytes(), "hierarchical-softmax tree"));
}

TEST(fasttext_maths, refuses_ngrams_without_buckets) {
  tiny_model t;
  t.maxn = 3;
  EXPECT_TRUE(refused(t.bytes(), "bucket is 0"));
}

TEST(fasttext_labels, prefix_rule) {
  struct row {
    std::vector<std::string> raw;
    std::vector<std::string> shown;
  };
  const std::vector<row> rows = {
      {{"__label__a", "__label__b"}, {"a", "b"}},
      {{"#greet", "#bye"}, {"greet", "bye"}},
      {{"#a1", "#a2"}, {"a1", "a2"}},  // only the non-alphanumeric part
      {{"::x::", "::y"}, {"x::", "y"}},
      {{"greet", "bye"}, {"greet", "bye"}},  // nothing in common
      {{"__label__x", "y"}, {"__label__x", "y"}},
      {{"#", "#x"}, {"#", "#x"}},                              // never a whole label
      {{"-\xc3\xa9", "-\xc3\xa8"}, {"\xc3\xa9", "\xc3\xa8"}},  // ASCII only
  };
  for (const auto& r : rows) {
    tiny_model t;
    t.labels = {{r.raw[0], 3}, {r.raw[1], 2}};
    auto m = load_tiny(t);
    ASSERT_NE(m, nullptr);
    auto p = m->predict("", 2);  // a first (logit 2), then b
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].label, r.shown[0]) << r.raw[0];
    EXPECT_EQ(p[1].label, r.shown[1]) << r.raw[1];
  }
}

// ---- quantized models (.ftz): hand-built maths, then damaged files ------------------------------

// dim 3 in sub-vectors of 2: sub-quantizer 0 keeps centroid i at i * 2, the last one (1 column)
// at 256 * 2 + i (ProductQuantizer::get_centroids).
tiny_quant three_column_rows() {
  tiny_quant q;
  q.rows = 2;
  q.dim = 3;
  q.dsub = 2;
  q.codes = {1, 2, 3, 4};  // </s>: (sub 0 code 1, sub 1 code 2); hello: (3, 4)
  q.centroids.assign(3 * 256, 0.0f);
  q.centroids[1 * 2] = 1.0f;      // sub 0, code 1: (1, 0)
  q.centroids[512 + 2] = 0.5f;    // sub 1, code 2: (0.5)
  q.centroids[3 * 2 + 1] = 1.0f;  // sub 0, code 3: (0, 1)
  q.centroids[512 + 4] = 3.0f;    // sub 1, code 4: (3)
  return q;
}

TEST(fasttext_ftz_maths, a_row_is_its_centroids_times_its_norm) {
  tiny_model t;
  t.dim = 3;
  t.output = {2, 0, 0, 0, 0, 1};
  t.qinput = three_column_rows();
  auto m = load_tiny(t);
  ASSERT_NE(m, nullptr);
  // "" is </s>: hidden (1, 0, 0.5), logits (2, 0.5)
  auto p = m->predict("", 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "a");
  EXPECT_NEAR(p[0].score, printed(1 / (1 + std::exp(-1.5))), 1e-6);
  // hello, hello, </s>: hidden (1/3, 2/3, 6.5/3), logits (2/3, 6.5/3)
  p = m->predict("hello hello", 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "b");
  EXPECT_NEAR(p[0].score, printed(1 / (1 + std::exp(-1.5))), 1e-6);

  // qnorm: </s> has norm 2 (hidden (2, 0, 1), logits (4, 1))
  t.qinput->qnorm = true;
  t.qinput->norm_codes = {7, 9};
  t.qinput->norms.assign(256, 1.0f);
  t.qinput->norms[7] = 2.0f;
  t.qinput->norms[9] = 0.5f;
  m = load_tiny(t);
  ASSERT_NE(m, nullptr);
  p = m->predict("", 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].label, "a");
  EXPECT_NEAR(p[0].score, printed(1 / (1 + std::exp(-3.0))), 1e-6);

  // the same output layer quantized gives the same scores
  tiny_quant out;
  out.rows = 2;
  out.dim = 3;
  out.dsub = 2;
  out.codes = {5, 6, 7, 8};
  out.centroids.assign(3 * 256, 0.0f);
  out.centroids[5 * 2] = 2.0f;    // label a: (2, 0 | 0)
  out.centroids[512 + 8] = 1.0f;  // label b: (0, 0 | 1)
  t.qoutput = out;
  auto q = load_tiny(t);
  ASSERT_NE(q, nullptr);
  for (const char* text : {"", "hello", "hello hello there"}) {
    EXPECT_EQ(q->predict(text, 2), m->predict(text, 2)) << text;
  }
  EXPECT_LT(q->memory_bytes(), m->memory_bytes() + 4 * 3 * 256 + 1024);
}

// Random quantized models of every shape, checked against the tool: the centroid layout of the
// last sub-vector, qnorm, quantized output, and pruned dictionaries (kept n-grams remapped, the
// rest dropped, and no n-grams at all when the index is empty).
TEST(fasttext_ftz_maths, random_quantized_models_match_fasttext) {
  struct variant {
    const char* name;
    int32_t loss, dim, dsub;
    bool qnorm;
    int pruned;  // -1: not pruned; else how many of the 40 buckets are kept
    bool qout, qout_norm;
    int32_t word_ngrams;
  };
  const std::vector<variant> variants = {
      {"softmax_dim5_dsub2_pruned", 3, 5, 2, true, 15, true, true, 2},
      {"softmax_dim7_dsub3", 3, 7, 3, false, -1, false, false, 3},
      {"hs_dim4_one_subvector_prune_all", 1, 4, 4, false, 0, true, false, 2},
      {"ns_dim6_dsub1_pruned", 2, 6, 1, true, 30, false, false, 2},
      {"ova_dim9_dsub4_qout", 4, 9, 4, true, -1, true, true, 1},
  };
  std::vector<std::string> texts = ts::probe_texts(2024);
  for (const char* t : {"where is my order", "hello please", "refund my order please",
                        "orders refunded", "hellooo wherever", "привет мир", "my my my is is"}) {
    texts.push_back(t);
  }
  ts::temp_dir dir;
  uint64_t seed = 1;
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    tiny_model t;
    t.dim = v.dim;
    t.loss = v.loss;
    t.bucket = 40;
    t.minn = 2;
    t.maxn = 3;
    t.word_ngrams = v.word_ngrams;
    t.words = {{"</s>", 90},  {"hello", 30}, {"where", 20}, {"is", 20},   {"my", 25},
               {"order", 15}, {"refund", 9}, {"please", 8}, {"привет", 5}};
    t.labels = {{"__label__a", 50},
                {"__label__b", 40},
                {"__label__c", 30},
                {"__label__d", 20},
                {"__label__e", 10}};
    int64_t ngram_rows = t.bucket;
    if (v.pruned >= 0) {
      // keep v.pruned buckets, numbered in one random order, written in another
      std::vector<int32_t> buckets(static_cast<size_t>(t.bucket));
      for (int32_t i = 0; i < t.bucket; ++i) buckets[static_cast<size_t>(i)] = i;
      uint64_t x = seed * 7919;
      for (size_t i = buckets.size(); i > 1; --i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        std::swap(buckets[i - 1], buckets[(x >> 33) % i]);
      }
      for (int32_t row = 0; row < v.pruned; ++row) t.pruneidx.push_back({buckets[row], row});
      std::reverse(t.pruneidx.begin(), t.pruneidx.end());
      t.pruneidx_size = v.pruned;
      ngram_rows = v.pruned;
    }
    t.qinput = tiny_quant::random(static_cast<int64_t>(t.words.size()) + ngram_rows, v.dim, v.dsub,
                                  v.qnorm, seed++);
    if (v.qout) {
      t.qoutput = tiny_quant::random(5, v.dim, 2, v.qout_norm, seed++);
    } else {
      t.output.clear();
      auto dense = tiny_quant::random(1, 5 * v.dim, 1, false, seed++);
      t.output.assign(dense.centroids.begin(), dense.centroids.begin() + 5 * v.dim);
    }
    const std::string bytes = t.bytes();
    const std::string path = dir.file(std::string(v.name) + ".ftz");
    ASSERT_TRUE(ts::write_file(path, bytes));
    auto m = load_or_fail(bytes);
    ASSERT_NE(m, nullptr);
    expect_parity(path, *m, "__label__", texts);
  }
}

TEST(fasttext_ftz_maths, refuses_codes_that_do_not_fit_the_rows) {
  tiny_model t;
  t.dim = 3;
  t.output = {2, 0, 0, 0, 0, 1};
  t.qinput = three_column_rows();
  ASSERT_NE(load_tiny(t), nullptr);

  tiny_model extra = t;
  extra.qinput->codes.push_back(0);
  EXPECT_TRUE(refused(extra.bytes(), "has 5 codes, but 2 rows of 2 sub-vectors need 4"));

  tiny_model rows = t;  // a pruned dictionary keeps its words and pruneidx_size n-gram rows
  rows.bucket = 10;
  rows.maxn = 3;
  rows.pruneidx_size = 1;
  rows.pruneidx = {{4, 0}};
  EXPECT_TRUE(refused(rows.bytes(),
                      "quantized input matrix is 2 x 3, the header and dictionary "
                      "say 3 x 3"));
  rows.qinput->rows = 3;
  rows.qinput->codes = {1, 2, 3, 4, 5, 6};
  EXPECT_NE(load_tiny(rows), nullptr);
  rows.pruneidx_size = 0;  // pruned to no n-grams at all: the words' rows alone
  rows.pruneidx.clear();
  EXPECT_TRUE(refused(rows.bytes(), "say 2 x 3"));

  tiny_model dense = t;  // only a quantized input may follow a pruned dictionary
  dense.qinput.reset();
  dense.input = {1, 0, 0, 0, 1, 0};
  dense.pruneidx_size = 0;
  EXPECT_TRUE(refused(dense.bytes(),
                      "the dictionary is pruned (pruneidx_size 0) but the input "
                      "matrix is not quantized"));
}

// Where the fields of a QuantMatrix are (QuantMatrix::save).
struct quant_layout {
  size_t qnorm_at = 0, rows_at = 0, cols_at = 0, codesize_at = 0, codes_at = 0, pq_at = 0,
         centroids_at = 0, norm_codes_at = 0, npq_at = 0, npq_centroids_at = 0, end = 0;
  bool qnorm = false;
};

quant_layout parse_quant(const std::string& b, size_t p) {
  quant_layout q;
  q.qnorm_at = p;
  q.qnorm = b[p] != 0;
  q.rows_at = p + 1;
  q.cols_at = p + 9;
  q.codesize_at = p + 17;
  q.codes_at = p + 21;
  q.pq_at = q.codes_at + static_cast<size_t>(get<int32_t>(b, q.codesize_at));
  q.centroids_at = q.pq_at + 16;
  p = q.centroids_at + static_cast<size_t>(get<int32_t>(b, q.pq_at)) * 256 * 4;
  if (q.qnorm) {
    q.norm_codes_at = p;
    q.npq_at = p + static_cast<size_t>(get<int64_t>(b, q.rows_at));
    q.npq_centroids_at = q.npq_at + 16;
    p = q.npq_centroids_at + 256 * 4;
  }
  q.end = p;
  return q;
}

// Where the fields of a .ftz with a pruned dictionary and a quantized output are.
struct ftz_layout {
  int32_t bucket = 0;
  int64_t pruneidx_size = 0;
  size_t pruneidx_at = 0, quant_input_at = 0, quant_output_at = 0;
  quant_layout input, output;
};

ftz_layout parse_ftz(const std::string& b) {
  ftz_layout l;
  l.bucket = get<int32_t>(b, 40);
  const int32_t size = get<int32_t>(b, 64);
  l.pruneidx_size = get<int64_t>(b, 84);
  size_t p = 92;
  for (int32_t i = 0; i < size; ++i) p = b.find('\0', p) + 1 + 9;
  l.pruneidx_at = p;
  l.quant_input_at = p + static_cast<size_t>(std::max<int64_t>(l.pruneidx_size, 0)) * 8;
  l.input = parse_quant(b, l.quant_input_at + 1);
  l.quant_output_at = l.input.end;
  l.output = parse_quant(b, l.quant_output_at + 1);
  return l;
}

class fasttext_ftz_refusal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    const std::string path = quantized(quant_config_named("many_ova_qout_qnorm_cutoff"), error);
    ASSERT_FALSE(path.empty()) << error;
    bytes_ = ts::read_file(path);
    l_ = parse_ftz(bytes_);
    ASSERT_GT(l_.pruneidx_size, 1);
    ASSERT_TRUE(l_.input.qnorm && l_.output.qnorm);
    ASSERT_EQ(l_.output.end, bytes_.size());
    ASSERT_NE(load_or_fail(bytes_), nullptr);
  }
  std::string bytes_;
  ftz_layout l_;
};

TEST_F(fasttext_ftz_refusal, a_truncated_file_at_any_cut) {
  std::vector<size_t> cuts;
  // every byte of the header, dictionary, pruned index and quantizer headers
  for (size_t c = 1; c < l_.input.codes_at + 64; ++c) cuts.push_back(c);
  for (const quant_layout* q : {&l_.input, &l_.output}) {
    for (size_t c = q->pq_at - 8; c < q->centroids_at + 8; ++c) cuts.push_back(c);
    for (size_t c = q->norm_codes_at - 8; c < q->npq_centroids_at + 8; ++c) cuts.push_back(c);
  }
  for (size_t c = l_.input.end - 8; c < l_.output.codes_at + 8; ++c) cuts.push_back(c);
  for (size_t c = 1; c < bytes_.size(); c += bytes_.size() / 97) cuts.push_back(c);
  cuts.push_back(bytes_.size() - 1);
  for (size_t cut : cuts) {
    EXPECT_TRUE(refused(bytes_.substr(0, cut), "truncated fastText model")) << "cut at " << cut;
  }
  EXPECT_TRUE(refused(bytes_.substr(0, l_.input.codes_at + 10), "quantized input matrix codes"));
  EXPECT_TRUE(refused(bytes_.substr(0, l_.output.centroids_at + 10),
                      "quantized output matrix quantizer centroids (4096 floats) needs 16384"));
  EXPECT_TRUE(refused(bytes_.substr(0, l_.input.norm_codes_at + 3), "norm codes needs"));
}

TEST_F(fasttext_ftz_refusal, absurd_or_inconsistent_fields) {
  const ftz_layout& l = l_;
  const size_t entry = l.pruneidx_at;  // pruned index: (bucket, row) int32 pairs
  const int32_t first_bucket = get<int32_t>(bytes_, entry);
  const int32_t first_row = get<int32_t>(bytes_, entry + 4);
  const int64_t input_rows = get<int64_t>(bytes_, l.input.rows_at);
  struct row {
    std::string what;
    std::string bytes;
    std::string message;
  };
  const std::vector<row> rows = {
      {"pruneidx bucket", patched(bytes_, entry, l.bucket), "maps bucket 2000 to row"},
      {"pruneidx negative bucket", patched(bytes_, entry, int32_t{-3}), "buckets are 0..1999"},
      {"pruneidx row", patched(bytes_, entry + 4, static_cast<int32_t>(l.pruneidx_size)),
       "but its rows are 0.." + std::to_string(l.pruneidx_size - 1)},
      {"pruneidx twice", patched(bytes_, entry + 8, first_bucket), "appears twice"},
      {"pruneidx same row", patched(bytes_, entry + 12, first_row), "an earlier entry already has"},
      {"pruneidx larger than bucket", patched(bytes_, 84, int64_t{2001}),
       "the pruned n-gram index has 2001 entries, but there are only 2000 buckets"},
      {"pruned but dense", patched(bytes_, l.quant_input_at, uint8_t{0}), "not quantized"},
      {"quant flag", patched(bytes_, l.quant_input_at, uint8_t{2}), "quant_input flag is 2"},
      {"qnorm flag", patched(bytes_, l.input.qnorm_at, uint8_t{2}),
       "quantized input matrix qnorm flag is 2"},
      {"input rows", patched(bytes_, l.input.rows_at, input_rows + 1),
       "quantized input matrix is " + std::to_string(input_rows + 1) + " x 16"},
      {"input cols", patched(bytes_, l.input.cols_at, int64_t{15}), "x 15, the header"},
      {"negative codesize", patched(bytes_, l.input.codesize_at, int32_t{-1}), "codesize is -1"},
      {"huge codesize", patched(bytes_, l.input.codesize_at, INT32_MAX),
       "codes needs 2147483647 bytes"},
      {"quantizer dim", patched(bytes_, l.input.pq_at, int32_t{17}),
       "quantized input matrix quantizer has dim 17, expected 16"},
      {"nsubq", patched(bytes_, l.input.pq_at + 4, int32_t{5}), "has nsubq 5 and lastdsub 4"},
      {"dsub 0", patched(bytes_, l.input.pq_at + 8, int32_t{0}), "has dsub 0, must be positive"},
      {"dsub", patched(bytes_, l.input.pq_at + 8, int32_t{3}),
       "dim 16 cut into sub-vectors of dsub 3 gives 6 and 1"},
      {"lastdsub", patched(bytes_, l.input.pq_at + 12, int32_t{3}), "and lastdsub 3"},
      {"centroid", patched(bytes_, l.input.centroids_at + 4 * 7, std::nanf("")),
       "quantizer centroids holds a non-finite value at row 0, column 7"},
      {"norm quantizer dim", patched(bytes_, l.input.npq_at, int32_t{2}),
       "norm quantizer has dim 2, expected 1"},
      {"norm quantizer dsub", patched(bytes_, l.input.npq_at + 8, int32_t{-1}), "dsub -1"},
      {"norm", patched(bytes_, l.input.npq_centroids_at + 4 * 3, HUGE_VALF),
       "norm quantizer centroids holds a non-finite value at row 3"},
      {"qout flag", patched(bytes_, l.quant_output_at, uint8_t{9}), "quant_output flag is 9"},
      {"output rows", patched(bytes_, l.output.rows_at, int64_t{299}),
       "quantized output matrix is 299 x 16, the header and dictionary say 300 x 16"},
      {"output quantizer", patched(bytes_, l.output.pq_at + 4, int32_t{7}), "nsubq 7"},
      {"output centroid", patched(bytes_, l.output.centroids_at + 4 * 40, -HUGE_VALF),
       "quantized output matrix quantizer centroids holds a non-finite value at row 2, column 8"},
      {"output norm quantizer", patched(bytes_, l.output.npq_at + 12, int32_t{2}),
       "output matrix norm quantizer has nsubq 1 and lastdsub 2"},
      {"trailing garbage", bytes_ + "x", "1 bytes of trailing garbage"},
  };
  for (const auto& r : rows) EXPECT_TRUE(refused(r.bytes, r.message)) << r.what;
}

TEST_F(fasttext_ftz_refusal, random_damage_never_crashes) {
  uint64_t x = 4242;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  // mostly the header, dictionary, pruned index and quantizer headers; sometimes anywhere
  const std::vector<std::pair<size_t, size_t>> spans = {
      {0, l_.input.codes_at + 8},
      {l_.input.pq_at, l_.input.centroids_at + 64},
      {l_.input.norm_codes_at, l_.input.npq_centroids_at + 64},
      {l_.quant_output_at, l_.output.centroids_at + 64},
      {l_.output.norm_codes_at, l_.output.npq_centroids_at + 64},
      {0, bytes_.size()},
      {0, bytes_.size()},
  };
  int accepted = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string b = bytes_;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      const auto& [begin, end] = spans[next() % spans.size()];
      b[begin + next() % (end - begin)] = static_cast<char>(next());
    }
    if (next() % 8 == 0) b.resize(next() % b.size());
    auto loaded = load_fasttext(b);
    if (!loaded.is_ok()) {
      EXPECT_EQ(loaded.error().code(), status_code::invalid_argument) << loaded.error().to_string();
      continue;
    }
    ++accepted;
    for (const char* text : {"", "hello there", "kalomi zuter vanqui", "привет 👋"}) {
      auto p = (*loaded)->predict(text, 5);
      EXPECT_LE(p.size(), 5u);
    }
  }
  EXPECT_GT(accepted, 100);  // damage to codes and centroids still loads: those were predicted
  RecordProperty("accepted", accepted);
}

}  // namespace
}  // namespace shoal
