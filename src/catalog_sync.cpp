#include "shoal/catalog_sync.hpp"

#include "catalog_proto.hpp"
#include "proto/shoal.pb.h"
#include "shoal/zmq_client.hpp"

namespace shoal {
namespace {

constexpr size_t max_field = 256;          // origin ids, tenant/model/label, sha, format
constexpr size_t max_note = 4096;
constexpr size_t max_frontier = 100000;    // origins: every node that ever made a change

status check_change(const catalog_change& c, size_t index) {
  auto bad = [&](const std::string& why) {
    return status::invalid_argument("catalog change " + std::to_string(index + 1) + ": " + why);
  };
  if (c.origin.empty() || c.origin.size() > max_field) return bad("no origin, or one too long");
  if (c.seq == 0) return bad("no seq");
  if (c.id.tenant.size() > max_field || c.id.model.size() > max_field) return bad("id too long");
  if (c.label.size() > max_field || c.snapshot.sha256.size() > max_field ||
      c.snapshot.format.size() > max_field || c.snapshot.note.size() > max_note) {
    return bad("a field is too long");
  }
  return status::ok();
}

}  // namespace

std::string encode_catalog_sync(const catalog_sync_msg& m) {
  pb::CatalogSync s;
  s.set_from_address(m.from_address);
  for (const auto& c : m.changes) change_to_proto(c, s.add_changes());
  if (m.frontier) {
    s.set_has_frontier(true);
    for (const auto& [origin, seq] : *m.frontier) {
      auto* f = s.add_frontier();
      f->set_origin(origin);
      f->set_seq(seq);
    }
  }
  return s.SerializeAsString();
}

result<catalog_sync_msg> decode_catalog_sync(const std::string& payload) {
  pb::CatalogSync s;
  if (!s.ParseFromString(payload)) {
    return status::invalid_argument("the catalog payload is not a CatalogSync");
  }
  catalog_sync_msg m;
  if (!parse_host_port(s.from_address()).is_ok()) {
    return status::invalid_argument("the sender's address is not HOST:PORT");
  }
  m.from_address = s.from_address();
  if (static_cast<size_t>(s.changes_size()) > max_sync_changes) {
    return status::invalid_argument("a catalog sync carries " + std::to_string(s.changes_size()) +
                                    " changes; the limit is " + std::to_string(max_sync_changes));
  }
  for (int i = 0; i < s.changes_size(); ++i) {
    auto c = change_from_proto(s.changes(i));
    if (!c) {
      return status::invalid_argument("catalog change " + std::to_string(i + 1) + ": " +
                                      c.error().message());
    }
    SHOAL_RETURN_IF_ERROR(check_change(*c, static_cast<size_t>(i)));
    m.changes.push_back(std::move(*c));
  }
  if (s.has_frontier()) {
    if (static_cast<size_t>(s.frontier_size()) > max_frontier) {
      return status::invalid_argument("a catalog frontier of " +
                                      std::to_string(s.frontier_size()) + " origins");
    }
    catalog_frontier f;
    for (const auto& e : s.frontier()) {
      if (e.origin().empty() || e.origin().size() > max_field) {
        return status::invalid_argument("a frontier entry without a valid origin");
      }
      f[e.origin()] = e.seq();
    }
    m.frontier = std::move(f);
  }
  return m;
}

bool holds_more(const catalog_frontier& theirs, const catalog_frontier& ours) {
  for (const auto& [origin, seq] : theirs) {
    auto it = ours.find(origin);
    if (seq > (it == ours.end() ? 0 : it->second)) return true;
  }
  return false;
}

std::optional<catalog_sync_msg> sync_reply(const replicated_catalog& replica,
                                           const catalog_sync_msg& in, bool gap,
                                           const std::string& self_address) {
  catalog_sync_msg out;
  out.from_address = self_address;
  if (in.frontier) {
    out.changes = replica.missing_for(*in.frontier, max_sync_changes);
    if (holds_more(*in.frontier, replica.frontier())) out.frontier = replica.frontier();
  }
  if (gap) out.frontier = replica.frontier();
  if (out.changes.empty() && !out.frontier) return std::nullopt;
  return out;
}

}  // namespace shoal
