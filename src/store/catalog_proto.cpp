#include "store/catalog_proto.hpp"

namespace shoal {

namespace {

const char* action_text(label_action a) {
  return a == label_action::promote ? "promote" : "rollback";
}

}  // namespace

void change_to_proto(const catalog_change& c, pb::CatalogChange* out) {
  out->set_tenant(c.id.tenant);
  out->set_model(c.id.model);
  out->set_origin(c.origin);
  out->set_seq(c.seq);
  out->set_at_wall_ms(c.at.wall_ms);
  out->set_at_logical(c.at.logical);
  if (c.what == catalog_change::kind::add_snapshot) {
    out->set_kind(pb::CatalogChange::ADD_SNAPSHOT);
    pb::SnapshotInfo* s = out->mutable_snapshot();
    s->set_version(c.snapshot.version);
    s->set_sha256(c.snapshot.sha256);
    s->set_created_ms(c.snapshot.created_ms);
    s->set_size_bytes(c.snapshot.size_bytes);
    s->set_format(c.snapshot.format);
    s->set_note(c.snapshot.note);
  } else if (c.what == catalog_change::kind::join) {
    out->set_kind(pb::CatalogChange::JOIN);
  } else if (c.what == catalog_change::kind::grant) {
    out->set_kind(pb::CatalogChange::GRANT);
    out->set_to(c.to);
    out->mutable_snapshot()->set_sha256(c.snapshot.sha256);
  } else if (c.what == catalog_change::kind::hold || c.what == catalog_change::kind::release) {
    out->set_kind(c.what == catalog_change::kind::hold ? pb::CatalogChange::HOLD
                                                       : pb::CatalogChange::RELEASE);
    out->set_to(c.to);
  } else {
    out->set_kind(pb::CatalogChange::MOVE_LABEL);
    out->set_label(c.label);
    out->set_action(action_text(c.action));
    out->set_to(c.to);
    out->set_time_ms(c.time_ms);
  }
}

result<catalog_change> change_from_proto(const pb::CatalogChange& in) {
  catalog_change c;
  c.id = model_id{in.tenant(), in.model()};
  c.origin = in.origin();
  c.seq = in.seq();
  c.at = hlc_timestamp{in.at_wall_ms(), in.at_logical()};
  switch (in.kind()) {
    case pb::CatalogChange::ADD_SNAPSHOT: {
      c.what = catalog_change::kind::add_snapshot;
      const pb::SnapshotInfo& s = in.snapshot();
      c.snapshot.version = s.version();
      c.snapshot.sha256 = s.sha256();
      c.snapshot.created_ms = s.created_ms();
      c.snapshot.size_bytes = s.size_bytes();
      c.snapshot.format = s.format();
      c.snapshot.note = s.note();
      return c;
    }
    case pb::CatalogChange::JOIN:
      c.what = catalog_change::kind::join;
      return c;
    case pb::CatalogChange::GRANT:
      c.what = catalog_change::kind::grant;
      c.to = in.to();
      c.snapshot.sha256 = in.snapshot().sha256();
      return c;
    case pb::CatalogChange::HOLD:
    case pb::CatalogChange::RELEASE:
      c.what = in.kind() == pb::CatalogChange::HOLD ? catalog_change::kind::hold
                                                    : catalog_change::kind::release;
      c.to = in.to();
      return c;
    case pb::CatalogChange::MOVE_LABEL:
      c.what = catalog_change::kind::move_label;
      c.label = in.label();
      if (in.action() == "promote") {
        c.action = label_action::promote;
      } else if (in.action() == "rollback") {
        c.action = label_action::rollback;
      } else {
        return status::corruption("unknown label action '" + in.action().substr(0, 40) + "'");
      }
      c.to = in.to();
      c.time_ms = in.time_ms();
      return c;
    default:
      return status::corruption("unknown change kind " + std::to_string(in.kind()));
  }
}

}  // namespace shoal
