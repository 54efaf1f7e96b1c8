// catalog_proto: catalog_change <-> pb::CatalogChange, shared by the journal (on disk) and
// catalog replication (between nodes). Internal to shoal_core: protobuf types stay out of
// include/shoal/.
#pragma once

#include "proto/shoal.pb.h"
#include "shoal/base/status.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// The parts of a change that the client API shows too (list replies).
void snapshot_to_proto(const snapshot_info& s, pb::SnapshotInfo* out);
snapshot_info snapshot_from_proto(const pb::SnapshotInfo& in);
void set_to_proto(const validation_set_info& s, pb::ValidationSetInfo* out);
validation_set_info set_from_proto(const pb::ValidationSetInfo& in);
void report_to_proto(const validation_report_info& r, pb::ValidationReport* out);
validation_report_info report_from_proto(const pb::ValidationReport& in);
void trial_to_proto(const trial_info& t, pb::TrialInfo* out);
/// Returns the trial in `in`, or corruption for an unknown mode.
result<trial_info> trial_from_proto(const pb::TrialInfo& in);

/// Fills `out` from `c`.
void change_to_proto(const catalog_change& c, pb::CatalogChange* out);

/// Returns the change in `in`, or corruption naming what is unknown (kind, label action).
/// Shape only: whether the change fits a catalog is the catalog's to say.
result<catalog_change> change_from_proto(const pb::CatalogChange& in);

}  // namespace shoal
