// catalog_dump: a whole catalog as text, so tests can compare two catalogs (or one catalog before
// and after) with a single EXPECT_EQ and see the difference in the failure message.
#pragma once

#include <string>

#include "shoal/store/catalog.hpp"

namespace shoal::testing {

/// Returns every model of `c` with its snapshots (version, digest, time, size, format, [note])
/// and its labels (stack and history), one line per snapshot and per label.
std::string dump(const catalog& c);

}  // namespace shoal::testing
