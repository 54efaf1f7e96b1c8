#include "shoal/base/status.hpp"

namespace shoal {

const char* to_string(status_code c) {
  switch (c) {
    case status_code::ok: return "ok";
    case status_code::invalid_argument: return "invalid_argument";
    case status_code::not_found: return "not_found";
    case status_code::already_exists: return "already_exists";
    case status_code::failed_precondition: return "failed_precondition";
    case status_code::too_large: return "too_large";
    case status_code::resource_exhausted: return "resource_exhausted";
    case status_code::unavailable: return "unavailable";
    case status_code::corruption: return "corruption";
    case status_code::io_error: return "io_error";
    case status_code::internal: return "internal";
    case status_code::unauthenticated: return "unauthenticated";
    case status_code::permission_denied:
      return "permission_denied";
  }
  return "unknown";
}

int http_status(status_code c) {
  switch (c) {
    case status_code::ok: return 200;
    case status_code::invalid_argument: return 400;
    case status_code::not_found: return 404;
    case status_code::already_exists: return 409;
    case status_code::failed_precondition: return 409;
    case status_code::too_large: return 413;
    case status_code::resource_exhausted: return 429;
    case status_code::unavailable: return 503;
    case status_code::corruption:
    case status_code::io_error:
    case status_code::internal: return 500;
    case status_code::unauthenticated: return 401;
    case status_code::permission_denied:
      return 403;
  }
  return 500;
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(shoal::to_string(code_)) + ": " + msg_;
}

}  // namespace shoal
