#include "shoal/cluster/catalog_sync.hpp"

#include "proto/shoal.pb.h"
#include "shoal/base/host_port.hpp"
#include "shoal/store/registry.hpp"
#include "store/catalog_proto.hpp"

namespace shoal {
namespace {

constexpr size_t max_field = 256;          // origin ids, tenant/model/label, sha, format
constexpr size_t max_note = 4096;
constexpr size_t max_signature = 64 * 1024;  // a model's inputs and outputs, as JSON
constexpr size_t max_frontier = 100000;    // origins: every node that ever made a change

status check_change(const catalog_change& c, size_t index) {
  auto bad = [&](const std::string& why) {
    return status::invalid_argument("catalog change " + std::to_string(index + 1) + ": " + why);
  };
  if (c.origin.empty() || c.origin.size() > max_field) return bad("no origin, or one too long");
  if (c.seq == 0) return bad("no seq");
  if (c.id.tenant.size() > max_field || c.id.model.size() > max_field) return bad("id too long");
  if (c.label.size() > max_field || c.snapshot.sha256.size() > max_field ||
      c.snapshot.format.size() > max_field || c.snapshot.note.size() > max_note ||
      c.snapshot.signature_json.size() > max_signature) {
    return bad("a field is too long");
  }
  if (status text = check_change_text(c); !text) return bad(text.message());
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

std::string encode_peer_request(const peer_request& r) {
  pb::PeerRequest p;
  if (r.what == peer_request::kind::fetch) {
    p.mutable_fetch()->set_sha256(r.sha256);
  } else if (r.what == peer_request::kind::infer) {
    p.set_infer(r.bytes);
  } else if (r.what == peer_request::kind::validate) {
    auto* s = p.mutable_validate();
    s->set_tenant(r.id.tenant);
    s->set_model(r.id.model);
    s->set_candidate(r.version);
    s->set_baseline(r.baseline);
    s->set_set_sha256(r.sha256);
  } else if (r.what == peer_request::kind::reserve) {
    auto* s = p.mutable_reserve();
    s->set_tenant(r.id.tenant);
    s->set_model(r.id.model);
    s->set_number(r.version);
    s->set_sha256(r.sha256);
  } else {
    auto* s = p.mutable_store();
    s->set_tenant(r.id.tenant);
    s->set_model(r.id.model);
    s->set_version(r.version);
    s->set_sha256(r.sha256);
    s->set_bytes(r.bytes);
  }
  return p.SerializeAsString();
}

result<peer_request> decode_peer_request(const std::string& payload) {
  pb::PeerRequest p;
  if (!p.ParseFromString(payload)) return status::invalid_argument("not a PeerRequest");
  auto is_sha = [](const std::string& s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  peer_request r;
  if (p.has_fetch()) {
    r.what = peer_request::kind::fetch;
    r.sha256 = p.fetch().sha256();
  } else if (p.has_store()) {
    r.what = peer_request::kind::store;
    const auto& s = p.store();
    r.id = model_id{s.tenant(), s.model()};
    if (!is_valid_id_part(r.id.tenant) || !is_valid_id_part(r.id.model)) {
      return status::invalid_argument("store request for an invalid model id");
    }
    r.version = s.version();
    r.sha256 = s.sha256();
    r.bytes = s.bytes();
  } else if (p.has_reserve()) {
    r.what = peer_request::kind::reserve;
    const auto& s = p.reserve();
    r.id = model_id{s.tenant(), s.model()};
    if (!is_valid_id_part(r.id.tenant) || !is_valid_id_part(r.id.model)) {
      return status::invalid_argument("reserve request for an invalid model id");
    }
    r.version = s.number();
    if (r.version == 0) return status::invalid_argument("reserve request for number 0");
    r.sha256 = s.sha256();
  } else if (p.has_validate()) {
    r.what = peer_request::kind::validate;
    const auto& s = p.validate();
    r.id = model_id{s.tenant(), s.model()};
    if (!is_valid_id_part(r.id.tenant) || !is_valid_id_part(r.id.model)) {
      return status::invalid_argument("validate request for an invalid model id");
    }
    r.version = s.candidate();
    r.baseline = s.baseline();
    if (r.version == 0) return status::invalid_argument("validate request for version 0");
    r.sha256 = s.set_sha256();
  } else if (p.what_case() == pb::PeerRequest::kInfer) {
    r.what = peer_request::kind::infer;
    r.bytes = p.infer();
    return r;
  } else {
    return status::invalid_argument("an empty PeerRequest");
  }
  if (!is_sha(r.sha256)) return status::invalid_argument("a sha256 that is not 64 hex digits");
  return r;
}

std::string encode_peer_reply(const peer_reply& r) {
  pb::PeerReply p;
  p.set_error(r.error);
  p.set_snapshot(r.snapshot);
  p.set_response(r.response);
  return p.SerializeAsString();
}

result<peer_reply> decode_peer_reply(const std::string& payload) {
  pb::PeerReply p;
  if (!p.ParseFromString(payload)) return status::invalid_argument("not a PeerReply");
  peer_reply r;
  r.error = p.error();
  r.snapshot = p.snapshot();
  r.response = p.response();
  return r;
}

}  // namespace shoal
