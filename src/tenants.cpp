#include "shoal/tenants.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "shoal/model_id.hpp"

namespace shoal {
namespace {

constexpr size_t min_key_length = 16;
constexpr size_t max_key_length = 256;

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("._~+/=-", c) != nullptr;
}

std::string digest(std::string_view key) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return "'" + out + (s.size() > 40 ? "...'" : "'");
}

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

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
    if (f.size() != 2) {
      return status::invalid_argument(where + "expected 'KEY TENANT' or 'KEY admin', got " +
                                      std::to_string(f.size()) + " field" +
                                      (f.size() == 1 ? "" : "s"));
    }
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
  std::ifstream file(path);
  if (!file) {
    return status::invalid_argument("cannot read keys file '" + path +
                                    "': " + std::strerror(errno));
  }
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return status::invalid_argument("cannot read keys file '" + path + "'");
  return parse(text.str(), path);
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
  if (v.empty() || v.find(' ') != std::string_view::npos) return std::nullopt;
  return v;
}

result<tenant_limits> parse_tenant_limits(const std::string& text) {
  tenant_limits l;
  std::istringstream in(text);
  for (std::string item; in >> item;) {
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      return status::invalid_argument("expected NAME=VALUE, got '" + item + "'");
    }
    const std::string name = item.substr(0, eq);
    std::string value = item.substr(eq + 1);
    if (name == "rate" && value.size() > 2 && value.compare(value.size() - 2, 2, "/s") == 0) {
      value.resize(value.size() - 2);
    }
    if (value == "unlimited") value = "0";
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    const bool whole = !value.empty() && end == value.c_str() + value.size() && errno == 0;
    if (!whole || !std::isfinite(v) || v < 0) {
      return status::invalid_argument("limit " + name + " needs a number of 0 or more, got '" +
                                      value + "'");
    }
    auto integer = [&](uint64_t max) -> result<uint64_t> {
      if (v != std::floor(v) || v > double(max)) {
        return status::invalid_argument("limit " + name + " needs a whole number up to " +
                                        std::to_string(max) + ", got '" + value + "'");
      }
      return static_cast<uint64_t>(v);
    };
    if (name == "rate") {
      l.rate = v;
    } else if (name == "burst") {
      l.burst = v;
    } else if (name == "in_flight") {
      auto n = integer(UINT32_MAX);
      if (!n) return n.error();
      l.in_flight = static_cast<uint32_t>(*n);
    } else if (name == "models") {
      auto n = integer(UINT32_MAX);
      if (!n) return n.error();
      l.models = static_cast<uint32_t>(*n);
    } else if (name == "stored_mb") {
      auto n = integer(uint64_t(1) << 40);
      if (!n) return n.error();
      l.stored_bytes = *n << 20;
    } else {
      return status::invalid_argument("unknown limit '" + name +
                                      "' (known: rate, burst, in_flight, models, stored_mb)");
    }
  }
  return l;
}

std::string to_string(const tenant_limits& l) {
  auto or_unlimited = [](double v, const std::string& text) {
    return v == 0 ? std::string("unlimited") : text;
  };
  return "rate=" + or_unlimited(l.rate, number_text(l.rate) + "/s") +
         " burst=" + or_unlimited(l.burst, number_text(l.burst)) +
         " in_flight=" + or_unlimited(l.in_flight, std::to_string(l.in_flight)) +
         " models=" + or_unlimited(l.models, std::to_string(l.models)) +
         " stored_mb=" + or_unlimited(double(l.stored_bytes), std::to_string(l.stored_bytes >> 20));
}

// ---- token bucket ------------------------------------------------------------------------------

token_bucket::token_bucket(double rate_per_s, double burst, int64_t now_ms)
    : rate_(rate_per_s), burst_(burst), tokens_(burst), last_ms_(now_ms) {}

void token_bucket::refill(int64_t now_ms) {
  if (now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
    last_ms_ = now_ms;
  }
}

bool token_bucket::try_take(int64_t now_ms) {
  refill(now_ms);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

int64_t token_bucket::wait_ms(int64_t now_ms) const {
  double tokens = tokens_;
  if (now_ms > last_ms_) tokens = std::min(burst_, tokens + rate_ * double(now_ms - last_ms_) / 1000.0);
  if (tokens >= 1) return 0;
  return static_cast<int64_t>(std::ceil((1 - tokens) * 1000.0 / rate_));
}

void token_bucket::reset(double rate_per_s, double burst, int64_t now_ms) {
  refill(now_ms);
  rate_ = rate_per_s;
  burst_ = burst;
  tokens_ = std::min(tokens_, burst_);
}

// ---- admission ---------------------------------------------------------------------------------

namespace {
double burst_of(const tenant_limits& l) { return l.burst > 0 ? l.burst : std::max(1.0, l.rate); }
}  // namespace

struct tenant_admission::tenant_state {
  std::mutex mutex;  // guards everything below
  std::string name;
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

tenant_admission::tenant_admission(limits_config cfg) : cfg_(std::move(cfg)) {}
tenant_admission::~tenant_admission() = default;

tenant_admission::ticket& tenant_admission::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    ticket dropped(std::move(*this));
    s_ = std::move(other.s_);
  }
  return *this;
}

tenant_admission::ticket::~ticket() {
  if (!s_) return;
  std::lock_guard<std::mutex> lock(s_->mutex);
  --s_->in_flight;
}

std::shared_ptr<tenant_admission::tenant_state> tenant_admission::state_of(
    const std::string& tenant, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = states_[tenant];
  if (!slot) {
    slot = std::make_shared<tenant_state>();
    slot->name = tenant;
    slot->apply(cfg_.of(tenant), now_ms);
  }
  return slot;
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
                                                         int64_t now_ms) {
  auto s = state_of(tenant, now_ms);
  std::lock_guard<std::mutex> lock(s->mutex);
  const tenant_limits& l = s->limits;
  if (l.in_flight > 0 && s->in_flight >= l.in_flight) {
    return status::resource_exhausted("tenant " + tenant + " has " + std::to_string(s->in_flight) +
                                      " requests in flight, its limit (in_flight=" +
                                      std::to_string(l.in_flight) + ")");
  }
  if (s->bucket && !s->bucket->try_take(now_ms)) {
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

status check_push_limits(const tenant_limits& l, const std::string& tenant, bool new_model,
                         size_t models_now, uint64_t stored_now, uint64_t bytes) {
  if (new_model && l.models > 0 && models_now >= l.models) {
    return status::resource_exhausted(
        "tenant " + tenant + " has " + std::to_string(models_now) + " models, its limit (models=" +
        std::to_string(l.models) + "); ask an operator to raise tenant_limits." + tenant);
  }
  if (l.stored_bytes > 0 && stored_now + bytes > l.stored_bytes) {
    return status::resource_exhausted(
        "tenant " + tenant + " stores " + std::to_string(stored_now >> 20) + " MB; " +
        std::to_string(bytes) + " more bytes would pass its limit (stored_mb=" +
        std::to_string(l.stored_bytes >> 20) + "); ask an operator to raise tenant_limits." +
        tenant);
  }
  return status::ok();
}

}  // namespace shoal
