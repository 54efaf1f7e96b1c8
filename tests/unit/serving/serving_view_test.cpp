// serving_view: the read-only view front ends answer from. Catalog-only cases here; answers from
// loaded snapshots are tested with real models in tests/actors (loaded_snapshots_and_label_moves…).
#include "shoal/serving/serving_view.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/inline_answer.hpp"
#include "support/sample_catalog.hpp"

namespace shoal {
namespace {

using shoal::testing::answer_inline;

const model_id bot{"acme", "bot"};

// A catalog holding `versions` snapshots of acme/bot, production on the last one.
std::shared_ptr<const catalog> catalog_with(uint32_t versions) {
  return testing::catalog_with(bot, versions);
}

infer_request request(std::optional<uint32_t> version = std::nullopt, std::string label = "") {
  infer_request r;
  r.id = bot;
  r.version = version;
  r.label = std::move(label);
  r.texts = {"hello"};
  return r;
}

TEST(serving_board, starts_empty_and_refuses_unknown_models) {
  serving_board board;
  serving_board::cache c;
  auto in = answer_inline(board.read(c), request(), 64);
  ASSERT_TRUE(in.answer);
  EXPECT_EQ(in.answer->error().code(), status_code::not_found);
}

TEST(serving_board, a_snapshot_not_loaded_goes_to_the_actors_with_its_version) {
  serving_board board;
  board.publish_catalog(catalog_with(3));
  serving_board::cache c;
  auto in = answer_inline(board.read(c), request(), 64);
  EXPECT_FALSE(in.answer);
  EXPECT_EQ(in.version, 3u);
  in = answer_inline(board.read(c), request(2u), 64);
  EXPECT_FALSE(in.answer);
  EXPECT_EQ(in.version, 2u);
  in = answer_inline(board.read(c), request(9u), 64);
  ASSERT_TRUE(in.answer);
  EXPECT_EQ(in.answer->error().code(), status_code::not_found);
  EXPECT_NE(in.answer->error().message().find("versions: 1-3"), std::string::npos)
      << in.answer->error().message();
  in = answer_inline(board.read(c), request(std::nullopt, "staging"), 64);
  ASSERT_TRUE(in.answer);
  EXPECT_EQ(in.answer->error().code(), status_code::not_found);
}

TEST(serving_board, a_cache_sees_each_publication_and_keeps_the_other_part) {
  serving_board board;
  serving_board::cache c;
  board.publish_catalog(catalog_with(1));
  EXPECT_EQ(answer_inline(board.read(c), request(), 64).version, 1u);
  auto loaded = std::make_shared<const loaded_models>();
  board.publish_loaded(loaded);
  const serving_view& v = board.read(c);
  EXPECT_EQ(v.loaded, loaded);
  EXPECT_EQ(answer_inline(v, request(), 64).version, 1u) << "publishing models kept the catalog";
  board.publish_catalog(catalog_with(2));
  EXPECT_EQ(answer_inline(board.read(c), request(), 64).version, 2u);
  EXPECT_EQ(board.read(c).loaded, loaded) << "publishing a catalog kept the models";
  board.publish_catalog(nullptr);  // ignored
  EXPECT_EQ(answer_inline(board.read(c), request(), 64).version, 2u);
}

TEST(serving_board, a_cache_moved_to_another_board_reads_that_board) {
  serving_board a, b;
  a.publish_catalog(catalog_with(1));
  b.publish_catalog(catalog_with(2));
  serving_board::cache c;
  EXPECT_EQ(answer_inline(a.read(c), request(), 64).version, 1u);
  EXPECT_EQ(answer_inline(b.read(c), request(), 64).version, 2u);
  EXPECT_EQ(answer_inline(a.read(c), request(), 64).version, 1u);
}

TEST(serving_board, readers_never_go_back_while_a_writer_publishes) {
  constexpr uint32_t n = 150;
  std::vector<std::shared_ptr<const catalog>> catalogs;
  catalog c;
  for (uint32_t v = 1; v <= n; ++v) {
    snapshot_info s;
    s.sha256 = std::string(64, 'a');
    s.format = "fasttext";
    for (const auto& ch : c.plan_push(bot, s, "production", v)) ASSERT_TRUE(c.apply(ch).is_ok());
    catalogs.push_back(std::make_shared<const catalog>(c));
  }
  serving_board board;
  board.publish_catalog(catalogs[0]);
  std::atomic<bool> done{false};
  std::atomic<int> went_back{0};
  std::atomic<uint32_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      serving_board::cache cache;
      uint32_t last = 0;
      while (!done.load()) {
        uint32_t now = answer_inline(board.read(cache), request(), 64).version;
        if (now < last) ++went_back;
        last = now;
        ++reads;
      }
    });
  }
  for (const auto& cat : catalogs) {
    board.publish_catalog(cat);
    std::this_thread::yield();
  }
  while (reads.load() < 1000) std::this_thread::yield();
  done.store(true);
  for (auto& r : readers) r.join();
  EXPECT_EQ(went_back.load(), 0) << "a reader saw an older catalog after a newer one";
  serving_board::cache cache;
  EXPECT_EQ(answer_inline(board.read(cache), request(), 64).version, n);
}

}  // namespace
}  // namespace shoal
