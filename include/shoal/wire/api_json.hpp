// api_json: the API's answers as JSON, one shape wherever they are shown: the CLI's --json output
// (ops/cli.cpp) and the operator's console (wire/console.hpp) render the same values the same
// way, so a script written against one reads the other.
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "shoal/serving/api.hpp"
#include "shoal/serving/version_stats.hpp"
#include "shoal/store/catalog.hpp"

namespace shoal {

/// Keys in the order written here (people read these).
using api_json = nlohmann::ordered_json;

/// "shadow", "canary", "watch" or "none".
const char* trial_mode_name(trial_info::mode m);

/// A validation report: candidate, baseline, set, passed, verdict, figures, ...
api_json report_json_value(const validation_report_info& r);
/// A trial in force, or null.
api_json trial_json(const trial_info& t);
/// One version of `e`: registry metadata, labels at it, holders.
api_json snapshot_json(const model_entry& e, const snapshot_info& s);
/// A model: its versions, labels with their history, validation sets, policy, trial.
api_json model_json(const model_entry& e);
/// Every member this node knows, with status, phi, round trip and load.
api_json cluster_json(const cluster_status& st);
/// A version's counts on this node (version_stats.hpp): requests, errors, sum_us, the latency
/// buckets with their upper bounds, scored, the sum and the mean of their top-1 scores.
api_json version_figures_json(const version_figures& f);

}  // namespace shoal
