#include "support/replica_steps.hpp"

#include <gtest/gtest.h>

namespace shoal::testing {

snapshot_info test_snapshot(const std::string& sha) {
  snapshot_info s;
  s.sha256 = sha;
  s.size_bytes = 10;
  s.format = "fasttext";
  return s;
}

std::vector<catalog_change> push_on(replicated_catalog& r, const model_id& id,
                                    const std::string& sha, int64_t t, const std::string& label) {
  auto changes = r.stamp(r.view().plan_push(id, test_snapshot(sha), label, t), t);
  for (const auto& c : changes) {
    auto added = r.add(c, t);
    EXPECT_TRUE(added.is_ok()) << added.error().message();
  }
  return changes;
}

}  // namespace shoal::testing
