// member_proto: member <-> pb::Member, shared by the two codecs that carry members (gossip
// between nodes, cluster status to clients). Internal to shoal_core: protobuf types stay out of
// include/shoal/.
#pragma once

#include "proto/shoal.pb.h"
#include "shoal/base/status.hpp"
#include "shoal/cluster/membership.hpp"

namespace shoal {

/// Longest id, name or address a member entry may carry.
inline constexpr size_t max_member_field = 256;

/// Fills `p` from `m`.
void member_to_proto(const member& m, pb::Member& p);

/// Returns the member in `p`, checked: an id, HOST:PORT addresses, fields at most
/// max_member_field bytes, a known status. Otherwise invalid_argument saying what is wrong.
result<member> member_from_proto(const pb::Member& p);

}  // namespace shoal
