// tenants: keys files, bearer headers, limits, token buckets and admission (the clock is passed in).
// Over 500 lines: every case of tenants in one suite, so it reads as its specification.
#include "shoal/serving/tenants.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "support/files.hpp"

namespace shoal {
namespace {

const std::string acme_key = "acme-key-0123456789";
const std::string admin_key = "admin-key-0123456789";

// ---- keys ----------------------------------------------------------------------------------

TEST(key_table, reads_tenants_admins_comments_and_blank_lines) {
  auto t = key_table::parse("# operators\n" + admin_key + " admin\n\n   " + acme_key +
                                "\t acme   # support bot\nglobex-key-0123456789 globex\r\n"
                                "acme-second-key-0123 acme\n   # indented comment\n",
                            "keys");
  ASSERT_TRUE(t.is_ok()) << t.error().to_string();
  EXPECT_EQ(t->size(), 4u);
  EXPECT_EQ(t->tenant_count(), 2u);
  EXPECT_EQ(t->admin_count(), 1u);
  auto acme = t->find(acme_key);
  ASSERT_TRUE(acme);
  EXPECT_EQ(acme->tenant, "acme");
  EXPECT_FALSE(acme->admin);
  EXPECT_EQ(t->find("acme-second-key-0123")->tenant, "acme");
  EXPECT_EQ(t->find("globex-key-0123456789")->tenant, "globex") << "a CRLF line end is whitespace";
  auto admin = t->find(admin_key);
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->admin);
  EXPECT_EQ(admin->tenant, "");
}

TEST(key_table, finds_only_whole_keys) {
  auto t = key_table::parse(acme_key + " acme\n", "keys");
  ASSERT_TRUE(t.is_ok());
  EXPECT_TRUE(t->find(acme_key));
  EXPECT_FALSE(t->find("acme-key-012345678")) << "a prefix of a key is no key";
  EXPECT_FALSE(t->find("acme-key-0"));
  EXPECT_FALSE(t->find(acme_key + "0"));
  EXPECT_FALSE(t->find("ACME-KEY-0123456789")) << "keys are case-sensitive";
  EXPECT_FALSE(t->find(""));
  EXPECT_FALSE(t->find("acme"));
}

TEST(key_table, admin_is_the_operator_word_not_a_tenant) {
  auto t = key_table::parse(admin_key + " admin\n" + acme_key + " acme\n", "keys");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->tenant_count(), 1u) << "admin keys are not a tenant";
  EXPECT_EQ(t->admin_count(), 1u);
  EXPECT_TRUE(t->find(admin_key)->may_access("admin")) << "reaches everything, by being admin";
  EXPECT_FALSE(t->find(acme_key)->may_access("admin"));
}

TEST(key_table, a_third_field_names_the_key_for_the_records) {
  auto t = key_table::parse(admin_key + " admin alice\n" + acme_key + " acme ci-bot\n", "keys");
  ASSERT_TRUE(t.is_ok()) << t.error().to_string();
  EXPECT_EQ(t->find(admin_key)->display_name(), "alice");
  EXPECT_TRUE(t->find(admin_key)->admin);
  EXPECT_EQ(t->find(acme_key)->display_name(), "ci-bot");
  EXPECT_EQ(t->find(acme_key)->tenant, "acme");
  auto unnamed = key_table::parse(acme_key + " acme\n", "keys");
  ASSERT_TRUE(unnamed.is_ok());
  EXPECT_EQ(unnamed->find(acme_key)->display_name(), "acme");
}

TEST(key_table, every_mistake_names_the_line) {
  struct row {
    std::string text;
    std::string message;
  };
  const std::vector<row> table = {
      {"# c\n" + acme_key + "\n",
       "keys line 2: expected 'KEY TENANT [NAME]' or 'KEY admin [NAME]', got 1 field"},
      {acme_key + " acme ci-bot extra\n",
       "keys line 1: expected 'KEY TENANT [NAME]' or 'KEY admin [NAME]', got 4 fields"},
      {acme_key + " acme Bad.Name\n",
       "keys line 1: invalid key name 'Bad.Name': a key name must match [a-z0-9][a-z0-9_.-]{0,63}"},
      {acme_key + " acme # extra\n\n" + acme_key + "#acme\n",
       "keys line 3: expected 'KEY TENANT [NAME]' or 'KEY admin [NAME]', got 1 field"},
      {"short acme\n", "keys line 1: a key must be 16 to 256 characters long, this one has 5"},
      {"acme-key-012345 acme\n",
       "keys line 1: a key must be 16 to 256 characters long, this one has 15"},
      {std::string(257, 'k') + " acme\n",
       "keys line 1: a key must be 16 to 256 characters long, this one has 257"},
      {"acme-key-0123456789\xc3\xa9 acme\n",
       "keys line 1: a key may hold only A-Z a-z 0-9 and ._~+/=-"},
      {"acme-key-0123:456789 acme\n", "keys line 1: a key may hold only A-Z a-z 0-9 and ._~+/=-"},
      {acme_key + " Acme\n",
       "keys line 1: invalid tenant 'Acme': a tenant name must match [a-z0-9][a-z0-9_-]{0,63}"},
      {acme_key + " -acme\n",
       "keys line 1: invalid tenant '-acme': a tenant name must match [a-z0-9][a-z0-9_-]{0,63}"},
      {acme_key + " " + std::string(65, 'a') + "\n",
       "keys line 1: invalid tenant 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': a tenant name "
       "must match [a-z0-9][a-z0-9_-]{0,63}"},
      {acme_key + " acme\n\n" + acme_key + " globex\n",
       "keys line 3: the same key as line 1 (each key names one tenant)"},
      {admin_key + " admin\n" + acme_key + " acme\n" + admin_key + " admin\n",
       "keys line 3: the same key as line 1 (each key names one tenant)"},
  };
  for (const auto& r : table) {
    auto t = key_table::parse(r.text, "keys");
    ASSERT_FALSE(t.is_ok()) << r.text;
    EXPECT_EQ(t.error().code(), status_code::invalid_argument);
    EXPECT_EQ(t.error().message(), r.message);
  }
  auto empty = key_table::parse("# nobody yet\n\n", "keys");
  ASSERT_TRUE(empty.is_ok()) << "an empty file: no keys, nobody gets in";
  EXPECT_EQ(empty->size(), 0u);
}

TEST(key_table, loads_a_file_and_names_one_it_cannot_read) {
  shoal::testing::temp_dir dir;
  const std::string path = dir.file("keys");
  ASSERT_TRUE(shoal::testing::write_file(path, "# ops\n" + admin_key + " admin\n" + acme_key +
                                                   " acme\n"));
  auto t = key_table::load_file(path);
  ASSERT_TRUE(t.is_ok()) << t.error().to_string();
  EXPECT_EQ(t->find(acme_key)->tenant, "acme");
  EXPECT_EQ(t->size(), 2u);

  auto missing = key_table::load_file(dir.file("nope"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.error().code(), status_code::invalid_argument);
  EXPECT_EQ(missing.error().message(),
            "cannot read keys file '" + dir.file("nope") + "': No such file or directory");

  ASSERT_TRUE(shoal::testing::write_file(path, "w x y z\n"));
  EXPECT_EQ(key_table::load_file(path).error().message(),
            path + " line 1: expected 'KEY TENANT [NAME]' or 'KEY admin [NAME]', got 4 fields");
}

// Regression: ifstream opens a directory and reads nothing, which parsed as an empty table; a
// SIGHUP would then have locked every client out instead of keeping the keys in force.
TEST(key_table, a_directory_is_no_keys_file) {
  shoal::testing::temp_dir dir;
  auto t = key_table::load_file(dir.path());
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.error().message(), "cannot read keys file '" + dir.path() + "': Is a directory");
}

TEST(principal, a_tenant_reaches_its_own_models_and_an_admin_all) {
  principal acme{"acme", false};
  EXPECT_TRUE(acme.may_access("acme"));
  EXPECT_FALSE(acme.may_access("globex"));
  EXPECT_FALSE(acme.may_access("acme2"));
  EXPECT_FALSE(acme.may_access(""));
  principal admin{"", true};
  EXPECT_TRUE(admin.may_access("globex"));
  EXPECT_TRUE(admin.may_access("acme"));
}

TEST(bearer_key, reads_only_bearer_credentials) {
  using sv = std::optional<std::string_view>;
  EXPECT_EQ(bearer_key("Bearer abc"), sv("abc"));
  EXPECT_EQ(bearer_key("bearer   abc  "), sv("abc"));
  EXPECT_EQ(bearer_key("BEARER abc"), sv("abc"));
  EXPECT_EQ(bearer_key("BeArEr " + acme_key), sv(acme_key));
  EXPECT_EQ(bearer_key("Bearer a.b~c+d/e=f-g_h"), sv("a.b~c+d/e=f-g_h"));
  EXPECT_FALSE(bearer_key(""));
  EXPECT_FALSE(bearer_key("Bearer"));
  EXPECT_FALSE(bearer_key("Bearer "));
  EXPECT_FALSE(bearer_key("Bearer    "));
  EXPECT_FALSE(bearer_key("Bearerabc"));
  EXPECT_FALSE(bearer_key("Bearer\tabc"));
  EXPECT_FALSE(bearer_key(" Bearer abc"));
  EXPECT_FALSE(bearer_key("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(bearer_key("Token abc"));
  EXPECT_FALSE(bearer_key("Bearer a b"));
  EXPECT_FALSE(bearer_key("Bearer a\tb"));
  EXPECT_FALSE(bearer_key(acme_key)) << "a bare key is no bearer credential";
}

// ---- limits --------------------------------------------------------------------------------

TEST(tenant_limits, parse_every_form) {
  auto l = parse_tenant_limits("rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10");
  ASSERT_TRUE(l.is_ok()) << l.error().to_string();
  EXPECT_EQ(l->rate, 200);
  EXPECT_EQ(l->burst, 400);
  EXPECT_EQ(l->in_flight, 64u);
  EXPECT_EQ(l->models, 1000u);
  EXPECT_EQ(l->stored_bytes, 10ull << 20);

  auto some = parse_tenant_limits("  in_flight=8 \t  rate=2.5 ");
  ASSERT_TRUE(some.is_ok());
  EXPECT_EQ(some->rate, 2.5);
  EXPECT_EQ(some->burst, 0) << "unset: one second's worth, decided where the bucket is made";
  EXPECT_EQ(some->in_flight, 8u);
  EXPECT_EQ(some->models, 0u);
  EXPECT_EQ(some->stored_bytes, 0u);

  auto words = parse_tenant_limits("rate=unlimited in_flight=unlimited models=0 stored_mb=unlimited");
  ASSERT_TRUE(words.is_ok()) << words.error().to_string();
  EXPECT_EQ(words->rate, 0);
  EXPECT_EQ(words->in_flight, 0u);
  EXPECT_EQ(parse_tenant_limits("rate=0.001")->rate, 0.001);
  EXPECT_EQ(parse_tenant_limits("rate=1000000000/s")->rate, 1e9);
  EXPECT_EQ(parse_tenant_limits("stored_mb=1099511627776")->stored_bytes, 1ull << 60);
  EXPECT_EQ(parse_tenant_limits("in_flight=4294967295")->in_flight, 4294967295u);
  EXPECT_TRUE(parse_tenant_limits("").is_ok());
  EXPECT_TRUE(parse_tenant_limits("rate=unlimited burst=unlimited").is_ok());
}

TEST(tenant_limits, bad_items_are_named) {
  struct row {
    std::string text;
    std::string message;
  };
  const std::vector<row> table = {
      {"rte=5", "unknown limit 'rte' (known: rate, burst, in_flight, models, stored_mb)"},
      {"rte=fast", "unknown limit 'rte' (known: rate, burst, in_flight, models, stored_mb)"},
      {"rate", "expected NAME=VALUE, got 'rate'"},
      {"=5", "unknown limit '' (known: rate, burst, in_flight, models, stored_mb)"},
      {"rate=fast", "limit rate needs a number of 0 or more, got 'fast'"},
      {"rate=", "limit rate needs a number of 0 or more, got ''"},
      {"rate=/s", "limit rate needs a number of 0 or more, got '/s'"},
      {"rate=-5", "limit rate needs a number of 0 or more, got '-5'"},
      {"rate=1e3", "limit rate needs a number of 0 or more, got '1e3'"},
      {"rate=0x10", "limit rate needs a number of 0 or more, got '0x10'"},
      {"rate=inf", "limit rate needs a number of 0 or more, got 'inf'"},
      {"rate=5.", "limit rate needs a number of 0 or more, got '5.'"},
      {"burst=5/s", "limit burst needs a number of 0 or more, got '5/s'"},
      {"models=-1", "limit models needs a number of 0 or more, got '-1'"},
      {"rate=0.0001",
       "limit rate needs 0 (unlimited) or 0.001 to 1000000000 requests per second, got '0.0001'"},
      {"rate=2000000000",
       "limit rate needs 0 (unlimited) or 0.001 to 1000000000 requests per second, got "
       "'2000000000'"},
      {"rate=10 burst=0.5",
       "limit burst needs 1 to 1000000000 requests (leave it out for one second's worth of rate), "
       "got '0.5'"},
      {"rate=10 burst=unlimited",
       "limit burst=unlimited needs rate=unlimited (leave burst out for one second's worth of "
       "rate)"},
      {"burst=unlimited rate=10",
       "limit burst=unlimited needs rate=unlimited (leave burst out for one second's worth of "
       "rate)"},
      {"in_flight=1.5", "limit in_flight needs a whole number up to 4294967295, got '1.5'"},
      {"in_flight=4294967296", "limit in_flight needs a whole number up to 4294967295, got "
                               "'4294967296'"},
      {"models=99999999999999999999999",
       "limit models needs a whole number up to 4294967295, got '99999999999999999999999'"},
      {"stored_mb=1099511627777",
       "limit stored_mb needs a whole number up to 1099511627776, got '1099511627777'"},
      {"rate=5 models=2 rate=6", "limit rate is given twice; keep one"},
  };
  for (const auto& r : table) {
    auto l = parse_tenant_limits(r.text);
    ASSERT_FALSE(l.is_ok()) << r.text;
    EXPECT_EQ(l.error().code(), status_code::invalid_argument);
    EXPECT_EQ(l.error().message(), r.message) << r.text;
  }
}

TEST(tenant_limits, render_and_read_back) {
  struct row {
    std::string text;      // parsed
    std::string rendered;  // to_string of the result
  };
  const std::vector<row> table = {
      {"rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10240",
       "rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10240"},
      {"", "rate=unlimited burst=unlimited in_flight=unlimited models=unlimited stored_mb=unlimited"},
      {"rate=200", "rate=200/s burst=200 in_flight=unlimited models=unlimited stored_mb=unlimited"},
      {"in_flight=8 rate=2.5",
       "rate=2.5/s burst=2.5 in_flight=8 models=unlimited stored_mb=unlimited"},
      {"rate=0.5", "rate=0.5/s burst=1 in_flight=unlimited models=unlimited stored_mb=unlimited"},
      {"rate=0.001 burst=3",
       "rate=0.001/s burst=3 in_flight=unlimited models=unlimited stored_mb=unlimited"},
      {"rate=1000000000",
       "rate=1000000000/s burst=1000000000 in_flight=unlimited models=unlimited "
       "stored_mb=unlimited"},
      {"burst=7", "rate=unlimited burst=7 in_flight=unlimited models=unlimited stored_mb=unlimited"},
      {"models=5 stored_mb=1", "rate=unlimited burst=unlimited in_flight=unlimited models=5 stored_mb=1"},
  };
  for (const auto& r : table) {
    auto l = parse_tenant_limits(r.text);
    ASSERT_TRUE(l.is_ok()) << r.text << ": " << l.error().to_string();
    EXPECT_EQ(to_string(*l), r.rendered) << r.text;
    auto again = parse_tenant_limits(to_string(*l));
    ASSERT_TRUE(again.is_ok()) << to_string(*l) << ": " << again.error().to_string();
    EXPECT_EQ(to_string(*again), r.rendered) << "a fixed point";
    EXPECT_EQ(again->rate, l->rate);
    EXPECT_EQ(again->in_flight, l->in_flight);
    EXPECT_EQ(again->models, l->models);
    EXPECT_EQ(again->stored_bytes, l->stored_bytes);
  }
  tenant_limits tiny;
  tiny.stored_bytes = 1000;
  EXPECT_EQ(to_string(tiny),
            "rate=unlimited burst=unlimited in_flight=unlimited models=unlimited stored_mb=1")
      << "under 1 MiB rounds up, never to 0 (unlimited)";
}

TEST(limits_config, a_tenant_override_replaces_the_default) {
  limits_config cfg;
  cfg.defaults.rate = 10;
  cfg.defaults.models = 3;
  cfg.by_tenant["acme"].rate = 1000;
  EXPECT_EQ(cfg.of("acme").rate, 1000);
  EXPECT_EQ(cfg.of("acme").models, 0u) << "the override is the whole line, not a patch";
  EXPECT_EQ(cfg.of("globex").rate, 10);
  EXPECT_EQ(cfg.of("globex").models, 3u);
}

// ---- token bucket --------------------------------------------------------------------------

TEST(token_bucket, starts_full_refills_at_the_rate_and_caps_at_the_burst) {
  token_bucket b(10, 3, 0);  // 10/s: one token per 100 ms
  EXPECT_TRUE(b.full(0));
  EXPECT_EQ(b.wait_ms(0), 0);
  EXPECT_TRUE(b.try_take(0));
  EXPECT_FALSE(b.full(0));
  EXPECT_TRUE(b.try_take(0));
  EXPECT_TRUE(b.try_take(0));
  EXPECT_FALSE(b.try_take(0)) << "the burst is 3";
  EXPECT_EQ(b.wait_ms(0), 100);
  EXPECT_EQ(b.wait_ms(40), 60);
  EXPECT_EQ(b.wait_ms(100), 0);
  EXPECT_FALSE(b.try_take(99));
  EXPECT_TRUE(b.try_take(100));
  EXPECT_FALSE(b.try_take(100));
  EXPECT_FALSE(b.full(250));
  EXPECT_TRUE(b.full(400));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_take(100000));
  EXPECT_FALSE(b.try_take(100000));
  // A clock that goes backwards takes nothing and gives nothing.
  EXPECT_FALSE(b.try_take(50000));
  EXPECT_EQ(b.wait_ms(50000), 100);
  EXPECT_TRUE(b.try_take(100100));
}

TEST(token_bucket, a_token_is_there_when_wait_ms_says) {
  for (double rate : {1.0, 3.0, 7.0, 1000.0 / 7, 0.3, 0.001, 999.0, 1e6}) {
    token_bucket b(rate, 1, 0);
    int64_t now = 0;
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(b.try_take(now)) << "rate " << rate << " step " << i;
      const int64_t wait = b.wait_ms(now);
      if (rate < 1000) {
        ASSERT_GT(wait, 0) << "rate " << rate;
        ASSERT_FALSE(b.try_take(now + wait - 1)) << "rate " << rate << " step " << i;
      }
      now += wait;
    }
  }
}

TEST(token_bucket, a_rate_below_the_config_range_still_gives_a_finite_wait) {
  token_bucket b(1e-300, 1, 0);
  ASSERT_TRUE(b.try_take(0));
  EXPECT_EQ(b.wait_ms(0), int64_t(1e15));
}

TEST(token_bucket, reset_keeps_tokens_up_to_the_new_burst) {
  token_bucket b(10, 10, 0);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(b.try_take(0));  // 4 left
  b.reset(1, 2, 0);                                         // capped at 2
  EXPECT_TRUE(b.try_take(0));
  EXPECT_TRUE(b.try_take(0));
  EXPECT_FALSE(b.try_take(0));
  EXPECT_EQ(b.wait_ms(0), 1000) << "the new rate, 1/s";
  b.reset(1000, 5, 0);
  EXPECT_EQ(b.wait_ms(0), 1);
}

// ---- admission -----------------------------------------------------------------------------

TEST(tenant_admission, rate_limit_refuses_with_the_reason_and_recovers) {
  limits_config cfg;
  cfg.defaults.rate = 2;
  cfg.defaults.burst = 2;
  tenant_admission a(cfg);
  ASSERT_TRUE(a.admit("acme", 0).is_ok());
  ASSERT_TRUE(a.admit("acme", 0).is_ok());
  auto refused = a.admit("acme", 0);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.error().code(), status_code::resource_exhausted);
  EXPECT_EQ(http_status(refused.error().code()), 429);
  EXPECT_EQ(refused.error().message(),
            "tenant acme is over its request rate (2/s, burst 2); retry in 500 ms");
  EXPECT_EQ(a.admit("acme", 495).error().message(),
            "tenant acme is over its request rate (2/s, burst 2); retry in 5 ms");
  EXPECT_TRUE(a.admit("globex", 0).is_ok()) << "another tenant has its own bucket";
  EXPECT_TRUE(a.admit("acme", 500).is_ok());
  auto which = tenant_admission::limit::in_flight;
  EXPECT_FALSE(a.admit("acme", 500, &which).is_ok()) << "refusals took no tokens, and none are saved up";
  EXPECT_EQ(which, tenant_admission::limit::rate) << "the limit that refused it";
}

TEST(tenant_admission, an_unset_burst_is_one_seconds_worth) {
  limits_config cfg;
  cfg.by_tenant["acme"].rate = 200;
  tenant_admission a(cfg);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(a.admit("acme", 0).is_ok()) << i;
  EXPECT_EQ(a.admit("acme", 0).error().message(),
            "tenant acme is over its request rate (200/s, burst 200); retry in 5 ms");
  EXPECT_TRUE(a.admit("acme", 5).is_ok());
}

TEST(tenant_admission, in_flight_limit_counts_tickets_until_they_are_dropped) {
  limits_config cfg;
  cfg.by_tenant["acme"].in_flight = 2;
  tenant_admission a(cfg);
  auto t1 = a.admit("acme", 0);
  auto t2 = a.admit("acme", 0);
  ASSERT_TRUE(t1.is_ok() && t2.is_ok());
  EXPECT_EQ(a.in_flight("acme"), 2u);
  auto which = tenant_admission::limit::rate;
  auto t3 = a.admit("acme", 0, &which);
  ASSERT_FALSE(t3.is_ok());
  EXPECT_EQ(which, tenant_admission::limit::in_flight);
  EXPECT_EQ(t3.error().code(), status_code::resource_exhausted);
  EXPECT_EQ(t3.error().message(), "tenant acme has 2 requests in flight, its limit (in_flight=2)");
  std::vector<tenant_admission::ticket> globex;
  for (int i = 0; i < 100; ++i) {
    auto t = a.admit("globex", 0);
    ASSERT_TRUE(t.is_ok()) << "no limit there";
    globex.push_back(std::move(*t));
  }
  EXPECT_EQ(a.in_flight("globex"), 100u) << "counted even without a limit";
  {
    tenant_admission::ticket moved = std::move(*t1);
    EXPECT_EQ(a.in_flight("acme"), 2u) << "moving a ticket does not count twice";
  }
  EXPECT_EQ(a.in_flight("acme"), 1u);
  EXPECT_TRUE(a.admit("acme", 0).is_ok());  // admitted, and its ticket dropped at once
  EXPECT_EQ(a.in_flight("acme"), 1u);
  globex.clear();
  EXPECT_EQ(a.in_flight("globex"), 0u);
  EXPECT_EQ(a.in_flight("nobody"), 0u);
}

TEST(tenant_admission, assigning_over_a_ticket_releases_its_request) {
  limits_config cfg;
  cfg.defaults.in_flight = 5;
  tenant_admission a(cfg);
  tenant_admission::ticket held = a.admit("acme", 0).value();
  EXPECT_EQ(a.in_flight("acme"), 1u);
  held = a.admit("globex", 0).value();
  EXPECT_EQ(a.in_flight("acme"), 0u);
  EXPECT_EQ(a.in_flight("globex"), 1u);
  held = tenant_admission::ticket();
  EXPECT_EQ(a.in_flight("globex"), 0u);
}

TEST(tenant_admission, a_ticket_may_outlive_the_admission) {
  tenant_admission::ticket held;
  {
    limits_config cfg;
    cfg.defaults.in_flight = 1;
    tenant_admission a(cfg);
    held = a.admit("acme", 0).value();
  }
  // Destroying `held` now must not touch freed memory (the sanitizer build checks this).
}

TEST(tenant_admission, one_tenant_exhausted_leaves_the_others_alone) {
  limits_config cfg;
  cfg.defaults.rate = 1;
  cfg.defaults.burst = 1;
  cfg.defaults.in_flight = 1;
  tenant_admission a(cfg);
  auto acme = a.admit("acme", 0);
  ASSERT_TRUE(acme.is_ok());
  EXPECT_FALSE(a.admit("acme", 0).is_ok()) << "in flight";
  EXPECT_FALSE(a.admit("acme", 5000).is_ok()) << "still in flight, however long";
  for (const char* other : {"globex", "initech", "umbrella"}) {
    auto t = a.admit(other, 0);
    EXPECT_TRUE(t.is_ok()) << other << ": " << t.error().to_string();
  }
  EXPECT_EQ(a.in_flight("acme"), 1u);
}

TEST(tenant_admission, reconfigure_applies_new_limits_to_known_and_new_tenants) {
  limits_config cfg;
  cfg.defaults.in_flight = 1;
  tenant_admission a(cfg);
  auto t = a.admit("acme", 0);
  ASSERT_TRUE(t.is_ok());
  EXPECT_FALSE(a.admit("acme", 0).is_ok());
  cfg.defaults.in_flight = 0;
  cfg.by_tenant["globex"].in_flight = 1;
  a.reconfigure(cfg, 0);
  EXPECT_TRUE(a.admit("acme", 0).is_ok());
  EXPECT_EQ(a.in_flight("acme"), 1u) << "the count survives a reconfigure";
  auto g = a.admit("globex", 0);
  ASSERT_TRUE(g.is_ok());
  EXPECT_FALSE(a.admit("globex", 0).is_ok()) << "a tenant first seen after the change";
}

TEST(tenant_admission, reconfigure_keeps_the_tokens_and_takes_the_new_rate) {
  limits_config cfg;
  cfg.defaults.rate = 10;
  cfg.defaults.burst = 10;
  tenant_admission a(cfg);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(a.admit("acme", 0).is_ok());  // 3 left
  cfg.defaults.rate = 1;
  cfg.defaults.burst = 5;
  a.reconfigure(cfg, 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(a.admit("acme", 0).is_ok()) << "kept token " << i;
  EXPECT_EQ(a.admit("acme", 0).error().message(),
            "tenant acme is over its request rate (1/s, burst 5); retry in 1000 ms");
  EXPECT_TRUE(a.admit("acme", 1000).is_ok());
  cfg.defaults.rate = 0;
  a.reconfigure(cfg, 1000);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(a.admit("acme", 1000).is_ok()) << "no rate now";
}

TEST(tenant_admission, idle_tenants_are_forgotten_as_the_map_grows) {
  limits_config cfg;
  cfg.defaults.rate = 10;
  cfg.defaults.in_flight = 4;
  tenant_admission a(cfg);
  auto busy = a.admit("busy", 0);
  ASSERT_TRUE(busy.is_ok());
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(a.admit("t" + std::to_string(i), 0).is_ok());
  EXPECT_EQ(a.tracked_tenants(), 5001u) << "buckets short of full are remembered";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.admit("busy", 0).is_ok());
  // Each later tenant comes once a bucket's refill time (100 ms) after the one before, so the
  // earlier ones are full again when the map is swept: as good as new, and forgotten.
  int64_t now = 1000;
  for (int i = 0; i < 5000; ++i, now += 200) {
    ASSERT_TRUE(a.admit("u" + std::to_string(i), now).is_ok());
  }
  EXPECT_LT(a.tracked_tenants(), 2100u);
  EXPECT_EQ(a.in_flight("busy"), 1u) << "a tenant with a request in flight is kept";
  std::vector<tenant_admission::ticket> more;
  for (int i = 0; i < 3; ++i) {
    auto t = a.admit("busy", now);
    ASSERT_TRUE(t.is_ok()) << t.error().to_string();
    more.push_back(std::move(*t));
  }
  EXPECT_EQ(a.admit("busy", now).error().message(),
            "tenant busy has 4 requests in flight, its limit (in_flight=4)");
}

TEST(tenant_admission, threads_never_pass_the_in_flight_limit_and_counts_return_to_zero) {
  limits_config cfg;
  cfg.by_tenant["acme"].in_flight = 3;
  cfg.by_tenant["globex"].in_flight = 5;
  cfg.defaults.rate = 1000;  // other tenants: a bucket each, so idle ones get dropped
  tenant_admission a(cfg);
  std::atomic<int> held[2] = {{0}, {0}};
  std::atomic<int> max_held[2] = {{0}, {0}};
  std::atomic<int> admitted[2] = {{0}, {0}};
  std::atomic<int64_t> clock{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const int which = t % 2;
      const std::string tenant = which == 0 ? "acme" : "globex";
      for (int i = 0; i < 2000; ++i) {
        auto ticket = a.admit(tenant, clock.load());
        if (!ticket.is_ok()) continue;
        ++admitted[which];
        int now = ++held[which];
        int seen = max_held[which].load();
        while (now > seen && !max_held[which].compare_exchange_weak(seen, now)) {
        }
        if (i % 16 == 0) std::this_thread::yield();
        --held[which];
      }
    });
  }
  // Meanwhile, many short-lived tenants make the map grow and sweep idle states.
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        clock += 1;
        auto ticket = a.admit("x" + std::to_string(t) + "-" + std::to_string(i), clock.load());
        EXPECT_TRUE(ticket.is_ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(admitted[0].load(), 0);
  EXPECT_GT(admitted[1].load(), 0);
  EXPECT_LE(max_held[0].load(), 3);
  EXPECT_LE(max_held[1].load(), 5);
  EXPECT_EQ(a.in_flight("acme"), 0u);
  EXPECT_EQ(a.in_flight("globex"), 0u);
}

// ---- pushes --------------------------------------------------------------------------------

TEST(check_push_limits, models_and_stored_bytes) {
  tenant_limits l;
  EXPECT_TRUE(check_push_limits(l, "acme", true, 1000000, 1ull << 40, 1 << 30).is_ok())
      << "no limits: anything goes";
  l.models = 2;
  l.stored_bytes = 10ull << 20;
  EXPECT_TRUE(check_push_limits(l, "acme", true, 1, 0, 10).is_ok());
  status full = check_push_limits(l, "acme", true, 2, 0, 10);
  EXPECT_EQ(full.code(), status_code::resource_exhausted);
  EXPECT_EQ(full.message(),
            "tenant acme has 2 models, its limit (models=2); ask an operator to raise "
            "tenant_limits.acme");
  EXPECT_EQ(check_push_limits(l, "acme", true, 7, 0, 10).message(),
            "tenant acme has 7 models, its limit (models=2); ask an operator to raise "
            "tenant_limits.acme")
      << "a limit lowered below what the tenant has";
  EXPECT_TRUE(check_push_limits(l, "acme", false, 2, 0, 10).is_ok())
      << "a new version of an existing model is no new model";
  EXPECT_TRUE(check_push_limits(l, "acme", false, 2, (10ull << 20) - 10, 10).is_ok())
      << "exactly at the limit";
  status bytes = check_push_limits(l, "acme", false, 2, (9ull << 20) + 600000, 2ull << 20);
  EXPECT_EQ(bytes.code(), status_code::resource_exhausted);
  EXPECT_EQ(bytes.message(),
            "tenant acme stores 9.5 MB; a push of 2.0 MB would pass its limit (stored_mb=10); ask "
            "an operator to raise tenant_limits.acme");
  EXPECT_EQ(check_push_limits(l, "acme", true, 0, 0, (10ull << 20) + 1).message(),
            "tenant acme stores 0 bytes; a push of 10.0 MB would pass its limit (stored_mb=10); "
            "ask an operator to raise tenant_limits.acme");
}

// Regression: stored_now + bytes wrapped around 2^64 and passed the check.
TEST(check_push_limits, a_huge_size_cannot_wrap_around) {
  tenant_limits l;
  l.stored_bytes = 1000;
  EXPECT_FALSE(check_push_limits(l, "acme", false, 0, 500, UINT64_MAX - 100).is_ok());
  EXPECT_FALSE(check_push_limits(l, "acme", false, 0, UINT64_MAX, 1).is_ok());
  EXPECT_FALSE(check_push_limits(l, "acme", false, 0, 2000, 0).is_ok())
      << "already over a lowered limit";
  EXPECT_TRUE(check_push_limits(l, "acme", false, 0, 0, 1000).is_ok());
}

}  // namespace
}  // namespace shoal
