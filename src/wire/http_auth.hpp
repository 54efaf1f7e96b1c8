// http_auth: who sent an HTTP request, for the two front ends that answer over HTTP (the V2 API
// in front_ends.cpp and the console). Private to wire; gRPC reads its metadata the same way in
// grpc_front_end.cpp.
#pragma once

#include <optional>
#include <string_view>

#include "shoal/serving/front_door.hpp"
#include "shoal/serving/tenants.hpp"
#include "shoal/wire/http_server.hpp"

namespace shoal {

/// Returns the caller whose Bearer key `req`'s Authorization header carries, as `door` knows it
/// (no header: whatever `door` makes of a request without a key). Otherwise unauthenticated,
/// saying how to send a key; the front end answers that with 401 and `WWW-Authenticate: Bearer`.
inline result<principal> http_caller(const front_door& door, const http_request& req) {
  std::optional<std::string_view> key;
  if (req.has_authorization) {
    key = bearer_key(req.authorization);
    if (!key) return status::unauthenticated("the Authorization header must be 'Bearer KEY'");
  }
  return door.authenticate(key, "an 'Authorization: Bearer KEY' header");
}

}  // namespace shoal
