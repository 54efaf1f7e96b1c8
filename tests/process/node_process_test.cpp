// Process-level tests: a real `shoal node` on loopback, driven through the real CLI and raw HTTP.
// Over 500 lines: every case of a node in one suite, so it reads as its specification.
#include "support/node_process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "shoal/wire/api_codec.hpp"
#include "shoal/wire/zmq_client.hpp"

namespace shoal::testing {
namespace {

using json = nlohmann::json;

std::string source_dir() {
  const char* d = std::getenv("SHOAL_SOURCE_DIR");
  return d != nullptr ? d : ".";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string infer_body(const std::vector<std::string>& texts, int top_k = 1) {
  json body = {{"inputs", {{{"name", "text"}, {"shape", {texts.size()}}, {"datatype", "BYTES"}, {"data", texts}}}},
               {"parameters", {{"top_k", top_k}}}};
  return body.dump();
}

// Counts inference answers from many client threads: 200s, 429s (keeping the last refusal's
// headers and body) and anything else (keeping the last one).
struct answer_tally {
  std::mutex m;
  int ok = 0, refused = 0, other = 0;
  std::string refusal, unexpected;

  void record(const http_response& r) {
    std::lock_guard<std::mutex> lock(m);
    if (r.status == 200) {
      ++ok;
    } else if (r.status == 429) {
      ++refused;
      refusal = r.headers + r.body;
    } else {
      ++other;
      unexpected = std::to_string(r.status) + " " + r.body;
    }
  }
};

// Models trained once for the whole suite from the demo's sample data.
class node_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_ = new temp_dir();
    std::vector<std::string> opts = {"-epoch", "25", "-lr", "0.5", "-dim", "16", "-bucket", "20000",
                                     "-wordNgrams", "2", "-minn", "2", "-maxn", "4"};
    v1_ = train_fasttext(models_->path(), "v1", read_file(source_dir() + "/examples/intents-v1.txt"), opts);
    v2_ = train_fasttext(models_->path(), "v2", read_file(source_dir() + "/examples/intents-v2.txt"), opts);
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
  }

  void SetUp() override {
    data_ = std::make_unique<temp_dir>();
    node_ = std::make_unique<node_process>(data_->path() + "/data");
  }

  // Returns the top label the node serves for `text` over HTTP (production unless `target` says).
  std::string http_top_label(const std::string& text, const std::string& target = "/v2/models/acme/bot/infer") {
    auto r = http_call(node_->http_port(), "POST", target, infer_body({text}));
    EXPECT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("outputs")) return "<bad reply: " + r.body + ">";
    return j["outputs"][0]["data"][0].get<std::string>();
  }

  // Starts the node again with one HTTP thread and the default max_queue_ms, with acme/bot
  // (v1) pushed and loaded.
  void restart_with_one_http_thread_and_bot_loaded() {
    node_.reset();
    std::vector<std::string> args = {"--http-threads", "1"};
    for (const auto& a : default_queue_flags()) args.push_back(a);
    node_ = std::make_unique<node_process>(data_->path() + "/data", args);
    ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
    ASSERT_EQ(http_top_label("where is my parcel"), "order_status");  // loaded
  }

  static temp_dir* models_;
  static std::string v1_, v2_;
  std::unique_ptr<temp_dir> data_;
  std::unique_ptr<node_process> node_;
};

temp_dir* node_test::models_ = nullptr;
std::string node_test::v1_;
std::string node_test::v2_;

TEST_F(node_test, first_push_becomes_production_and_serves_like_fasttext) {
  auto push = node_->cli({"snapshot", "push", "acme/bot", v1_, "--note", "first"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  EXPECT_EQ(trim(push.out), "1");
  // A node started without seeds is a one-node cluster by design: it said so once at start,
  // and a push says nothing about copies.
  EXPECT_EQ(push.err, "");

  std::vector<std::string> texts = {"where is my parcel", "hello there", "i want my money back",
                                    "привет", "unseen-wordzzz ???", "talk to a human please"};
  auto expected = fasttext_predict_prob(v1_, texts, 2);
  ASSERT_EQ(expected.size(), texts.size());
  auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer", infer_body(texts, 2));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["model_name"], "acme/bot");
  EXPECT_EQ(j["model_version"], "1");
  ASSERT_EQ(j["outputs"][0]["shape"], json({texts.size(), 2}));
  for (size_t i = 0; i < texts.size(); ++i) {
    std::istringstream line(expected[i]);
    for (size_t k = 0; k < 2; ++k) {
      std::string label;
      float prob = 0;
      line >> label >> prob;
      EXPECT_EQ("__label__" + j["outputs"][0]["data"][i * 2 + k].get<std::string>(), label) << texts[i];
      EXPECT_NEAR(j["outputs"][1]["data"][i * 2 + k].get<float>(), prob, 1e-4) << texts[i];
    }
  }

  auto cli = node_->cli({"infer", "acme/bot", "where is my parcel"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out.substr(0, cli.out.find('\t')), "order_status");
}

// Small batches on a loaded snapshot are answered by the HTTP thread itself, larger ones by the
// model host actor: both must give fastText's answers, in order, whichever path a request takes
// (the first request, with nothing loaded, also goes through the actors).
TEST_F(node_test, batches_answer_alike_on_the_http_thread_and_through_the_actors) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  const std::vector<std::string> base = {"where is my parcel", "hello there", "refund please",
                                         "talk to a human", "γειά σου", "are you open today"};
  for (size_t n : {size_t{3}, size_t{64}, size_t{65}, size_t{300}, size_t{3}}) {
    std::vector<std::string> texts;
    for (size_t i = 0; i < n; ++i) texts.push_back(base[i % base.size()] + " " + std::to_string(i));
    auto expected = fasttext_predict_prob(v1_, texts, 1);
    ASSERT_EQ(expected.size(), n);
    auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer", infer_body(texts));
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    ASSERT_EQ(j["outputs"][0]["shape"], json({n, 1}));
    for (size_t i = 0; i < n; ++i) {
      std::istringstream line(expected[i]);
      std::string label;
      line >> label;
      EXPECT_EQ("__label__" + j["outputs"][0]["data"][i].get<std::string>(), label)
          << "batch of " << n << ", text " << i;
    }
  }
}

// Micro-batching: many clients at once on two loaded models, over HTTP and ZeroMQ, with top-k 1
// and 2 and one to three texts per request. Requests that arrive together are predicted together;
// each must still get exactly its own answers (fastText's, in its order), with micro-batching on
// (the default) and off.
TEST_F(node_test, concurrent_requests_predicted_together_each_get_their_own_answers) {
  for (const char* batch_texts : {"64", "0"}) {
    SCOPED_TRACE(std::string("micro_batch_texts ") + batch_texts);
    node_.reset();
    data_ = std::make_unique<temp_dir>();
    std::vector<std::string> args = {"--micro-batch-texts", batch_texts};
    for (const auto& a : default_queue_flags()) args.push_back(a);
    node_ = std::make_unique<node_process>(data_->path() + "/data", args);
    ASSERT_EQ(node_->cli({"snapshot", "push", "acme/a", v1_}).exit_code, 0);
    ASSERT_EQ(node_->cli({"snapshot", "push", "acme/b", v2_}).exit_code, 0);
    const std::vector<std::string> pool = {
        "where is my parcel", "hello there",     "i want my money back", "talk to a human",
        "привет",             "are you open",    "cancel my order",      "unseen-wordzzz ???",
        "my package is late", "thanks, bye now", "refund refund",        "what time do you close"};
    // expected[model][text]: the two best labels
    std::vector<std::vector<std::pair<std::string, std::string>>> expected(2);
    for (int m = 0; m < 2; ++m) {
      auto lines = fasttext_predict_prob(m == 0 ? v1_ : v2_, pool, 2);
      ASSERT_EQ(lines.size(), pool.size());
      for (const auto& line : lines) {
        std::istringstream in(line);
        std::string l1, l2;
        float p = 0;
        in >> l1 >> p >> l2;
        expected[m].emplace_back(l1.substr(9), l2.substr(9));  // without "__label__"
      }
    }
    std::atomic<int> checked{0}, wrong{0};
    std::mutex first_mutex;
    std::string first_wrong;
    auto report = [&](const std::string& what) {
      ++wrong;
      std::lock_guard<std::mutex> lock(first_mutex);
      if (first_wrong.empty()) first_wrong = what;
    };
    // What request (client c, number i) asks: a model, k, and texts from the pool.
    auto ask = [&](int c, int i, int& m, int& k, std::vector<size_t>& picks) {
      m = (c + i) % 2;
      k = 1 + (c * 3 + i) % 2;
      picks.clear();
      for (int t = 0; t < 1 + (c + i * 7) % 3; ++t) picks.push_back((c * 5 + i * 3 + t * 7) % pool.size());
    };
    auto check = [&](int m, int k, const std::vector<size_t>& picks,
                     const std::vector<std::string>& labels, const std::string& via) {
      bool ok = labels.size() == picks.size() * static_cast<size_t>(k);
      for (size_t t = 0; ok && t < picks.size(); ++t) {
        ok = labels[t * k] == expected[m][picks[t]].first &&
             (k == 1 || labels[t * k + 1] == expected[m][picks[t]].second);
      }
      ++checked;
      if (!ok) report(via + " model " + std::to_string(m) + " k " + std::to_string(k));
    };
    std::vector<std::thread> clients;
    for (int c = 0; c < 6; ++c) {
      clients.emplace_back([&, c] {
        int m = 0, k = 1;
        std::vector<size_t> picks;
        for (int i = 0; i < 40; ++i) {
          ask(c, i, m, k, picks);
          std::vector<std::string> texts;
          for (size_t p : picks) texts.push_back(pool[p]);
          auto r = http_call(node_->http_port(), "POST",
                             std::string("/v2/models/acme/") + (m == 0 ? "a" : "b") + "/infer",
                             infer_body(texts, k));
          auto j = json::parse(r.body, nullptr, false);
          if (r.status != 200 || j.is_discarded()) {
            report("HTTP " + std::to_string(r.status) + " " + r.body);
            continue;
          }
          check(m, k, picks, j["outputs"][0]["data"].get<std::vector<std::string>>(), "HTTP");
        }
      });
    }
    for (int c = 6; c < 10; ++c) {
      clients.emplace_back([&, c] {
        auto client = zmq_client::connect("127.0.0.1:" + std::to_string(node_->zmq_port()),
                                          std::chrono::milliseconds(10000));
        if (!client) {
          report("no ZeroMQ client");
          return;
        }
        int m = 0, k = 1;
        std::vector<size_t> picks;
        for (int i = 0; i < 40; ++i) {
          ask(c, i, m, k, picks);
          infer_request req;
          req.id = model_id{"acme", m == 0 ? "a" : "b"};
          req.top_k = static_cast<uint32_t>(k);
          for (size_t p : picks) req.texts.push_back(pool[p]);
          auto bytes = client->call(encode_request(static_cast<uint64_t>(c * 1000 + i + 1), req));
          if (!bytes) {
            report("ZeroMQ " + bytes.error().to_string());
            continue;
          }
          auto got = decode_infer_response(*bytes);
          if (!got) {
            report("ZeroMQ " + got.error().to_string());
            continue;
          }
          std::vector<std::string> labels;
          for (const auto& row : got->rows) {
            for (const auto& p : row) labels.push_back(p.label);
          }
          check(m, k, picks, labels, "ZeroMQ");
        }
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(checked.load(), 400);
    EXPECT_EQ(wrong.load(), 0) << "first wrong answer: " << first_wrong;
  }
}

TEST_F(node_test, promote_and_rollback_change_what_is_served) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  auto push2 = node_->cli({"snapshot", "push", "acme/bot", v2_, "--label", "staging"});
  ASSERT_EQ(push2.exit_code, 0) << push2.err;
  EXPECT_EQ(trim(push2.out), "2");

  const std::string text = "cancel my order";
  EXPECT_EQ(http_top_label(text), "refund");  // production is still version 1
  EXPECT_EQ(http_top_label(text, "/v2/models/acme/bot/versions/2/infer"), "cancel_order");

  auto promote = node_->cli({"snapshot", "promote", "acme/bot", "2"});
  ASSERT_EQ(promote.exit_code, 0) << promote.err;
  EXPECT_EQ(http_top_label(text), "cancel_order");

  auto rollback = node_->cli({"snapshot", "rollback", "acme/bot"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_EQ(http_top_label(text), "refund");

  auto again = node_->cli({"snapshot", "rollback", "acme/bot"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("roll back"), std::string::npos) << again.err;
  EXPECT_EQ(std::count(again.err.begin(), again.err.end(), '\n'), 1) << again.err;

  auto list = node_->cli({"snapshot", "list", "acme/bot", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = json::parse(list.out);
  EXPECT_EQ(j["snapshots"].size(), 2u);
  EXPECT_EQ(j["labels"]["production"]["version"], 1);
  EXPECT_EQ(j["labels"]["staging"]["version"], 2);
  EXPECT_EQ(j["labels"]["production"]["history"].size(), 3u);  // push, promote, rollback
}

// The examples of intents-v2 with every label moved seven lines on: a model trained on them
// learned nothing (the "shuffled labels" model of issue 18).
std::string shuffled_examples() {
  const std::string examples = read_file(source_dir() + "/examples/intents-v2.txt");
  std::vector<std::string> labels, texts;
  std::istringstream in(examples);
  for (std::string line; std::getline(in, line);) {
    auto sp = line.find(' ');
    labels.push_back(line.substr(0, sp));
    texts.push_back(line.substr(sp + 1));
  }
  std::rotate(labels.begin(), labels.begin() + 7, labels.end());
  std::string out;
  for (size_t i = 0; i < texts.size(); ++i) out += labels[i] + " " + texts[i] + "\n";
  return out;
}

// The texts of intents-v2, for traffic that exercises every label.
std::vector<std::string> example_texts() {
  std::vector<std::string> texts;
  std::istringstream in(read_file(source_dir() + "/examples/intents-v2.txt"));
  for (std::string line; std::getline(in, line);) texts.push_back(line.substr(line.find(' ') + 1));
  return texts;
}

// Issue 18: registry metadata is kept with a snapshot and shown by the CLI and V2 metadata; bad
// metadata is refused before anything is stored.
TEST_F(node_test, snapshots_carry_who_pushed_them_tags_metrics_and_source) {
  const std::string metrics = data_->path() + "/metrics.json";
  ASSERT_TRUE(write_file(metrics, "{\"accuracy\": 0.93, \"epochs\": 25}\n"));
  auto push = node_->cli({"snapshot", "push", "acme/bot", v1_, "--user", "alice", "--tag",
                          "dataset=2026-12-01", "--tag", "team=bots", "--metrics", metrics,
                          "--source", "git://example/bots@abc123", "--note", "first bot"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  auto show = node_->cli({"snapshot", "show", "acme/bot", "1", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = json::parse(show.out);
  EXPECT_EQ(j["user"], "alice");
  EXPECT_EQ(j["pushed_with"], "");  // an open node: no key
  EXPECT_EQ(j["tags"], (json{{"dataset", "2026-12-01"}, {"team", "bots"}}));
  EXPECT_EQ(j["metrics"]["accuracy"], 0.93);
  EXPECT_EQ(j["source"], "git://example/bots@abc123");
  EXPECT_EQ(j["note"], "first bot");
  auto text = node_->cli({"snapshot", "show", "acme/bot", "1"});
  EXPECT_NE(text.out.find("pushed by  alice"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("tags       dataset=2026-12-01, team=bots"), std::string::npos)
      << text.out;
  auto meta = http_call(node_->http_port(), "GET", "/v2/models/acme/bot");
  ASSERT_EQ(meta.status, 200) << meta.body;
  auto m = json::parse(meta.body);
  EXPECT_EQ(m["snapshots"][0]["user"], "alice");
  EXPECT_EQ(m["snapshots"][0]["tags"]["team"], "bots");
  EXPECT_EQ(m["snapshots"][0]["metrics"]["epochs"], 25);

  // Bad metadata: a clear error, exit 1 or 2, and no version used.
  ASSERT_TRUE(write_file(metrics, "[1, 2]"));
  auto array = node_->cli({"snapshot", "push", "acme/bot", v2_, "--metrics", metrics});
  EXPECT_EQ(array.exit_code, 1);
  EXPECT_NE(array.err.find("must be a JSON object"), std::string::npos) << array.err;
  auto tag = node_->cli({"snapshot", "push", "acme/bot", v2_, "--tag", "Upper=x"});
  EXPECT_EQ(tag.exit_code, 2);
  auto missing = node_->cli({"snapshot", "push", "acme/bot", v2_, "--metrics", "/nonexistent"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read metrics file"), std::string::npos) << missing.err;
  auto after = node_->cli({"snapshot", "push", "acme/bot", v2_});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(trim(after.out), "2");
  auto no_such = node_->cli({"snapshot", "show", "acme/bot", "7"});
  EXPECT_EQ(no_such.exit_code, 1);
  EXPECT_NE(no_such.err.find("has no version 7"), std::string::npos) << no_such.err;
}

// Issue 18: the validation gate. A model trained on shuffled labels is refused, an equally good
// retrain passes, --force moves the label and says who forced it, and a push straight to
// production is gated like a promote.
TEST_F(node_test, the_validation_gate_refuses_a_worse_model_and_lets_a_good_one_through) {
  const std::string examples = read_file(source_dir() + "/examples/intents-v2.txt");
  const std::string shuffled_text = shuffled_examples();
  std::vector<std::string> opts = {"-epoch",  "25",    "-lr",         "0.5", "-dim",  "16",
                                   "-bucket", "20000", "-wordNgrams", "2",   "-minn", "2",
                                   "-maxn",   "4"};
  const std::string shuffled = train_fasttext(data_->path(), "shuffled", shuffled_text, opts);
  opts.push_back("-seed");
  opts.push_back("7");
  const std::string retrained = train_fasttext(data_->path(), "retrained", examples, opts);

  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v2_}).exit_code, 0);        // 1
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", shuffled}).exit_code, 0);   // 2
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", retrained}).exit_code, 0);  // 3

  // No validation set: promoted as before, with a note that nothing was checked.
  auto unchecked = node_->cli({"snapshot", "promote", "acme/bot", "3"});
  ASSERT_EQ(unchecked.exit_code, 0) << unchecked.err;
  EXPECT_NE(unchecked.err.find("no validation set: nothing was checked"), std::string::npos)
      << unchecked.err;
  ASSERT_EQ(node_->cli({"snapshot", "rollback", "acme/bot"}).exit_code, 0);  // back to 1

  const std::string set = data_->path() + "/heldout.txt";
  ASSERT_TRUE(write_file(set, examples));
  auto set_it = node_->cli({"validation", "set", "acme/bot", set});
  ASSERT_EQ(set_it.exit_code, 0) << set_it.err;
  EXPECT_NE(set_it.out.find("validation set 1 in use: 320 examples"), std::string::npos)
      << set_it.out;

  const std::string text = "cancel my order";
  ASSERT_EQ(http_top_label(text), "cancel_order");  // version 1 serves
  auto refused = node_->cli({"snapshot", "promote", "acme/bot", "2"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("validation refused acme/bot version 2 for production: accuracy "
                             "dropped"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("production stays at 1"), std::string::npos) << refused.err;
  EXPECT_EQ(http_top_label(text), "cancel_order");
  auto list = json::parse(node_->cli({"snapshot", "list", "acme/bot", "--json"}).out);
  EXPECT_EQ(list["labels"]["production"]["version"], 1);
  auto show2 = json::parse(node_->cli({"snapshot", "show", "acme/bot", "2", "--json"}).out);
  ASSERT_EQ(show2["validation_reports"].size(), 1u) << show2.dump();
  const auto& report = show2["validation_reports"][0];
  EXPECT_EQ(report["passed"], false);
  EXPECT_EQ(report["baseline"], 1);
  EXPECT_EQ(report["set"], 1);
  EXPECT_LT(report["figures"]["candidate"]["accuracy"].get<double>(), 0.5);
  EXPECT_GT(report["figures"]["baseline"]["accuracy"].get<double>(), 0.9);
  EXPECT_GT(report["figures"]["top_changed"].get<double>(), 0.5);
  EXPECT_EQ(report["figures"]["candidate"]["labels"].size(), 7u);

  // `validate` compares without moving; a passing retrain then promotes.
  auto check = node_->cli({"snapshot", "validate", "acme/bot", "3"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("version 3 vs 1 on set 1"), std::string::npos) << check.out;
  auto passed = node_->cli({"snapshot", "promote", "acme/bot", "3"});
  ASSERT_EQ(passed.exit_code, 0) << passed.err;
  EXPECT_NE(passed.out.find("acme/bot production: 1 -> 3"), std::string::npos) << passed.out;
  EXPECT_NE(passed.out.find("passed"), std::string::npos) << passed.out;

  // Straight to production with a push: stored, gated, refused.
  auto push_bad = node_->cli({"snapshot", "push", "acme/bot", shuffled, "--label", "production"});
  EXPECT_EQ(push_bad.exit_code, 1);
  EXPECT_NE(push_bad.err.find("stored as version 4, but production did not move"),
            std::string::npos)
      << push_bad.err;

  // Forced: moved, and the history says so and by whom.
  auto forced = node_->cli({"snapshot", "promote", "acme/bot", "2", "--force", "--user", "ops"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.err.find("forced past the validation gate"), std::string::npos) << forced.err;
  list = json::parse(node_->cli({"snapshot", "list", "acme/bot", "--json"}).out);
  EXPECT_EQ(list["labels"]["production"]["version"], 2);
  const auto& last = list["labels"]["production"]["history"].back();
  EXPECT_EQ(last["forced"], true);
  EXPECT_EQ(last["by"], "ops");
  auto text_list = node_->cli({"snapshot", "list", "acme/bot"});
  EXPECT_NE(text_list.out.find("-> 2 (forced by ops)"), std::string::npos) << text_list.out;

  // Rollbacks are never gated; policies loosen the gate; bad policies and sets are refused.
  ASSERT_EQ(node_->cli({"snapshot", "rollback", "acme/bot"}).exit_code, 0);
  auto policy = node_->cli({"policy", "set", "acme/bot", "accuracy_drop=100", "recall_drop=100"});
  ASSERT_EQ(policy.exit_code, 0) << policy.err;
  EXPECT_NE(policy.out.find("accuracy_drop       100"), std::string::npos) << policy.out;
  auto loose = node_->cli({"snapshot", "validate", "acme/bot", "2"});
  EXPECT_EQ(loose.exit_code, 0) << loose.err;
  // A tenant's policy applies to its models; a model's own settings win.
  auto tenant = node_->cli({"policy", "set", "acme", "recall_drop=50", "watch=5m"});
  ASSERT_EQ(tenant.exit_code, 0) << tenant.err;
  auto shown = node_->cli({"policy", "show", "acme/bot", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto pol = json::parse(shown.out);
  EXPECT_EQ(pol["watch"], "5m");         // the tenant's
  EXPECT_EQ(pol["recall_drop"], "100");  // the model's own
  EXPECT_EQ(pol["accuracy_drop"], "100");
  EXPECT_EQ(json::parse(node_->cli({"policy", "show", "acme", "--json"}).out)["accuracy_drop"],
            "1");
  auto bogus = node_->cli({"policy", "set", "acme/bot", "accuracy=1"});
  EXPECT_EQ(bogus.exit_code, 1);
  EXPECT_NE(bogus.err.find("unknown policy setting 'accuracy'"), std::string::npos) << bogus.err;
  ASSERT_TRUE(write_file(set, "__label__a fine\nno label\n"));
  auto bad_set = node_->cli({"validation", "set", "acme/bot", set});
  EXPECT_EQ(bad_set.exit_code, 1);
  EXPECT_NE(bad_set.err.find("line 2"), std::string::npos) << bad_set.err;
  auto back = node_->cli({"validation", "rollback", "acme/bot"});
  EXPECT_EQ(back.exit_code, 1);  // only one set
  EXPECT_NE(back.err.find("no earlier validation set"), std::string::npos) << back.err;
}

// Issue 18: shadow and canary trials on live traffic, and the watch after a promote: a forced
// bad promote under traffic is rolled back by the node itself, once, with its reason; a retrain
// of the same quality is kept.
TEST_F(node_test, trials_on_live_traffic_and_the_watch_rolls_a_bad_promote_back_by_itself) {
  std::vector<std::string> opts = {"-epoch",  "25",    "-lr",         "0.5", "-dim",  "16",
                                   "-bucket", "20000", "-wordNgrams", "2",   "-minn", "2",
                                   "-maxn",   "4"};
  const std::string shuffled = train_fasttext(data_->path(), "shuffled", shuffled_examples(), opts);
  opts.insert(opts.end(), {"-seed", "7"});
  const std::string retrained = train_fasttext(
      data_->path(), "retrained", read_file(source_dir() + "/examples/intents-v2.txt"), opts);
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v2_}).exit_code, 0);        // 1
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", shuffled}).exit_code, 0);   // 2
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", retrained}).exit_code, 0);  // 3
  // Judge after 50 compared requests, with every request compared.
  ASSERT_EQ(
      node_->cli({"policy", "set", "acme/bot", "watch_share=100%", "min_requests=50"}).exit_code,
      0);
  const auto texts = example_texts();
  size_t next = 0;
  auto send = [&](int n, std::map<std::string, int>* versions = nullptr) {
    for (int i = 0; i < n; ++i) {
      auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                         infer_body({texts[next++ % texts.size()]}));
      ASSERT_EQ(r.status, 200) << r.body;
      if (versions) ++(*versions)[json::parse(r.body).value("model_version", "")];
    }
  };
  auto metric = [&](const std::string& series) {
    return metric_value(http_call(node_->http_port(), "GET", "/metrics").body, series).value_or(-1);
  };
  auto production = [&] {
    return json::parse(
        node_->cli({"snapshot", "list", "acme/bot", "--json"}).out)["labels"]["production"];
  };

  send(1);  // version 1 in memory: from here every answer is given on the HTTP thread
  // Shadow: every request answered by 1 is predicted by 3 too; the answers stay 1's.
  auto shadow = node_->cli({"snapshot", "shadow", "acme/bot", "3", "--share", "100%"});
  ASSERT_EQ(shadow.exit_code, 0) << shadow.err;
  EXPECT_EQ(trim(shadow.out),
            "acme/bot shadow: version 3 also predicts 100.0% of production requests (answers "
            "discarded)");
  std::map<std::string, int> versions;
  send(80, &versions);
  EXPECT_EQ(versions, (std::map<std::string, int>{{"1", 80}}));
  const std::string pair = "{tenant=\"acme\",model=\"bot\",version=\"1\",shadow_version=\"3\"}";
  // The series of a trial appear with the node's next tick (at most a second).
  for (int i = 0; i < 50 && metric("shoal_trial_compared_total" + pair) < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(metric("shoal_trial_compared_total" + pair), 80);
  EXPECT_GE(metric("shoal_trial_agreed_total" + pair), 60);  // a retrain mostly agrees
  auto show = node_->cli({"snapshot", "show", "acme/bot", "3"});
  EXPECT_NE(show.out.find("shadow: 100.0% of production traffic"), std::string::npos) << show.out;
  ASSERT_EQ(node_->cli({"snapshot", "shadow", "acme/bot", "--stop"}).exit_code, 0);
  auto stopped = node_->cli({"snapshot", "shadow", "acme/bot", "--stop"});
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_NE(stopped.err.find("has no shadow running"), std::string::npos) << stopped.err;

  // Canary: half of production's requests are answered by 3.
  ASSERT_EQ(node_->cli({"snapshot", "canary", "acme/bot", "3", "--share", "50%"}).exit_code, 0);
  versions.clear();
  send(200, &versions);
  EXPECT_GT(versions["3"], 50) << versions["1"] << " / " << versions["3"];
  EXPECT_GT(versions["1"], 50) << versions["1"] << " / " << versions["3"];
  EXPECT_EQ(versions["1"] + versions["3"], 200);
  auto needs_share = node_->cli({"snapshot", "canary", "acme/bot", "3"});
  EXPECT_EQ(needs_share.exit_code, 2);
  auto bad_share = node_->cli({"snapshot", "canary", "acme/bot", "3", "--share", "150%"});
  EXPECT_EQ(bad_share.exit_code, 2);

  // A retrain of the same quality: promoted (the promote ends the canary), watched, kept.
  ASSERT_EQ(node_->cli({"snapshot", "promote", "acme/bot", "3"}).exit_code, 0);
  EXPECT_TRUE(
      json::parse(node_->cli({"snapshot", "list", "acme/bot", "--json"}).out)["trial"]["mode"] ==
      "watch");
  send(150);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(production()["version"], 3);
  EXPECT_EQ(metric("shoal_auto_rollbacks_total"), 0);

  // A forced bad promote under traffic: rolled back to 3 by the node, with the reason.
  ASSERT_EQ(node_->cli({"snapshot", "promote", "acme/bot", "2", "--force"}).exit_code, 0);
  const auto t0 = std::chrono::steady_clock::now();
  while (production()["version"] != 3 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20 * build_slowdown)) {
    send(20);
  }
  auto p = production();
  ASSERT_EQ(p["version"], 3) << node_->log();
  const auto& last = p["history"].back();
  EXPECT_EQ(last["automatic"], true);
  EXPECT_EQ(last["from"], 2);
  EXPECT_EQ(last["to"], 3);
  EXPECT_NE(last["reason"].get<std::string>().find("agreement"), std::string::npos) << last;
  EXPECT_EQ(metric("shoal_auto_rollbacks_total"), 1);
  EXPECT_NE(node_->log().find("automatic rollback"), std::string::npos);
  auto listing = node_->cli({"snapshot", "list", "acme/bot"});
  EXPECT_NE(listing.out.find("-> 2 -> 3 (auto: agreement"), std::string::npos) << listing.out;
  // Once: more traffic moves nothing more.
  send(100);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(production()["history"].size(), p["history"].size());
}

TEST_F(node_test, kill_9_after_acknowledgement_loses_nothing) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v2_}).exit_code, 0);
  ASSERT_EQ(node_->cli({"snapshot", "promote", "acme/bot", "2"}).exit_code, 0);
  ASSERT_EQ(node_->cli({"snapshot", "promote", "acme/bot", "1", "--label", "canary"}).exit_code, 0);
  auto before = node_->cli({"snapshot", "list", "acme/bot", "--json"});
  node_->stop(SIGKILL);
  node_->restart();
  auto after = node_->cli({"snapshot", "list", "acme/bot", "--json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(json::parse(after.out), json::parse(before.out));
  EXPECT_EQ(http_top_label("cancel my order"), "cancel_order");
  EXPECT_EQ(trim(node_->cli({"snapshot", "push", "acme/bot", v1_}).out), "3");
}

TEST_F(node_test, sigterm_and_sigint_stop_cleanly_and_state_survives) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  int st = node_->stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_NE(node_->log().find("node stopped"), std::string::npos) << node_->log();
  node_->restart();
  EXPECT_EQ(http_top_label("where is my parcel"), "order_status");
  st = node_->stop(SIGINT);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

// Regression: Ctrl-C in the demo's terminal sends SIGINT and the script's trap then sends
// SIGTERM; the second signal used to kill the node half-way through stopping (exit 143).
TEST_F(node_test, a_second_stop_signal_does_not_cut_stopping_short) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  EXPECT_EQ(http_top_label("where is my parcel"), "order_status");  // OpenBLAS threads running
  node_->send_signal(SIGINT);
  int st = node_->stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_NE(node_->log().find("node stopped"), std::string::npos) << node_->log();
}

TEST_F(node_test, second_node_on_the_same_data_dir_is_refused) {
  auto r = run_shoal(
      {"node", "--data-dir", data_->path() + "/data", "--http-port", std::to_string(free_port()),
       "--zmq-port", std::to_string(free_port()), "--grpc-port", std::to_string(free_port())},
      std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  EXPECT_TRUE(node_->alive());
}

TEST_F(node_test, bad_model_files_are_refused_and_use_no_version_number) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  auto stored_before = snapshot_files(data_->path() + "/data/snapshots");
  std::string good = read_file(v1_);
  std::vector<std::pair<std::string, std::string>> bad = {
      {"empty", ""},
      {"truncated", good.substr(0, good.size() / 2)},
      {"header only", good.substr(0, 40)},
      {"text", "this is not a model\n"},
      {"garbage", std::string("\x00\xff\x13\x37garbage", 11)},
      {"trailing", good + "extra"},
  };
  for (const auto& [what, bytes] : bad) {
    std::string path = data_->path() + "/bad.bin";
    write_file(path, bytes);
    auto r = node_->cli({"snapshot", "push", "acme/bot", path});
    EXPECT_EQ(r.exit_code, 1) << what;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
    EXPECT_EQ(r.out, "") << what;
  }
  auto missing = node_->cli({"snapshot", "push", "acme/bot", data_->path() + "/nope.bin"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope.bin"), std::string::npos) << missing.err;

  EXPECT_EQ(snapshot_files(data_->path() + "/data/snapshots"), stored_before);
  EXPECT_EQ(trim(node_->cli({"snapshot", "push", "acme/bot", v2_}).out), "2");
}

TEST_F(node_test, bad_http_requests_get_4xx_and_the_node_keeps_serving) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  auto stored_before = snapshot_files(data_->path() + "/data");
  const std::string infer = "/v2/models/acme/bot/infer";
  struct bad_case {
    std::string what, method, target, body;
    int status;
  };
  std::vector<bad_case> cases = {
      {"malformed json", "POST", infer, "{\"inputs\": [", 400},
      {"not an object", "POST", infer, "[1,2,3]", 400},
      {"no inputs", "POST", infer, "{}", 400},
      {"wrong datatype", "POST", infer,
       R"({"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1.0]}]})", 400},
      {"shape mismatch", "POST", infer,
       R"({"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":["a"]}]})", 400},
      {"data not strings", "POST", infer,
       R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[7]}]})", 400},
      {"bad top_k", "POST", infer,
       R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],"parameters":{"top_k":0}})", 400},
      {"invalid utf-8", "POST", infer,
       "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"\xc3\x28\"]}]}", 400},
      {"unknown model", "POST", "/v2/models/acme/nobot/infer", infer_body({"hi"}), 404},
      {"unknown version", "POST", "/v2/models/acme/bot/versions/7/infer", infer_body({"hi"}), 404},
      {"bad version", "POST", "/v2/models/acme/bot/versions/x/infer", infer_body({"hi"}), 400},
      {"path traversal id", "POST", "/v2/models/../x/infer", infer_body({"hi"}), 400},
      {"encoded traversal", "GET", "/v2/models/..%2Fx", "", 400},
      {"upper-case id", "GET", "/v2/models/Acme/bot", "", 400},
      {"unknown path", "GET", "/v3/whatever", "", 404},
      {"unknown model metadata", "GET", "/v2/models/acme/nobot", "", 404},
      {"wrong method", "GET", infer, "", 405},
  };
  for (const auto& c : cases) {
    auto r = http_call(node_->http_port(), c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(!j.is_discarded() && j.contains("error") && !j["error"].get<std::string>().empty())
        << c.what << ": " << r.body;
  }
  // Over the 4 MiB body limit.
  std::string huge(5u << 20, 'a');
  EXPECT_EQ(http_call(node_->http_port(), "POST", infer, huge).status, 413);
  // Garbage bytes on the HTTP port.
  raw_exchange(node_->http_port(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  raw_exchange(node_->http_port(), "GARBAGE\r\n\r\n");

  EXPECT_TRUE(node_->alive());
  EXPECT_EQ(http_top_label("where is my parcel"), "order_status");
  EXPECT_EQ(snapshot_files(data_->path() + "/data"), stored_before);
}

TEST_F(node_test, http_metadata_health_and_percent_encoded_names) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  auto live = http_call(node_->http_port(), "GET", "/v2/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(json::parse(live.body), json({{"live", true}}));
  auto ready = http_call(node_->http_port(), "GET", "/v2/health/ready");
  EXPECT_EQ(json::parse(ready.body), json({{"ready", true}}));
  auto server = http_call(node_->http_port(), "GET", "/v2");
  EXPECT_EQ(json::parse(server.body)["name"], "shoal");

  auto meta = http_call(node_->http_port(), "GET", "/v2/models/acme%2Fbot");
  ASSERT_EQ(meta.status, 200) << meta.body;
  auto j = json::parse(meta.body);
  EXPECT_EQ(j["name"], "acme/bot");
  EXPECT_EQ(j["versions"], json({"1"}));
  EXPECT_EQ(j["labels"]["production"], "1");

  auto model_ready = http_call(node_->http_port(), "GET", "/v2/models/acme/bot/ready");
  EXPECT_EQ(model_ready.status, 200);
  EXPECT_EQ(json::parse(model_ready.body)["ready"], true);

  EXPECT_EQ(http_top_label("where is my parcel", "/v2/models/acme%2Fbot/infer"), "order_status");
  EXPECT_EQ(http_top_label("where is my parcel", "/v2/models/acme%2Fbot/versions/1/infer"), "order_status");
}

// The review fixes as a V2 client sees them on a real node: HEAD like GET without a body, a Date
// on every answer, only the outputs asked for, nested data, and Triton's classification count.
TEST_F(node_test, v2_clients_get_head_date_outputs_nested_data_and_class_count) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  for (const char* path : {"/v2/health/ready", "/v2/models/acme/bot", "/v2/models/acme/bot/ready"}) {
    SCOPED_TRACE(path);
    auto get = http_call(node_->http_port(), "GET", path);
    auto head = http_call(node_->http_port(), "HEAD", path);
    EXPECT_EQ(get.status, 200);
    EXPECT_EQ(head.status, 200) << head.headers;
    EXPECT_EQ(head.body, "") << "HEAD answers without a body";
    EXPECT_NE(head.headers.find("Content-Length: " + std::to_string(get.body.size())),
              std::string::npos)
        << head.headers;
    EXPECT_NE(get.headers.find("\r\nDate: "), std::string::npos) << get.headers;
    EXPECT_NE(head.headers.find(" GMT"), std::string::npos) << head.headers;
  }
  auto head_infer = http_call(node_->http_port(), "HEAD", "/v2/models/acme/bot/infer");
  EXPECT_EQ(head_infer.status, 405);
  EXPECT_NE(head_infer.headers.find("Allow: POST"), std::string::npos) << head_infer.headers;
  auto post_ready = http_call(node_->http_port(), "POST", "/v2/health/ready", "{}");
  EXPECT_EQ(post_ready.status, 405);
  EXPECT_NE(post_ready.headers.find("Allow: GET, HEAD"), std::string::npos) << post_ready.headers;

  const std::string input =
      R"({"name":"text","shape":[2,1],"datatype":"BYTES","data":[["where is my parcel"],["cancel my order"]]})";
  auto nested = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                          R"({"inputs":[)" + input + R"(],"outputs":[{"name":"labels"}]})");
  ASSERT_EQ(nested.status, 200) << nested.body;
  auto j = json::parse(nested.body);
  ASSERT_EQ(j["outputs"].size(), 1u) << nested.body;
  EXPECT_EQ(j["outputs"][0]["name"], "labels");
  EXPECT_EQ(j["outputs"][0]["shape"], json::array({2, 1}));
  EXPECT_EQ(j["outputs"][0]["data"][0], "order_status");

  auto classified = http_call(
      node_->http_port(), "POST", "/v2/models/acme/bot/infer",
      R"({"inputs":[)" + input +
          R"(],"outputs":[{"name":"scores","parameters":{"classification":2,"binary_data":true}}]})");
  ASSERT_EQ(classified.status, 200) << classified.body;
  // binary_data: the scores come after the JSON, whose length the header gives.
  const auto at = classified.headers.find("Inference-Header-Content-Length: ");
  ASSERT_NE(at, std::string::npos) << classified.headers;
  const size_t json_length = std::stoul(classified.headers.substr(at + 33));
  ASSERT_LE(json_length, classified.body.size());
  j = json::parse(classified.body.substr(0, json_length));
  ASSERT_EQ(j["outputs"].size(), 1u) << classified.body;
  EXPECT_EQ(j["outputs"][0]["name"], "scores");
  EXPECT_EQ(j["outputs"][0]["shape"], json::array({2, 2})) << "classification 2 is top-2";
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 16);
  EXPECT_EQ(classified.body.size(), json_length + 16);
  float top = 0;
  std::memcpy(&top, classified.body.data() + json_length, 4);
  EXPECT_GT(top, 0.0f);
  EXPECT_LE(top, 1.0001f);

  auto unknown = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                           R"({"inputs":[)" + input + R"(],"outputs":[{"name":"logits"}]})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown output 'logits'"), std::string::npos) << unknown.body;
}

TEST_F(node_test, garbage_on_the_zeromq_port_gets_an_error_reply_and_the_node_keeps_serving) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  zmq::context_t ctx;
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvtimeo, 5000);
  sock.connect("tcp://" + node_->node_addr());
  std::string garbage("\xff\xfe\x00garbage that is not protobuf", 31);
  sock.send(zmq::buffer(garbage), zmq::send_flags::none);
  zmq::message_t reply;
  auto got = sock.recv(reply, zmq::recv_flags::none);
  ASSERT_TRUE(got.has_value()) << "no reply to garbage";
  EXPECT_GT(reply.size(), 0u);
  // A raw TCP peer that is not ZeroMQ at all.
  raw_exchange(node_->zmq_port(), "GET / HTTP/1.1\r\n\r\n", std::chrono::milliseconds(300));
  EXPECT_TRUE(node_->alive());
  auto models = node_->cli({"models", "--json"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_EQ(json::parse(models.out)["models"].size(), 1u);
}

TEST_F(node_test, cli_errors_are_one_line_and_nonzero) {
  auto bad_id = node_->cli({"snapshot", "list", "../x"});
  EXPECT_NE(bad_id.exit_code, 0);
  EXPECT_EQ(std::count(bad_id.err.begin(), bad_id.err.end(), '\n'), 1) << bad_id.err;
  EXPECT_NE(bad_id.err.find("invalid model id"), std::string::npos) << bad_id.err;

  auto unknown = node_->cli({"infer", "acme/nobot", "hello"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("acme/nobot"), std::string::npos) << unknown.err;

  auto no_node = run_shoal({"models", "--node", "127.0.0.1:" + std::to_string(free_port()), "--timeout", "1"});
  EXPECT_EQ(no_node.exit_code, 1);
  EXPECT_NE(no_node.err.find("no answer"), std::string::npos) << no_node.err;

  auto usage = run_shoal({"snapshot", "push", "acme/bot"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_EQ(usage.err, "shoal: snapshot push: missing FILE (try 'shoal snapshot push --help')\n");
  for (const auto* r : {&unknown, &no_node}) {
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
  }
}

// A node whose model memory holds two of the six models: concurrent clients over all six, with
// small batches (answered on HTTP threads from the board) and large ones (through the model
// hosts), while the node keeps unloading and reloading. No request may fail or change its answer.
TEST_F(node_test, unloading_under_concurrent_load_fails_no_request) {
  node_.reset();
  node_ = std::make_unique<node_process>(data_->path() + "/data",
                                         std::vector<std::string>{"--model-memory-mb", "3"});
  const int models = 6;
  for (int m = 0; m < models; ++m) {
    auto push = node_->cli({"snapshot", "push", "acme/m" + std::to_string(m), v1_});
    ASSERT_EQ(push.exit_code, 0) << push.err;
  }
  const std::vector<std::string> texts = {"where is my parcel", "i want my money back"};
  auto expected = fasttext_predict_prob(v1_, texts, 1);
  ASSERT_EQ(expected.size(), texts.size());
  std::vector<std::string> want;
  for (const auto& line : expected) want.push_back(line.substr(0, line.find(' ')));

  std::atomic<int> failures{0};
  std::mutex first_failure_mutex;
  std::string first_failure;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 60; ++i) {
        const int m = (c * 7 + i * 5) % models;
        const size_t n = i % 3 == 0 ? 80 : 2;  // over the inline limit of 64: through the hosts
        std::vector<std::string> batch;
        for (size_t t = 0; t < n; ++t) batch.push_back(texts[t % 2]);
        auto r = http_call(node_->http_port(), "POST",
                           "/v2/models/acme/m" + std::to_string(m) + "/infer", infer_body(batch));
        bool ok = r.status == 200;
        if (ok) {
          auto j = json::parse(r.body, nullptr, false);
          ok = !j.is_discarded() && j["outputs"][0]["data"].size() == n;
          for (size_t t = 0; ok && t < n; ++t) {
            ok = "__label__" + j["outputs"][0]["data"][t].get<std::string>() == want[t % 2];
          }
        }
        if (!ok) {
          ++failures;
          std::lock_guard<std::mutex> lock(first_failure_mutex);
          if (first_failure.empty()) first_failure = std::to_string(r.status) + " " + r.body;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0) << "first failure: " << first_failure;
  EXPECT_NE(node_->log().find("to stay within the model memory budget"), std::string::npos)
      << "the node never unloaded a model: the test did not test eviction\n" << node_->log();
  // What is loaded now fits in the budget (3 MB holds two of these models).
  auto status = node_->cli({"cluster", "status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto j = json::parse(status.out);
  EXPECT_LE(j["members"][0]["load"]["loaded_models"].get<int>(), 2) << status.out;
}

// push-dir: one model per file, named after the file; bad files are listed at the end and the
// rest stay pushed.
TEST_F(node_test, push_dir_pushes_one_model_per_file_and_lists_the_failures) {
  temp_dir dir;
  const std::string d = dir.path() + "/models";
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  for (int i = 0; i < 12; ++i) write_file(d + "/bot-" + std::to_string(i) + ".bin", read_file(v1_));
  write_file(d + "/broken.bin", "not a model at all");
  write_file(d + "/Bad Name.bin", read_file(v1_));
  write_file(d + "/bot-3.ftz", read_file(v2_));  // the same model name as bot-3.bin
  write_file(d + "/.hidden.bin", read_file(v1_));
  ASSERT_EQ(::mkdir((d + "/subdir").c_str(), 0755), 0);

  auto r = node_->cli({"snapshot", "push-dir", "acme", d, "--jobs", "3"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // stdout: one line per pushed model, in file order.
  std::istringstream lines(r.out);
  std::vector<std::string> pushed;
  for (std::string line; std::getline(lines, line);) pushed.push_back(line);
  ASSERT_EQ(pushed.size(), 12u) << r.out << r.err;
  EXPECT_EQ(pushed[0], "acme/bot-0\t1");
  EXPECT_EQ(pushed[11], "acme/bot-9\t1");
  // stderr: the progress line, then each failure with its reason.
  EXPECT_NE(r.err.find("push-dir acme: 15/15 files, 3 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("shoal: 3 of 15 files were not pushed:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("  broken.bin: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("  Bad Name.bin: the file name gives no valid model name"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("  bot-3.ftz: names the same model (bot-3) as 'bot-3.bin'"),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(".hidden"), std::string::npos) << r.err;

  // What was pushed serves; nothing else was added.
  auto models = node_->cli({"models", "--json"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  auto j = json::parse(models.out);
  EXPECT_EQ(j["models"].size(), 12u) << models.out;
  EXPECT_EQ(http_top_label("where is my parcel", "/v2/models/acme/bot-7/infer"), "order_status");

  // A directory with nothing to push, and one that does not exist: clear errors, exit 1.
  temp_dir empty;
  auto none = node_->cli({"snapshot", "push-dir", "acme", empty.path()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no model files in"), std::string::npos) << none.err;
  auto missing = node_->cli({"snapshot", "push-dir", "acme", d + "/nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read directory"), std::string::npos) << missing.err;
}

// kill -9 in the middle of a bulk push (push-dir, 16 at once, group commit): every push the
// node acknowledged is there after the restart, at the version it was acknowledged with; every
// model the catalog has (acknowledged or not) serves from whole, verified bytes; no temp file
// is left; and the same push-dir afterwards completes the set.
TEST_F(node_test, kill_9_during_a_bulk_push_loses_no_acknowledged_push) {
  temp_dir dir;
  const std::string d = dir.path() + "/models";
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  const std::string base = read_file(v1_);
  constexpr int files = 400;
  for (int i = 0; i < files; ++i) {
    // Distinct bytes per file (the last output weight), still a valid model.
    std::string bytes = base;
    const float w = 0.001f * static_cast<float>(i + 1);
    std::memcpy(&bytes[bytes.size() - sizeof w], &w, sizeof w);
    write_file(d + "/bot-" + std::to_string(i) + ".bin", bytes);
  }
  run_result bulk;
  std::thread pusher([&] {
    bulk = node_->cli({"snapshot", "push-dir", "acme", d, "--jobs", "16", "--timeout", "5"});
  });
  // Kill it once some pushes are in and more are under way.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto models = node_->cli({"models", "--json"});
    if (models.exit_code == 0) {
      seen = json::parse(models.out)["models"].size();
      if (seen >= 40) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  node_->stop(SIGKILL);
  pusher.join();
  ASSERT_GE(seen, 40u) << "the bulk push never got going: " << bulk.err;
  // What push-dir was told: one "acme/bot-N<TAB>version" line per acknowledged push.
  std::map<std::string, int> acknowledged;
  std::istringstream lines(bulk.out);
  for (std::string line; std::getline(lines, line);) {
    auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    acknowledged[line.substr(0, tab)] = std::stoi(line.substr(tab + 1));
  }
  EXPECT_GT(acknowledged.size(), 0u) << bulk.err;
  EXPECT_LT(acknowledged.size(), static_cast<size_t>(files)) << "killed after the whole push?";

  node_->restart();
  auto models = node_->cli({"models", "--json"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  std::map<std::string, int> after;  // model -> newest version
  const json listed = json::parse(models.out);
  for (const auto& m : listed["models"]) {
    int newest = 0;
    for (const auto& snap : m["snapshots"]) newest = std::max(newest, snap["version"].get<int>());
    after[m["model"].get<std::string>()] = newest;
  }
  for (const auto& [model, version] : acknowledged) {
    auto it = after.find(model);
    ASSERT_NE(it, after.end()) << model << " was acknowledged and is gone";
    EXPECT_EQ(it->second, version) << model;
  }
  // Everything the catalog holds serves (whole bytes that match their SHA-256).
  for (const auto& [model, version] : after) {
    EXPECT_EQ(http_top_label("where is my parcel", "/v2/models/" + model + "/infer"),
              "order_status") << model;
  }
  // No temp file left behind.
  size_t leftovers = 0;
  for (const auto& e : std::filesystem::directory_iterator(data_->path() + "/data/tmp")) {
    (void)e;
    ++leftovers;
  }
  EXPECT_EQ(leftovers, 0u);
  // The same push again completes the set (what was in adds a version, the rest their first).
  auto again = node_->cli({"snapshot", "push-dir", "acme", d, "--jobs", "16"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto all = node_->cli({"models", "--json"});
  EXPECT_EQ(json::parse(all.out)["models"].size(), static_cast<size_t>(files));
}

// ---- tenants ----------------------------------------------------------------------------------

const std::string acme_key = "acme-key-0123456789abcdef";
const std::string globex_key = "globex-key-0123456789abcdef";
const std::string admin_key = "admin-key-0123456789abcdef";

class tenant_test : public node_test {
 protected:
  void SetUp() override {
    data_ = std::make_unique<temp_dir>();
    keys_path_ = data_->path() + "/keys";
    ASSERT_TRUE(write_file(keys_path_, "# tenants\n" + acme_key + " acme\n" + globex_key +
                                           "   globex   # the other one\n\n" + admin_key +
                                           " admin\n"));
    node_ = std::make_unique<node_process>(data_->path() + "/data",
                                           std::vector<std::string>{"--keys-file", keys_path_});
  }

  run_result as(const std::string& key, std::vector<std::string> args) {
    if (!key.empty()) {
      args.push_back("--key");
      args.push_back(key);
    }
    return node_->cli(std::move(args));
  }

  http_response infer_as(const std::string& key, const std::string& model) {
    return http_call(node_->http_port(), "POST", "/v2/models/" + model + "/infer",
                     infer_body({"where is my parcel"}),
                     key.empty() ? "" : "Authorization: Bearer " + key + "\r\n");
  }

  std::string keys_path_;
};

TEST_F(tenant_test, no_key_or_an_unknown_key_is_401_and_health_stays_open) {
  auto none = infer_as("", "acme/bot");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_NE(none.headers.find("WWW-Authenticate: Bearer"), std::string::npos) << none.headers;
  EXPECT_NE(none.body.find("requires an API key"), std::string::npos) << none.body;
  EXPECT_EQ(infer_as("not-a-key-at-all-0000", "acme/bot").status, 401);
  auto basic = http_call(node_->http_port(), "GET", "/v2/models/acme/bot", "",
                         "Authorization: Basic dXNlcjpwYXNz\r\n");
  EXPECT_EQ(basic.status, 401) << basic.body;
  for (const char* open : {"/v2/health/live", "/v2/health/ready", "/v2"}) {
    EXPECT_EQ(http_call(node_->http_port(), "GET", open).status, 200) << open;
  }
  auto cli = node_->cli({"models"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_EQ(cli.err, "shoal: this node requires an API key: send it with --key KEY or SHOAL_KEY\n");
  auto push = node_->cli({"snapshot", "push", "acme/bot", v1_});
  EXPECT_EQ(push.exit_code, 1) << "a push without a key was accepted";
  EXPECT_EQ(as(admin_key, {"models", "--json"}).out, "{\"models\":[]}\n") << "nothing was stored";
}

TEST_F(tenant_test, a_tenant_sees_only_its_own_models_and_others_look_missing) {
  ASSERT_EQ(as(acme_key, {"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  ASSERT_EQ(as(acme_key, {"snapshot", "push", "acme/bot", v2_}).exit_code, 0);
  ASSERT_EQ(as(globex_key, {"snapshot", "push", "globex/faq", v1_}).exit_code, 0);

  EXPECT_EQ(infer_as(acme_key, "acme/bot").status, 200);
  // Another tenant's model answers exactly what a missing one does.
  auto foreign = infer_as(globex_key, "acme/bot");
  auto missing = infer_as(globex_key, "acme/nope");
  EXPECT_EQ(foreign.status, 404);
  EXPECT_EQ(missing.status, 404);
  auto same = [](std::string body, const std::string& name) {
    auto at = body.find(name);
    if (at != std::string::npos) body.replace(at, name.size(), "X");
    return body;
  };
  EXPECT_EQ(same(foreign.body, "acme/bot"), same(missing.body, "acme/nope"));
  for (const char* path : {"/v2/models/acme/bot", "/v2/models/acme/bot/ready",
                           "/v2/models/acme/bot/versions/1"}) {
    auto r = http_call(node_->http_port(), "GET", path, "",
                       "Authorization: Bearer " + globex_key + "\r\n");
    EXPECT_EQ(r.status, 404) << path << " " << r.body;
    EXPECT_EQ(http_call(node_->http_port(), "GET", path, "",
                        "Authorization: Bearer " + acme_key + "\r\n").status,
              200) << path;
  }
  // Every snapshot command: the same error as for a model that does not exist.
  const std::vector<std::vector<std::string>> commands = {
      {"snapshot", "list", "MODEL"},
      {"snapshot", "promote", "MODEL", "1"},
      {"snapshot", "rollback", "MODEL"},
      {"infer", "MODEL", "hello"}};
  for (auto cmd : commands) {
    auto with = [&cmd](const std::string& model) {
      auto c = cmd;
      for (auto& a : c) {
        if (a == "MODEL") a = model;
      }
      return c;
    };
    auto f = as(globex_key, with("acme/bot"));
    auto m = as(globex_key, with("acme/nope"));
    EXPECT_EQ(f.exit_code, 1) << cmd[1];
    EXPECT_EQ(same(f.err, "acme/bot"), same(m.err, "acme/nope")) << cmd[1];
  }
  // A push into another tenant is refused and creates nothing.
  auto push = as(globex_key, {"snapshot", "push", "acme/intruder", v1_});
  EXPECT_EQ(push.exit_code, 1);
  EXPECT_NE(push.err.find("no tenant acme"), std::string::npos) << push.err;
  // Lists: own models only; admin sees all.
  auto globex_models = json::parse(as(globex_key, {"models", "--json"}).out);
  ASSERT_EQ(globex_models["models"].size(), 1u);
  EXPECT_EQ(globex_models["models"][0]["model"], "globex/faq");
  auto all = json::parse(as(admin_key, {"models", "--json"}).out);
  EXPECT_EQ(all["models"].size(), 2u) << "the intruder push must not have created a model";
  EXPECT_EQ(as(admin_key, {"snapshot", "promote", "acme/bot", "2"}).exit_code, 0);
  EXPECT_EQ(infer_as(admin_key, "globex/faq").status, 200);
  // The acme key still reaches its model after all that: the promote by admin took effect.
  auto listed = json::parse(as(acme_key, {"snapshot", "list", "acme/bot", "--json"}).out);
  EXPECT_EQ(listed["labels"]["production"]["version"], 2);
}

TEST_F(tenant_test, sighup_rereads_the_keys_file_and_a_broken_file_keeps_the_old_keys) {
  const std::string newcomer = "newcomer-key-0123456789ab";
  EXPECT_EQ(infer_as(newcomer, "acme/bot").status, 401);
  ASSERT_TRUE(write_file(keys_path_, acme_key + " acme\n" + newcomer + " initech\n"));
  node_->send_signal(SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    reloaded = as(newcomer, {"models", "--json"}).exit_code == 0;
    if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(reloaded) << node_->log();
  EXPECT_EQ(as(globex_key, {"models"}).exit_code, 1) << "a removed key still works";
  // A broken file: the node says why and keeps serving with the keys it had.
  ASSERT_TRUE(write_file(keys_path_, "short initech\n"));
  node_->send_signal(SIGHUP);
  bool logged = false;
  for (int i = 0; i < 100 && !logged; ++i) {
    logged = node_->log().find("SIGHUP: keeping the keys in force") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(logged) << node_->log();
  EXPECT_EQ(as(newcomer, {"models", "--json"}).exit_code, 0);
  EXPECT_TRUE(node_->alive());
}

TEST_F(node_test, a_node_without_keys_says_it_is_open_and_one_with_a_bad_keys_file_does_not_start) {
  // The node logs its start-up lines just after its ports answer: wait for the line a moment.
  bool open_logged = false;
  for (int i = 0; i < 100 && !open_logged; ++i) {
    open_logged = node_->log().find("no keys file: every client can reach every model") !=
                  std::string::npos;
    if (!open_logged) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(open_logged) << node_->log();
  temp_dir dir;
  auto r =
      run_shoal({"node", "--data-dir", dir.path() + "/d", "--keys-file", dir.path() + "/missing",
                 "--http-port", "0", "--zmq-port", "0", "--grpc-port", "0", "--cluster-port", "0"},
                std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot read keys file"), std::string::npos) << r.err;
}

// ---- overload ---------------------------------------------------------------------------------

// More concurrent work than max_in_flight allows: the excess is refused at once with 429 and
// Retry-After, everything accepted is answered correctly, and the node serves normally after.
TEST_F(node_test, requests_over_max_in_flight_get_429_at_once_and_the_node_recovers) {
  node_.reset();
  node_ = std::make_unique<node_process>(data_->path() + "/data",
                                         std::vector<std::string>{"--max-in-flight", "2"});
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  // Batches over the inline limit go through the actors, so requests overlap in the node.
  std::vector<std::string> batch(1000, "where is my parcel please, it has not arrived yet");
  const std::string body = infer_body(batch);
  answer_tally answers;
  std::vector<std::thread> clients;
  for (int c = 0; c < 12; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        answers.record(http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer", body));
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answers.other, 0) << answers.unexpected;
  EXPECT_GT(answers.ok, 0);
  EXPECT_GT(answers.refused, 0) << "12 clients never had more than 2 requests in flight?";
  EXPECT_NE(answers.refusal.find("Retry-After: 1"), std::string::npos) << answers.refusal;
  EXPECT_NE(answers.refusal.find("at capacity"), std::string::npos) << answers.refusal;
  // At once back to normal.
  EXPECT_EQ(http_top_label("where is my parcel"), "order_status");
  EXPECT_TRUE(node_->alive());
}

// Per-tenant limits from the config file: one tenant over its rate, in-flight or model limit
// gets 429 / RESOURCE_EXHAUSTED naming the limit, while another tenant is served as before.
// Load shedding by queueing delay: with max_queue_ms far below what a busy thread can keep
// (1 microsecond), a busy HTTP thread refuses a share of inference requests with 429 naming the
// delay, keeps answering the rest, and takes everything again as soon as it is idle; so does the
// ZeroMQ thread (RESOURCE_EXHAUSTED). Health and
// metadata requests are never shed.
TEST_F(node_test, a_thread_whose_requests_wait_too_long_sheds_some_with_429_and_recovers_at_once) {
  node_.reset();
  node_ = std::make_unique<node_process>(
      data_->path() + "/data",
      std::vector<std::string>{"--max-queue-ms", "0.001", "--http-threads", "1"});
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  ASSERT_EQ(http_top_label("where is my parcel"), "order_status");  // loaded
  answer_tally answers;
  std::atomic<int> health_failed{0};
  std::vector<std::thread> clients;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  // The ZeroMQ thread sheds by its own lag the same way.
  std::atomic<int> zmq_ok{0}, zmq_refused{0}, zmq_other{0};
  std::mutex zmq_mutex;
  std::string zmq_refusal, zmq_unexpected;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&] {
      auto client = zmq_client::connect("127.0.0.1:" + std::to_string(node_->zmq_port()),
                                        std::chrono::milliseconds(10000));
      if (!client) {
        ++zmq_other;
        return;
      }
      infer_request req;
      req.id = model_id{"acme", "bot"};
      req.top_k = 1;
      req.texts = {"where is my parcel"};
      for (uint64_t i = 1; std::chrono::steady_clock::now() < until; ++i) {
        auto bytes = client->call(encode_request(i, req));
        auto got = bytes ? decode_infer_response(*bytes) : result<infer_result>(bytes.error());
        std::lock_guard<std::mutex> lock(zmq_mutex);
        if (got && got->rows.size() == 1 && !got->rows[0].empty() &&
            got->rows[0][0].label == "order_status") {
          ++zmq_ok;
        } else if (!got && got.error().code() == status_code::resource_exhausted) {
          ++zmq_refused;
          // by the thread's lag (the round budget's refusals name the work in hand instead)
          if (got.error().message().find("requests wait") != std::string::npos) {
            zmq_refusal = got.error().message();
          }
        } else {
          ++zmq_other;
          zmq_unexpected = got ? "a wrong answer" : got.error().to_string();
        }
      }
    });
  }
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      while (std::chrono::steady_clock::now() < until) {
        if (c == 0) {
          if (http_call(node_->http_port(), "GET", "/v2/health/ready", "").status != 200) {
            ++health_failed;
          }
        }
        answers.record(http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                                 infer_body({"where is my parcel"})));
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answers.other, 0) << answers.unexpected;
  EXPECT_EQ(health_failed.load(), 0);
  EXPECT_GT(answers.ok, 0) << "a shedding thread still answers a share";
  EXPECT_GT(answers.refused, 0) << "8 busy clients never made the thread late by 1 us?";
  EXPECT_NE(answers.refusal.find("Retry-After: 1"), std::string::npos) << answers.refusal;
  EXPECT_NE(answers.refusal.find("this node is overloaded"), std::string::npos)
      << answers.refusal;
  EXPECT_NE(answers.refusal.find("max_queue_ms 0.0"), std::string::npos) << answers.refusal;
  EXPECT_EQ(zmq_other.load(), 0) << zmq_unexpected;
  EXPECT_GT(zmq_ok.load(), 0);
  EXPECT_GT(zmq_refused.load(), 0) << "6 busy ZeroMQ clients never made its thread late by 1 us?";
  EXPECT_NE(zmq_refusal.find("this node is overloaded: requests wait"), std::string::npos)
      << "no ZeroMQ refusal by the thread's lag";
  // Idle for a moment (the probe sees it), then every request is answered again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(http_top_label("where is my parcel"), "order_status");
  EXPECT_TRUE(node_->alive());
  // /metrics counts those refusals (HTTP and ZeroMQ) as overload: at least every one the
  // clients read (a client that stopped may not have read its last answer).
  const std::string metrics = http_call(node_->http_port(), "GET", "/metrics").body;
  auto overload = metric_value(metrics, "shoal_refusals_total{reason=\"overload\"}");
  ASSERT_TRUE(overload) << metrics;
  EXPECT_GE(*overload, answers.refused + zmq_refused.load()) << metrics;
}

// Admission by what the client says it can wait: the same busy clients (8 at a time on one HTTP
// thread, each sending its next request when the last is answered, as a pool does) are never
// refused under the default max_queue_ms, and are refused at once, with a 429 naming their own
// budget, when their requests say they may wait only 1 microsecond (Shoal-Max-Queue-Ms); a
// budget that is not milliseconds above 0 is the client's mistake (400, nothing else changes).
TEST_F(node_test, requests_that_state_a_short_wait_are_shed_while_a_pool_that_says_nothing_is_not) {
  ASSERT_NO_FATAL_FAILURE(restart_with_one_http_thread_and_bot_loaded());
  auto load = [&](const std::string& headers, answer_tally& answers) {
    std::vector<std::thread> clients;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&] {
        while (std::chrono::steady_clock::now() < until) {
          answers.record(http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                                   infer_body({"where is my parcel"}), headers));
        }
      });
    }
    for (auto& t : clients) t.join();
  };
  answer_tally pool;
  load("", pool);
  EXPECT_GT(pool.ok, 100);
  EXPECT_EQ(pool.refused, 0) << pool.refusal;
  EXPECT_EQ(pool.other, 0) << pool.unexpected;
  answer_tally hasty;
  load("Shoal-Max-Queue-Ms: 0.001\r\n", hasty);
  EXPECT_EQ(hasty.other, 0) << hasty.unexpected;
  EXPECT_GT(hasty.ok, 0) << "a shedding thread still answers a share";
  EXPECT_GT(hasty.refused, 0) << "8 busy clients never made the thread late by 1 us?";
  EXPECT_NE(hasty.refusal.find("this node is overloaded"), std::string::npos) << hasty.refusal;
  EXPECT_NE(hasty.refusal.find("Shoal-Max-Queue-Ms 0.0"), std::string::npos) << hasty.refusal;
  for (const std::string bad : {"0", "-1", "soon", "5ms", "1e9"}) {
    auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                       infer_body({"where is my parcel"}), "Shoal-Max-Queue-Ms: " + bad + "\r\n");
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_NE(r.body.find("Shoal-Max-Queue-Ms header must be"), std::string::npos) << r.body;
  }
  auto fine = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                        infer_body({"where is my parcel"}), "Shoal-Max-Queue-Ms: 250\r\n");
  EXPECT_EQ(fine.status, 200) << fine.body;
  const std::string metrics = http_call(node_->http_port(), "GET", "/metrics").body;
  auto overload = metric_value(metrics, "shoal_refusals_total{reason=\"overload\"}");
  ASSERT_TRUE(overload) << metrics;
  EXPECT_GE(*overload, hasty.refused) << metrics;
  EXPECT_TRUE(node_->alive());
}

// The other side of shedding: a node whose threads are held off the CPU by the machine (other
// processes; here SIGSTOP for 4 ms out of every 5) answers late, but it is not behind on its own
// work, and refusing requests would not win the CPU back. One client, one request at a time,
// default max_queue_ms: every request is answered, none refused.
TEST_F(node_test, a_node_the_machine_keeps_off_the_cpu_does_not_refuse_a_lone_client) {
  ASSERT_NO_FATAL_FAILURE(restart_with_one_http_thread_and_bot_loaded());
  std::atomic<bool> done{false};
  std::thread machine([&] {
    while (!done) {
      node_->send_signal(SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(4));
      node_->send_signal(SIGCONT);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  answer_tally answers;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
  while (std::chrono::steady_clock::now() < until) {
    answers.record(http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                             infer_body({"where is my parcel"})));
  }
  done = true;
  machine.join();
  node_->send_signal(SIGCONT);
  EXPECT_GT(answers.ok, 50);
  EXPECT_EQ(answers.refused, 0) << answers.refusal;
  EXPECT_EQ(answers.other, 0) << answers.unexpected;
  EXPECT_TRUE(node_->alive());
}

// `shoal bench` against a real node: open-loop steps at the rates asked (every due request
// answered, latency percentiles present, the node's CPU and memory read by pid), a ramp with an
// SLO the node keeps, a model the node lacks (404s counted, the ramp says why it missed), and
// bad arguments (a clear error, exit 2, no load sent).
TEST_F(node_test, shoal_bench_offers_the_rates_asked_and_reports_what_came_back) {
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  const std::string http = "127.0.0.1:" + std::to_string(node_->http_port());
  const std::string pid = std::to_string(node_->pid());
  auto steps = run_shoal({"bench", "--http", http, "--model", "acme/bot", "--rates", "200,400",
                          "--seconds", "1", "--pid", pid, "--json"});
  ASSERT_EQ(steps.exit_code, 0) << steps.err;
  auto j = json::parse(steps.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << steps.out;
  ASSERT_EQ(j["steps"].size(), 2u) << steps.out;
  for (int i = 0; i < 2; ++i) {
    const auto& st = j["steps"][i];
    const double rate = i == 0 ? 200 : 400;
    EXPECT_EQ(st["rate"].get<double>(), rate);
    EXPECT_NEAR(st["due"].get<double>(), rate, rate * 0.05) << st.dump();
    EXPECT_EQ(st["ok"], st["due"]) << st.dump();
    EXPECT_EQ(st["errors"], 0) << st.dump();
    EXPECT_EQ(st["other_status"], 0) << st.dump();
    EXPECT_GT(st["ok_latency"]["p99_ms"].get<double>(), 0.0);
    EXPECT_GE(st["ok_latency"]["p99_ms"].get<double>(), st["ok_latency"]["p50_ms"].get<double>());
    EXPECT_GT(st["node_rss_mb"].get<double>(), 1.0) << "the node's memory, read by --pid";
  }
  EXPECT_NE(steps.err.find("step 2: 400 req/s"), std::string::npos) << "progress on stderr";

  auto ramp = run_shoal({"bench", "--http", http, "--model", "acme/bot", "--ramp", "100,100,300",
                         "--seconds", "1", "--slo-ms", "1000", "--json"});
  ASSERT_EQ(ramp.exit_code, 0) << ramp.err;
  j = json::parse(ramp.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ramp.out;
  EXPECT_EQ(j["steps"].size(), 3u);
  EXPECT_EQ(j["sustainable_rate"].get<double>(), 300.0) << ramp.out;
  EXPECT_EQ(j["stopped_because"], "") << ramp.out;

  auto missing = run_shoal({"bench", "--http", http, "--model", "acme/nope", "--ramp",
                            "100,100,300", "--seconds", "1", "--slo-ms", "1000"});
  ASSERT_EQ(missing.exit_code, 0) << missing.err;
  EXPECT_NE(missing.out.find("sustainable: 0 req/s"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("missed at 100 req/s"), std::string::npos) << missing.out;

  // --spin: the same rates and answers, from a generator that never sleeps (it takes its core
  // for the whole step; without --spin, 300 req/s takes a few percent of one).
  rusage before{}, after{};
  getrusage(RUSAGE_CHILDREN, &before);
  auto spin = run_shoal({"bench", "--http", http, "--model", "acme/bot", "--rate", "300",
                         "--seconds", "2", "--spin", "--json"});
  getrusage(RUSAGE_CHILDREN, &after);
  ASSERT_EQ(spin.exit_code, 0) << spin.err;
  j = json::parse(spin.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << spin.out;
  ASSERT_EQ(j["steps"].size(), 1u);
  EXPECT_NEAR(j["steps"][0]["due"].get<double>(), 600, 30) << spin.out;
  EXPECT_EQ(j["steps"][0]["ok"], j["steps"][0]["due"]) << spin.out;
  EXPECT_EQ(j["steps"][0]["errors"], 0) << spin.out;
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  const double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) +
                     seconds(after.ru_stime) - seconds(before.ru_stime);
  EXPECT_GT(cpu, 0.8) << "CPU seconds of a 2 s --spin run: it should poll, not sleep";

  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"bench", "--http", http, "--rate", "100"},
           {"bench", "--http", http, "--model", "acme/bot", "--rate", "0"},
           {"bench", "--http", http, "--model", "acme/bot", "--rate", "100", "--seconds", "x"},
           {"bench", "--http", "127.0.0.1:notaport", "--model", "acme/bot", "--rate", "100"}}) {
    auto r = run_shoal(bad);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("shoal: bench: "), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

// Percent-encodes a Prometheus query for a URL.
std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// GET /metrics scraped by a real Prometheus server (Debian's package) with an admin key, and a
// metric read back through Prometheus' query API. Tenant keys and no key get no metrics.
TEST_F(node_test, prometheus_scrapes_metrics_and_answers_queries_about_them) {
  node_.reset();
  const std::string keys = data_->path() + "/keys";
  const std::string admin = "adminkey-0123456789abcdef";
  const std::string tenant = "acmekey-0123456789abcdef";
  ASSERT_TRUE(write_file(keys, admin + " admin\n" + tenant + " acme\n"));
  node_ = std::make_unique<node_process>(data_->path() + "/data",
                                         std::vector<std::string>{"--keys-file", keys});
  auto pushed = node_->cli({"snapshot", "push", "acme/bot", v1_, "--key", admin});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  for (int i = 0; i < 7; ++i) {
    auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/bot/infer",
                       infer_body({"hello there"}), "Authorization: Bearer " + tenant + "\r\n");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto missing = http_call(node_->http_port(), "POST", "/v2/models/acme/nope/infer",
                           infer_body({"hi"}), "Authorization: Bearer " + tenant + "\r\n");
  ASSERT_EQ(missing.status, 404);

  EXPECT_EQ(http_call(node_->http_port(), "GET", "/metrics").status, 401);
  EXPECT_EQ(http_call(node_->http_port(), "GET", "/metrics", "",
                      "Authorization: Bearer " + tenant + "\r\n").status, 403);
  auto direct = http_call(node_->http_port(), "GET", "/metrics", "",
                          "Authorization: Bearer " + admin + "\r\n");
  ASSERT_EQ(direct.status, 200) << direct.body;
  EXPECT_NE(direct.headers.find("text/plain; version=0.0.4"), std::string::npos) << direct.headers;
  EXPECT_NE(direct.body.find("shoal_inference_requests_total{tenant=\"acme\",model=\"bot\"} 7\n"),
            std::string::npos) << direct.body;
  EXPECT_NE(direct.body.find("shoal_inference_requests_total{tenant=\"_other\",model=\"_other\"} 1\n"),
            std::string::npos) << "the 404 is counted, but makes no series";
  EXPECT_NE(direct.body.find("shoal_models_loaded 1\n"), std::string::npos);
  EXPECT_NE(direct.body.find("shoal_model_loads_total 1\n"), std::string::npos);
  EXPECT_NE(direct.body.find("shoal_model_cache_misses_total 1\n"), std::string::npos)
      << "the first request waited for the load";
  EXPECT_NE(direct.body.find("shoal_model_load_queue_requests 0\n"), std::string::npos)
      << "the request that waited for the load left the queue";
  EXPECT_NE(direct.body.find("shoal_cluster_members{status=\"alive\"} 1\n"), std::string::npos);

  // A real Prometheus server on a free port, scraping every second with the admin key.
  temp_dir prom;
  const uint16_t prom_port = free_port();
  ASSERT_TRUE(write_file(prom.path() + "/prometheus.yml",
                         "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                         "scrape_configs:\n  - job_name: shoal\n    authorization:\n"
                         "      credentials: " + admin + "\n    static_configs:\n"
                         "      - targets: ['127.0.0.1:" + std::to_string(node_->http_port()) +
                         "']\n"));
  pid_t pid = -1;
  try {
    pid = spawn_program("prometheus",
                        {"--config.file=" + prom.path() + "/prometheus.yml",
                         "--storage.tsdb.path=" + prom.path() + "/data",
                         "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                        "/dev/null", prom.path() + "/out.log", prom.path() + "/err.log");
  } catch (const std::exception& e) {
    FAIL() << "cannot start prometheus (scripts/deps.sh test installs it): " << e.what();
  }
  struct stop_prometheus {
    pid_t pid;
    ~stop_prometheus() {
      ::kill(pid, SIGTERM);
      wait_for(pid, std::chrono::seconds(10));
    }
  } stopper{pid};

  auto query = [&](const std::string& q) -> std::optional<double> {
    auto r = http_call(prom_port, "GET", "/api/v1/query?query=" + url_encode(q));
    if (r.status != 200) return std::nullopt;
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j["status"] != "success" || j["data"]["result"].empty()) {
      return std::nullopt;
    }
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  };
  std::optional<double> requests, up, loads;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    up = query("up{job=\"shoal\"}");
    requests = query("shoal_inference_requests_total{tenant=\"acme\",model=\"bot\"}");
    loads = query("shoal_model_loads_total");
    if (up && *up == 1 && requests) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(up) << "Prometheus never scraped the node: " << read_file(prom.path() + "/err.log");
  EXPECT_EQ(*up, 1) << read_file(prom.path() + "/err.log");
  ASSERT_TRUE(requests) << read_file(prom.path() + "/err.log");
  EXPECT_EQ(*requests, 7);
  ASSERT_TRUE(loads);
  EXPECT_EQ(*loads, 1);
  auto hist = query("sum(shoal_inference_duration_seconds_count{tenant=\"acme\"})");
  ASSERT_TRUE(hist);
  EXPECT_EQ(*hist, 7) << "the histogram counts every answer";
}

// --log-format json: every line the node writes is one JSON object a collector can read, with
// the key=value words of the message as fields.
TEST_F(node_test, json_logs_are_one_object_per_line) {
  node_.reset();
  node_ = std::make_unique<node_process>(data_->path() + "/data",
                                         std::vector<std::string>{"--log-format", "json"});
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/bot", v1_}).exit_code, 0);
  node_->stop(SIGTERM);
  std::istringstream lines(node_->log());
  std::string line;
  int parsed = 0;
  bool started = false, stored = false, stopped = false;
  while (std::getline(lines, line)) {
    auto j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    EXPECT_TRUE(j["level"] == "info" || j["level"] == "warn" || j["level"] == "error") << line;
    const std::string msg = j["msg"];
    if (msg.rfind("node started", 0) == 0) started = j.value("data_dir", "") != "";
    if (msg.rfind("snapshot stored", 0) == 0) {
      stored = j.value("model", "") == "acme/bot" && j.value("version", "") == "1";
    }
    if (msg.rfind("node stopped", 0) == 0) stopped = true;
    ++parsed;
  }
  EXPECT_GE(parsed, 4) << node_->log();
  EXPECT_TRUE(started) << node_->log();
  EXPECT_TRUE(stored) << node_->log();
  EXPECT_TRUE(stopped) << node_->log();
}

TEST_F(node_test, tenant_limits_refuse_one_tenant_and_leave_the_others_alone) {
  node_.reset();
  const std::string conf = data_->path() + "/limits.conf";
  ASSERT_TRUE(write_file(conf,
                         "tenant_limits = models=2\n"
                         "tenant_limits.acme = rate=5 burst=5 models=2 stored_mb=100\n"
                         "tenant_limits.globex = models=10\n"));
  node_ = std::make_unique<node_process>(data_->path() + "/data",
                                         std::vector<std::string>{"--config", conf});
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/a", v1_}).exit_code, 0);
  ASSERT_EQ(node_->cli({"snapshot", "push", "acme/b", v1_}).exit_code, 0);
  auto third = node_->cli({"snapshot", "push", "acme/c", v1_});
  EXPECT_EQ(third.exit_code, 1);
  EXPECT_EQ(third.err,
            "shoal: tenant acme has 2 models, its limit (models=2); ask an operator to raise "
            "tenant_limits.acme\n");
  EXPECT_EQ(node_->cli({"snapshot", "push", "acme/a", v2_}).exit_code, 0)
      << "a new version of an existing model is allowed";
  ASSERT_EQ(node_->cli({"snapshot", "push", "globex/a", v1_}).exit_code, 0);
  ASSERT_EQ(node_->cli({"snapshot", "push", "globex/b", v1_}).exit_code, 0);
  EXPECT_EQ(node_->cli({"snapshot", "push", "globex/c", v1_}).exit_code, 0) << "globex has 10";
  auto other = node_->cli({"snapshot", "push", "initech/a", v1_});
  EXPECT_EQ(other.exit_code, 0) << other.err;

  // Rate: acme may make 5 requests at once, then 5 a second; globex has no rate limit.
  int acme_ok = 0, acme_429 = 0;
  std::string refusal;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = http_call(node_->http_port(), "POST", "/v2/models/acme/a/infer",
                       infer_body({"where is my parcel"}));
    if (r.status == 200) ++acme_ok;
    if (r.status == 429) {
      ++acme_429;
      refusal = r.body;
    }
    EXPECT_EQ(http_call(node_->http_port(), "POST", "/v2/models/globex/a/infer",
                        infer_body({"where is my parcel"})).status,
              200) << "globex is limited by acme's traffic";
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(acme_ok, 5);
  // The burst, plus what the bucket refilled at 5/s while the loop ran.
  EXPECT_LE(acme_ok, 5 + static_cast<int>(5 * secs) + 1) << secs << " s";
  EXPECT_EQ(acme_ok + acme_429, 20);
  EXPECT_NE(refusal.find("tenant acme is over its request rate (5/s, burst 5)"),
            std::string::npos) << refusal;
  // Over ZeroMQ too. Sent from this process right after acme's bucket is empty again: the CLI
  // would start too late under a sanitizer build (0.6 s: three tokens refilled at 5/s).
  auto client = zmq_client::connect("127.0.0.1:" + std::to_string(node_->zmq_port()),
                                    std::chrono::seconds(5));
  ASSERT_TRUE(client.is_ok());
  infer_request acme_req;
  acme_req.id = {"acme", "a"};
  acme_req.texts = {"hello"};
  result<infer_result> zmq_answer = status::internal("not sent");
  for (int i = 0; i < 50; ++i) {
    if (http_call(node_->http_port(), "POST", "/v2/models/acme/a/infer",
                  infer_body({"where is my parcel"})).status != 429) {
      continue;  // a token had refilled: drain it
    }
    ++acme_429;
    auto bytes = client->call(encode_request(1, acme_req));
    zmq_answer = bytes ? decode_infer_response(*bytes) : result<infer_result>(bytes.error());
    break;
  }
  ASSERT_FALSE(zmq_answer.is_ok());
  EXPECT_EQ(zmq_answer.error().code(), status_code::resource_exhausted);
  EXPECT_NE(zmq_answer.error().message().find("over its request rate"), std::string::npos)
      << zmq_answer.error().to_string();
  // /metrics counts each refusal under the limit that made it (HTTP and the CLI's ZeroMQ).
  const std::string metrics = http_call(node_->http_port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("shoal_refusals_total{reason=\"tenant_rate\"} " +
                         std::to_string(acme_429 + 1) + "\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("shoal_refusals_total{reason=\"tenant_in_flight\"} 0\n"),
            std::string::npos);
}

}  // namespace
}  // namespace shoal::testing
