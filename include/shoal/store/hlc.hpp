// hlc: a hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014). Timestamps
// stay close to wall-clock time, yet respect causality: an event that has seen another (through
// a message carrying its timestamp) always gets a greater timestamp, even when the two nodes'
// clocks disagree. Catalog changes are ordered by (timestamp, origin node id), which is total, so
// every node folds the same changes into the same catalog whatever order they arrived in.
//
// Time comes in from outside (physical_ms arguments). A remote timestamp too far ahead of our
// own clock (max_offset_ms) is refused rather than followed, so one node with a wrong clock
// cannot drag every clock in the cluster into the future.
// Thread-safety: a plain value; one owner.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "shoal/base/status.hpp"

namespace shoal {

struct hlc_timestamp {
  int64_t wall_ms = 0;    // the greatest physical time seen (unix ms)
  uint32_t logical = 0;   // orders events within one wall_ms

  friend bool operator==(const hlc_timestamp& a, const hlc_timestamp& b) {
    return a.wall_ms == b.wall_ms && a.logical == b.logical;
  }
  friend bool operator!=(const hlc_timestamp& a, const hlc_timestamp& b) { return !(a == b); }
  friend bool operator<(const hlc_timestamp& a, const hlc_timestamp& b) {
    return std::tie(a.wall_ms, a.logical) < std::tie(b.wall_ms, b.logical);
  }
  friend bool operator>(const hlc_timestamp& a, const hlc_timestamp& b) { return b < a; }
  friend bool operator<=(const hlc_timestamp& a, const hlc_timestamp& b) { return !(b < a); }
  friend bool operator>=(const hlc_timestamp& a, const hlc_timestamp& b) { return !(a < b); }
};

/// Returns "1795386060112.3" (wall ms, logical).
std::string to_string(const hlc_timestamp& t);

class hybrid_clock {
 public:
  /// `max_offset_ms`: how far ahead of our physical clock a remote timestamp may be.
  explicit hybrid_clock(int64_t max_offset_ms = 60000) : max_offset_ms_(max_offset_ms) {}

  /// Returns the timestamp of a local event (a change made here) at `physical_ms`: greater than
  /// every timestamp returned or observed before.
  hlc_timestamp tick(int64_t physical_ms);

  /// Takes in a timestamp from another node (a change that arrived) at `physical_ms`, so later
  /// local events order after it. Refuses (failed_precondition, clock unchanged) a timestamp more
  /// than max_offset_ms ahead of `physical_ms`.
  status observe(const hlc_timestamp& remote, int64_t physical_ms);

  /// Returns the last timestamp issued or observed.
  const hlc_timestamp& last() const { return last_; }

  /// Restores the clock after a restart: never issue a timestamp at or below `t` again.
  void restore(const hlc_timestamp& t);

 private:
  int64_t max_offset_ms_;
  hlc_timestamp last_;
};

}  // namespace shoal
