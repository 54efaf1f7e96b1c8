// tenants: API keys and per-tenant limits, the pure parts (access.hpp applies them to calls).
//
// Keys file (keys_file / --keys-file; reread on SIGHUP): one "KEY TENANT" or "KEY admin" per
// line, '#' starts a comment, blank lines are skipped. A key is 16 to 256 characters from
// [A-Za-z0-9._~+/=-]; a tenant is a model id's first part ([a-z0-9][a-z0-9_-]{0,63}). The word
// "admin" in the tenant column means an operator key (it reaches every tenant), so no tenant can
// be called "admin". The table keeps only SHA-256 digests of the keys.
//
// Limits (config: tenant_limits = ... for every tenant, tenant_limits.NAME = ... for one):
// "rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10240", any subset; 0, "unlimited"
// or absent means unlimited (burst absent: one second's worth of rate). rate and in_flight
// apply to inference requests (tenant_admission, at the front ends); models and stored_mb to
// pushes (check_push_limits, in the catalog actor). Over a limit is resource_exhausted
// (HTTP 429) naming the limit; other tenants are not affected.
//
// Time comes in as milliseconds on a monotonic clock the caller reads (tests pass numbers).
// Thread-safety: key_table and the functions are immutable/pure; tenant_admission is shared by
// the front-end threads (see its comment).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "shoal/base/status.hpp"

namespace shoal {

/// Who a request comes from.
struct principal {
  std::string tenant;  // empty for an admin
  bool admin = false;
  bool open = false;   // no keys file: every caller is an admin without a name
  std::string name{};  // the key's name (third field of its line), else "admin" or the tenant
  /// Returns who this is in records (who pushed a snapshot, who moved a label).
  std::string display_name() const { return !name.empty() ? name : admin ? "admin" : tenant; }
  /// Returns true if this principal may see and change models of `model_tenant`.
  bool may_access(const std::string& model_tenant) const {
    return admin || tenant == model_tenant;
  }
};

/// The keys of a keys file. Immutable once parsed; a reload builds a new table.
class key_table {
 public:
  /// Parses keys-file text; errors are invalid_argument naming `origin` and the line
  /// ("keys line 3: ..."); a key given twice names both lines.
  static result<key_table> parse(const std::string& text, const std::string& origin);
  /// Reads and parses `path`; an unreadable file is "cannot read keys file 'F': reason".
  static result<key_table> load_file(const std::string& path);

  /// Returns who `key` belongs to, or nullopt. Compares SHA-256 digests, so the time taken
  /// does not depend on how much of a wrong key matches a right one.
  std::optional<principal> find(std::string_view key) const;
  /// Returns the number of keys.
  size_t size() const { return by_digest_.size(); }
  /// Returns the number of distinct tenants with a key (admins not counted).
  size_t tenant_count() const { return tenants_; }
  /// Returns the number of admin keys.
  size_t admin_count() const { return admins_; }

 private:
  std::unordered_map<std::string, principal> by_digest_;  // SHA-256 of the key (raw bytes)
  size_t tenants_ = 0;
  size_t admins_ = 0;
};

/// Returns the key of an HTTP Authorization header value "Bearer KEY" (scheme in any case, one
/// or more spaces), or nullopt for anything else (empty, another scheme, no key).
std::optional<std::string_view> bearer_key(std::string_view authorization);

/// One tenant's limits; 0 means unlimited.
struct tenant_limits {
  double rate = 0;            // inference requests per second (token bucket refill); 0.001 to 1e9
  double burst = 0;           // bucket size, 1 to 1e9; 0: one second's worth, max(1, rate)
  uint32_t in_flight = 0;     // inference requests at once
  uint32_t models = 0;        // models the tenant may have
  uint64_t stored_bytes = 0;  // bytes of all its snapshots (configured in MiB: stored_mb)
};

/// Parses "rate=200/s burst=400 in_flight=64 models=1000 stored_mb=10240" (any subset and
/// order; rate with or without "/s"; "unlimited" for 0; plain decimal numbers). Unknown names,
/// bad or out-of-range numbers and a name given twice are invalid_argument naming the item.
result<tenant_limits> parse_tenant_limits(const std::string& text);

/// Renders limits in the syntax parse_tenant_limits reads ("unlimited" for 0), e.g.
/// "rate=200/s burst=400 in_flight=64 models=unlimited stored_mb=unlimited". Shows the burst in
/// force (an unset burst as max(1, rate)) and stored bytes rounded up to whole MiB, so reading
/// the text back limits exactly as `l` does for every `l` the parser can produce.
std::string to_string(const tenant_limits& l);

/// The limits of every tenant: a default and overrides by tenant.
struct limits_config {
  tenant_limits defaults;
  std::map<std::string, tenant_limits> by_tenant;
  /// Returns `tenant`'s limits.
  const tenant_limits& of(const std::string& tenant) const {
    auto it = by_tenant.find(tenant);
    return it == by_tenant.end() ? defaults : it->second;
  }
};

/// A token bucket on a clock the caller passes in (milliseconds). A clock that goes backwards
/// neither adds nor removes tokens. Not thread-safe (tenant_admission locks around it).
class token_bucket {
 public:
  /// Starts full. @pre rate_per_s > 0, burst >= 1
  token_bucket(double rate_per_s, double burst, int64_t now_ms);
  /// Takes a token if there is one at `now_ms` and returns true; false (nothing taken) otherwise.
  bool try_take(int64_t now_ms);
  /// Returns the milliseconds until a token is there (0 when one is), e.g. for Retry-After.
  int64_t wait_ms(int64_t now_ms) const;
  /// Returns true if the bucket holds `burst` tokens at `now_ms` (as good as a new bucket).
  bool full(int64_t now_ms) const;
  /// Takes new settings at `now_ms`, keeping the tokens it has (capped at the new burst).
  /// @pre rate_per_s > 0, burst >= 1
  void reset(double rate_per_s, double burst, int64_t now_ms);

 private:
  double tokens_at(int64_t now_ms) const;
  double rate_ = 1;
  double burst_ = 1;
  double tokens_ = 1;
  int64_t last_ms_ = 0;
};

/// Admission of inference requests by tenant: rate (token bucket) and in-flight limits.
/// Shared by every front-end thread. Each tenant's state has its own mutex, held for a few
/// arithmetic steps per request, so tenants never wait on each other (a striped lock would let
/// two busy tenants share a stripe); the map of tenants has a mutex too, held only to find or
/// add a tenant's state. (Messages to an actor would cost more than the inference they admit.)
/// A tenant's state (~200 bytes) is made on its first request. Idle states (nothing in flight,
/// bucket full: as good as new) are dropped whenever the map reaches twice its size after the
/// last sweep (at least 1024), so names in requests cannot grow memory without bound.
class tenant_admission {
  struct tenant_state;

 public:
  /// Applies `cfg` to every tenant; a tenant without an override gets `cfg.defaults`.
  explicit tenant_admission(limits_config cfg);
  ~tenant_admission();
  tenant_admission(const tenant_admission&) = delete;
  tenant_admission& operator=(const tenant_admission&) = delete;

  /// Counts one request of a tenant in flight until destroyed or assigned over. Movable; may
  /// outlive the tenant_admission that issued it. A default-constructed ticket counts nothing.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& other) noexcept = default;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

   private:
    friend class tenant_admission;
    explicit ticket(std::shared_ptr<tenant_state> s) : s_(std::move(s)) {}
    std::shared_ptr<tenant_state> s_;
  };

  /// Replaces the limits at `now_ms`; tenants keep their tokens (up to the new burst) and
  /// in-flight counts, and take the new rate, burst and in_flight limit from now on.
  void reconfigure(limits_config cfg, int64_t now_ms);
  /// Which limit refused a request.
  enum class limit { in_flight, rate };
  /// Admits one inference request of `tenant` at `now_ms` and returns its ticket, or
  /// resource_exhausted naming the limit it is over (in_flight first, then rate; also in
  /// `*refused_by` when given). A refused request takes no token.
  result<ticket> admit(const std::string& tenant, int64_t now_ms, limit* refused_by = nullptr);
  /// Returns the tenant's requests in flight now.
  uint32_t in_flight(const std::string& tenant) const;
  /// Returns how many tenants have state now (for tests and metrics).
  size_t tracked_tenants() const;

 private:
  std::shared_ptr<tenant_state> state_of(const std::string& tenant, int64_t now_ms);
  void drop_idle(int64_t now_ms);

  mutable std::mutex mutex_;  // guards cfg_, states_ and prune_at_ (lookups and inserts only)
  limits_config cfg_;
  std::unordered_map<std::string, std::shared_ptr<tenant_state>> states_;
  size_t prune_at_;  // states_ size at which idle states are dropped (amortised O(1) per insert)
};

/// Checks a push of `bytes` to a model of `tenant` (`new_model`: the model does not exist yet)
/// against its limits, given that it has `models_now` models and `stored_now` bytes stored.
/// Returns ok or resource_exhausted naming the limit and who can raise it.
status check_push_limits(const tenant_limits& l, const std::string& tenant, bool new_model,
                         size_t models_now, uint64_t stored_now, uint64_t bytes);

}  // namespace shoal
