#include "shoal/wire/api_json.hpp"

#include <cmath>

#include "shoal/wire/api_codec.hpp"

namespace shoal {

using json = api_json;

api_json report_json_value(const validation_report_info& r) {
  json figures = json::parse(r.report_json, nullptr, false);
  return {{"candidate", r.candidate},
          {"baseline", r.baseline},
          {"set", r.set_number},
          {"set_sha256", r.set_sha256},
          {"passed", r.passed},
          {"verdict", r.verdict},
          {"forced", r.forced},
          {"by", r.by},
          {"time_ms", r.time_ms},
          {"ran_on", r.ran_on},
          {"figures", figures.is_discarded() ? json(nullptr) : figures}};
}

const char* trial_mode_name(trial_info::mode m) {
  switch (m) {
    case trial_info::mode::shadow:
      return "shadow";
    case trial_info::mode::canary:
      return "canary";
    case trial_info::mode::watch:
      return "watch";
    default:
      return "none";
  }
}

api_json trial_json(const trial_info& t) {
  if (t.what == trial_info::mode::none) return nullptr;
  json j = {{"mode", trial_mode_name(t.what)},
            {"version", t.version},
            {"share", double(t.share_ppm) / 1e6},
            {"started_ms", t.started_ms},
            {"by", t.by}};
  if (t.what == trial_info::mode::watch) {
    j["watched"] = t.watched;
    j["until_ms"] = t.until_ms;
  }
  return j;
}

api_json snapshot_json(const model_entry& e, const snapshot_info& s) {
  json tags = json::object();
  for (const auto& [k, v] : s.tags) tags[k] = v;
  json metrics =
      s.metrics_json.empty() ? json(nullptr) : json::parse(s.metrics_json, nullptr, false);
  if (metrics.is_discarded()) metrics = nullptr;
  return {{"version", s.version},
          {"sha256", s.sha256},
          {"created_ms", s.created_ms},
          {"size_bytes", s.size_bytes},
          {"format", s.format},
          {"note", s.note},
          {"user", s.user},
          {"pushed_with", s.pushed_with},
          {"tags", std::move(tags)},
          {"metrics", std::move(metrics)},
          {"source", s.source},
          {"labels", e.labels_at(s.version)},
          {"holders", s.holders}};
}

api_json model_json(const model_entry& e) {
  json snaps = json::array();
  for (const auto& s : e.snapshots) snaps.push_back(snapshot_json(e, s));
  json labels = json::object();
  for (const auto& [name, st] : e.labels) {
    json history = json::array();
    for (const auto& mv : st.history) {
      history.push_back({{"from", mv.from},
                         {"to", mv.to},
                         {"action", label_action_name(mv.action)},
                         {"time_ms", mv.time_ms},
                         {"by", mv.by},
                         {"forced", mv.forced},
                         {"automatic", mv.automatic},
                         {"reason", mv.reason}});
    }
    labels[name] = {
        {"version", st.current()}, {"stack", st.stack}, {"history", std::move(history)}};
  }
  json sets = json::array();
  for (const auto& s : e.validation_sets) {
    sets.push_back({{"number", s.number},
                    {"sha256", s.sha256},
                    {"examples", s.examples},
                    {"size_bytes", s.size_bytes},
                    {"created_ms", s.created_ms},
                    {"user", s.user}});
  }
  const validation_set_info* in_use = e.current_set();
  json policy = json::object();
  for (const auto& [k, v] : e.policy) policy[k] = v;
  return {{"model", e.id.str()},
          {"snapshots", std::move(snaps)},
          {"labels", std::move(labels)},
          {"validation_sets", std::move(sets)},
          {"validation_set", in_use != nullptr ? json(in_use->number) : json(nullptr)},
          {"policy", std::move(policy)},
          {"trial", trial_json(e.trial)}};
}

api_json cluster_json(const cluster_status& st) {
  json members = json::array();
  for (const auto& v : st.members) {
    const member& m = v.entry;
    members.push_back(
        {{"name", m.name},
         {"id", m.id},
         {"status", to_string(m.status)},
         {"self", v.is_self},
         {"incarnation", m.incarnation},
         {"heartbeat", m.heartbeat},
         {"phi", std::round(v.phi * 1000) / 1000},
         {"since_heard_ms", v.since_heard_ms ? json(*v.since_heard_ms) : json(nullptr)},
         {"snapshots_held", v.snapshots_held},
         {"rtt_ms", v.rtt_ms ? json(std::round(*v.rtt_ms * 10) / 10) : json(nullptr)},
         {"cluster_address", m.cluster_address},
         {"http_address", m.http_address},
         {"zmq_address", m.zmq_address},
         {"data_address", m.data_address},
         {"load",
          {{"in_flight", m.load.in_flight},
           {"loaded_models", m.load.loaded_models},
           {"free_model_memory", m.load.free_model_memory},
           {"traffic_copies", m.load.traffic_copies},
           {"served_local", m.load.served_local},
           {"forwarded", m.load.forwarded},
           {"served_for_peers", m.load.served_for_peers}}}});
  }
  return {{"members", std::move(members)}};
}

api_json version_figures_json(const version_figures& f) {
  json buckets = json::array();
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    buckets.push_back(
        {{"le", i < latency_buckets_s.size() ? json(latency_buckets_s[i]) : json("+Inf")},
         {"count", f.buckets[i]}});
  }
  return {{"version", f.version},
          {"requests", f.requests},
          {"errors", f.errors},
          {"sum_us", f.sum_us},
          {"scored", f.scored},
          {"top1_sum", double(f.top1_sum_ppm) / 1e6},
          {"mean_top1", f.scored == 0
                            ? json(nullptr)
                            : json(std::round(double(f.top1_sum_ppm) / double(f.scored)) / 1e6)},
          {"buckets", std::move(buckets)}};
}

}  // namespace shoal
