// registry: the limits on what a snapshot says about itself, tags and metrics.
#include "shoal/store/registry.hpp"

#include <gtest/gtest.h>

#include <string>

namespace shoal {
namespace {

TEST(registry, good_metadata_passes) {
  snapshot_info s;
  s.user = "alice";
  s.pushed_with = "ci-bot";
  s.note = "retrained on\nDecember data\t(tab)";
  s.tags = {{"dataset", "2026-12-01"}, {"team", "bots ü"}};
  s.metrics_json = "{\"accuracy\":0.93,\"lr\":0.5}";
  s.source = "git://example/repo@abc123";
  EXPECT_TRUE(check_snapshot_metadata(s).is_ok());
}

TEST(registry, each_limit_is_named) {
  auto fails = [](snapshot_info s, const std::string& word) {
    status st = check_snapshot_metadata(s);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  snapshot_info s;
  s.user = std::string(129, 'a');
  fails(s, "user");
  s = {};
  s.user = "a\nb";
  fails(s, "control characters");
  s = {};
  s.note = std::string(4097, 'n');
  fails(s, "note");
  s = {};
  s.source = "\xff";
  fails(s, "source");
  s = {};
  for (int i = 0; i < 33; ++i) s.tags["k" + std::to_string(i)] = "v";
  fails(s, "tags");
  s = {};
  s.tags = {{"Bad", "v"}};
  fails(s, "tag key");
  s = {};
  s.tags = {{"k", std::string(257, 'v')}};
  fails(s, "tag k");
  s = {};
  s.metrics_json = "[1]";
  fails(s, "metrics");
}

TEST(registry, tags_parse_as_key_equals_value) {
  auto t = parse_tag("dataset=2026-12-01=x");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->first, "dataset");
  EXPECT_EQ(t->second, "2026-12-01=x");
  auto empty_value = parse_tag("k=");
  ASSERT_TRUE(empty_value);
  EXPECT_EQ(empty_value->second, "");
  EXPECT_FALSE(parse_tag("novalue"));
  EXPECT_FALSE(parse_tag("=v"));
  EXPECT_FALSE(parse_tag("UPPER=v"));
}

TEST(registry, metrics_must_be_a_small_shallow_json_object) {
  auto ok = compact_metrics_json(" { \"a\" : 1 ,\n \"b\": [1, 2] } ");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, "{\"a\":1,\"b\":[1,2]}");
  EXPECT_FALSE(compact_metrics_json("{"));
  EXPECT_FALSE(compact_metrics_json("3"));
  EXPECT_FALSE(compact_metrics_json("\"text\""));
  std::string deep(100, '[');
  deep = "{\"x\":" + deep + std::string(100, ']') + "}";
  auto too_deep = compact_metrics_json(deep);
  ASSERT_FALSE(too_deep);
  EXPECT_NE(too_deep.error().message().find("deeper"), std::string::npos);
  std::string big = "{\"x\":\"" + std::string(20000, 'a') + "\"}";
  EXPECT_FALSE(compact_metrics_json(big));
}

TEST(registry, change_text_is_checked_for_every_kind) {
  catalog_change c;
  c.what = catalog_change::kind::move_label;
  c.reason = std::string(2000, 'r');
  EXPECT_FALSE(check_change_text(c).is_ok());
  c = {};
  c.what = catalog_change::kind::policy;
  for (int i = 0; i < 33; ++i) c.policy["k" + std::to_string(i)] = "1";
  EXPECT_FALSE(check_change_text(c).is_ok());
  c = {};
  c.what = catalog_change::kind::validation_report;
  c.report.report_json = std::string(max_report_bytes + 1, ' ');
  EXPECT_FALSE(check_change_text(c).is_ok());
  c.report.report_json = "{}";
  EXPECT_TRUE(check_change_text(c).is_ok());
}

}  // namespace
}  // namespace shoal
