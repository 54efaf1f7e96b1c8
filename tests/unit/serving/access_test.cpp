// access: authentication and the tenant rules front ends apply before a call reaches the actors
// (the node applying them end to end: tests/process, tenant_test).
#include "shoal/serving/access.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

key_table keys() {
  auto t = key_table::parse("acme-key-0123456789 acme\nglobex-key-0123456789 globex\n"
                            "admin-key-0123456789 admin\n",
                            "keys");
  EXPECT_TRUE(t.is_ok()) << t.error().to_string();
  return t.is_ok() ? *t : key_table{};
}

principal tenant(const std::string& name) {
  principal p;
  p.tenant = name;
  return p;
}

TEST(authenticate, open_without_keys_and_strict_with_them) {
  auto open = authenticate(nullptr, std::nullopt, "a key");
  ASSERT_TRUE(open.is_ok());
  EXPECT_TRUE(open->admin) << "without a keys file everything is open";
  const key_table k = keys();
  auto none = authenticate(&k, std::nullopt, "--key KEY");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.error().code(), status_code::unauthenticated);
  EXPECT_EQ(none.error().message(), "this node requires an API key: send it with --key KEY");
  auto empty = authenticate(&k, std::string_view(""), "--key KEY");
  EXPECT_EQ(empty.error().code(), status_code::unauthenticated);
  auto unknown = authenticate(&k, std::string_view("acme-key-0123456780"), "--key KEY");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.error().message(), "unknown API key");
  auto acme = authenticate(&k, std::string_view("acme-key-0123456789"), "--key KEY");
  ASSERT_TRUE(acme.is_ok());
  EXPECT_EQ(acme->tenant, "acme");
  EXPECT_FALSE(acme->admin);
  auto admin = authenticate(&k, std::string_view("admin-key-0123456789"), "--key KEY");
  ASSERT_TRUE(admin.is_ok());
  EXPECT_TRUE(admin->admin);
}

TEST(authorize, another_tenants_model_looks_exactly_like_a_missing_one) {
  const model_id theirs{"globex", "bot"};
  const principal acme = tenant("acme");
  infer_request infer;
  infer.id = theirs;
  for (const api_call& call :
       {api_call(infer), api_call(list_request{theirs}),
        api_call(label_request{theirs, "", label_action::rollback, std::nullopt})}) {
    status s = authorize(acme, call);
    EXPECT_EQ(s.code(), status_code::not_found);
    EXPECT_EQ(s.message(), model_not_found(theirs).message());
  }
  infer.id = model_id{"acme", "bot"};
  EXPECT_TRUE(authorize(acme, infer).is_ok());
  EXPECT_TRUE(authorize(acme, list_request{model_id{"acme", "x"}}).is_ok());
}

TEST(authorize, pushes_stay_in_the_callers_tenant) {
  push_request push{model_id{"globex", "new"}, "bytes", "", ""};
  status s = authorize(tenant("acme"), push);
  EXPECT_EQ(s.code(), status_code::not_found);
  EXPECT_EQ(s.message(), "no tenant globex (this key belongs to tenant acme)");
  push.id.tenant = "acme";
  EXPECT_TRUE(authorize(tenant("acme"), push).is_ok());
  principal admin;
  admin.admin = true;
  push.id.tenant = "globex";
  EXPECT_TRUE(authorize(admin, push).is_ok());
}

TEST(authorize, status_calls_need_only_a_valid_key) {
  EXPECT_TRUE(authorize(tenant("acme"), status_request{}).is_ok());
  EXPECT_TRUE(authorize(tenant("acme"), cluster_status_request{}).is_ok());
  EXPECT_TRUE(authorize(tenant("acme"), models_request{}).is_ok());
}

TEST(authorize, only_an_admin_may_forget_a_node) {
  status s = authorize(tenant("acme"), forget_request{"n3", "", ""});
  EXPECT_EQ(s.code(), status_code::permission_denied);
  EXPECT_NE(s.message().find("needs an admin key"), std::string::npos);
  EXPECT_EQ(http_status(s.code()), 403);
  principal admin;
  admin.admin = true;
  EXPECT_TRUE(authorize(admin, forget_request{"n3", "", ""}).is_ok());
}

TEST(visible_models, a_tenant_lists_its_own_and_admin_all) {
  std::vector<model_entry> all(3);
  all[0].id = {"acme", "a"};
  all[1].id = {"globex", "b"};
  all[2].id = {"acme", "c"};
  auto mine = visible_models(tenant("acme"), all);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].id.model, "a");
  EXPECT_EQ(mine[1].id.model, "c");
  principal admin;
  admin.admin = true;
  EXPECT_EQ(visible_models(admin, all).size(), 3u);
  EXPECT_TRUE(visible_models(tenant("initech"), all).empty());
}

}  // namespace
}  // namespace shoal
