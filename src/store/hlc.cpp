#include "shoal/store/hlc.hpp"

#include <algorithm>
#include <limits>

namespace shoal {
namespace {

// The next timestamp after `t` within the same wall ms, or the next ms when logical is spent.
hlc_timestamp successor(hlc_timestamp t) {
  if (t.logical == std::numeric_limits<uint32_t>::max()) return {t.wall_ms + 1, 0};
  return {t.wall_ms, t.logical + 1};
}

}  // namespace

std::string to_string(const hlc_timestamp& t) {
  return std::to_string(t.wall_ms) + "." + std::to_string(t.logical);
}

hlc_timestamp hybrid_clock::tick(int64_t physical_ms) {
  last_ = physical_ms > last_.wall_ms ? hlc_timestamp{physical_ms, 0} : successor(last_);
  return last_;
}

status hybrid_clock::observe(const hlc_timestamp& remote, int64_t physical_ms) {
  if (remote.wall_ms > physical_ms + max_offset_ms_) {
    return status::failed_precondition(
        "a timestamp " + std::to_string(remote.wall_ms - physical_ms) +
        " ms ahead of this node's clock (limit " + std::to_string(max_offset_ms_) +
        " ms): are the clocks synchronized?");
  }
  if (physical_ms > last_.wall_ms && physical_ms > remote.wall_ms) {
    last_ = {physical_ms, 0};
  } else {
    last_ = successor(std::max(last_, remote));
  }
  return status::ok();
}

void hybrid_clock::restore(const hlc_timestamp& t) { last_ = std::max(last_, t); }

}  // namespace shoal
