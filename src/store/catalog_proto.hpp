// catalog_proto: catalog_change <-> pb::CatalogChange, shared by the journal (on disk) and
// catalog replication (between nodes). Internal to shoal_core: protobuf types stay out of
// include/shoal/.
#pragma once

#include "proto/shoal.pb.h"
#include "shoal/base/status.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// Fills `out` from `c`.
void change_to_proto(const catalog_change& c, pb::CatalogChange* out);

/// Returns the change in `in`, or corruption naming what is unknown (kind, label action).
/// Shape only: whether the change fits a catalog is the catalog's to say.
result<catalog_change> change_from_proto(const pb::CatalogChange& in);

}  // namespace shoal
