// log: the human and JSON line formats (--log-format), parsed back as a collector would.
#include "shoal/base/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shoal {
namespace {

using json = nlohmann::json;
const std::string stamp = "2026-11-22T15:30:00.123Z";

TEST(log_format, human_lines_are_stamp_level_message_and_fields) {
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::info, "snapshot stored",
                            {{"model", "a/b"}, {"version", 2u}}),
            "2026-11-22T15:30:00.123Z info  snapshot stored model=a/b version=2");
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::error, "disk full"),
            "2026-11-22T15:30:00.123Z error disk full");
  EXPECT_EQ(parse_log_format("human"), log_format::human);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
}

// Regression: fields were parsed back out of the message text, so a value with a space was cut
// at the space and a `word=x` inside a quoted error became a field of its own.
TEST(log_format, json_fields_are_the_given_fields_not_words_of_the_message) {
  const std::string line = format_log_line(
      log_format::json, stamp, log_level::warn, "push refused version=9 in the text",
      {{"model", "acme/bot"}, {"error", "tenant acme has 2 models, version=3 (limit models=2)"}});
  auto j = json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["msg"], "push refused version=9 in the text");
  EXPECT_EQ(j["model"], "acme/bot");
  EXPECT_EQ(j["error"], "tenant acme has 2 models, version=3 (limit models=2)")
      << "a value with spaces is whole";
  EXPECT_FALSE(j.contains("version")) << "words of the message or of a value are no fields: " << line;
  EXPECT_EQ(j.size(), 5u) << line;
}

TEST(log_format, human_values_that_would_not_read_back_are_quoted) {
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::warn, "push refused",
                            {{"model", "acme/bot"},
                             {"error", "too big: 3 MB"},
                             {"note", ""},
                             {"odd", "a=b"},
                             {"q", "say \"hi\""}}),
            "2026-11-22T15:30:00.123Z warn  push refused model=acme/bot error=\"too big: 3 MB\" "
            "note=\"\" odd=\"a=b\" q=\"say \\\"hi\\\"\"");
}

TEST(log_format, reserved_and_repeated_field_names_are_written_once) {
  const std::string line = format_log_line(log_format::json, stamp, log_level::info, "m",
                                           {{"time", "x"}, {"model", "a"}, {"model", "b"}});
  auto j = json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["time"], stamp) << "a field named time does not replace the stamp";
  EXPECT_EQ(j["model"], "a") << "the first one wins";
  EXPECT_EQ(j.size(), 4u) << line;
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::info, "m",
                            {{"msg", "x"}, {"model", "a"}, {"model", "b"}}),
            "2026-11-22T15:30:00.123Z info  m model=a");
}

TEST(log_format, json_lines_stay_one_valid_line_whatever_the_message_holds) {
  const std::string nasty = std::string("quote \" backslash \\ newline \n tab \t bell \x07 ") +
                            "bad utf8 \xff\xfe end Key=x =y a-b=c";
  const std::string line =
      format_log_line(log_format::json, stamp, log_level::error, nasty, {{"error", nasty}});
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  auto j = json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  const std::string msg = j["msg"];
  EXPECT_NE(msg.find("quote \" backslash \\ newline \n tab \t bell \x07 "), std::string::npos);
  EXPECT_NE(msg.find("\xEF\xBF\xBD"), std::string::npos) << "invalid bytes become U+FFFD";
  EXPECT_EQ(j["error"], msg);
  EXPECT_EQ(j.size(), 4u) << line;
}

}  // namespace
}  // namespace shoal
