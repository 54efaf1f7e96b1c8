// tenants: keys files, bearer headers, limits, token buckets and admission (the clock is passed in).
#include "shoal/tenants.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/files.hpp"

namespace shoal {
namespace {

const std::string acme_key = "acme-key-0123456789";
const std::string admin_key = "admin-key-0123456789";

TEST(key_table, reads_tenants_admins_comments_and_blank_lines) {
  auto t = key_table::parse("# operators\n" + admin_key + " admin\n\n   " + acme_key +
                                "\t acme   # support bot\nglobex-key-0123456789 globex\n"
                                "acme-second-key-0123 acme\n",
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
  auto admin = t->find(admin_key);
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->admin);
  EXPECT_FALSE(t->find("acme-key-012345678")) << "a prefix of a key is no key";
  EXPECT_FALSE(t->find(acme_key + "0"));
  EXPECT_FALSE(t->find(""));
}

TEST(key_table, every_mistake_names_the_line) {
  struct row {
    std::string text;
    std::string message;
  };
  const std::vector<row> table = {
      {"# c\n" + acme_key + "\n", "keys line 2: expected 'KEY TENANT' or 'KEY admin', got 1 field"},
      {acme_key + " acme extra\n", "keys line 1: expected 'KEY TENANT' or 'KEY admin', got 3 fields"},
      {"short acme\n", "keys line 1: a key must be 16 to 256 characters long, this one has 5"},
      {"acme-key-0123456789\xc3\xa9 acme\n", "keys line 1: a key may hold only A-Z a-z 0-9 and ._~+/=-"},
      {acme_key + " Acme\n",
       "keys line 1: invalid tenant 'Acme': a tenant name must match [a-z0-9][a-z0-9_-]{0,63}"},
      {acme_key + " acme\n\n" + acme_key + " globex\n",
       "keys line 3: the same key as line 1 (each key names one tenant)"},
  };
  for (const auto& r : table) {
    auto t = key_table::parse(r.text, "keys");
    ASSERT_FALSE(t.is_ok()) << r.text;
    EXPECT_EQ(t.error().code(), status_code::invalid_argument);
    EXPECT_EQ(t.error().message(), r.message);
  }
  EXPECT_TRUE(key_table::parse("", "keys").is_ok()) << "an empty file: no keys, nobody gets in";
}

TEST(key_table, loads_a_file_and_names_one_it_cannot_read) {
  shoal::testing::temp_dir dir;
  const std::string path = dir.path() + "/keys";
  ASSERT_TRUE(shoal::testing::write_file(path, acme_key + " acme\n"));
  auto t = key_table::load_file(path);
  ASSERT_TRUE(t.is_ok()) << t.error().to_string();
  EXPECT_EQ(t->find(acme_key)->tenant, "acme");
  auto missing = key_table::load_file(dir.path() + "/nope");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.error().message(),
            "cannot read keys file '" + dir.path() + "/nope': No such file or directory");
  auto bad = key_table::parse("x y z\n", path);
  EXPECT_EQ(bad.error().message().rfind(path + " line 1: ", 0), 0u);
}

TEST(principal, a_tenant_reaches_its_own_models_and_an_admin_all) {
  principal acme{"acme", false};
  EXPECT_TRUE(acme.may_access("acme"));
  EXPECT_FALSE(acme.may_access("globex"));
  EXPECT_FALSE(acme.may_access("acme2"));
  principal admin{"", true};
  EXPECT_TRUE(admin.may_access("globex"));
}

TEST(bearer_key, reads_only_bearer_credentials) {
  EXPECT_EQ(bearer_key("Bearer abc"), std::optional<std::string_view>("abc"));
  EXPECT_EQ(bearer_key("bearer   abc  "), std::optional<std::string_view>("abc"));
  EXPECT_EQ(bearer_key("BEARER abc"), std::optional<std::string_view>("abc"));
  EXPECT_FALSE(bearer_key(""));
  EXPECT_FALSE(bearer_key("Bearer"));
  EXPECT_FALSE(bearer_key("Bearer "));
  EXPECT_FALSE(bearer_key("Bearerabc"));
  EXPECT_FALSE(bearer_key("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(bearer_key("Bearer a b"));
}

TEST(tenant_limits, parse_every_form_and_render_back) {
  auto l = parse_tenant_limits("rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10");
  ASSERT_TRUE(l.is_ok()) << l.error().to_string();
  EXPECT_EQ(l->rate, 200);
  EXPECT_EQ(l->burst, 400);
  EXPECT_EQ(l->in_flight, 64u);
  EXPECT_EQ(l->models, 1000u);
  EXPECT_EQ(l->stored_bytes, 10ull << 20);
  EXPECT_EQ(to_string(*l), "rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10");
  auto again = parse_tenant_limits(to_string(*l));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(to_string(*again), to_string(*l));
  auto some = parse_tenant_limits("  in_flight=8   rate=2.5 ");
  ASSERT_TRUE(some.is_ok());
  EXPECT_EQ(some->rate, 2.5);
  EXPECT_EQ(some->models, 0u);
  EXPECT_EQ(to_string(*some),
            "rate=2.5/s burst=unlimited in_flight=8 models=unlimited stored_mb=unlimited");
  EXPECT_TRUE(parse_tenant_limits(to_string(tenant_limits{})).is_ok());
  EXPECT_TRUE(parse_tenant_limits("").is_ok());
}

TEST(tenant_limits, bad_items_are_named) {
  EXPECT_EQ(parse_tenant_limits("rte=5").error().message(),
            "unknown limit 'rte' (known: rate, burst, in_flight, models, stored_mb)");
  EXPECT_EQ(parse_tenant_limits("rate").error().message(), "expected NAME=VALUE, got 'rate'");
  EXPECT_EQ(parse_tenant_limits("rate=fast").error().message(),
            "limit rate needs a number of 0 or more, got 'fast'");
  EXPECT_EQ(parse_tenant_limits("models=-1").error().message(),
            "limit models needs a number of 0 or more, got '-1'");
  EXPECT_EQ(parse_tenant_limits("in_flight=1.5").error().message(),
            "limit in_flight needs a whole number up to 4294967295, got '1.5'");
}

TEST(limits_config, a_tenant_override_replaces_the_default) {
  limits_config cfg;
  cfg.defaults.rate = 10;
  cfg.by_tenant["acme"].rate = 1000;
  EXPECT_EQ(cfg.of("acme").rate, 1000);
  EXPECT_EQ(cfg.of("globex").rate, 10);
}

TEST(token_bucket, starts_full_refills_at_the_rate_and_caps_at_the_burst) {
  token_bucket b(10, 3, 0);  // 10/s: one token per 100 ms
  EXPECT_TRUE(b.try_take(0));
  EXPECT_TRUE(b.try_take(0));
  EXPECT_TRUE(b.try_take(0));
  EXPECT_FALSE(b.try_take(0)) << "the burst is 3";
  EXPECT_EQ(b.wait_ms(0), 100);
  EXPECT_EQ(b.wait_ms(40), 60);
  EXPECT_FALSE(b.try_take(99));
  EXPECT_TRUE(b.try_take(100));
  EXPECT_FALSE(b.try_take(100));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_take(100000));
  EXPECT_FALSE(b.try_take(100000));
  // A clock that goes backwards takes nothing and gives nothing.
  EXPECT_FALSE(b.try_take(50000));
}

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
  EXPECT_EQ(refused.error().message(),
            "tenant acme is over its request rate (2/s, burst 2); retry in 500 ms");
  EXPECT_TRUE(a.admit("globex", 0).is_ok()) << "another tenant has its own bucket";
  EXPECT_TRUE(a.admit("acme", 500).is_ok());
}

TEST(tenant_admission, in_flight_limit_counts_tickets_until_they_are_dropped) {
  limits_config cfg;
  cfg.by_tenant["acme"].in_flight = 2;
  tenant_admission a(cfg);
  auto t1 = a.admit("acme", 0);
  auto t2 = a.admit("acme", 0);
  ASSERT_TRUE(t1.is_ok() && t2.is_ok());
  EXPECT_EQ(a.in_flight("acme"), 2u);
  auto t3 = a.admit("acme", 0);
  ASSERT_FALSE(t3.is_ok());
  EXPECT_EQ(t3.error().message(), "tenant acme has 2 requests in flight, its limit (in_flight=2)");
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a.admit("globex", 0).is_ok()) << "no limit there";
  {
    tenant_admission::ticket moved = std::move(*t1);
    EXPECT_EQ(a.in_flight("acme"), 2u) << "moving a ticket does not count twice";
  }
  EXPECT_EQ(a.in_flight("acme"), 1u);
  EXPECT_TRUE(a.admit("acme", 0).is_ok());  // admitted, and its ticket dropped at once
  EXPECT_EQ(a.in_flight("acme"), 1u);
  EXPECT_EQ(a.in_flight("nobody"), 0u);
}

TEST(tenant_admission, reconfigure_applies_new_limits_to_known_tenants) {
  limits_config cfg;
  cfg.defaults.in_flight = 1;
  tenant_admission a(cfg);
  auto t = a.admit("acme", 0);
  ASSERT_TRUE(t.is_ok());
  EXPECT_FALSE(a.admit("acme", 0).is_ok());
  cfg.defaults.in_flight = 0;
  a.reconfigure(cfg, 0);
  EXPECT_TRUE(a.admit("acme", 0).is_ok());
  EXPECT_EQ(a.in_flight("acme"), 1u) << "the count survives a reconfigure";
}

TEST(tenant_admission, threads_never_pass_the_in_flight_limit_and_counts_return_to_zero) {
  limits_config cfg;
  cfg.by_tenant["acme"].in_flight = 3;
  cfg.by_tenant["globex"].in_flight = 5;
  tenant_admission a(cfg);
  std::atomic<int> held[2] = {{0}, {0}};
  std::atomic<int> max_held[2] = {{0}, {0}};
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const int which = t % 2;
      const std::string tenant = which == 0 ? "acme" : "globex";
      for (int i = 0; i < 2000; ++i) {
        auto ticket = a.admit(tenant, 0);
        if (!ticket.is_ok()) continue;
        ++admitted;
        int now = ++held[which];
        int seen = max_held[which].load();
        while (now > seen && !max_held[which].compare_exchange_weak(seen, now)) {
        }
        --held[which];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(admitted.load(), 0);
  EXPECT_LE(max_held[0].load(), 3);
  EXPECT_LE(max_held[1].load(), 5);
  EXPECT_EQ(a.in_flight("acme"), 0u);
  EXPECT_EQ(a.in_flight("globex"), 0u);
}

TEST(check_push_limits, models_and_stored_bytes) {
  tenant_limits l;
  EXPECT_TRUE(check_push_limits(l, "acme", true, 1000000, 1ull << 40, 1 << 30).is_ok())
      << "no limits: anything goes";
  l.models = 2;
  l.stored_bytes = 1000;
  EXPECT_TRUE(check_push_limits(l, "acme", true, 1, 0, 10).is_ok());
  status full = check_push_limits(l, "acme", true, 2, 0, 10);
  EXPECT_EQ(full.code(), status_code::resource_exhausted);
  EXPECT_EQ(full.message(),
            "tenant acme has 2 models, its limit (models=2); ask an operator to raise "
            "tenant_limits.acme");
  EXPECT_TRUE(check_push_limits(l, "acme", false, 2, 0, 10).is_ok())
      << "a new version of an existing model is no new model";
  EXPECT_TRUE(check_push_limits(l, "acme", false, 2, 990, 10).is_ok()) << "exactly at the limit";
  status bytes = check_push_limits(l, "acme", false, 2, 990, 11);
  EXPECT_EQ(bytes.code(), status_code::resource_exhausted);
  EXPECT_NE(bytes.message().find("stored_mb="), std::string::npos) << bytes.message();
}

}  // namespace
}  // namespace shoal
