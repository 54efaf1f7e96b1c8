#include "shoal/base/model_id.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(model_id, accepts_valid_ids) {
  for (const char* text : {"acme/bot", "a/b", "0/9", "tenant-1/intent_classifier-v2",
                           "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl/x"}) {
    auto id = parse_model_id(text);
    ASSERT_TRUE(id.is_ok()) << text << ": " << id.error().message();
    EXPECT_EQ(id->str(), text);
  }
  auto id = parse_model_id("acme/bot");
  EXPECT_EQ(id->tenant, "acme");
  EXPECT_EQ(id->model, "bot");
}

TEST(model_id, rejects_paths_and_bad_characters_with_a_reason) {
  struct row {
    const char* text;
    const char* reason;
  };
  for (auto r : {row{"../x", "tenant"}, row{"acme/..", "model name"}, row{"acme", "TENANT/MODEL"},
                 row{"acme/bot/x", "TENANT/MODEL"}, row{"/bot", "tenant"}, row{"acme/", "model name"},
                 row{"Acme/bot", "tenant"}, row{"acme/Bot", "model name"}, row{"-acme/bot", "tenant"},
                 row{"acme/_bot", "model name"}, row{"ac me/bot", "tenant"}, row{"acme/bo.t", "model name"},
                 row{"", "TENANT/MODEL"}, row{"acme/b\xc3\xa9", "model name"}}) {
    auto id = parse_model_id(r.text);
    ASSERT_FALSE(id.is_ok()) << r.text;
    EXPECT_EQ(id.error().code(), status_code::invalid_argument);
    EXPECT_NE(id.error().message().find(r.reason), std::string::npos) << id.error().message();
  }
  std::string long_part(65, 'a');
  EXPECT_FALSE(parse_model_id(long_part + "/x").is_ok());
  EXPECT_TRUE(parse_model_id(long_part.substr(1) + "/x").is_ok());
}

TEST(model_id, error_messages_stay_printable_and_short) {
  std::string nasty = std::string("\x01\x02\n", 3) + std::string(500, 'z');
  auto id = parse_model_id(nasty);
  ASSERT_FALSE(id.is_ok());
  EXPECT_LT(id.error().message().size(), 200u);
  EXPECT_EQ(id.error().message().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace shoal
