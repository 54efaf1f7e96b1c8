// replica_steps: what the catalog actor does to a replicated_catalog, as single steps for the
// replication tests (replicated_catalog_test, catalog_sync_test).
#pragma once

#include <string>
#include <vector>

#include "shoal/cluster/replicated_catalog.hpp"

namespace shoal::testing {

/// A snapshot of a fasttext model with digest `sha` (10 bytes).
snapshot_info test_snapshot(const std::string& sha);

/// Pushes `sha` as the next version of `id` on `r` at `t` (plan on the view, stamp, add), moving
/// `label` too when given; returns the stamped changes. A change `r` refuses fails the test.
std::vector<catalog_change> push_on(replicated_catalog& r, const model_id& id,
                                    const std::string& sha, int64_t t,
                                    const std::string& label = "");

}  // namespace shoal::testing
