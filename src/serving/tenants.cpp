#include "shoal/serving/tenants.hpp"

#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include "shoal/base/model_id.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {
namespace {

constexpr size_t min_key_length = 16;
constexpr size_t max_key_length = 256;
// A keys file holds one short line per key; anything this big is the wrong file (or /dev/zero).
constexpr size_t max_keys_file_bytes = size_t(16) << 20;

constexpr uint64_t mib = uint64_t(1) << 20;
constexpr double min_rate = 0.001;  // one request per 1000 s; below that, wait_ms is meaningless
constexpr double max_rate = 1e9;
constexpr double max_burst = 1e9;
constexpr uint64_t max_stored_mb = uint64_t(1) << 40;  // 1 EiB; << 20 still fits in 64 bits
// Token arithmetic in doubles: a token that is there "exactly" at some millisecond may come out
// as 0.9999999999 or 1.0000000001. try_take accepts this much less than a token; wait_ms aims at
// half of it, so try_take(now + wait_ms(now)) succeeds and no wait is a millisecond too long.
constexpr double token_slack = 1e-9;

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("._~+/=-", c) != nullptr;
}

std::string digest(std::string_view key) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

// Keeps error messages one readable line whatever the input holds.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return "'" + out + (s.size() > 40 ? "...'" : "'");
}

// The shortest plain decimal that reads back as `v` ("200", "2.5"; never "2e+02").
std::string number_text(double v) {
  char buf[512];  // fixed notation of the largest double is ~310 digits
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return r.ec == std::errc() ? std::string(buf, r.ptr) : std::to_string(v);
}

// "123 bytes" below 1 MiB, else MiB to one decimal rounded down ("9.9 MB").
std::string size_text(uint64_t bytes) {
  if (bytes < mib) return std::to_string(bytes) + " bytes";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MB", std::floor(double(bytes) / double(mib) * 10) / 10);
  return buf;
}

// Whole MiB, rounded up so that a limit under 1 MiB never shows as 0 (unlimited).
uint64_t mib_up(uint64_t bytes) { return bytes / mib + (bytes % mib != 0 ? 1 : 0); }

// [0-9]+ or [0-9]+.[0-9]+: no signs, exponents, hex or "inf" in a config file.
bool is_plain_decimal(const std::string& s) {
  const size_t dot = s.find('.');
  auto digits = [&](size_t from, size_t to) {
    return to > from && std::all_of(s.begin() + from, s.begin() + to,
                                    [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dot == std::string::npos) return digits(0, s.size());
  return digits(0, dot) && digits(dot + 1, s.size());
}

double burst_of(const tenant_limits& l) { return l.burst > 0 ? l.burst : std::max(1.0, l.rate); }

status cannot_read_keys(const std::string& path, const std::string& reason) {
  return status::invalid_argument("cannot read keys file '" + path + "': " + reason);
}

}  // namespace

// ---- keys ----------------------------------------------------------------------------------

result<key_table> key_table::parse(const std::string& text, const std::string& origin) {
  key_table t;
  std::map<std::string, int> line_of;  // digest -> line, for duplicate messages
  std::set<std::string> tenants;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = origin + " line " + std::to_string(number) + ": ";
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty()) continue;
    if (f.size() != 2 && f.size() != 3) {
      return status::invalid_argument(
          where + "expected 'KEY TENANT [NAME]' or 'KEY admin [NAME]', got " +
          std::to_string(f.size()) + " field" + (f.size() == 1 ? "" : "s"));
    }
    // Key errors never quote the key: it is a secret and the message goes to a log.
    const std::string& key = f[0];
    if (key.size() < min_key_length || key.size() > max_key_length) {
      return status::invalid_argument(where + "a key must be " + std::to_string(min_key_length) +
                                      " to " + std::to_string(max_key_length) +
                                      " characters long, this one has " +
                                      std::to_string(key.size()));
    }
    if (!std::all_of(key.begin(), key.end(), is_key_char)) {
      return status::invalid_argument(where + "a key may hold only A-Z a-z 0-9 and ._~+/=-");
    }
    principal who;
    if (f[1] == "admin") {
      who.admin = true;
    } else if (!is_valid_id_part(f[1])) {
      return status::invalid_argument(where + "invalid tenant " + shown(f[1]) +
                                      ": a tenant name must match [a-z0-9][a-z0-9_-]{0,63}");
    } else {
      who.tenant = f[1];
    }
    if (f.size() == 3) {
      // The key's name: who pushed a snapshot or moved a label, in the catalog's records.
      if (!is_valid_label(f[2])) {
        return status::invalid_argument(where + "invalid key name " + shown(f[2]) +
                                        ": a key name must match [a-z0-9][a-z0-9_.-]{0,63}");
      }
      who.name = f[2];
    }
    std::string d = digest(key);
    auto [it, added] = line_of.emplace(d, number);
    if (!added) {
      return status::invalid_argument(where + "the same key as line " +
                                      std::to_string(it->second) + " (each key names one tenant)");
    }
    if (who.admin) {
      ++t.admins_;
    } else {
      tenants.insert(who.tenant);
    }
    t.by_digest_.emplace(std::move(d), std::move(who));
  }
  t.tenants_ = tenants.size();
  return t;
}

result<key_table> key_table::load_file(const std::string& path) {
  // POSIX read rather than ifstream: ifstream opens a directory and then reads "nothing", which
  // would replace the keys in force with an empty table on SIGHUP and lock every client out.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read_keys(path, std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return cannot_read_keys(path, std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_keys_file_bytes) {
      ::close(fd);
      return cannot_read_keys(path, "larger than 16 MiB; is it the right file?");
    }
  }
  ::close(fd);
  return parse(text, path);
}

std::optional<principal> key_table::find(std::string_view key) const {
  auto it = by_digest_.find(digest(key));
  if (it == by_digest_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> bearer_key(std::string_view v) {
  constexpr std::string_view scheme = "bearer";
  if (v.size() <= scheme.size()) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(v[i])) != scheme[i]) return std::nullopt;
  }
  v.remove_prefix(scheme.size());
  if (v.front() != ' ') return std::nullopt;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return v;
}

// ---- limits --------------------------------------------------------------------------------

result<tenant_limits> parse_tenant_limits(const std::string& text) {
  tenant_limits l;
  std::set<std::string> seen;
  bool burst_unlimited = false;
  std::istringstream in(text);
  for (std::string item; in >> item;) {
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      return status::invalid_argument("expected NAME=VALUE, got " + shown(item));
    }
    const std::string name = item.substr(0, eq);
    std::string value = item.substr(eq + 1);
    if (name != "rate" && name != "burst" && name != "in_flight" && name != "models" &&
        name != "stored_mb") {
      return status::invalid_argument("unknown limit " + shown(name) +
                                      " (known: rate, burst, in_flight, models, stored_mb)");
    }
    if (!seen.insert(name).second) {
      return status::invalid_argument("limit " + name + " is given twice; keep one");
    }
    if (name == "rate" && value.size() > 2 && value.compare(value.size() - 2, 2, "/s") == 0) {
      value.resize(value.size() - 2);
    }
    const bool unlimited = value == "unlimited";
    if (unlimited) value = "0";
    if (!is_plain_decimal(value)) {
      return status::invalid_argument("limit " + name + " needs a number of 0 or more, got " +
                                      shown(value));
    }
    if (name == "rate" || name == "burst") {
      const double v = std::strtod(value.c_str(), nullptr);
      if (name == "rate") {
        if (v != 0 && !(v >= min_rate && v <= max_rate)) {
          return status::invalid_argument(
              "limit rate needs 0 (unlimited) or 0.001 to 1000000000 requests per second, got " +
              shown(value));
        }
        l.rate = v;
      } else {
        if (v != 0 && !(v >= 1 && v <= max_burst)) {
          return status::invalid_argument(
              "limit burst needs 1 to 1000000000 requests (leave it out for one second's worth "
              "of rate), got " + shown(value));
        }
        l.burst = v;
        burst_unlimited = unlimited;
      }
      continue;
    }
    const uint64_t max = name == "stored_mb" ? max_stored_mb : UINT32_MAX;
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n > max) {
      return status::invalid_argument("limit " + name + " needs a whole number up to " +
                                      std::to_string(max) + ", got " + shown(value));
    }
    if (name == "in_flight") {
      l.in_flight = static_cast<uint32_t>(n);
    } else if (name == "models") {
      l.models = static_cast<uint32_t>(n);
    } else {
      l.stored_bytes = n * mib;
    }
  }
  // With a rate, burst 0 means one second's worth, not unlimited: refuse the misleading word.
  if (burst_unlimited && l.rate > 0) {
    return status::invalid_argument(
        "limit burst=unlimited needs rate=unlimited (leave burst out for one second's worth of "
        "rate)");
  }
  return l;
}

std::string to_string(const tenant_limits& l) {
  auto count = [](uint64_t v) { return v == 0 ? std::string("unlimited") : std::to_string(v); };
  const std::string burst = l.rate > 0    ? number_text(burst_of(l))
                            : l.burst > 0 ? number_text(l.burst)
                                          : std::string("unlimited");
  return "rate=" + (l.rate > 0 ? number_text(l.rate) + "/s" : std::string("unlimited")) +
         " burst=" + burst + " in_flight=" + count(l.in_flight) + " models=" + count(l.models) +
         " stored_mb=" + count(mib_up(l.stored_bytes));
}

// ---- token bucket --------------------------------------------------------------------------

token_bucket::token_bucket(double rate_per_s, double burst, int64_t now_ms)
    : rate_(rate_per_s), burst_(burst), tokens_(burst), last_ms_(now_ms) {}

double token_bucket::tokens_at(int64_t now_ms) const {
  if (now_ms <= last_ms_) return tokens_;
  return std::min(burst_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
}

bool token_bucket::try_take(int64_t now_ms) {
  tokens_ = tokens_at(now_ms);
  last_ms_ = std::max(last_ms_, now_ms);
  if (tokens_ < 1 - token_slack) return false;
  tokens_ = std::max(0.0, tokens_ - 1);
  return true;
}

int64_t token_bucket::wait_ms(int64_t now_ms) const {
  const double tokens = tokens_at(now_ms);
  if (tokens >= 1 - token_slack) return 0;
  const double ms = std::ceil((1 - token_slack / 2 - tokens) * 1000.0 / rate_);
  constexpr double cap = 1e15;  // ~30,000 years; keeps the cast defined for any rate
  return static_cast<int64_t>(std::min(ms, cap));
}

bool token_bucket::full(int64_t now_ms) const { return tokens_at(now_ms) >= burst_ - token_slack; }

void token_bucket::reset(double rate_per_s, double burst, int64_t now_ms) {
  tokens_ = tokens_at(now_ms);
  last_ms_ = std::max(last_ms_, now_ms);
  rate_ = rate_per_s;
  burst_ = burst;
  tokens_ = std::min(tokens_, burst_);
}

// ---- admission -----------------------------------------------------------------------------

namespace {
// Below this many tracked tenants nothing is dropped: small deployments never sweep.
constexpr size_t min_prune_at = 1024;
}  // namespace

struct tenant_admission::tenant_state {
  std::mutex mutex;  // guards everything below
  tenant_limits limits;
  std::optional<token_bucket> bucket;  // set when limits.rate > 0
  uint32_t in_flight = 0;

  void apply(const tenant_limits& l, int64_t now_ms) {
    limits = l;
    if (l.rate <= 0) {
      bucket.reset();
    } else if (bucket) {
      bucket->reset(l.rate, burst_of(l), now_ms);
    } else {
      bucket.emplace(l.rate, burst_of(l), now_ms);
    }
  }
};

tenant_admission::tenant_admission(limits_config cfg)
    : cfg_(std::move(cfg)), prune_at_(min_prune_at) {}
tenant_admission::~tenant_admission() = default;

tenant_admission::ticket& tenant_admission::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    ticket dropped(std::move(*this));  // releases the request this ticket counted
    s_ = std::move(other.s_);
  }
  return *this;
}

tenant_admission::ticket::~ticket() {
  if (!s_) return;
  std::lock_guard<std::mutex> lock(s_->mutex);
  --s_->in_flight;
}

// Called with mutex_ held. A state is dropped only when the map holds the sole reference (no
// ticket, no admit() between lookup and lock: both copy the pointer under mutex_) and its
// bucket is full, i.e. when it is indistinguishable from the fresh state that would replace it.
void tenant_admission::drop_idle(int64_t now_ms) {
  for (auto it = states_.begin(); it != states_.end();) {
    bool idle = it->second.use_count() == 1;
    if (idle) {
      std::lock_guard<std::mutex> lock(it->second->mutex);
      idle = !it->second->bucket || it->second->bucket->full(now_ms);
    }
    it = idle ? states_.erase(it) : std::next(it);
  }
  prune_at_ = std::max(min_prune_at, 2 * states_.size());
}

std::shared_ptr<tenant_admission::tenant_state> tenant_admission::state_of(
    const std::string& tenant, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = states_.find(tenant); it != states_.end()) return it->second;
  if (states_.size() >= prune_at_) drop_idle(now_ms);
  auto s = std::make_shared<tenant_state>();
  s->apply(cfg_.of(tenant), now_ms);
  states_.emplace(tenant, s);
  return s;
}

void tenant_admission::reconfigure(limits_config cfg, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  cfg_ = std::move(cfg);
  for (auto& [name, state] : states_) {
    std::lock_guard<std::mutex> tenant_lock(state->mutex);
    state->apply(cfg_.of(name), now_ms);
  }
}

result<tenant_admission::ticket> tenant_admission::admit(const std::string& tenant,
                                                         int64_t now_ms, limit* refused_by) {
  auto s = state_of(tenant, now_ms);
  std::lock_guard<std::mutex> lock(s->mutex);
  const tenant_limits& l = s->limits;
  if (l.in_flight > 0 && s->in_flight >= l.in_flight) {
    if (refused_by != nullptr) *refused_by = limit::in_flight;
    return status::resource_exhausted("tenant " + tenant + " has " + std::to_string(s->in_flight) +
                                      " requests in flight, its limit (in_flight=" +
                                      std::to_string(l.in_flight) + ")");
  }
  if (s->bucket && !s->bucket->try_take(now_ms)) {
    if (refused_by != nullptr) *refused_by = limit::rate;
    return status::resource_exhausted(
        "tenant " + tenant + " is over its request rate (" + number_text(l.rate) +
        "/s, burst " + number_text(burst_of(l)) + "); retry in " +
        std::to_string(std::max<int64_t>(1, s->bucket->wait_ms(now_ms))) + " ms");
  }
  ++s->in_flight;
  return ticket(std::move(s));
}

uint32_t tenant_admission::in_flight(const std::string& tenant) const {
  std::shared_ptr<tenant_state> s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = states_.find(tenant);
    if (it == states_.end()) return 0;
    s = it->second;
  }
  std::lock_guard<std::mutex> lock(s->mutex);
  return s->in_flight;
}

size_t tenant_admission::tracked_tenants() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return states_.size();
}

// ---- pushes --------------------------------------------------------------------------------

status check_push_limits(const tenant_limits& l, const std::string& tenant, bool new_model,
                         size_t models_now, uint64_t stored_now, uint64_t bytes) {
  if (new_model && l.models > 0 && models_now >= l.models) {
    return status::resource_exhausted(
        "tenant " + tenant + " has " + std::to_string(models_now) + " models, its limit (models=" +
        std::to_string(l.models) + "); ask an operator to raise tenant_limits." + tenant);
  }
  // Written without stored_now + bytes, which could wrap around and pass.
  if (l.stored_bytes > 0 && (bytes > l.stored_bytes || stored_now > l.stored_bytes - bytes)) {
    return status::resource_exhausted(
        "tenant " + tenant + " stores " + size_text(stored_now) + "; a push of " +
        size_text(bytes) + " would pass its limit (stored_mb=" +
        std::to_string(mib_up(l.stored_bytes)) + "); ask an operator to raise tenant_limits." +
        tenant);
  }
  return status::ok();
}

}  // namespace shoal
