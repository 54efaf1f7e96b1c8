#include "shoal/base/status.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

status fails_then_stops(bool fail, int& reached) {
  SHOAL_RETURN_IF_ERROR(fail ? status::not_found("gone") : status::ok());
  ++reached;
  return status::ok();
}

TEST(status, ok_by_default_and_named_factories_carry_code_and_message) {
  EXPECT_TRUE(status().is_ok());
  EXPECT_EQ(status().to_string(), "ok");
  auto s = status::invalid_argument("top_k must be positive");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), status_code::invalid_argument);
  EXPECT_EQ(s.message(), "top_k must be positive");
  EXPECT_EQ(s.to_string(), "invalid_argument: top_k must be positive");
}

TEST(status, maps_codes_to_http) {
  struct row {
    status_code code;
    int http;
  };
  for (auto r : {row{status_code::ok, 200}, row{status_code::invalid_argument, 400},
                 row{status_code::not_found, 404}, row{status_code::failed_precondition, 409},
                 row{status_code::too_large, 413}, row{status_code::resource_exhausted, 429},
                 row{status_code::unavailable, 503}, row{status_code::corruption, 500},
                 row{status_code::io_error, 500}, row{status_code::internal, 500}}) {
    EXPECT_EQ(http_status(r.code), r.http) << to_string(r.code);
  }
}

TEST(status, return_if_error_stops_at_the_first_error) {
  int reached = 0;
  EXPECT_EQ(fails_then_stops(true, reached).code(), status_code::not_found);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_then_stops(false, reached).is_ok());
  EXPECT_EQ(reached, 1);
}

TEST(result, holds_a_value_or_an_error) {
  result<int> good(7);
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.error().is_ok());
  result<int> bad(status::io_error("disk full"));
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.error().message(), "disk full");
}

}  // namespace
}  // namespace shoal
