// console: the /ui routes without sockets. The page's files come from the binary; every
// /ui/api/ call goes through a real front door (keys, tenants) to an in-memory cluster that
// records what reaches it. Bad input is refused before anything reaches the cluster.
#include "shoal/wire/console.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/recording_cluster.hpp"
#include "support/sample_catalog.hpp"

namespace shoal {
namespace {

using json = nlohmann::json;
using testing::recording_cluster;

const model_id bot{"acme", "bot"};
constexpr const char* admin_key = "admin-key-0123456789";
constexpr const char* acme_key = "acme-key-0123456789";

class console_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto keys =
        key_table::parse(std::string(admin_key) + " admin ops\n" + acme_key + " acme\n", "keys");
    ASSERT_TRUE(keys.is_ok());
    auto board = std::make_shared<serving_board>();
    board->publish_catalog(testing::catalog_with(bot, 2));
    cluster_ = std::make_shared<recording_cluster>();
    door_ = std::make_shared<front_door>(
        front_door_settings{}, board,
        std::make_shared<key_board>(std::make_shared<const key_table>(std::move(*keys))),
        std::make_shared<in_flight_counter>(), nullptr, std::make_shared<node_metrics>(), cluster_);
  }

  // Sends one request; returns its reply if it came at once (before the cluster answers).
  std::optional<http_reply> send(std::string method, std::string target, std::string body = "",
                                 const char* key = admin_key) {
    http_request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.body = std::move(body);
    if (key != nullptr) {
      req.authorization = std::string("Bearer ") + key;
      req.has_authorization = true;
    }
    last_.reset();
    serve_console(door_, {"n1", 3}, std::move(req), [this](http_reply r) { last_ = std::move(r); });
    return last_;
  }

  static std::string header(const http_reply& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  std::shared_ptr<recording_cluster> cluster_;
  std::shared_ptr<front_door> door_;
  std::optional<http_reply> last_;
};

TEST_F(console_test, serves_its_page_and_files_from_the_binary_without_a_key) {
  EXPECT_TRUE(is_console_path("/ui"));
  EXPECT_TRUE(is_console_path("/ui/api/models"));
  EXPECT_FALSE(is_console_path("/uix"));
  EXPECT_FALSE(is_console_path("/v2/models/acme/bot"));

  auto page = send("GET", "/ui/", "", nullptr);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"console.js\""), std::string::npos);
  EXPECT_NE(header(*page, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  for (const char* file : {"/ui/console.js", "/ui/console.css", "/ui/index.html"}) {
    auto r = send("GET", file, "", nullptr);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << file;
    EXPECT_GT(r->body.size(), 500u) << file;
  }
  auto redirect = send("GET", "/ui?x=1", "", nullptr);
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->status, 308);
  EXPECT_EQ(header(*redirect, "Location"), "/ui/");
  EXPECT_EQ(send("GET", "/ui/../etc/passwd", "", nullptr)->status, 404);
  EXPECT_EQ(send("GET", "/ui/nothing.js", "", nullptr)->status, 404);
  auto post = send("POST", "/ui/console.js", "", nullptr);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(header(*post, "Allow"), "GET, HEAD");
  EXPECT_TRUE(cluster_->calls.empty());
}

TEST_F(console_test, the_api_needs_a_key_of_this_node_and_says_who_it_is) {
  auto none = send("GET", "/ui/api/session", "", nullptr);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(header(*none, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(send("GET", "/ui/api/session", "", "wrong-key-0123456789")->status, 401);

  auto admin = json::parse(send("GET", "/ui/api/session")->body);
  EXPECT_EQ(admin["admin"], true);
  EXPECT_EQ(admin["name"], "ops");
  EXPECT_EQ(admin["node"], "n1");
  EXPECT_EQ(admin["replication_factor"], 3);
  auto tenant = json::parse(send("GET", "/ui/api/session", "", acme_key)->body);
  EXPECT_EQ(tenant["admin"], false);
  EXPECT_EQ(tenant["tenant"], "acme");
  EXPECT_EQ(send("GET", "/ui/api/nothing")->status, 404);
  EXPECT_TRUE(cluster_->calls.empty());
}

TEST_F(console_test, a_rollback_reaches_the_cluster_with_who_asked_and_answers_the_move) {
  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/rollback", R"({"user":"night ops"})"));
  ASSERT_EQ(cluster_->calls.size(), 1u);
  const auto& sent = std::get<label_request>(cluster_->calls[0]);
  EXPECT_EQ(sent.id, bot);
  EXPECT_EQ(sent.action, label_action::rollback);
  EXPECT_EQ(sent.label, "production");
  EXPECT_FALSE(sent.version);
  EXPECT_EQ(sent.user, "night ops");
  EXPECT_EQ(sent.by, "ops") << "the key's name, from the node, never the client";
  label_result moved;
  moved.label = "production";
  moved.from = 2;
  moved.to = 1;
  cluster_->answer(0, moved);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->status, 200);
  auto j = json::parse(last_->body);
  EXPECT_EQ(j["from"], 2);
  EXPECT_EQ(j["to"], 1);

  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/rollback", R"({"to":1})"));
  EXPECT_EQ(std::get<label_request>(cluster_->calls[1]).version, 1u) << "rollback --to";
  cluster_->answer(1, status::failed_precondition("label production already points at version 1"));
  EXPECT_EQ(last_->status, 409)
      << "the cluster's refusal (failed_precondition), as the V2 routes map it";
}

TEST_F(console_test, promote_and_trials_carry_their_fields) {
  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/promote", R"({"version":1,"force":true})"));
  const auto& promote = std::get<label_request>(cluster_->calls.at(0));
  EXPECT_EQ(promote.action, label_action::promote);
  EXPECT_EQ(promote.version, 1u);
  EXPECT_TRUE(promote.force);
  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/trial",
                    R"({"mode":"canary","version":1,"share":0.05})"));
  const auto& canary = std::get<trial_request>(cluster_->calls.at(1));
  EXPECT_EQ(canary.what, trial_info::mode::canary);
  EXPECT_EQ(canary.share_ppm, 50000u);
  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/trial", R"({"mode":"shadow","version":1})"));
  EXPECT_EQ(std::get<trial_request>(cluster_->calls.at(2)).share_ppm, 100000u) << "10%, as the CLI";
  EXPECT_FALSE(send("POST", "/ui/api/models/acme/bot/trial", R"({"mode":"shadow","stop":true})"));
  EXPECT_TRUE(std::get<trial_request>(cluster_->calls.at(3)).stop);
}

TEST_F(console_test, bad_input_is_a_clear_400_and_reaches_nothing) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/ui/api/models/acme/bot/promote", ""},  // no version
      {"/ui/api/models/acme/bot/promote", R"({"version":0})"},
      {"/ui/api/models/acme/bot/promote", R"({"version":"2"})"},
      {"/ui/api/models/acme/bot/promote", R"({"version":4294967296})"},
      {"/ui/api/models/acme/bot/promote", R"({"version":2,"force":"yes"})"},
      {"/ui/api/models/acme/bot/promote", "[1,2]"},
      {"/ui/api/models/acme/bot/promote", "{not json"},
      {"/ui/api/models/acme/bot/promote", std::string(100, '[') + std::string(100, ']')},
      {"/ui/api/models/acme/bot/rollback", R"({"force":true})"},
      {"/ui/api/models/acme/bot/rollback", R"({"user":")" + std::string(200, 'x') + "\"}"},
      {"/ui/api/models/acme/bot/rollback", R"({"label":5})"},
      {"/ui/api/models/acme/bot/trial", R"({"mode":"both","version":2})"},
      {"/ui/api/models/acme/bot/trial", R"({"mode":"canary","version":2})"},  // no share
      {"/ui/api/models/acme/bot/trial", R"({"mode":"canary","version":2,"share":1.5})"},
      {"/ui/api/models/acme/bot/trial", R"({"mode":"shadow","stop":true,"share":0.1})"},
      {"/ui/api/models/acme/bot/trial", R"({"mode":"shadow"})"},  // no version
      {"/ui/api/models/Acme/bot/rollback", "{}"},
      {"/ui/api/models/acme/../rollback", "{}"},
  };
  for (const auto& [target, body] : bad) {
    auto r = send("POST", target, body);
    ASSERT_TRUE(r) << target << " " << body;
    EXPECT_EQ(r->status, 400) << target << " " << body << ": " << r->body;
    EXPECT_NE(r->body.find("\"error\""), std::string::npos);
  }
  EXPECT_EQ(send("POST", "/ui/api/models/acme/bot/delete", "{}")->status, 404);
  EXPECT_EQ(send("POST", "/ui/api/models/acme", "{}")->status, 404);
  EXPECT_EQ(send("GET", "/ui/api/models/acme/bot/rollback")->status, 405);
  EXPECT_EQ(send("POST", "/ui/api/models/acme/bot")->status, 405);
  EXPECT_TRUE(cluster_->calls.empty());
}

TEST_F(console_test, a_tenant_key_reaches_only_its_tenant) {
  auto other = send("POST", "/ui/api/models/globex/faq/rollback", "{}", acme_key);
  ASSERT_TRUE(other) << "refused by the door, before the cluster";
  EXPECT_EQ(other->status, 404);
  EXPECT_NE(other->body.find("no model globex/faq"), std::string::npos);
  EXPECT_EQ(send("GET", "/ui/api/models/globex/faq", "", acme_key)->status, 404);
  EXPECT_TRUE(cluster_->calls.empty());

  EXPECT_FALSE(send("GET", "/ui/api/models", "", acme_key));
  ASSERT_EQ(cluster_->calls.size(), 1u);
  model_entry mine, theirs;
  mine.id = bot;
  theirs.id = {"globex", "faq"};
  cluster_->answer(0, std::vector<model_entry>{mine, theirs});
  auto j = json::parse(last_->body);
  ASSERT_EQ(j["models"].size(), 1u);
  EXPECT_EQ(j["models"][0]["model"], "acme/bot");
}

}  // namespace
}  // namespace shoal
