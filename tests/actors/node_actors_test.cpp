// The node's actors on CAF's deterministic test scheduler: messages run only when the test says
// so (sched.run()), so each test sees one exact interleaving. Real store, journal and model.
#include <gtest/gtest.h>

#include <caf/scheduler/test_coordinator.hpp>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>

#include "actors/catalog_actor.hpp"
#include "actors/gateway.hpp"
#include "actors/model_loader.hpp"
#include "actors/protocol.hpp"
#include "actors/router.hpp"
#include "support/files.hpp"
#include "support/inline_answer.hpp"
#include "support/node_process.hpp"

namespace shoal {
namespace {

using shoal::testing::answer_inline;
using shoal::testing::temp_dir;

caf::actor_system_config& deterministic(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

class node_actors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_ = new temp_dir();
    const char* src = std::getenv("SHOAL_SOURCE_DIR");
    std::string root = src != nullptr ? src : ".";
    std::vector<std::string> opts = {"-epoch",  "25",    "-lr",         "0.5", "-dim",  "16",
                                     "-bucket", "20000", "-wordNgrams", "2",   "-minn", "2",
                                     "-maxn",   "4"};
    v1_ = testing::read_file(testing::train_fasttext(
        models_->path(), "v1", testing::read_file(root + "/examples/intents-v1.txt"), opts));
    v2_ = testing::read_file(testing::train_fasttext(
        models_->path(), "v2", testing::read_file(root + "/examples/intents-v2.txt"), opts));
  }
  static void TearDownTestSuite() { delete models_; }

  node_actors()
      : sys(deterministic(cfg)),
        sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {}

  // Opens the store and journal and spawns the actors. A failed ASSERT here skips the test body;
  // the destructor copes with actors that were never spawned.
  void SetUp() override {
    ASSERT_FALSE(v1_.empty() || v2_.empty()) << "the test models were not trained";
    catalog_storage storage;
    auto store = snapshot_store::open(dir.path());
    ASSERT_TRUE(store.is_ok()) << store.error().to_string();
    auto node_id = (*store)->node_id();
    ASSERT_TRUE(node_id.is_ok()) << node_id.error().to_string();
    storage.replica = std::make_shared<replicated_catalog>(*node_id);
    auto replica = storage.replica;
    auto journal = catalog_journal::open(
        dir.path() + "/catalog.journal",
        [&](const catalog_change& c) { return replica->add(c, 0).error(); },
        [](const std::string&) {});
    ASSERT_TRUE(journal.is_ok()) << journal.error().to_string();
    storage.store = std::move(*store);
    auto shared_store = storage.store;
    storage.journal = std::move(*journal);
    auto initial = std::make_shared<const catalog>(replica->view());
    board->publish_catalog(initial);
    storage.board = board;
    storage.detached_writers = false;
    // Not detached here: the test scheduler must run every actor, one message at a time.
    cat = sys.spawn(catalog_behavior, std::move(storage));
    loader = sys.spawn(model_loader, shared_store, initial, cat);
    caf::anon_send(cat, subscribe_atom_v, caf::actor_cast<catalog_listener>(loader));
    rtr = sys.spawn(router, std::vector<model_loader_actor>{loader}, initial,
                    caf::timespan{std::chrono::seconds(10)}, board, memory);
    gateway_config gcfg;
    gcfg.node_name = "test-node";
    gw = sys.spawn(gateway, rtr, cat, initial, membership_actor{}, gcfg);
    caf::anon_send(cat, subscribe_atom_v, caf::actor_cast<catalog_listener>(rtr));
    caf::anon_send(cat, subscribe_atom_v, caf::actor_cast<catalog_listener>(gw));
    sched.run();
  }

  ~node_actors() override {
    // anon_send_exit ignores handles that SetUp never filled in.
    caf::anon_send_exit(gw, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rtr, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(cat, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(loader, caf::exit_reason::user_shutdown);
    sched.run();
  }

  // Sends `call` through the gateway, runs every message that follows, returns the reply.
  api_reply call(api_call c) {
    auto reply = std::make_shared<std::optional<api_reply>>();
    caf::anon_send(gw, call_atom_v, std::move(c),
                   api_callback([reply](api_reply r) { *reply = std::move(r); }));
    sched.run();
    EXPECT_TRUE(reply->has_value()) << "no reply after the mailbox drained";
    return reply->value_or(status::internal("no reply"));
  }

  // Returns the reply's T. On an error (or a reply of another kind) records a failure and returns
  // nothing: the test body must ASSERT on the result before it uses the value, so one refused
  // call ends the test instead of feeding empty results to the lines after it.
  template <class T>
  std::optional<T> expect_ok(api_reply r) {
    if (auto* err = std::get_if<status>(&r)) {
      ADD_FAILURE() << err->to_string();
      return std::nullopt;
    }
    if (auto* value = std::get_if<T>(&r)) return std::move(*value);
    ADD_FAILURE() << "a reply of another kind (variant index " << r.index() << ")";
    return std::nullopt;
  }

  // Pushes `bytes` as a new snapshot of `id`.
  std::optional<push_result> push(const model_id& id, const std::string& bytes,
                                  const std::string& label = "", const std::string& note = "") {
    return expect_ok<push_result>(call(push_request{id, bytes, label, note}));
  }

  infer_request infer(const std::string& text, std::optional<uint32_t> version = std::nullopt) {
    infer_request req;
    req.id = bot;
    req.version = version;
    req.texts = {text};
    return req;
  }

  // What acme/bot serves for one text: the version and the top label.
  struct served {
    uint32_t version = 0;
    std::string label;
  };

  // Infers `text` on acme/bot. Records a failure and returns nothing when the call fails or the
  // reply holds no top label.
  std::optional<served> serve(const std::string& text) {
    auto r = expect_ok<infer_result>(call(infer(text)));
    if (!r) return std::nullopt;
    if (r->rows.size() != 1 || r->rows[0].empty()) {
      ADD_FAILURE() << "expected one row with a top label, got " << r->rows.size() << " rows";
      return std::nullopt;
    }
    return served{r->version, r->rows[0][0].label};
  }

  // Infers `text` on `id` (production) and returns the version that answered.
  std::optional<uint32_t> serve_model(const model_id& id, const std::string& text) {
    infer_request req = infer(text);
    req.id = id;
    auto r = expect_ok<infer_result>(call(req));
    if (!r) return std::nullopt;
    return r->version;
  }

  // True when the board (what front ends answer from) has `version` of `id` in memory.
  bool on_board(const model_id& id, uint32_t version) {
    return board->read(board_cache).loaded->find({id, version}) != nullptr;
  }

  // Returns what one loaded copy of `bytes` costs in memory.
  static uint64_t loaded_size(const std::string& bytes) {
    auto m = load_model(bytes);
    return m.is_ok() ? (*m)->memory_bytes() : 0;
  }

  const model_id bot{"acme", "bot"};
  router_settings memory;  // the router's cache settings; a derived fixture may shrink the budget
  static temp_dir* models_;
  static std::string v1_, v2_;
  temp_dir dir;
  std::shared_ptr<serving_board> board = std::make_shared<serving_board>();
  serving_board::cache board_cache;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  catalog_actor cat;
  model_loader_actor loader;
  router_actor rtr;
  gateway_actor gw;
};

temp_dir* node_actors::models_ = nullptr;
std::string node_actors::v1_;
std::string node_actors::v2_;

TEST_F(node_actors, push_then_infer_loads_the_model_lazily_and_serves_production) {
  auto pushed = push(bot, v1_, "", "first");
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->version, 1u);
  EXPECT_EQ(pushed->labels, std::vector<std::string>{"production"});
  auto r = expect_ok<infer_result>(call(infer("where is my parcel")));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version, 1u);
  ASSERT_EQ(r->rows.size(), 1u);
  ASSERT_EQ(r->rows[0].size(), 1u);
  EXPECT_EQ(r->rows[0][0].label, "order_status");
}

TEST_F(node_actors, promote_reaches_the_router_before_the_next_request) {
  ASSERT_TRUE(push(bot, v1_));
  ASSERT_TRUE(push(bot, v2_, "staging"));
  auto before = serve("cancel my order");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->version, 1u);

  label_request promote{bot, "", label_action::promote, 2u};
  auto moved = expect_ok<label_result>(call(promote));
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->from, 1u);
  EXPECT_EQ(moved->to, 2u);
  auto promoted = serve("cancel my order");
  ASSERT_TRUE(promoted);
  EXPECT_EQ(promoted->version, 2u);
  EXPECT_EQ(promoted->label, "cancel_order");

  label_request rollback{bot, "", label_action::rollback, std::nullopt};
  auto back = expect_ok<label_result>(call(rollback));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->to, 1u);
  auto rolled_back = serve("cancel my order");
  ASSERT_TRUE(rolled_back);
  EXPECT_EQ(rolled_back->label, "refund");
}

TEST_F(node_actors, unknown_models_and_versions_are_not_found_with_the_versions_named) {
  auto missing = call(infer("hi"));
  ASSERT_TRUE(std::holds_alternative<status>(missing));
  EXPECT_EQ(std::get<status>(missing).code(), status_code::not_found);
  ASSERT_TRUE(push(bot, v1_));
  auto bad_version = call(infer("hi", 7u));
  ASSERT_TRUE(std::holds_alternative<status>(bad_version));
  EXPECT_NE(std::get<status>(bad_version).message().find("versions: 1"), std::string::npos)
      << std::get<status>(bad_version).message();
}

TEST_F(node_actors, a_refused_push_stores_nothing_and_uses_no_version) {
  auto refused = call(push_request{bot, "not a model", "", ""});
  ASSERT_TRUE(std::holds_alternative<status>(refused));
  EXPECT_EQ(std::get<status>(refused).code(), status_code::invalid_argument);
  auto models = expect_ok<std::vector<model_entry>>(call(models_request{}));
  ASSERT_TRUE(models);
  EXPECT_TRUE(models->empty());
  auto pushed = push(bot, v1_);
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->version, 1u);
}

TEST_F(node_actors, a_damaged_snapshot_is_never_served_and_the_host_is_retried_after_repair) {
  auto pushed = push(bot, v1_);
  ASSERT_TRUE(pushed);
  // The store's documented layout: DIR/snapshots/ab/abcdef…
  auto store = dir.path() + "/snapshots/" + pushed->sha256.substr(0, 2) + "/" + pushed->sha256;
  std::string good = testing::read_file(store);
  ASSERT_FALSE(good.empty()) << "no snapshot file at " << store;
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x5a;
  ASSERT_TRUE(testing::write_file(store, bad));
  auto damaged = call(infer("where is my parcel"));
  ASSERT_TRUE(std::holds_alternative<status>(damaged));
  EXPECT_EQ(std::get<status>(damaged).code(), status_code::corruption);
  ASSERT_TRUE(testing::write_file(store, good));
  auto repaired = serve("where is my parcel");
  ASSERT_TRUE(repaired);
  EXPECT_EQ(repaired->label, "order_status");
}

TEST_F(node_actors, status_counts_models_and_snapshots) {
  ASSERT_TRUE(push(bot, v1_));
  ASSERT_TRUE(push(bot, v2_));
  ASSERT_TRUE(push(model_id{"other", "bot"}, v1_));
  auto st = expect_ok<node_status>(call(status_request{}));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->name, "test-node");
  EXPECT_EQ(st->models, 2u);
  EXPECT_EQ(st->snapshots, 3u);
}


TEST_F(node_actors, loaded_snapshots_and_label_moves_reach_the_serving_board) {
  ASSERT_TRUE(push(bot, v1_));
  ASSERT_TRUE(push(bot, v2_, "staging"));
  auto req = infer("cancel my order");
  auto cold = answer_inline(board->read(board_cache), req, 64);
  EXPECT_FALSE(cold.answer) << "nothing is loaded yet: the actors must load version 1";
  EXPECT_EQ(cold.version, 1u);

  auto first = serve("cancel my order");  // through the router: loads version 1
  ASSERT_TRUE(first);
  auto warm = answer_inline(board->read(board_cache), req, 64);
  ASSERT_TRUE(warm.answer);
  ASSERT_TRUE(warm.answer->is_ok()) << warm.answer->error().to_string();
  EXPECT_EQ((*warm.answer)->version, 1u);
  ASSERT_EQ((*warm.answer)->rows.size(), 1u);
  ASSERT_FALSE((*warm.answer)->rows[0].empty());
  EXPECT_EQ((*warm.answer)->rows[0][0].label, first->label);
  EXPECT_FALSE(answer_inline(board->read(board_cache), req, 0).answer)
      << "a batch over the inline limit goes to the actors";

  // The board must show a label move by the time its reply arrives: a client that promoted and
  // then infers at once must see the new version.
  std::optional<uint32_t> seen_at_reply;
  caf::anon_send(gw, call_atom_v, api_call{label_request{bot, "", label_action::promote, 2u}},
                 api_callback([&](api_reply) {
                   serving_board::cache fresh;
                   seen_at_reply = answer_inline(board->read(fresh), req, 64).version;
                 }));
  sched.run();
  ASSERT_TRUE(seen_at_reply);
  EXPECT_EQ(*seen_at_reply, 2u);
  auto promoted = answer_inline(board->read(board_cache), req, 64);
  EXPECT_FALSE(promoted.answer) << "version 2 is not loaded yet";
  EXPECT_EQ(promoted.version, 2u);

  auto unknown = infer("hi");
  unknown.id = model_id{"acme", "nobody"};
  auto missing = answer_inline(board->read(board_cache), unknown, 64);
  ASSERT_TRUE(missing.answer);
  EXPECT_EQ(missing.answer->error().code(), status_code::not_found);
}

// The same node with a model memory budget that holds two loaded copies of v1 but not three.
class node_actors_small_budget : public node_actors {
 protected:
  node_actors_small_budget() {
    memory.budget_bytes = std::max(loaded_size(v1_), loaded_size(v2_)) * 5 / 2;
  }

  // Lets the millisecond clock move on, so that the uses before and after are ordered.
  static void tick() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }
};

TEST_F(node_actors_small_budget, unloads_the_least_recently_used_and_reloads_it_on_demand) {
  const model_id a{"acme", "a"}, b{"acme", "b"}, c{"acme", "c"};
  ASSERT_GT(memory.budget_bytes, 0u);
  ASSERT_GT(3 * std::min(loaded_size(v1_), loaded_size(v2_)), memory.budget_bytes)
      << "the test needs three copies not to fit";
  for (const auto& id : {a, b, c}) ASSERT_TRUE(push(id, v1_));
  ASSERT_EQ(serve_model(a, "cancel my order"), 1u);
  tick();
  ASSERT_EQ(serve_model(b, "cancel my order"), 1u);
  tick();
  EXPECT_TRUE(on_board(a, 1) && on_board(b, 1));
  ASSERT_EQ(serve_model(c, "cancel my order"), 1u);  // a third copy does not fit: a goes
  EXPECT_FALSE(on_board(a, 1)) << "the least recently used model stayed loaded";
  EXPECT_TRUE(on_board(b, 1));
  EXPECT_TRUE(on_board(c, 1));
  EXPECT_LE(board->read(board_cache).loaded->bytes(), memory.budget_bytes);
  tick();
  // A use from the board (a front end answering on its own thread) counts as a use: b is now
  // more recent than c, so reloading a unloads c.
  auto req = infer("where is my parcel");
  req.id = b;
  ASSERT_TRUE(answer_inline(board->read(board_cache), req, 64).answer);
  tick();
  ASSERT_EQ(serve_model(a, "cancel my order"), 1u) << "an unloaded model loads again";
  EXPECT_TRUE(on_board(a, 1));
  EXPECT_TRUE(on_board(b, 1));
  EXPECT_FALSE(on_board(c, 1));
  // Everything is still stored: each model answers when asked.
  for (const auto& id : {a, b, c}) EXPECT_EQ(serve_model(id, "hello"), 1u) << id.str();
}

TEST_F(node_actors_small_budget, keeps_the_previous_production_warm_after_a_promote) {
  const model_id other{"acme", "other"};
  ASSERT_TRUE(push(bot, v1_));
  ASSERT_TRUE(push(bot, v2_));
  ASSERT_TRUE(push(other, v1_));
  ASSERT_EQ(serve_model(bot, "cancel my order"), 1u);  // production = v1, loaded
  tick();
  ASSERT_TRUE(expect_ok<label_result>(
      call(label_request{bot, "production", label_action::promote, 2u})));
  ASSERT_EQ(serve_model(bot, "cancel my order"), 2u);  // v2 loaded; v1 just replaced
  tick();
  ASSERT_EQ(serve_model(other, "cancel my order"), 1u);  // no room for three
  EXPECT_TRUE(on_board(bot, 1)) << "the version a rollback goes back to was unloaded";
  EXPECT_FALSE(on_board(bot, 2)) << "the least recently used unpinned version should go";
  EXPECT_TRUE(on_board(other, 1));
  // The rollback finds v1 in memory: the board answers it at once.
  ASSERT_TRUE(expect_ok<label_result>(
      call(label_request{bot, "production", label_action::rollback, std::nullopt})));
  auto req = infer("cancel my order");
  auto in = answer_inline(board->read(board_cache), req, 64);
  ASSERT_TRUE(in.answer) << "after the rollback, production must be answerable from memory";
  ASSERT_TRUE(in.answer->is_ok());
  EXPECT_EQ((*in.answer)->version, 1u);
}

class node_actors_tiny_budget : public node_actors {
 protected:
  node_actors_tiny_budget() { memory.budget_bytes = 1024; }
};

TEST_F(node_actors_tiny_budget, a_model_larger_than_the_whole_budget_is_refused_clearly) {
  ASSERT_TRUE(push(bot, v1_));
  auto r = call(infer("hello"));
  auto* err = std::get_if<status>(&r);
  ASSERT_NE(err, nullptr) << "a model over the whole budget was served";
  EXPECT_EQ(err->code(), status_code::resource_exhausted);
  EXPECT_NE(err->message().find("model memory budget"), std::string::npos) << err->message();
  EXPECT_EQ(board->read(board_cache).loaded->size(), 0u);
}

}  // namespace
}  // namespace shoal
