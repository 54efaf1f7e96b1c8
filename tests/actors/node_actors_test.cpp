// The node's actors on CAF's deterministic test scheduler: messages run only when the test says
// so (sched.run()), so each test sees one exact interleaving. Real store, journal and model.
#include <fstream>
#include <memory>
#include <optional>

#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "actors/catalog_actor.hpp"
#include "actors/gateway.hpp"
#include "actors/protocol.hpp"
#include "actors/router.hpp"
#include "support/node_process.hpp"

namespace shoal {
namespace {

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
    std::vector<std::string> opts = {"-epoch", "25", "-lr", "0.5", "-dim", "16", "-bucket", "20000",
                                     "-wordNgrams", "2", "-minn", "2", "-maxn", "4"};
    v1_ = testing::read_file(testing::train_fasttext(models_->path(), "v1",
                                                     testing::read_file(root + "/examples/intents-v1.txt"), opts));
    v2_ = testing::read_file(testing::train_fasttext(models_->path(), "v2",
                                                     testing::read_file(root + "/examples/intents-v2.txt"), opts));
  }
  static void TearDownTestSuite() { delete models_; }

  node_actors()
      : sys(deterministic(cfg)),
        sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    catalog_storage storage;
    auto store = snapshot_store::open(dir.path());
    EXPECT_TRUE(store.is_ok());
    auto journal = catalog_journal::open(dir.path() + "/catalog.journal", storage.initial,
                                         [](const std::string&) {});
    EXPECT_TRUE(journal.is_ok());
    storage.store = std::move(*store);
    storage.journal = std::move(*journal);
    auto initial = std::make_shared<const catalog>(storage.initial);
    // Not detached here: the test scheduler must run every actor, one message at a time.
    cat = sys.spawn(catalog_behavior, std::move(storage));
    rtr = sys.spawn(router, cat, initial, caf::timespan{std::chrono::seconds(10)});
    gateway_config gcfg;
    gcfg.node_name = "test-node";
    gw = sys.spawn(gateway, rtr, cat, initial, gcfg);
    caf::anon_send(cat, subscribe_atom_v, caf::actor_cast<catalog_listener>(rtr));
    caf::anon_send(cat, subscribe_atom_v, caf::actor_cast<catalog_listener>(gw));
    sched.run();
  }

  ~node_actors() override {
    caf::anon_send_exit(gw, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rtr, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(cat, caf::exit_reason::user_shutdown);
    sched.run();
  }

  // Sends `call` through the gateway, runs every message that follows, returns the reply.
  api_reply call(api_call c) {
    auto reply = std::make_shared<std::optional<api_reply>>();
    caf::anon_send(gw, call_atom_v, std::move(c), api_callback([reply](api_reply r) { *reply = std::move(r); }));
    sched.run();
    EXPECT_TRUE(reply->has_value()) << "no reply after the mailbox drained";
    return reply->value_or(status::internal("no reply"));
  }

  template <class T>
  T expect_ok(api_reply r) {
    if (auto* err = std::get_if<status>(&r)) {
      ADD_FAILURE() << err->to_string();
      return T{};
    }
    return std::get<T>(std::move(r));
  }

  infer_request infer(const std::string& text, std::optional<uint32_t> version = std::nullopt) {
    infer_request req;
    req.id = model_id{"acme", "bot"};
    req.version = version;
    req.texts = {text};
    return req;
  }

  static temp_dir* models_;
  static std::string v1_, v2_;
  temp_dir dir;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  catalog_actor cat;
  router_actor rtr;
  gateway_actor gw;
};

temp_dir* node_actors::models_ = nullptr;
std::string node_actors::v1_;
std::string node_actors::v2_;

TEST_F(node_actors, push_then_infer_loads_the_model_lazily_and_serves_production) {
  auto pushed = expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", "first"}));
  EXPECT_EQ(pushed.version, 1u);
  EXPECT_EQ(pushed.labels, std::vector<std::string>{"production"});
  auto r = expect_ok<infer_result>(call(infer("where is my parcel")));
  EXPECT_EQ(r.version, 1u);
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_EQ(r.rows[0].size(), 1u);
  EXPECT_EQ(r.rows[0][0].label, "order_status");
}

TEST_F(node_actors, promote_reaches_the_router_before_the_next_request) {
  expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", ""}));
  expect_ok<push_result>(call(push_request{{"acme", "bot"}, v2_, "staging", ""}));
  EXPECT_EQ(expect_ok<infer_result>(call(infer("cancel my order"))).version, 1u);
  label_request promote{{"acme", "bot"}, "", label_action::promote, 2u};
  auto moved = expect_ok<label_result>(call(promote));
  EXPECT_EQ(moved.from, 1u);
  EXPECT_EQ(moved.to, 2u);
  auto r = expect_ok<infer_result>(call(infer("cancel my order")));
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.rows[0][0].label, "cancel_order");
  label_request rollback{{"acme", "bot"}, "", label_action::rollback, std::nullopt};
  EXPECT_EQ(expect_ok<label_result>(call(rollback)).to, 1u);
  EXPECT_EQ(expect_ok<infer_result>(call(infer("cancel my order"))).rows[0][0].label, "refund");
}

TEST_F(node_actors, unknown_models_and_versions_are_not_found_with_the_versions_named) {
  auto missing = call(infer("hi"));
  ASSERT_TRUE(std::holds_alternative<status>(missing));
  EXPECT_EQ(std::get<status>(missing).code(), status_code::not_found);
  expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", ""}));
  auto bad_version = call(infer("hi", 7u));
  ASSERT_TRUE(std::holds_alternative<status>(bad_version));
  EXPECT_NE(std::get<status>(bad_version).message().find("versions: 1"), std::string::npos)
      << std::get<status>(bad_version).message();
}

TEST_F(node_actors, a_refused_push_stores_nothing_and_uses_no_version) {
  auto refused = call(push_request{{"acme", "bot"}, "not a model", "", ""});
  ASSERT_TRUE(std::holds_alternative<status>(refused));
  EXPECT_EQ(std::get<status>(refused).code(), status_code::invalid_argument);
  auto models = expect_ok<std::vector<model_entry>>(call(models_request{}));
  EXPECT_TRUE(models.empty());
  EXPECT_EQ(expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", ""})).version, 1u);
}

TEST_F(node_actors, a_damaged_snapshot_is_never_served_and_the_host_is_retried_after_repair) {
  auto pushed = expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", ""}));
  // The store's documented layout: DIR/snapshots/ab/abcdef…
  auto store = dir.path() + "/snapshots/" + pushed.sha256.substr(0, 2) + "/" + pushed.sha256;
  std::string good = testing::read_file(store);
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x5a;
  testing::write_file(store, bad);
  auto damaged = call(infer("where is my parcel"));
  ASSERT_TRUE(std::holds_alternative<status>(damaged));
  EXPECT_EQ(std::get<status>(damaged).code(), status_code::corruption);
  testing::write_file(store, good);
  EXPECT_EQ(expect_ok<infer_result>(call(infer("where is my parcel"))).rows[0][0].label, "order_status");
}

TEST_F(node_actors, status_counts_models_and_snapshots) {
  expect_ok<push_result>(call(push_request{{"acme", "bot"}, v1_, "", ""}));
  expect_ok<push_result>(call(push_request{{"acme", "bot"}, v2_, "", ""}));
  expect_ok<push_result>(call(push_request{{"other", "bot"}, v1_, "", ""}));
  auto st = expect_ok<node_status>(call(status_request{}));
  EXPECT_EQ(st.name, "test-node");
  EXPECT_EQ(st.models, 2u);
  EXPECT_EQ(st.snapshots, 3u);
}

}  // namespace
}  // namespace shoal
