// log: the human and JSON line formats (--log-format), parsed back as a collector would.
#include "shoal/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shoal {
namespace {

using json = nlohmann::json;
const std::string stamp = "2026-11-22T15:30:00.123Z";

TEST(log_format, human_lines_are_stamp_level_message) {
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::info, "snapshot stored model=a/b"),
            "2026-11-22T15:30:00.123Z info  snapshot stored model=a/b");
  EXPECT_EQ(format_log_line(log_format::human, stamp, log_level::error, "disk full"),
            "2026-11-22T15:30:00.123Z error disk full");
  EXPECT_EQ(parse_log_format("human"), log_format::human);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
}

TEST(log_format, json_lines_carry_the_message_and_its_key_value_words_as_fields) {
  const std::string line =
      format_log_line(log_format::json, stamp, log_level::warn,
                      "push refused model=acme/bot: tenant acme has 2 models, version=3, "
                      "model=other time=x");
  auto j = json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["time"], stamp) << "a message's time= does not replace the stamp";
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["msg"], "push refused model=acme/bot: tenant acme has 2 models, version=3, "
                      "model=other time=x");
  EXPECT_EQ(j["model"], "acme/bot") << "the first one wins; trailing ':' is punctuation";
  EXPECT_EQ(j["version"], "3");
  EXPECT_EQ(j.size(), 5u) << line;
}

TEST(log_format, json_lines_stay_one_valid_line_whatever_the_message_holds) {
  const std::string nasty = std::string("quote \" backslash \\ newline \n tab \t bell \x07 ") +
                            "bad utf8 \xff\xfe end Key=x =y a-b=c";
  const std::string line = format_log_line(log_format::json, stamp, log_level::error, nasty);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  auto j = json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  const std::string msg = j["msg"];
  EXPECT_NE(msg.find("quote \" backslash \\ newline \n tab \t bell \x07 "), std::string::npos);
  EXPECT_NE(msg.find("\xEF\xBF\xBD"), std::string::npos) << "invalid bytes become U+FFFD";
  EXPECT_EQ(j.size(), 3u) << "Key=, =y and a-b= are no fields: " << line;
}

}  // namespace
}  // namespace shoal
