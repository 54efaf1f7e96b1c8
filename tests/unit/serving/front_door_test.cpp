// front_door: the request path's rules without sockets or actors. A real fastText model (trained
// by the fasttext tool) is loaded into a real serving board; the actors behind the door are an
// in-memory cluster_port that records what reaches it and answers as the test says.
#include "shoal/serving/front_door.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/node_process.hpp"
#include "support/recording_cluster.hpp"
#include "support/sample_catalog.hpp"

namespace shoal {
namespace {

const model_id bot{"acme", "bot"};

using testing::recording_cluster;

std::string trained_model() {
  static const std::string bytes = [] {
    testing::temp_dir dir;
    std::string text;
    for (int i = 0; i < 40; ++i) {
      text += "__label__order_status where is my parcel\n__label__refund i want my money back\n";
    }
    return testing::read_file(testing::train_fasttext(dir.path(), "m", text));
  }();
  return bytes;
}

// A catalog with `versions` snapshots of acme/bot, production on the last.
std::shared_ptr<const catalog> catalog_with(uint32_t versions) {
  return testing::catalog_with(bot, versions);
}

infer_request request(std::vector<std::string> texts = {"where is my parcel"}) {
  infer_request r;
  r.id = bot;
  r.texts = std::move(texts);
  return r;
}

// Deferred work of a fake front-end thread: what front_end::defer queued, run by the test.
std::vector<std::function<void()>>* deferred = nullptr;
bool defer_into_list(std::function<void()> fn) {
  deferred->push_back(std::move(fn));
  return true;
}

class front_door_test : public ::testing::Test {
 protected:
  void SetUp() override { deferred = &round_; }
  void TearDown() override { deferred = nullptr; }

  // A door over acme/bot with `versions` versions, version `loaded` in memory (0: none).
  void make(front_door_settings settings, uint32_t versions = 2, uint32_t loaded = 2,
            std::shared_ptr<const key_table> keys = nullptr,
            std::shared_ptr<tenant_admission> admission = nullptr) {
    board_ = std::make_shared<serving_board>();
    board_->publish_catalog(catalog_with(versions));
    if (loaded != 0) {
      auto m = load_model(trained_model());
      ASSERT_TRUE(m.is_ok()) << m.error().to_string();
      auto entry = std::make_shared<const resident_model>(*m, steady_now_ms());
      board_->publish_loaded(std::make_shared<const loaded_models>(
          loaded_models().with({bot, loaded}, entry)));
    }
    in_flight_ = std::make_shared<in_flight_counter>();
    metrics_ = std::make_shared<node_metrics>();
    cluster_ = std::make_shared<recording_cluster>();
    door_ = std::make_shared<front_door>(settings, board_, std::make_shared<key_board>(keys),
                                         in_flight_, std::move(admission), metrics_, cluster_);
  }

  // Admits and answers one inference as `who`; returns its outcomes (none yet when it waits for
  // the cluster or a round).
  std::vector<infer_outcome>& infer(const principal& who, infer_request req, const front_end& fe) {
    auto record = [this](infer_outcome o) { outcomes_.push_back(std::move(o)); };
    auto pass = door_->admit(fe, 0, [&record] { return record; });
    if (pass) door_->infer(std::move(*pass), who, std::move(req), fe, record);
    return outcomes_;
  }

  std::string metrics_text() { return door_->render_metrics(); }

  const principal admin{"", true};
  const front_end at_once{"thread", nullptr, false, true};
  std::vector<std::function<void()>> round_;
  std::shared_ptr<serving_board> board_;
  std::shared_ptr<in_flight_counter> in_flight_;
  std::shared_ptr<node_metrics> metrics_;
  std::shared_ptr<recording_cluster> cluster_;
  std::shared_ptr<front_door> door_;
  std::vector<infer_outcome> outcomes_;
};

front_door_settings unbatched() {
  front_door_settings s;
  s.micro_batch_texts = 0;
  s.max_queue_ms = 0;
  return s;
}

TEST_F(front_door_test, a_loaded_snapshot_is_answered_on_this_thread_without_the_cluster) {
  make(unbatched());
  auto& out = infer(admin, request({"where is my parcel", "i want my money back"}), at_once);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].what, infer_outcome::kind::answered) << out[0].error.to_string();
  EXPECT_EQ(out[0].answer.version, 2u) << "production";
  ASSERT_EQ(out[0].answer.rows.size(), 2u);
  EXPECT_EQ(out[0].answer.rows[0][0].label, "order_status");
  EXPECT_EQ(out[0].answer.rows[1][0].label, "refund");
  EXPECT_TRUE(cluster_->calls.empty());
  EXPECT_EQ(in_flight_->now(), 0u) << "answered: no longer in flight";
  EXPECT_EQ(metrics_->cache_hits.load(), 1u);
  EXPECT_NE(metrics_text().find("shoal_inference_requests_total{tenant=\"acme\",model=\"bot\"} 1"),
            std::string::npos);
}

TEST_F(front_door_test, a_snapshot_not_loaded_goes_to_the_cluster_with_its_version_resolved) {
  make(unbatched(), 3, 0);
  auto& out = infer(admin, request(), at_once);
  EXPECT_TRUE(out.empty()) << "waits for the cluster";
  ASSERT_EQ(cluster_->calls.size(), 1u);
  const auto& sent = std::get<infer_request>(cluster_->calls[0]);
  EXPECT_EQ(sent.version, 3u) << "the label was resolved by the serving view";
  EXPECT_EQ(in_flight_->now(), 1u) << "in flight until the cluster answers";

  infer_result r;
  r.id = bot;
  r.version = 3;
  r.rows = {{{"x", 1.0f}}};
  cluster_->answer(0, r);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].what, infer_outcome::kind::answered);
  EXPECT_EQ(out[0].answer.version, 3u);
  EXPECT_EQ(in_flight_->now(), 0u);

  // A loading model whose queue is full is a refusal (retry later); other errors are failures.
  infer(admin, request(), at_once);
  infer(admin, request(), at_once);
  cluster_->answer(1, status::resource_exhausted("too many requests wait for acme/bot to load"));
  cluster_->answer(2, status::unavailable("no holder answered"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].what, infer_outcome::kind::limited);
  EXPECT_EQ(out[2].what, infer_outcome::kind::failed);
  EXPECT_EQ(out[2].error.code(), status_code::unavailable);
}

TEST_F(front_door_test, unknown_models_versions_and_labels_fail_here_as_the_actors_would) {
  make(unbatched());
  infer_request unknown = request();
  unknown.id = {"acme", "nobot"};
  infer_request version = request();
  version.version = 9;
  infer_request label = request();
  label.label = "staging";
  for (auto* r : {&unknown, &version, &label}) infer(admin, *r, at_once);
  ASSERT_EQ(outcomes_.size(), 3u);
  for (const auto& o : outcomes_) {
    EXPECT_EQ(o.what, infer_outcome::kind::failed);
    EXPECT_EQ(o.error.code(), status_code::not_found) << o.error.to_string();
  }
  EXPECT_NE(outcomes_[1].error.message().find("versions: 1-2"), std::string::npos);
  EXPECT_TRUE(cluster_->calls.empty());
}

TEST_F(front_door_test, each_version_counts_its_answers_failures_and_scores_for_the_console) {
  make(unbatched(), 3, 2);  // production is 3 (not loaded here); 2 is loaded
  infer_request old = request({"where is my parcel", "i want my money back"});
  old.version = 2;
  infer(admin, old, at_once);
  infer(admin, request(), at_once);  // production: through the cluster, which fails it
  cluster_->answer(0, status::unavailable("no holder answered"));
  infer_request typo = request();
  typo.id = {"acme", "nobot"};
  infer(admin, typo, at_once);
  ASSERT_EQ(outcomes_.size(), 3u);
  ASSERT_EQ(outcomes_[0].what, infer_outcome::kind::answered);

  const auto counts = door_->version_counts(bot);
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].version, 2u);
  EXPECT_EQ(counts[0].requests, 1u);
  EXPECT_EQ(counts[0].errors, 0u);
  EXPECT_EQ(counts[0].scored, 1u);
  const double mean =
      (outcomes_[0].answer.rows[0][0].score + outcomes_[0].answer.rows[1][0].score) / 2;
  EXPECT_NEAR(double(counts[0].top1_sum_ppm) / 1e6, mean, 1e-6) << "the mean top-1 of its rows";
  EXPECT_EQ(counts[1].version, 3u) << "failed after production resolved to 3: counted there";
  EXPECT_EQ(counts[1].requests, 1u);
  EXPECT_EQ(counts[1].errors, 1u);
  EXPECT_EQ(counts[1].scored, 0u);
  EXPECT_EQ(door_->version_counts().size(), 1u) << "a model that does not exist is not counted";
}

TEST_F(front_door_test, keys_decide_who_may_reach_which_tenant) {
  auto keys = key_table::parse("acme-key-0123456789 acme\nglobex-key-0123456789 globex\n", "keys");
  ASSERT_TRUE(keys.is_ok()) << keys.error().to_string();
  make(unbatched(), 2, 2, std::make_shared<const key_table>(std::move(*keys)));
  EXPECT_EQ(door_->authenticate(std::nullopt, "a key").error().code(),
            status_code::unauthenticated);
  EXPECT_EQ(door_->authenticate("nope", "a key").error().code(), status_code::unauthenticated);
  auto acme = door_->authenticate("acme-key-0123456789", "a key");
  auto globex = door_->authenticate("globex-key-0123456789", "a key");
  ASSERT_TRUE(acme.is_ok());
  ASSERT_TRUE(globex.is_ok());

  infer(*acme, request(), at_once);
  infer(*globex, request(), at_once);
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::answered);
  EXPECT_EQ(outcomes_[1].what, infer_outcome::kind::failed);
  EXPECT_EQ(outcomes_[1].error.code(), status_code::not_found);
  EXPECT_NE(metrics_text().find("shoal_inference_errors_total{tenant=\"_other\",model=\"_other\"} 1"),
            std::string::npos)
      << "another tenant's model is not found for this key, and counted as one that is not";

  // Other calls: refused before the cluster sees them; a model list is cut to the tenant's.
  std::vector<api_reply> replies;
  door_->call(*globex, list_request{bot}, [&](api_reply r) { replies.push_back(std::move(r)); });
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(std::get<status>(replies[0]).code(), status_code::not_found);
  EXPECT_TRUE(cluster_->calls.empty());
  door_->call(*acme, models_request{}, [&](api_reply r) { replies.push_back(std::move(r)); });
  ASSERT_EQ(cluster_->calls.size(), 1u);
  model_entry mine, theirs;
  mine.id = bot;
  theirs.id = {"globex", "bot"};
  cluster_->answer(0, std::vector<model_entry>{mine, theirs});
  ASSERT_EQ(replies.size(), 2u);
  const auto& seen = std::get<std::vector<model_entry>>(replies[1]);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].id, bot);
}

TEST_F(front_door_test, a_draining_node_and_a_full_node_refuse_before_anything_else) {
  front_door_settings s = unbatched();
  s.max_in_flight = 1;
  make(s, 2, 0);
  infer(admin, request(), at_once);  // waits for the cluster: one in flight
  infer(admin, request(), at_once);
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::limited);
  EXPECT_EQ(outcomes_[0].error.code(), status_code::resource_exhausted);
  EXPECT_NE(outcomes_[0].error.message().find("max_in_flight 1"), std::string::npos);
  EXPECT_EQ(cluster_->calls.size(), 1u);

  door_->start_draining();
  EXPECT_TRUE(door_->draining());
  infer(admin, request(), at_once);
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[1].what, infer_outcome::kind::limited);
  EXPECT_EQ(outcomes_[1].error.code(), status_code::unavailable);
  const std::string m = metrics_text();
  EXPECT_NE(m.find("shoal_refusals_total{reason=\"node_in_flight\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("shoal_refusals_total{reason=\"draining\"} 1"), std::string::npos) << m;
}

// Regression: max_batch was applied by the HTTP codec only; a ZeroMQ client could send up to the
// codec's own bound whatever the node's setting.
TEST_F(front_door_test, a_batch_over_max_batch_is_refused_whatever_the_front_end) {
  front_door_settings s = unbatched();
  s.max_batch = 2;
  make(s);
  infer(admin, request({"a", "b"}), at_once);
  infer(admin, request({"a", "b", "c"}), at_once);
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::answered);
  EXPECT_EQ(outcomes_[1].what, infer_outcome::kind::failed);
  EXPECT_EQ(outcomes_[1].error.code(), status_code::invalid_argument);
  EXPECT_NE(outcomes_[1].error.message().find("3 texts is over this node's limit of 2"),
            std::string::npos)
      << outcomes_[1].error.message();
}

TEST_F(front_door_test, a_tenant_over_its_rate_is_refused_and_the_others_are_not) {
  limits_config limits;
  limits.by_tenant["acme"].rate = 1;
  limits.by_tenant["acme"].burst = 1;
  make(unbatched(), 2, 2, nullptr, std::make_shared<tenant_admission>(limits));
  infer(admin, request(), at_once);
  infer(admin, request(), at_once);
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::answered);
  EXPECT_EQ(outcomes_[1].what, infer_outcome::kind::limited);
  EXPECT_EQ(outcomes_[1].error.code(), status_code::resource_exhausted);
  EXPECT_NE(metrics_text().find("shoal_refusals_total{reason=\"tenant_rate\"} 1"),
            std::string::npos);
}

TEST_F(front_door_test, micro_batched_requests_are_answered_when_the_round_ends) {
  front_door_settings s;
  s.max_queue_ms = 0;
  make(s);
  const front_end deferring{"thread", &defer_into_list, true, true};
  infer(admin, request({"where is my parcel"}), deferring);
  infer(admin, request({"i want my money back"}), deferring);
  EXPECT_TRUE(outcomes_.empty()) << "held for the round";
  ASSERT_EQ(round_.size(), 1u) << "one flush for the round, arranged by its first request";
  round_[0]();
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[0].answer.rows[0][0].label, "order_status");
  EXPECT_EQ(outcomes_[1].answer.rows[0][0].label, "refund");

  // A front end without deferral ends its rounds itself.
  const front_end by_round{"ZeroMQ thread", nullptr, false, false};
  infer(admin, request(), by_round);
  EXPECT_EQ(outcomes_.size(), 2u);
  front_door::end_round();
  EXPECT_EQ(outcomes_.size(), 3u);
}

TEST_F(front_door_test, a_thread_that_is_behind_sheds_a_share_and_recovers_when_idle) {
  front_door_settings s = unbatched();
  s.max_queue_ms = 1;
  make(s);
  for (int i = 0; i < 5; ++i) door_->on_lag(20.0, false);  // far behind, again and again
  for (int i = 0; i < 50; ++i) infer(admin, request(), at_once);
  size_t shed = 0;
  for (const auto& o : outcomes_) {
    if (o.what == infer_outcome::kind::shed) {
      ++shed;
      EXPECT_NE(o.error.message().find("this node is overloaded: requests wait 20.0 ms"),
                std::string::npos)
          << o.error.message();
    }
  }
  EXPECT_GT(shed, 0u);
  EXPECT_LT(shed, 50u) << "a shedding thread still answers a share";
  door_->on_lag(0, true);
  outcomes_.clear();
  for (int i = 0; i < 20; ++i) infer(admin, request(), at_once);
  for (const auto& o : outcomes_) EXPECT_EQ(o.what, infer_outcome::kind::answered);
}

// ---- forwarding (issue 16) ---------------------------------------------------------------------

// The data plane's side of the door, in memory: keeps each forward until the test answers it.
class recording_peers final : public peer_port {
 public:
  void forward(std::vector<peer_info> targets, infer_request req,
               std::function<void(result<infer_result>)> done) override {
    calls.push_back({std::move(targets), std::move(req)});
    replies.push_back(std::move(done));
  }
  struct call {
    std::vector<peer_info> targets;
    infer_request req;
  };
  std::vector<call> calls;
  std::vector<std::function<void(result<infer_result>)>> replies;
};

class forwarding_test : public front_door_test {
 protected:
  // Node "a"'s door over acme/bot (2 versions, nothing loaded); version 2 held by `holders`;
  // `alive` the peers membership lists.
  void make_node(std::set<std::string> holders, std::vector<std::string> alive) {
    make(unbatched(), 2, 0);
    catalog c = *catalog_with(2);
    for (const auto& h : holders) {
      catalog_change hold = hold_change(bot, 2);
      hold.origin = h;
      ASSERT_TRUE(c.apply(hold).is_ok());
    }
    board_->publish_catalog(std::make_shared<const catalog>(std::move(c)));
    auto dir = std::make_shared<peer_directory>();
    dir->self_id = "a";
    for (const auto& p : alive) dir->alive[p] = peer_info{p, "node-" + p, "127.0.0.1:7423", 0};
    board_->publish_peers(dir);
    peers_ = std::make_shared<recording_peers>();
    traffic_ = std::make_shared<traffic_meter>();
    door_ = std::make_shared<front_door>(unbatched(), board_, std::make_shared<key_board>(nullptr),
                                         in_flight_, nullptr, metrics_, cluster_, peers_,
                                         traffic_);
  }
  std::shared_ptr<recording_peers> peers_;
  std::shared_ptr<traffic_meter> traffic_;
};

TEST_F(forwarding_test, a_version_held_only_elsewhere_goes_to_its_live_holders_pinned) {
  make_node({"b", "c"}, {"b", "c", "d"});
  infer_request req = request();
  req.label = "production";
  infer(admin, req, at_once);
  ASSERT_EQ(peers_->calls.size(), 1u);
  EXPECT_TRUE(cluster_->calls.empty()) << "not through the actors";
  const auto& call = peers_->calls[0];
  std::set<std::string> targets;
  for (const auto& t : call.targets) targets.insert(t.id);
  EXPECT_EQ(targets, (std::set<std::string>{"b", "c"})) << "holders only, never d";
  EXPECT_EQ(call.req.version, 2u) << "the label resolved here";
  EXPECT_EQ(call.req.label, "");
  infer_result r;
  r.id = bot;
  r.version = 2;
  r.rows = {{prediction{"order_status", 0.9f}}};
  peers_->replies[0](r);
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::answered);
  EXPECT_EQ(outcomes_[0].answer.rows, r.rows);
  EXPECT_EQ(metrics_->forwarded.load(), 1u);
  EXPECT_EQ(metrics_->served_local.load(), 0u);
  // The thread's forward counts reach the traffic meter on its tick.
  door_->refresh_view();
  auto counts = traffic_->take();
  EXPECT_EQ(counts[std::make_pair(bot, 2u)], 1u);
}

TEST_F(forwarding_test, a_holders_refusal_is_a_429_and_a_failure_a_5xx) {
  make_node({"b"}, {"b"});
  infer(admin, request(), at_once);
  infer(admin, request(), at_once);
  ASSERT_EQ(peers_->calls.size(), 2u);
  peers_->replies[0](status::resource_exhausted("node-b is overloaded"));
  peers_->replies[1](status::unavailable("no node holding acme/bot version 2 answered"));
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_EQ(outcomes_[0].what, infer_outcome::kind::limited);
  EXPECT_EQ(outcomes_[1].what, infer_outcome::kind::failed);
  EXPECT_EQ(http_status(outcomes_[1].error.code()), 503);
}

TEST_F(forwarding_test, held_here_or_no_live_holder_goes_to_the_actors) {
  make_node({"a", "b"}, {"b"});
  infer(admin, request(), at_once);
  EXPECT_TRUE(peers_->calls.empty()) << "this node holds it: loaded here by the actors";
  EXPECT_EQ(cluster_->calls.size(), 1u);

  make_node({"b"}, {"c"});
  infer(admin, request(), at_once);
  EXPECT_TRUE(peers_->calls.empty()) << "b is not alive: the actors look again";
  EXPECT_EQ(cluster_->calls.size(), 1u);
}

TEST_F(forwarding_test, a_peers_request_is_never_forwarded_again) {
  make_node({"b"}, {"b"});
  infer_request req = request();
  req.version = 2;
  door_->serve_peer(req, at_once, [this](infer_outcome o) { outcomes_.push_back(std::move(o)); });
  EXPECT_TRUE(peers_->calls.empty());
  ASSERT_EQ(cluster_->calls.size(), 1u) << "answered here, through the actors (not loaded)";
  EXPECT_EQ(metrics_->served_for_peers.load(), 1u);
  door_->start_draining();
  door_->serve_peer(req, at_once, [this](infer_outcome o) { outcomes_.push_back(std::move(o)); });
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].error.code(), status_code::unavailable)
      << "a stopping node refuses, so the asker tries the next holder";
}

}  // namespace
}  // namespace shoal
