// validation: the validation set format, the figures, the gate's rules, policies and the watch's
// rules, as pure functions; evaluate() over a real fastText model trained here.
#include "shoal/serving/validation.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "shoal/serving/trials.hpp"
#include "support/files.hpp"
#include "support/node_process.hpp"

namespace shoal {
namespace {

std::vector<labelled_example> set_of(const std::vector<std::string>& labels) {
  std::vector<labelled_example> out;
  for (const auto& l : labels) out.push_back({{l}, "text " + l});
  return out;
}

TEST(validation_set, reads_labels_with_the_model_prefix_and_skips_blank_lines) {
  auto set = parse_validation_set(
      "__label__a hello there\n\n  \n__label__b __label__c two labels\r\n__label__a  x\n",
      "__label__");
  ASSERT_TRUE(set) << set.error().to_string();
  ASSERT_EQ(set->size(), 3u);
  EXPECT_EQ((*set)[0].labels, std::vector<std::string>{"a"});
  EXPECT_EQ((*set)[0].text, "hello there");
  EXPECT_EQ((*set)[1].labels, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ((*set)[1].text, "two labels");
  EXPECT_EQ((*set)[2].text, "x");
  auto custom = parse_validation_set("#x one\n", "#");
  ASSERT_TRUE(custom);
  EXPECT_EQ((*custom)[0].labels, std::vector<std::string>{"x"});
}

TEST(validation_set, bad_sets_are_refused_naming_the_line) {
  auto no_label = parse_validation_set("__label__a fine\nno label here\n", "__label__");
  ASSERT_FALSE(no_label);
  EXPECT_NE(no_label.error().message().find("line 2 has no label"), std::string::npos);
  EXPECT_FALSE(parse_validation_set("\n\n", "__label__"));
  EXPECT_FALSE(parse_validation_set("__label__a \xff\xfe\n", "__label__"));
  EXPECT_FALSE(parse_validation_set(std::string(max_validation_set_bytes + 1, 'a'), "__label__"));

  auto checked = check_validation_set("__label__a one\n\n__label__b two\n");
  ASSERT_TRUE(checked);
  EXPECT_EQ(*checked, 2u);
  auto unlabelled = check_validation_set("__label__a one\n__label__b two\nno label here\n");
  ASSERT_FALSE(unlabelled);
  EXPECT_NE(unlabelled.error().message().find("line 3 does not start with a label"),
            std::string::npos)
      << unlabelled.error().message();
  auto lone = check_validation_set("__label__a one\nalone\n");
  ASSERT_FALSE(lone);
  EXPECT_NE(lone.error().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(check_validation_set(""));
}

TEST(validation_figures, accuracy_precision_recall_and_macro_f1) {
  // Truth: a a a b b c; predicted: a a b b b a.
  auto set = set_of({"a", "a", "a", "b", "b", "c"});
  auto f = score(set, {"a", "a", "b", "b", "b", "a"}, {0.9, 0.8, 0.6, 0.7, 0.9, 0.5},
                 {1, 2, 3, 4, 5, 100});
  EXPECT_NEAR(f.accuracy, 4.0 / 6.0, 1e-12);
  EXPECT_NEAR(f.labels["a"].precision, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(f.labels["a"].recall, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(f.labels["b"].precision, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(f.labels["b"].recall, 1.0, 1e-12);
  EXPECT_EQ(f.labels["c"].recall, 0.0);
  EXPECT_EQ(f.labels["c"].support, 1u);
  const double f1_a = 2.0 / 3.0, f1_b = 2 * (2.0 / 3.0) / (2.0 / 3.0 + 1.0), f1_c = 0;
  EXPECT_NEAR(f.macro_f1, (f1_a + f1_b + f1_c) / 3.0, 1e-12);
  EXPECT_NEAR(f.mean_top1, (0.9 + 0.8 + 0.6 + 0.7 + 0.9 + 0.5) / 6.0, 1e-12);
  EXPECT_EQ(f.p99_predict_us, 100.0);
}

TEST(validation_figures, a_multi_label_example_is_right_when_the_top_label_is_any_of_its_own) {
  std::vector<labelled_example> set = {{{"a", "b"}, "x"}, {{"a"}, "y"}};
  auto f = score(set, {"b", "b"}, {1, 1}, {1, 1});
  EXPECT_NEAR(f.accuracy, 0.5, 1e-12);
  EXPECT_NEAR(f.labels["a"].recall, 0.0, 1e-12);  // never the top label
  EXPECT_NEAR(f.labels["b"].recall, 1.0, 1e-12);
}

TEST(validation_report, compare_counts_changed_top_labels_and_survives_json) {
  auto set = set_of({"a", "b", "c", "d"});
  auto cand = score(set, {"a", "b", "x", "d"}, {1, 1, 1, 1}, {1, 1, 1, 1});
  auto base = score(set, {"a", "b", "c", "c"}, {1, 1, 1, 1}, {1, 1, 1, 1});
  cand.version = 3;
  base.version = 2;
  auto r = compare(cand, base);
  EXPECT_NEAR(r.top_changed, 0.5, 1e-12);
  auto back = report_from_json(report_to_json(r));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->candidate.version, 3u);
  ASSERT_TRUE(back->baseline);
  EXPECT_EQ(back->baseline->version, 2u);
  EXPECT_NEAR(back->candidate.accuracy, cand.accuracy, 1e-12);
  EXPECT_NEAR(back->top_changed, 0.5, 1e-12);
  EXPECT_NEAR(back->baseline->labels.at("d").recall, 0.0, 1e-12);
  EXPECT_FALSE(report_from_json("{\"candidate\":1}"));
  EXPECT_FALSE(report_from_json("not json"));
}

validation_report report_with(double cand_acc, double base_acc,
                              std::map<std::string, std::pair<double, double>> recalls) {
  validation_report r;
  r.candidate.accuracy = cand_acc;
  model_figures b;
  b.accuracy = base_acc;
  for (const auto& [label, rr] : recalls) {
    r.candidate.labels[label] = label_figures{10, 1.0, rr.first};
    b.labels[label] = label_figures{10, 1.0, rr.second};
  }
  r.baseline = b;
  return r;
}

TEST(validation_gate, the_default_policy_allows_one_point_of_accuracy_and_ten_of_recall) {
  model_policy p;
  EXPECT_TRUE(judge(report_with(0.90, 0.91, {{"a", {0.85, 0.95}}}), p).passed);
  auto acc = judge(report_with(0.895, 0.91, {}), p);
  ASSERT_FALSE(acc.passed);
  EXPECT_EQ(acc.failures.size(), 1u);
  EXPECT_EQ(acc.text(), "accuracy dropped 1.5 points (91.0% -> 89.5%; the policy allows 1)");
  auto recall = judge(report_with(0.91, 0.91, {{"a", {0.80, 0.95}}, {"b", {0.5, 0.5}}}), p);
  ASSERT_FALSE(recall.passed);
  EXPECT_EQ(recall.text(),
            "recall of label a dropped 15 points (95.0% -> 80.0%; the policy allows 10)");
  // Better is never refused; no baseline passes.
  EXPECT_TRUE(judge(report_with(0.99, 0.5, {{"a", {1.0, 0.1}}}), p).passed);
  validation_report alone;
  alone.candidate.accuracy = 0.1;
  EXPECT_TRUE(judge(alone, p).passed);
}

TEST(validation_gate, many_failing_labels_are_named_worst_first_and_counted) {
  auto r = report_with(0.5, 0.5,
                       {{"a", {0.7, 0.9}},
                        {"b", {0.0, 1.0}},
                        {"c", {0.5, 0.9}},
                        {"d", {0.1, 0.9}},
                        {"e", {0.6, 0.9}}});
  auto v = judge(r, model_policy{});
  ASSERT_FALSE(v.passed);
  EXPECT_EQ(v.text(),
            "recall of 5 labels dropped more than 10 points: b 100.0% -> 0.0%, d 90.0% -> 10.0%, "
            "c 90.0% -> 50.0% and 2 more");
}

TEST(validation_gate, labels_with_too_few_examples_are_not_judged_when_the_policy_says_so) {
  auto r = report_with(0.9, 0.9, {{"rare", {0.0, 1.0}}});
  r.baseline->labels["rare"].support = 2;
  model_policy p;
  EXPECT_FALSE(judge(r, p).passed);
  p.min_label_examples = 3;
  EXPECT_TRUE(judge(r, p).passed);
}

TEST(policy, settings_apply_over_the_defaults_and_bad_ones_are_named) {
  auto p = apply_policy(model_policy{}, {{"accuracy_drop", "2.5"},
                                         {"recall_drop", "5"},
                                         {"watch", "90s"},
                                         {"min_agreement", "80%"},
                                         {"watch_share", "0.25"},
                                         {"min_requests", "50"},
                                         {"max_p99_ratio", ""}});
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->max_accuracy_drop, 2.5);
  EXPECT_EQ(p->max_recall_drop, 5);
  EXPECT_EQ(p->watch_ms, 90000);
  EXPECT_NEAR(p->min_agreement, 0.8, 1e-12);
  EXPECT_NEAR(p->watch_share, 0.25, 1e-12);
  EXPECT_EQ(p->min_requests, 50u);
  EXPECT_EQ(p->max_p99_ratio, 4.0);  // empty: the default stays
  auto shown = policy_settings(*p);
  EXPECT_EQ(shown.at("watch"), "90s");
  EXPECT_EQ(shown.at("min_agreement"), "80%");
  EXPECT_EQ(shown.size(), policy_keys().size());
  // What policy_settings prints reads back as the same policy.
  auto again = apply_policy(model_policy{}, shown);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->watch_ms, p->watch_ms);
  EXPECT_NEAR(again->min_agreement, p->min_agreement, 1e-12);

  auto unknown = apply_policy(model_policy{}, {{"accuracy", "1"}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("unknown policy setting 'accuracy'"), std::string::npos);
  for (const auto& [k, v] : std::map<std::string, std::string>{{"accuracy_drop", "-1"},
                                                               {"accuracy_drop", "x"},
                                                               {"recall_drop", "101"},
                                                               {"watch", "10y"},
                                                               {"min_agreement", "150%"},
                                                               {"min_requests", "0"},
                                                               {"min_requests", "1.5"},
                                                               {"max_p99_ratio", "0.5"}}) {
    EXPECT_FALSE(apply_policy(model_policy{}, {{k, v}})) << k << "=" << v;
  }
}

TEST(watch, too_few_requests_never_roll_back) {
  model_policy p;
  watch_figures w;
  w.requests = 199;
  w.errors = 199;
  w.compared = 199;
  w.agreed = 0;
  EXPECT_FALSE(judge_watch(w, p));
}

TEST(watch, each_rule_names_itself_with_its_figures) {
  model_policy p;
  watch_figures w;
  w.requests = 2000;
  w.compared = 2000;
  w.agreed = 620;
  w.mean_top1_new = w.mean_top1_old = 0.9;
  auto why = judge_watch(w, p);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "agreement 31.0% < 70.0% over 2,000 requests");

  w.agreed = 1900;
  w.mean_top1_new = 0.5;
  why = judge_watch(w, p);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("mean top-1 probability 50.0% vs 90.0%"), std::string::npos);

  w.mean_top1_new = 0.88;
  w.p99_ms = 9;
  w.p99_ms_old = 2;
  why = judge_watch(w, p);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("p99 9 ms > 4x"), std::string::npos);

  w.p99_ms = 0.9;  // 0.9 ms is over 4x 0.2 ms, but under the 1 ms floor
  w.p99_ms_old = 0.2;
  EXPECT_FALSE(judge_watch(w, p));

  w.errors = 200;
  why = judge_watch(w, p);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "error rate 10.0% > 5.0% over 2,000 requests");
}

TEST(watch, a_model_as_good_as_before_is_kept) {
  model_policy p;
  watch_figures w;
  w.requests = 100000;
  w.errors = 10;
  w.p99_ms = 0.4;
  w.p99_ms_old = 0.3;
  w.compared = 10000;
  w.agreed = 9500;
  w.mean_top1_new = 0.91;
  w.mean_top1_old = 0.93;
  EXPECT_FALSE(judge_watch(w, p));
}

TEST(validation_run, a_trained_model_scores_its_own_training_data) {
  testing::temp_dir dir;
  std::string lines;
  const std::vector<std::pair<std::string, std::string>> intents = {
      {"greet", "hello there friend"},
      {"bye", "goodbye see you later"},
      {"refund", "i want my money back"},
      {"hours", "when are you open today"}};
  for (int i = 0; i < 30; ++i) {
    for (const auto& [label, text] : intents) lines += "__label__" + label + " " + text + "\n";
  }
  const std::string good =
      testing::train_fasttext(dir.path(), "good", lines, {"-epoch", "50", "-lr", "1.0"});
  auto bytes = testing::read_file(good);
  auto m = load_model(bytes);
  ASSERT_TRUE(m) << m.error().to_string();
  auto set = parse_validation_set(lines, (*m)->label_prefix());
  ASSERT_TRUE(set);
  auto f = evaluate(**m, 1, *set);
  EXPECT_EQ(f.version, 1u);
  EXPECT_EQ(f.examples, 120u);
  EXPECT_GT(f.accuracy, 0.95);
  EXPECT_GT(f.mean_top1, 0.5);
  EXPECT_GT(f.memory_bytes, 0u);
  EXPECT_EQ(f.labels.size(), 4u);
  EXPECT_EQ(f.top.size(), 120u);
}

TEST(trial_meter, counts_from_many_threads_sum_per_version_pair) {
  trial_meter meter;
  const model_id bot{"acme", "bot"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&meter, bot, t] {
      for (int i = 0; i < 1000; ++i) {
        meter.observe_served(bot, 2, i % 100 == 0);
        if (i % 10 == 0) {
          meter.observe_shadow(bot, 2, 1, i % 20 == 0, 0.9, 0.7, 5.0 + t, 3000.0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  auto f = meter.read(bot, 2, 1);
  EXPECT_EQ(f.requests, 4000u);
  EXPECT_EQ(f.errors, 40u);
  EXPECT_EQ(f.compared, 400u);
  EXPECT_EQ(f.agreed, 200u);
  EXPECT_NEAR(f.mean_top1_served, 0.9, 1e-6);
  EXPECT_NEAR(f.mean_top1_shadow, 0.7, 1e-6);
  EXPECT_LE(f.p99_served_ms, 0.016);  // under 16 us
  EXPECT_GE(f.p99_shadow_ms, 3.0);    // 3 ms lands in the 2-4 ms bucket
  EXPECT_LE(f.p99_shadow_ms, 4.1);
  EXPECT_EQ(meter.read(bot, 3, 1).requests, 0u);
  // /metrics shows only the trials in force.
  std::string out;
  meter.render(out);
  EXPECT_EQ(out.find("shoal_trial_compared_total{"), std::string::npos);
  meter.set_active({{bot, 2, 1}});
  out.clear();
  meter.render(out);
  EXPECT_NE(out.find("shoal_trial_compared_total{tenant=\"acme\",model=\"bot\",version=\"2\","
                     "shadow_version=\"1\"} 400"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace shoal
