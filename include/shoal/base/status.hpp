// status and result<T>: how every core function reports failure (no exceptions cross module
// boundaries). Modelled on LevelDB's Status: named factories, free on the success path.
// Thread-safety: plain values; copy freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace shoal {

/// What went wrong, coarse enough to map onto HTTP codes and the protobuf error reply.
enum class status_code : uint8_t {
  ok = 0,
  invalid_argument,     // the caller's input is wrong (HTTP 400)
  not_found,            // no such model, version or label (HTTP 404)
  already_exists,       // (HTTP 409)
  failed_precondition,  // e.g. nothing to roll back to (HTTP 409)
  too_large,            // a body or file over a limit (HTTP 413)
  resource_exhausted,   // overloaded, over quota (HTTP 429)
  unavailable,          // starting, draining, timed out (HTTP 503)
  corruption,           // stored bytes fail their checksum (HTTP 500)
  io_error,             // the disk failed (HTTP 500)
  internal,             // a bug (HTTP 500)
  unauthenticated,      // no API key, or one the node does not know (HTTP 401)
  permission_denied,    // a valid key that may not do this (HTTP 403)
};

/// Returns a short lower-case name for `c` ("invalid_argument").
const char* to_string(status_code c);

/// Returns the HTTP status code that reports `c` to a client.
int http_status(status_code c);

class status {
 public:
  /// Returns success.
  status() = default;

  static status ok() { return status(); }
  static status invalid_argument(std::string msg) { return {status_code::invalid_argument, std::move(msg)}; }
  static status not_found(std::string msg) { return {status_code::not_found, std::move(msg)}; }
  static status already_exists(std::string msg) { return {status_code::already_exists, std::move(msg)}; }
  static status failed_precondition(std::string msg) { return {status_code::failed_precondition, std::move(msg)}; }
  static status too_large(std::string msg) { return {status_code::too_large, std::move(msg)}; }
  static status resource_exhausted(std::string msg) { return {status_code::resource_exhausted, std::move(msg)}; }
  static status unavailable(std::string msg) { return {status_code::unavailable, std::move(msg)}; }
  static status corruption(std::string msg) { return {status_code::corruption, std::move(msg)}; }
  static status io_error(std::string msg) { return {status_code::io_error, std::move(msg)}; }
  static status unauthenticated(std::string msg) { return {status_code::unauthenticated, std::move(msg)}; }
  static status internal(std::string msg) { return {status_code::internal, std::move(msg)}; }
  static status permission_denied(std::string msg) {
    return {status_code::permission_denied, std::move(msg)};
  }

  status(status_code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  /// Returns true on success.
  bool is_ok() const { return code_ == status_code::ok; }
  explicit operator bool() const { return is_ok(); }
  status_code code() const { return code_; }
  /// Returns the human-readable message (empty on success).
  const std::string& message() const { return msg_; }
  /// Returns "ok" or "<code>: <message>".
  std::string to_string() const;

  friend bool operator==(const status& a, const status& b) { return a.code_ == b.code_ && a.msg_ == b.msg_; }

 private:
  status_code code_ = status_code::ok;
  std::string msg_;
};

/// A value or the status that explains why there is none.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(status err) : v_(std::move(err)) {}  // NOLINT: implicit by design
  /// @pre !err.is_ok()

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  /// @pre is_ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  /// Returns the error, or ok() when there is a value.
  status error() const { return is_ok() ? status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, status> v_;
};

}  // namespace shoal

/// Returns from the enclosing function when `expr` (a status) is not ok.
#define SHOAL_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::shoal::status shoal_status_ = (expr);      \
    if (!shoal_status_.is_ok()) return shoal_status_; \
  } while (false)
