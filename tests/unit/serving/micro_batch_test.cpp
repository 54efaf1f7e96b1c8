// micro_batcher with real fastText models (trained by the fasttext tool): what it predicts
// together equals what each request gets alone, each request gets its own rows, and groups are
// split by model, by top-k and at max_texts.
#include "shoal/serving/micro_batch.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "shoal/serving/fasttext_model.hpp"
#include "support/fasttext_oracle.hpp"

namespace shoal {
namespace {

namespace ts = shoal::testing;

using rows = std::vector<std::vector<prediction>>;

class micro_batch_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ts::temp_dir();
    intents_ = train("intents", ts::intent_corpus(3, "__label__", 600));
    // 300 labels x dim 32: large enough that predict_batch takes the sgemm path
    many_ = train("many", ts::many_label_corpus(5, 300, 4));
  }
  static void TearDownTestSuite() {
    intents_.reset();
    many_.reset();
    delete dir_;
  }
  static std::shared_ptr<const model> train(const std::string& name, const std::string& corpus) {
    const std::string input = dir_->file(name + ".txt");
    ts::write_file(input, corpus);
    std::string error;
    const std::string path =
        ts::train("supervised", input, dir_->file(name),
                  {"-dim", "32", "-epoch", "5", "-bucket", "10000", "-minn", "2", "-maxn", "3",
                   "-wordNgrams", "2"},
                  error);
    EXPECT_FALSE(path.empty()) << error;
    if (path.empty()) return nullptr;
    auto m = load_fasttext(ts::read_file(path));
    EXPECT_TRUE(m.is_ok());
    return m.is_ok() ? *m : nullptr;
  }

  static ts::temp_dir* dir_;
  static std::shared_ptr<const model> intents_, many_;
};

ts::temp_dir* micro_batch_test::dir_ = nullptr;
std::shared_ptr<const model> micro_batch_test::intents_;
std::shared_ptr<const model> micro_batch_test::many_;

// Same labels in the same order, probabilities within 1e-4 (the sgemm sums in another order).
void expect_same(const rows& got, const rows& alone, const std::string& what) {
  ASSERT_EQ(got.size(), alone.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), alone[i].size()) << what << " text " << i;
    for (size_t j = 0; j < got[i].size(); ++j) {
      EXPECT_EQ(got[i][j].label, alone[i][j].label) << what << " text " << i;
      EXPECT_NEAR(got[i][j].score, alone[i][j].score, 1e-4) << what << " text " << i;
    }
  }
}

TEST_F(micro_batch_test, requests_together_get_what_each_gets_alone) {
  ASSERT_TRUE(intents_ && many_);
  const auto probes = ts::probe_texts(11);
  const auto topical = ts::many_label_probes(9, 300);
  micro_batcher batcher(64);
  struct expected_request {
    std::shared_ptr<const model> m;
    size_t k;
    std::vector<std::string> texts;
    std::optional<rows> got;
  };
  std::vector<expected_request> requests;
  // 12 requests: two models, top-k 1 and 3, one to three texts each (some empty or odd)
  for (size_t r = 0; r < 12; ++r) {
    expected_request q;
    q.m = r % 2 == 0 ? intents_ : many_;
    q.k = r % 3 == 0 ? 3 : 1;
    const auto& pool = r % 2 == 0 ? probes : topical;
    for (size_t t = 0; t < 1 + r % 3; ++t) q.texts.push_back(pool[(r * 5 + t * 3) % pool.size()]);
    requests.push_back(std::move(q));
  }
  bool first = true;
  for (auto& q : requests) {
    const bool was_empty =
        batcher.add(q.m, q.k, q.texts, [&q](rows r) { q.got = std::move(r); });
    EXPECT_EQ(was_empty, first);
    first = false;
  }
  for (const auto& q : requests) EXPECT_FALSE(q.got) << "answered before the flush";
  EXPECT_FALSE(batcher.empty());
  batcher.flush();
  EXPECT_TRUE(batcher.empty());
  // one batch per (model, k): 2 models x 2 values of k
  EXPECT_EQ(batcher.batches(), 4u);
  size_t texts = 0;
  for (const auto& q : requests) {
    texts += q.texts.size();
    ASSERT_TRUE(q.got);
    rows alone;
    for (const auto& t : q.texts) alone.push_back(q.m->predict(t, q.k));
    expect_same(*q.got, alone, "k=" + std::to_string(q.k));
  }
  EXPECT_EQ(batcher.texts(), texts);
}

TEST_F(micro_batch_test, a_full_group_is_predicted_at_once_and_the_next_request_starts_another) {
  ASSERT_TRUE(many_);
  micro_batcher batcher(4);
  const auto topical = ts::many_label_probes(2, 300);
  std::vector<std::optional<rows>> got(3);
  batcher.add(many_, 1, {topical[0], topical[1], topical[2]}, [&](rows r) { got[0] = r; });
  EXPECT_FALSE(got[0]);
  // 3 + 2 > 4: the pending three go now, these two wait
  EXPECT_FALSE(batcher.add(many_, 1, {topical[3], topical[4]}, [&](rows r) { got[1] = r; }));
  ASSERT_TRUE(got[0]);
  EXPECT_FALSE(got[1]);
  EXPECT_EQ(batcher.batches(), 1u);
  batcher.add(many_, 1, {topical[5]}, [&](rows r) { got[2] = r; });
  batcher.flush();
  EXPECT_EQ(batcher.batches(), 2u);
  ASSERT_TRUE(got[1] && got[2]);
  expect_same(*got[1], {many_->predict(topical[3], 1), many_->predict(topical[4], 1)}, "second");
  expect_same(*got[2], {many_->predict(topical[5], 1)}, "third");
}

TEST_F(micro_batch_test, knows_what_its_pending_texts_will_cost) {
  ASSERT_TRUE(many_);
  micro_batcher batcher(64);
  const auto topical = ts::many_label_probes(4, 300);
  EXPECT_EQ(batcher.pending_texts(), 0u);
  EXPECT_EQ(batcher.pending_cost_ms(), 0.0) << "nothing measured yet";
  batcher.add(many_, 1, {topical[0], topical[1], topical[2]}, [](rows) {});
  batcher.add(many_, 2, {topical[3]}, [](rows) {});
  EXPECT_EQ(batcher.pending_texts(), 4u);
  batcher.flush();
  EXPECT_EQ(batcher.pending_texts(), 0u);
  EXPECT_GT(batcher.ms_per_text(), 0.0) << "two batches were timed";
  batcher.add(many_, 1, {topical[4], topical[5]}, [](rows) {});
  EXPECT_EQ(batcher.pending_texts(), 2u);
  EXPECT_DOUBLE_EQ(batcher.pending_cost_ms(), 2 * batcher.ms_per_text());
  batcher.flush();
}

// A flush answers its smallest group first: a lone request (another tenant's, say) is not held
// behind a burst for another model or top-k that was read in the same round.
TEST_F(micro_batch_test, a_flush_answers_the_smallest_group_first) {
  ASSERT_TRUE(many_);
  micro_batcher batcher(64);
  const auto topical = ts::many_label_probes(21, 300);
  std::vector<std::string> burst(topical.begin(), topical.begin() + 20);
  std::vector<std::string> order;
  batcher.add(many_, 1, burst, [&](rows r) { order.push_back("burst " + std::to_string(r.size())); });
  batcher.add(many_, 2, {topical[20]}, [&](rows r) { order.push_back("lone " + std::to_string(r.size())); });
  batcher.flush();
  EXPECT_EQ(order, (std::vector<std::string>{"lone 1", "burst 20"}));
}

TEST_F(micro_batch_test, a_callback_may_add_again_and_one_that_throws_stops_no_other) {
  ASSERT_TRUE(intents_);
  micro_batcher batcher(64);
  int answered = 0;
  std::optional<rows> later;
  batcher.add(intents_, 1, {"hello"}, [&](rows) { throw std::runtime_error("client gone"); });
  batcher.add(intents_, 1, {"where is my order"}, [&](rows r) {
    ++answered;
    EXPECT_EQ(r.size(), 1u);
    // added during a flush: waits for the next one
    EXPECT_TRUE(batcher.add(intents_, 1, {"thanks"}, [&](rows again) { later = again; }));
  });
  batcher.flush();
  EXPECT_EQ(answered, 1);
  EXPECT_FALSE(later);
  EXPECT_FALSE(batcher.empty());
  batcher.flush();
  ASSERT_TRUE(later);
  expect_same(*later, {intents_->predict("thanks", 1)}, "added in a callback");
}

// A front end's refusals of a round go out after the round's answers (after_flush): an accepted
// request does not wait for the 429s read with it. after_flush() on an empty batcher asks for a
// flush like add(), and one that throws stops no other.
TEST_F(micro_batch_test, calls_after_the_flush_run_after_every_answer_in_their_order) {
  ASSERT_TRUE(intents_ && many_);
  micro_batcher batcher(64);
  std::vector<std::string> order;
  EXPECT_TRUE(batcher.after_flush([&] { order.push_back("refusal 1"); }));
  EXPECT_FALSE(batcher.empty());
  EXPECT_FALSE(batcher.add(intents_, 1, {"hello"}, [&](rows r) {
    order.push_back("intents " + std::to_string(r.size()));
  }));
  EXPECT_FALSE(batcher.after_flush([&] { throw std::runtime_error("client gone"); }));
  EXPECT_FALSE(batcher.after_flush([&] { order.push_back("refusal 3"); }));
  EXPECT_FALSE(batcher.add(many_, 1, {"a", "b"}, [&](rows r) {
    order.push_back("many " + std::to_string(r.size()));
  }));
  batcher.flush();
  EXPECT_EQ(order, (std::vector<std::string>{"intents 1", "many 2", "refusal 1", "refusal 3"}));
  EXPECT_TRUE(batcher.empty());

  // Alone (nothing to predict), and added from within a flush: waits for the next one.
  order.clear();
  EXPECT_TRUE(batcher.after_flush([&] {
    order.push_back("first");
    EXPECT_TRUE(batcher.after_flush([&] { order.push_back("second"); }));
  }));
  batcher.flush();
  EXPECT_EQ(order, (std::vector<std::string>{"first"}));
  batcher.flush();
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(batcher.empty());
}

}  // namespace
}  // namespace shoal
