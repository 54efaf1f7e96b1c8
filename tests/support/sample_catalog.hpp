// sample_catalog: a catalog of one model with numbered versions, for tests of what reads one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "shoal/store/catalog.hpp"

namespace shoal::testing {

/// Returns a catalog holding `versions` fastText snapshots of `id` (sha256 a run of one letter),
/// production on the last one.
inline std::shared_ptr<const catalog> catalog_with(const model_id& id, uint32_t versions) {
  catalog c;
  for (uint32_t v = 1; v <= versions; ++v) {
    snapshot_info s;
    s.sha256 = std::string(64, static_cast<char>('a' + v % 6));
    s.size_bytes = 10;
    s.format = "fasttext";
    for (const auto& ch : c.plan_push(id, s, v == 1 ? "" : "production", 1000 + v)) {
      EXPECT_TRUE(c.apply(ch).is_ok());
    }
  }
  return std::make_shared<const catalog>(std::move(c));
}

}  // namespace shoal::testing
