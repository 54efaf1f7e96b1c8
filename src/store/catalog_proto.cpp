#include "store/catalog_proto.hpp"

namespace shoal {

namespace {

const char* action_text(label_action a) {
  return a == label_action::promote ? "promote" : "rollback";
}

}  // namespace

void snapshot_to_proto(const snapshot_info& s, pb::SnapshotInfo* out) {
  out->set_version(s.version);
  out->set_sha256(s.sha256);
  out->set_created_ms(s.created_ms);
  out->set_size_bytes(s.size_bytes);
  out->set_format(s.format);
  out->set_note(s.note);
  out->set_user(s.user);
  out->set_pushed_with(s.pushed_with);
  for (const auto& [k, v] : s.tags) (*out->mutable_tags())[k] = v;
  out->set_metrics_json(s.metrics_json);
  out->set_source(s.source);
  out->set_signature_json(s.signature_json);
}

snapshot_info snapshot_from_proto(const pb::SnapshotInfo& in) {
  snapshot_info s;
  s.version = in.version();
  s.sha256 = in.sha256();
  s.created_ms = in.created_ms();
  s.size_bytes = in.size_bytes();
  s.format = in.format();
  s.note = in.note();
  s.user = in.user();
  s.pushed_with = in.pushed_with();
  s.tags.insert(in.tags().begin(), in.tags().end());
  s.metrics_json = in.metrics_json();
  s.source = in.source();
  s.signature_json = in.signature_json();
  return s;
}

void set_to_proto(const validation_set_info& s, pb::ValidationSetInfo* out) {
  out->set_number(s.number);
  out->set_sha256(s.sha256);
  out->set_size_bytes(s.size_bytes);
  out->set_examples(s.examples);
  out->set_created_ms(s.created_ms);
  out->set_user(s.user);
}

validation_set_info set_from_proto(const pb::ValidationSetInfo& in) {
  validation_set_info s;
  s.number = in.number();
  s.sha256 = in.sha256();
  s.size_bytes = in.size_bytes();
  s.examples = in.examples();
  s.created_ms = in.created_ms();
  s.user = in.user();
  return s;
}

void report_to_proto(const validation_report_info& r, pb::ValidationReport* out) {
  out->set_candidate(r.candidate);
  out->set_baseline(r.baseline);
  out->set_set_number(r.set_number);
  out->set_set_sha256(r.set_sha256);
  out->set_report_json(r.report_json);
  out->set_passed(r.passed);
  out->set_verdict(r.verdict);
  out->set_forced(r.forced);
  out->set_by(r.by);
  out->set_time_ms(r.time_ms);
  out->set_ran_on(r.ran_on);
}

validation_report_info report_from_proto(const pb::ValidationReport& in) {
  validation_report_info r;
  r.candidate = in.candidate();
  r.baseline = in.baseline();
  r.set_number = in.set_number();
  r.set_sha256 = in.set_sha256();
  r.report_json = in.report_json();
  r.passed = in.passed();
  r.verdict = in.verdict();
  r.forced = in.forced();
  r.by = in.by();
  r.time_ms = in.time_ms();
  r.ran_on = in.ran_on();
  return r;
}

void trial_to_proto(const trial_info& t, pb::TrialInfo* out) {
  out->set_mode(t.what == trial_info::mode::shadow   ? "shadow"
                : t.what == trial_info::mode::canary ? "canary"
                : t.what == trial_info::mode::watch  ? "watch"
                                                     : "");
  out->set_watched(t.watched);
  out->set_until_ms(t.until_ms);
  out->set_version(t.version);
  out->set_share_ppm(t.share_ppm);
  out->set_started_ms(t.started_ms);
  out->set_by(t.by);
}

result<trial_info> trial_from_proto(const pb::TrialInfo& in) {
  trial_info t;
  if (in.mode() == "shadow") {
    t.what = trial_info::mode::shadow;
  } else if (in.mode() == "canary") {
    t.what = trial_info::mode::canary;
  } else if (in.mode() == "watch") {
    t.what = trial_info::mode::watch;
  } else if (!in.mode().empty()) {
    return status::corruption("unknown trial mode '" + in.mode().substr(0, 40) + "'");
  }
  t.version = in.version();
  t.share_ppm = in.share_ppm();
  t.started_ms = in.started_ms();
  t.by = in.by();
  t.watched = in.watched();
  t.until_ms = in.until_ms();
  return t;
}

void change_to_proto(const catalog_change& c, pb::CatalogChange* out) {
  out->set_tenant(c.id.tenant);
  out->set_model(c.id.model);
  out->set_origin(c.origin);
  out->set_seq(c.seq);
  out->set_at_wall_ms(c.at.wall_ms);
  out->set_at_logical(c.at.logical);
  if (c.what == catalog_change::kind::add_snapshot) {
    out->set_kind(pb::CatalogChange::ADD_SNAPSHOT);
    snapshot_to_proto(c.snapshot, out->mutable_snapshot());
  } else if (c.what == catalog_change::kind::validation_set) {
    out->set_kind(pb::CatalogChange::VALIDATION_SET);
    set_to_proto(c.validation_set, out->mutable_validation_set());
  } else if (c.what == catalog_change::kind::validation_report) {
    out->set_kind(pb::CatalogChange::VALIDATION_REPORT);
    report_to_proto(c.report, out->mutable_report());
  } else if (c.what == catalog_change::kind::policy) {
    out->set_kind(pb::CatalogChange::POLICY);
    for (const auto& [k, v] : c.policy) (*out->mutable_policy())[k] = v;
  } else if (c.what == catalog_change::kind::trial) {
    out->set_kind(pb::CatalogChange::TRIAL);
    trial_to_proto(c.trial, out->mutable_trial());
  } else if (c.what == catalog_change::kind::join) {
    out->set_kind(pb::CatalogChange::JOIN);
    out->set_by(c.by);
  } else if (c.what == catalog_change::kind::retire) {
    out->set_kind(pb::CatalogChange::RETIRE);
    out->set_node(c.node);
    out->set_reason(c.reason);
    out->set_by(c.by);
    out->set_time_ms(c.time_ms);
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
    out->set_reason(c.reason);
    out->set_by(c.by);
    out->set_forced(c.forced);
    out->set_automatic(c.automatic);
    out->set_expect_from(c.expect_from);
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
      c.snapshot = snapshot_from_proto(in.snapshot());
      return c;
    }
    case pb::CatalogChange::VALIDATION_SET:
      c.what = catalog_change::kind::validation_set;
      c.validation_set = set_from_proto(in.validation_set());
      return c;
    case pb::CatalogChange::VALIDATION_REPORT:
      c.what = catalog_change::kind::validation_report;
      c.report = report_from_proto(in.report());
      return c;
    case pb::CatalogChange::POLICY:
      c.what = catalog_change::kind::policy;
      c.policy.insert(in.policy().begin(), in.policy().end());
      return c;
    case pb::CatalogChange::TRIAL: {
      c.what = catalog_change::kind::trial;
      auto t = trial_from_proto(in.trial());
      if (!t) return t.error();
      c.trial = std::move(*t);
      return c;
    }
    case pb::CatalogChange::JOIN:
      c.what = catalog_change::kind::join;
      c.by = in.by();
      return c;
    case pb::CatalogChange::RETIRE:
      c.what = catalog_change::kind::retire;
      c.node = in.node();
      c.reason = in.reason();
      c.by = in.by();
      c.time_ms = in.time_ms();
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
      c.reason = in.reason();
      c.by = in.by();
      c.forced = in.forced();
      c.automatic = in.automatic();
      c.expect_from = in.expect_from();
      return c;
    default:
      return status::corruption("unknown change kind " + std::to_string(in.kind()));
  }
}

}  // namespace shoal
