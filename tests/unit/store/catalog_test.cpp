// catalog: versions, labels and their history, as plain data. No files, no clock.
// Over 500 lines: every case of catalog in one suite, so it reads as its specification.
#include "shoal/store/catalog.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "support/catalog_dump.hpp"

namespace shoal {
namespace {

using testing::dump;

const model_id bot{"acme", "bot"};

snapshot_info snap(const std::string& sha, const std::string& note = "") {
  snapshot_info s;
  s.sha256 = sha;
  s.size_bytes = sha.size();
  s.format = "fasttext";
  s.note = note;
  return s;
}

// Plans a push and applies every change it returns, as the catalog actor does.
uint32_t push(catalog& c, const model_id& id, const std::string& sha, const std::string& label = "",
              int64_t now = 1000) {
  auto changes = c.plan_push(id, snap(sha), label, now);
  for (const auto& ch : changes) {
    status s = c.apply(ch);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  return changes.front().snapshot.version;
}

label_request promote_req(uint32_t version, const std::string& label = "") {
  label_request r;
  r.id = bot;
  r.label = label;
  r.action = label_action::promote;
  r.version = version;
  return r;
}

label_request rollback_req(std::optional<uint32_t> to = std::nullopt,
                           const std::string& label = "") {
  label_request r;
  r.id = bot;
  r.label = label;
  r.action = label_action::rollback;
  r.version = to;
  return r;
}

// Plans and applies a label move; returns the plan's status.
status move(catalog& c, const label_request& req, int64_t now = 2000) {
  auto plan = c.plan_label(req, now);
  if (!plan) return plan.error();
  return c.apply(*plan);
}

std::vector<uint32_t> stack_of(const catalog& c, const std::string& label = "production") {
  const model_entry* m = c.find(bot);
  if (m == nullptr) return {};
  auto it = m->labels.find(label);
  if (it == m->labels.end()) return {};
  return it->second.stack;
}

uint32_t current(const catalog& c, const std::string& label = "production") {
  auto r = c.resolve(bot, std::nullopt, label);
  EXPECT_TRUE(r.is_ok()) << r.error().to_string();
  return r ? *r : 0;
}

catalog three_versions() {
  catalog c;
  push(c, bot, "s1");
  push(c, bot, "s2", "production");
  push(c, bot, "s3", "production");
  return c;
}

TEST(catalog, label_names_follow_the_rule) {
  EXPECT_TRUE(is_valid_label("production"));
  EXPECT_TRUE(is_valid_label("staging"));
  EXPECT_TRUE(is_valid_label("0"));
  EXPECT_TRUE(is_valid_label("canary-2.eu_west"));
  EXPECT_TRUE(is_valid_label(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_label(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_label(""));
  EXPECT_FALSE(is_valid_label("Production"));
  EXPECT_FALSE(is_valid_label("-canary"));
  EXPECT_FALSE(is_valid_label(".hidden"));
  EXPECT_FALSE(is_valid_label("_x"));
  EXPECT_FALSE(is_valid_label("a/b"));
  EXPECT_FALSE(is_valid_label("a b"));
}

TEST(catalog, first_push_also_moves_production) {
  catalog c;
  auto changes = c.plan_push(bot, snap("s1", "first"), "", 1234);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].what, catalog_change::kind::add_snapshot);
  EXPECT_EQ(changes[0].snapshot.version, 1u);
  EXPECT_EQ(changes[0].snapshot.sha256, "s1");
  EXPECT_EQ(changes[0].snapshot.note, "first");
  EXPECT_EQ(changes[0].snapshot.created_ms, 1234);
  EXPECT_EQ(changes[1].what, catalog_change::kind::move_label);
  EXPECT_EQ(changes[1].label, "production");
  EXPECT_EQ(changes[1].to, 1u);
  EXPECT_EQ(changes[1].action, label_action::promote);
  EXPECT_EQ(changes[1].time_ms, 1234);
  EXPECT_TRUE(c.models().empty()) << "planning must not change the catalog";

  for (const auto& ch : changes) ASSERT_TRUE(c.apply(ch).is_ok());
  EXPECT_EQ(current(c), 1u);
  EXPECT_EQ(c.find(bot)->labels_at(1), std::vector<std::string>{"production"});
}

TEST(catalog, first_push_with_production_label_moves_it_once) {
  catalog c;
  auto changes = c.plan_push(bot, snap("s1"), "production", 1);
  ASSERT_EQ(changes.size(), 2u);
  for (const auto& ch : changes) ASSERT_TRUE(c.apply(ch).is_ok());
  EXPECT_EQ(stack_of(c), std::vector<uint32_t>{1});
  EXPECT_EQ(c.find(bot)->labels.at("production").history.size(), 1u);
}

TEST(catalog, first_push_with_another_label_moves_both) {
  catalog c;
  auto changes = c.plan_push(bot, snap("s1"), "staging", 1);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[1].label, "production");
  EXPECT_EQ(changes[2].label, "staging");
  EXPECT_EQ(changes[2].to, 1u);
  for (const auto& ch : changes) ASSERT_TRUE(c.apply(ch).is_ok());
  EXPECT_EQ(c.find(bot)->labels_at(1), (std::vector<std::string>{"production", "staging"}));
}

TEST(catalog, later_push_numbers_the_next_version_and_leaves_production_alone) {
  catalog c;
  EXPECT_EQ(push(c, bot, "s1"), 1u);
  auto changes = c.plan_push(bot, snap("s2"), "", 5);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].snapshot.version, 2u);
  ASSERT_TRUE(c.apply(changes[0]).is_ok());
  EXPECT_EQ(push(c, bot, "s3"), 3u);
  EXPECT_EQ(current(c), 1u);
  EXPECT_TRUE(c.find(bot)->labels_at(3).empty());
}

TEST(catalog, push_ignores_the_callers_version) {
  catalog c;
  push(c, bot, "s1");
  snapshot_info s = snap("s2");
  s.version = 42;
  auto changes = c.plan_push(bot, s, "", 1);
  EXPECT_EQ(changes[0].snapshot.version, 2u);
}

TEST(catalog, later_push_with_label_moves_that_label) {
  catalog c;
  push(c, bot, "s1");
  push(c, bot, "s2", "staging");
  EXPECT_EQ(current(c), 1u);
  EXPECT_EQ(current(c, "staging"), 2u);
  push(c, bot, "s3", "production");
  EXPECT_EQ(current(c), 3u);
  EXPECT_EQ(stack_of(c), (std::vector<uint32_t>{1, 3}));
}

TEST(catalog, models_are_kept_apart_and_sorted) {
  catalog c;
  push(c, model_id{"zeta", "a"}, "z1");
  push(c, bot, "b1");
  push(c, bot, "b2");
  push(c, model_id{"acme", "alpha"}, "a1");
  auto ms = c.models();
  ASSERT_EQ(ms.size(), 3u);
  EXPECT_EQ(ms[0]->id.str(), "acme/alpha");
  EXPECT_EQ(ms[1]->id.str(), "acme/bot");
  EXPECT_EQ(ms[2]->id.str(), "zeta/a");
  EXPECT_EQ(ms[0]->snapshots.size(), 1u);
  EXPECT_EQ(ms[1]->snapshots.size(), 2u);
  EXPECT_EQ(c.find(model_id{"acme", "nope"}), nullptr);
  ASSERT_NE(c.find(bot)->find(2), nullptr);
  EXPECT_EQ(c.find(bot)->find(2)->sha256, "b2");
  EXPECT_EQ(c.find(bot)->find(3), nullptr);
  EXPECT_EQ(c.find(bot)->find(0), nullptr);
}

TEST(catalog, rollback_walks_back_through_history) {
  catalog c = three_versions();
  EXPECT_EQ(stack_of(c), (std::vector<uint32_t>{1, 2, 3}));

  auto plan = c.plan_label(rollback_req(), 50);
  ASSERT_TRUE(plan.is_ok()) << plan.error().to_string();
  EXPECT_EQ(plan->to, 2u);
  EXPECT_EQ(plan->label, "production");
  EXPECT_EQ(plan->action, label_action::rollback);
  ASSERT_TRUE(c.apply(*plan).is_ok());
  EXPECT_EQ(current(c), 2u);

  ASSERT_TRUE(move(c, rollback_req()).is_ok());
  EXPECT_EQ(current(c), 1u);

  auto refused = c.plan_label(rollback_req(), 60);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.error().code(), status_code::failed_precondition);
  EXPECT_EQ(refused.error().message(),
            "label production of acme/bot has no earlier version to roll back to");
  EXPECT_EQ(current(c), 1u);
}

TEST(catalog, rollback_records_every_move_in_history) {
  catalog c = three_versions();
  ASSERT_TRUE(move(c, rollback_req(), 77).is_ok());
  const auto& h = c.find(bot)->labels.at("production").history;
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].from, 0u);
  EXPECT_EQ(h[0].to, 1u);
  EXPECT_EQ(h[0].action, label_action::promote);
  EXPECT_EQ(h[2].from, 2u);
  EXPECT_EQ(h[2].to, 3u);
  EXPECT_EQ(h[3].from, 3u);
  EXPECT_EQ(h[3].to, 2u);
  EXPECT_EQ(h[3].action, label_action::rollback);
  EXPECT_EQ(h[3].time_ms, 77);
}

TEST(catalog, rollback_to_a_version_on_the_stack_pops_down_to_it) {
  catalog c = three_versions();
  auto plan = c.plan_label(rollback_req(1u), 1);
  ASSERT_TRUE(plan.is_ok()) << plan.error().to_string();
  EXPECT_EQ(plan->to, 1u);
  ASSERT_TRUE(c.apply(*plan).is_ok());
  EXPECT_EQ(stack_of(c), std::vector<uint32_t>{1});
  EXPECT_FALSE(c.plan_label(rollback_req(), 2).is_ok()) << "nothing below 1 any more";
}

TEST(catalog, rollback_to_a_version_off_the_stack_pushes_it) {
  catalog c;
  push(c, bot, "s1");
  push(c, bot, "s2");
  push(c, bot, "s3", "production");  // production: 1 -> 3, version 2 never served
  ASSERT_TRUE(move(c, rollback_req(2u)).is_ok());
  EXPECT_EQ(stack_of(c), (std::vector<uint32_t>{1, 3, 2}));
  ASSERT_TRUE(move(c, rollback_req()).is_ok());
  EXPECT_EQ(current(c), 3u) << "a plain rollback undoes the --to";
}

TEST(catalog, rollback_to_the_current_version_is_refused) {
  catalog c = three_versions();
  auto r = c.plan_label(rollback_req(3u), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::failed_precondition);
  EXPECT_EQ(r.error().message(), "label production already points at version 3");
}

TEST(catalog, rollback_to_an_unknown_version_names_the_versions) {
  catalog c = three_versions();
  auto r = c.plan_label(rollback_req(7u), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::not_found);
  EXPECT_EQ(r.error().message(), "model acme/bot has no version 7 (versions: 1-3)");
}

TEST(catalog, rollback_of_a_missing_label_names_the_labels_that_exist) {
  catalog c = three_versions();
  push(c, bot, "s4", "canary");
  for (auto to : {std::optional<uint32_t>{}, std::optional<uint32_t>{1u}}) {
    auto r = c.plan_label(rollback_req(to, "staging"), 1);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.error().code(), status_code::not_found);
    EXPECT_EQ(r.error().message(),
              "model acme/bot has no label staging (labels: canary, production)");
  }
}

TEST(catalog, promote_moves_a_label_forward) {
  catalog c = three_versions();
  ASSERT_TRUE(move(c, rollback_req(1u)).is_ok());
  auto plan = c.plan_label(promote_req(3), 99);
  ASSERT_TRUE(plan.is_ok()) << plan.error().to_string();
  EXPECT_EQ(plan->action, label_action::promote);
  EXPECT_EQ(plan->to, 3u);
  EXPECT_EQ(plan->time_ms, 99);
  ASSERT_TRUE(c.apply(*plan).is_ok());
  EXPECT_EQ(stack_of(c), (std::vector<uint32_t>{1, 3}));
  ASSERT_TRUE(move(c, rollback_req()).is_ok());
  EXPECT_EQ(current(c), 1u);
}

TEST(catalog, promote_creates_a_new_label) {
  catalog c = three_versions();
  ASSERT_TRUE(move(c, promote_req(2, "staging")).is_ok());
  EXPECT_EQ(stack_of(c, "staging"), std::vector<uint32_t>{2});
  const auto& h = c.find(bot)->labels.at("staging").history;
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].from, 0u);
  EXPECT_EQ(h[0].to, 2u);
  EXPECT_EQ(c.find(bot)->labels_at(2), std::vector<std::string>{"staging"});
  EXPECT_EQ(c.find(bot)->labels_at(3), std::vector<std::string>{"production"});
  auto again = c.plan_label(rollback_req(std::nullopt, "staging"), 1);
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.error().message(),
            "label staging of acme/bot has no earlier version to roll back to");
}

TEST(catalog, promote_to_the_current_version_is_refused) {
  catalog c = three_versions();
  auto r = c.plan_label(promote_req(3), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::failed_precondition);
  EXPECT_EQ(r.error().message(), "label production already points at version 3");
}

TEST(catalog, promote_to_an_unknown_version_names_the_versions) {
  catalog c = three_versions();
  auto r = c.plan_label(promote_req(7), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::not_found);
  EXPECT_EQ(r.error().message(), "model acme/bot has no version 7 (versions: 1-3)");
  auto zero = c.plan_label(promote_req(0), 1);
  ASSERT_FALSE(zero.is_ok());
  EXPECT_EQ(zero.error().message(), "model acme/bot has no version 0 (versions: 1-3)");
}

TEST(catalog, promote_without_a_version_is_refused) {
  catalog c = three_versions();
  label_request r = promote_req(1);
  r.version.reset();
  auto plan = c.plan_label(r, 1);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.error().code(), status_code::invalid_argument);
}

TEST(catalog, an_invalid_label_name_is_refused) {
  catalog c = three_versions();
  auto r = c.plan_label(promote_req(1, "Bad Label"), 1);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().code(), status_code::invalid_argument);
  EXPECT_NE(r.error().message().find("Bad Label"), std::string::npos) << r.error().message();
}

TEST(catalog, label_moves_on_an_unknown_model_are_refused) {
  catalog c = three_versions();
  label_request r = promote_req(1);
  r.id = model_id{"acme", "ghost"};
  auto plan = c.plan_label(r, 1);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.error().code(), status_code::not_found);
  EXPECT_EQ(plan.error().message(), "no model acme/ghost");
}

TEST(catalog, a_stack_with_repeats_rolls_back_in_order) {
  catalog c = three_versions();                  // 1 2 3
  ASSERT_TRUE(move(c, promote_req(1)).is_ok());  // 1 2 3 1
  ASSERT_TRUE(move(c, promote_req(3)).is_ok());  // 1 2 3 1 3
  EXPECT_EQ(stack_of(c), (std::vector<uint32_t>{1, 2, 3, 1, 3}));
  std::vector<uint32_t> seen;
  // Bounded so a rollback that never runs out fails the test instead of hanging it.
  for (int i = 0; i < 10 && move(c, rollback_req()).is_ok(); ++i) seen.push_back(current(c));
  EXPECT_EQ(seen, (std::vector<uint32_t>{1, 3, 2, 1}));
}

TEST(catalog, resolve_uses_version_then_label_then_production) {
  catalog c = three_versions();
  ASSERT_TRUE(move(c, promote_req(1, "staging")).is_ok());

  auto v = c.resolve(bot, 2u, "staging");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, 2u) << "an exact version wins over the label";
  EXPECT_EQ(*c.resolve(bot, std::nullopt, ""), 3u);
  EXPECT_EQ(*c.resolve(bot, std::nullopt, "production"), 3u);
  EXPECT_EQ(*c.resolve(bot, std::nullopt, "staging"), 1u);

  auto missing_version = c.resolve(bot, 7u, "");
  ASSERT_FALSE(missing_version.is_ok());
  EXPECT_EQ(missing_version.error().code(), status_code::not_found);
  EXPECT_EQ(missing_version.error().message(), "model acme/bot has no version 7 (versions: 1-3)");

  auto missing_label = c.resolve(bot, std::nullopt, "canary");
  ASSERT_FALSE(missing_label.is_ok());
  EXPECT_EQ(missing_label.error().code(), status_code::not_found);
  EXPECT_EQ(missing_label.error().message(),
            "model acme/bot has no label canary (labels: production, staging)");

  auto missing_model = c.resolve(model_id{"acme", "ghost"}, std::nullopt, "");
  ASSERT_FALSE(missing_model.is_ok());
  EXPECT_EQ(missing_model.error().code(), status_code::not_found);
  EXPECT_EQ(missing_model.error().message(), "no model acme/ghost");
}

TEST(catalog, resolve_names_a_single_version_plainly) {
  catalog c;
  push(c, bot, "s1");
  auto r = c.resolve(bot, 2u, "");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().message(), "model acme/bot has no version 2 (versions: 1)");
  auto l = c.resolve(bot, std::nullopt, "staging");
  ASSERT_FALSE(l.is_ok());
  EXPECT_EQ(l.error().message(), "model acme/bot has no label staging (labels: production)");
}

TEST(catalog, apply_refuses_version_zero_or_a_taken_number_and_changes_nothing) {
  catalog c = three_versions();
  const std::string before = dump(c);
  catalog_change add;
  add.what = catalog_change::kind::add_snapshot;
  add.id = bot;
  add.snapshot = snap("x");
  for (uint32_t v : {0u, 1u, 3u}) {
    add.snapshot.version = v;
    status s = c.apply(add);
    EXPECT_FALSE(s.is_ok()) << "version " << v;
    EXPECT_NE(s.message().find(v == 0 ? "is not a version" : "exists already"), std::string::npos)
        << s.message();
  }
  add.snapshot.version = 0;
  add.id = model_id{"acme", "new"};
  EXPECT_FALSE(c.apply(add).is_ok());
  EXPECT_EQ(c.find(add.id), nullptr) << "a refused add leaves no empty model behind";
  EXPECT_EQ(dump(c), before);
}

// Replicas can learn of versions out of order (two nodes numbered 4 and 5; 5 arrived first).
TEST(catalog, versions_may_arrive_out_of_order_and_stay_sorted) {
  catalog c = three_versions();
  catalog_change add;
  add.what = catalog_change::kind::add_snapshot;
  add.id = bot;
  add.snapshot = snap("x5");
  add.snapshot.version = 5;
  ASSERT_TRUE(c.apply(add).is_ok());
  auto r = c.resolve(bot, 4u, "");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().message(), "model acme/bot has no version 4 (versions: 1-3, 5)");
  add.snapshot = snap("x4");
  add.snapshot.version = 4;
  ASSERT_TRUE(c.apply(add).is_ok());
  std::vector<uint32_t> versions;
  for (const auto& s : c.find(bot)->snapshots) versions.push_back(s.version);
  EXPECT_EQ(versions, (std::vector<uint32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(c.find(bot)->find(4)->sha256, "x4");
}

TEST(catalog, apply_refuses_a_label_move_that_does_not_fit_and_changes_nothing) {
  catalog c = three_versions();
  const std::string before = dump(c);
  catalog_change m;
  m.what = catalog_change::kind::move_label;
  m.id = bot;
  m.label = "production";
  m.action = label_action::promote;

  m.to = 4;
  EXPECT_EQ(c.apply(m).code(), status_code::not_found) << "unknown version";
  m.to = 0;
  EXPECT_EQ(c.apply(m).code(), status_code::not_found) << "version 0";
  m.to = 1;
  m.id = model_id{"acme", "ghost"};
  EXPECT_EQ(c.apply(m).message(), "no model acme/ghost");
  m.id = bot;
  m.label = "Not Valid";
  EXPECT_EQ(c.apply(m).code(), status_code::invalid_argument);
  m.label = "staging";
  m.action = label_action::rollback;
  EXPECT_EQ(c.apply(m).code(), status_code::not_found) << "rollback of a label that never existed";
  m.id = model_id{"Acme", "bot"};
  EXPECT_EQ(c.apply(m).code(), status_code::invalid_argument);
  EXPECT_EQ(dump(c), before);
}

TEST(catalog, applying_the_same_changes_rebuilds_the_same_catalog) {
  catalog original;
  std::vector<catalog_change> log;
  auto record = [&](const std::vector<catalog_change>& changes) {
    for (const auto& ch : changes) {
      ASSERT_TRUE(original.apply(ch).is_ok());
      log.push_back(ch);
    }
  };
  record(original.plan_push(bot, snap("s1"), "", 10));
  record(original.plan_push(bot, snap("s2"), "staging", 20));
  record(original.plan_push(bot, snap("s3"), "production", 30));
  record({*original.plan_label(promote_req(3, "staging"), 40)});
  record({*original.plan_label(rollback_req(), 50)});
  record({*original.plan_label(rollback_req(2u), 60)});
  record({*original.plan_label(promote_req(1), 70)});
  record({*original.plan_label(rollback_req(3u), 80)});
  record(original.plan_push(model_id{"beta", "x"}, snap("b1"), "canary", 90));

  catalog replayed;
  for (const auto& ch : log) ASSERT_TRUE(replayed.apply(ch).is_ok());
  EXPECT_EQ(dump(replayed), dump(original));
  EXPECT_EQ(stack_of(replayed), (std::vector<uint32_t>{1, 2, 1, 3}));
}

TEST(catalog, tenant_usage_counts_only_that_tenants_models_and_bytes) {
  catalog c;
  push(c, model_id{"acme", "a"}, "aaaa");
  push(c, model_id{"acme", "a"}, "bbbbbb");
  push(c, model_id{"acme", "b"}, "cc");
  push(c, model_id{"acme-2", "z"}, "dddddddd");  // a tenant whose name extends "acme"
  push(c, model_id{"acmd", "y"}, "e");           // sorts just before "acme"
  auto u = c.tenant_usage("acme");
  EXPECT_EQ(u.models, 2u);
  EXPECT_EQ(u.stored_bytes, 4u + 6u + 2u);
  EXPECT_EQ(c.tenant_usage("acme-2").models, 1u);
  EXPECT_EQ(c.tenant_usage("nobody").models, 0u);
  EXPECT_EQ(c.tenant_usage("nobody").stored_bytes, 0u);
}

TEST(catalog, a_copy_shares_entries_and_changing_one_leaves_the_other_alone) {
  catalog a;
  push(a, model_id{"acme", "bot"}, "1111");
  catalog b = a;
  EXPECT_EQ(a.find(model_id{"acme", "bot"}), b.find(model_id{"acme", "bot"}))
      << "a copy should share its entries";
  push(b, model_id{"acme", "bot"}, "2222", "staging");
  EXPECT_EQ(a.find(model_id{"acme", "bot"})->snapshots.size(), 1u);
  EXPECT_EQ(a.find(model_id{"acme", "bot"})->labels.count("staging"), 0u);
  EXPECT_EQ(b.find(model_id{"acme", "bot"})->snapshots.size(), 2u);
  EXPECT_EQ(b.find(model_id{"acme", "bot"})->labels.count("staging"), 1u);
}

catalog_change setting(catalog_change::kind what) {
  catalog_change c;
  c.what = what;
  c.id = bot;
  return c;
}

catalog_change set_change(const std::string& sha, uint32_t examples) {
  catalog_change c = setting(catalog_change::kind::validation_set);
  c.validation_set.sha256 = sha;
  c.validation_set.examples = examples;
  return c;
}

TEST(catalog, validation_sets_are_numbered_in_order_and_rolled_back_like_a_label) {
  catalog c;
  EXPECT_EQ(c.apply(set_change("s1", 10)).code(), status_code::not_found);  // no model yet
  push(c, bot, "1111");
  ASSERT_TRUE(c.apply(set_change("s1", 10)).is_ok());
  ASSERT_TRUE(c.apply(set_change("s2", 20)).is_ok());
  const model_entry* m = c.find(bot);
  ASSERT_EQ(m->validation_sets.size(), 2u);
  EXPECT_EQ(m->validation_sets[1].number, 2u);
  EXPECT_EQ(m->current_set()->sha256, "s2");
  // The same bytes again: no new number, back to set 1 (popped down to it).
  ASSERT_TRUE(c.apply(set_change("s1", 10)).is_ok());
  m = c.find(bot);
  EXPECT_EQ(m->validation_sets.size(), 2u);
  EXPECT_EQ(m->current_set()->number, 1u);
  EXPECT_EQ(m->validation_stack, std::vector<uint32_t>{1});
  EXPECT_FALSE(c.apply(set_change("", 1)).is_ok());  // no sha256
}

TEST(catalog, reports_are_kept_up_to_a_bound_and_policies_replace_whole) {
  catalog c;
  push(c, bot, "1111");
  for (uint32_t i = 1; i <= model_entry::max_reports + 5; ++i) {
    catalog_change r = setting(catalog_change::kind::validation_report);
    r.report.candidate = i;
    ASSERT_TRUE(c.apply(r).is_ok());
  }
  const model_entry* m = c.find(bot);
  ASSERT_EQ(m->reports.size(), model_entry::max_reports);
  EXPECT_EQ(m->reports.front().candidate, 6u);  // the oldest went first
  catalog_change p = setting(catalog_change::kind::policy);
  p.policy = {{"accuracy_drop", "2"}, {"recall_drop", "5"}};
  ASSERT_TRUE(c.apply(p).is_ok());
  p.policy = {{"recall_drop", "7"}};
  ASSERT_TRUE(c.apply(p).is_ok());
  EXPECT_EQ(c.find(bot)->policy, (std::map<std::string, std::string>{{"recall_drop", "7"}}));
}

TEST(catalog, a_policy_without_a_model_is_the_tenants) {
  catalog c;
  catalog_change p;
  p.what = catalog_change::kind::policy;
  p.id = model_id{"acme", ""};
  p.policy = {{"watch", "5m"}};
  ASSERT_TRUE(c.apply(p).is_ok());  // no model needed
  EXPECT_EQ(c.tenant_policy("acme").at("watch"), "5m");
  EXPECT_TRUE(c.tenant_policy("globex").empty());
  EXPECT_TRUE(c.models().empty());
  p.policy.clear();
  ASSERT_TRUE(c.apply(p).is_ok());
  EXPECT_TRUE(c.tenant_policy("acme").empty());
  p.id = model_id{"Bad", ""};
  EXPECT_FALSE(c.apply(p).is_ok());
}

TEST(catalog, a_trial_needs_its_version_and_ends_when_production_moves) {
  catalog c;
  push(c, bot, "1111");
  push(c, bot, "2222");
  catalog_change t = setting(catalog_change::kind::trial);
  t.trial.what = trial_info::mode::shadow;
  t.trial.version = 9;
  t.trial.share_ppm = 100000;
  EXPECT_EQ(c.apply(t).code(), status_code::not_found);
  t.trial.version = 2;
  ASSERT_TRUE(c.apply(t).is_ok());
  EXPECT_EQ(c.find(bot)->trial.what, trial_info::mode::shadow);
  // Another label's move leaves it; a production move ends it.
  auto staging = c.plan_label(promote_req(2, "staging"), 2000);
  ASSERT_TRUE(staging);
  ASSERT_TRUE(c.apply(*staging).is_ok());
  EXPECT_EQ(c.find(bot)->trial.what, trial_info::mode::shadow);
  auto prod = c.plan_label(promote_req(2), 3000);
  ASSERT_TRUE(prod);
  ASSERT_TRUE(c.apply(*prod).is_ok());
  EXPECT_EQ(c.find(bot)->trial.what, trial_info::mode::none);
  // A stop is a trial change with no mode.
  ASSERT_TRUE(c.apply(t).is_ok());
  ASSERT_TRUE(c.apply(setting(catalog_change::kind::trial)).is_ok());
  EXPECT_EQ(c.find(bot)->trial.what, trial_info::mode::none);
}

TEST(catalog, a_move_that_expects_another_current_version_changes_nothing) {
  catalog c;
  push(c, bot, "1111");
  push(c, bot, "2222");
  auto up = c.plan_label(promote_req(2), 2000);
  ASSERT_TRUE(up);
  ASSERT_TRUE(c.apply(*up).is_ok());
  // Two automatic rollbacks of the same move (two nodes decided at once): one moves the label.
  auto back = c.plan_label(rollback_req(), 3000);
  ASSERT_TRUE(back);
  back->expect_from = 2;
  back->automatic = true;
  back->reason = "agreement 31% < 70% over 2,000 requests";
  ASSERT_TRUE(c.apply(*back).is_ok());
  ASSERT_TRUE(c.apply(*back).is_ok());
  const label_state& st = c.find(bot)->labels.at("production");
  EXPECT_EQ(st.current(), 1u);
  ASSERT_EQ(st.history.size(), 3u);
  EXPECT_TRUE(st.history.back().automatic);
  EXPECT_EQ(st.history.back().reason, "agreement 31% < 70% over 2,000 requests");
}

TEST(catalog, a_move_keeps_who_made_it_and_whether_it_was_forced) {
  catalog c;
  push(c, bot, "1111");
  push(c, bot, "2222");
  auto up = c.plan_label(promote_req(2), 2000);
  ASSERT_TRUE(up);
  up->by = "bob (key ops)";
  up->forced = true;
  up->reason = "forced past the validation gate: accuracy dropped";
  ASSERT_TRUE(c.apply(*up).is_ok());
  const label_move& mv = c.find(bot)->labels.at("production").history.back();
  EXPECT_EQ(mv.by, "bob (key ops)");
  EXPECT_TRUE(mv.forced);
  EXPECT_FALSE(mv.automatic);
}

}  // namespace
}  // namespace shoal
