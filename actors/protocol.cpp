#include "actors/protocol.hpp"

namespace shoal {

std::string to_string(shoal_errc x) { return shoal::to_string(static_cast<status_code>(x)); }

caf::error to_error(const status& s) {
  return caf::make_error(static_cast<shoal_errc>(s.code()), s.message());
}

status to_status(const caf::error& e, const std::string& what) {
  if (e.category() == caf::atom("shoal")) {
    std::string msg;
    const auto& ctx = e.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0)) msg = ctx.get_as<std::string>(0);
    return status(static_cast<status_code>(e.code()), msg);
  }
  if (e == caf::sec::request_timeout) return status::unavailable(what + " timed out");
  return status::internal(what + " failed: " + caf::to_string(e));
}

}  // namespace shoal
