// validation: knowing whether a model is good, as pure functions over plain data.
//
// - A validation set is labelled examples in fastText's format, one per line:
//   "__label__a [__label__b ...] text" (the model's own label prefix). parse_validation_set reads
//   one; check_validation_set checks what can be checked before a model is at hand.
// - evaluate() runs a model over a set (this is the only function here that calls a model), and
//   compare() puts a candidate's figures next to a baseline's: accuracy (top-1 label among the
//   example's labels), macro-F1, precision and recall per label, the share of examples whose top
//   label changed, mean top-1 probability, p99 predict time and memory.
// - A policy (defaults, then the tenant's, then the model's settings) says how much worse a
//   candidate may be; judge() applies it and names each rule broken and by how much.
// - The watch after a label move: judge_watch() says whether live figures break the policy
//   clearly enough (enough requests) to roll back.
// Thread-safety: pure functions (evaluate() only reads the model, which is immutable).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/model.hpp"

namespace shoal {

inline constexpr size_t max_validation_set_bytes = 16u << 20;
inline constexpr size_t max_validation_examples = 100000;

struct labelled_example {
  std::vector<std::string> labels;  // prefix stripped, as predictions name them
  std::string text;
};

/// Returns the examples of a set read with `label_prefix`, or invalid_argument naming the first
/// bad line ("validation set line 3 has no label (lines start with __label__)"). Blank lines are
/// skipped; a set without examples, over max_validation_set_bytes or max_validation_examples, or
/// not UTF-8 is refused.
result<std::vector<labelled_example>> parse_validation_set(std::string_view bytes,
                                                           std::string_view label_prefix);

/// Returns the number of examples if `bytes` could be a validation set for a model with some
/// label prefix (every non-blank line starts with a token followed by text or more tokens), else
/// why not. What the node checks when a set is stored, before any model reads it.
result<uint32_t> check_validation_set(std::string_view bytes);

/// One label's figures.
struct label_figures {
  uint32_t support = 0;  // examples that carry it
  double precision = 0;  // of the examples predicted as it, the share that carry it
  double recall = 0;     // of the examples that carry it, the share predicted as it
};

/// One model's figures over a set.
struct model_figures {
  uint32_t version = 0;
  uint32_t examples = 0;
  double accuracy = 0;        // share of examples whose top label is one of theirs
  double macro_f1 = 0;        // mean F1 over the labels the set carries
  double mean_top1 = 0;       // mean probability of the top label
  double p99_predict_us = 0;  // one example at a time
  uint64_t memory_bytes = 0;
  std::map<std::string, label_figures> labels;
  std::vector<std::string> top;  // each example's top label ("" when none); not in the JSON
};

/// Returns `m`'s figures over `set` (predicting each example alone, timing each prediction).
model_figures evaluate(const model& m, uint32_t version, const std::vector<labelled_example>& set);

/// Returns the figures from top labels, probabilities and predict times (evaluate's arithmetic,
/// for tests). @pre top, top1 and times_us have one entry per example of `set`
model_figures score(const std::vector<labelled_example>& set, const std::vector<std::string>& top,
                    const std::vector<double>& top1, std::vector<double> times_us);

struct validation_report {
  model_figures candidate;
  std::optional<model_figures> baseline;  // none: nothing to compare with
  double top_changed = 0;                 // share of examples whose top label differs
};

/// Returns the report of a candidate against a baseline (both over the same set).
validation_report compare(model_figures candidate, std::optional<model_figures> baseline);

/// The report as JSON text (what the catalog keeps), and back.
std::string report_to_json(const validation_report& r);
result<validation_report> report_from_json(std::string_view text);

/// The rules of a model (see "Knowing whether a model is good" in the README).
struct model_policy {
  // The validation gate.
  double max_accuracy_drop = 1.0;   // points (percent) of accuracy the candidate may lose
  double max_recall_drop = 10.0;    // points of any one label's recall it may lose
  uint32_t min_label_examples = 1;  // labels with fewer examples are not judged on recall
  // The watch after a production move.
  int64_t watch_ms = 600000;          // how long the new version is watched (0: not at all)
  double watch_share = 0.10;          // share of its requests the previous version predicts too
  double min_agreement = 0.70;        // top label agreeing with the previous version's
  double max_confidence_drop = 0.20;  // mean top-1 probability below the previous version's
  double max_error_rate = 0.05;       // failed requests of the new version
  double max_p99_ratio = 4.0;         // its p99 latency over the previous version's (floor 1 ms)
  uint32_t min_requests = 200;        // no rule judges fewer requests (or compared pairs) than this
};

/// The settings users may set, in the order `policy show` prints them.
const std::vector<std::string>& policy_keys();

/// Returns `base` with `settings` (key=value as `policy set` takes them: "accuracy_drop=2",
/// "watch=10m", "min_agreement=70%") applied; an empty value keeps base's. invalid_argument
/// names an unknown key or a bad value.
result<model_policy> apply_policy(model_policy base,
                                  const std::map<std::string, std::string>& settings);

/// Returns every setting of `p` as `policy show` prints them.
std::map<std::string, std::string> policy_settings(const model_policy& p);

/// What the gate decided: passed, or each broken rule ("accuracy dropped 12.5 points (90.0% ->
/// 77.5%), the policy allows 1.0").
struct gate_verdict {
  bool passed = true;
  std::vector<std::string> failures;
  /// "passed" or the failures joined with "; ".
  std::string text() const;
};

/// Returns the gate's verdict on `r` under `p`. A report without a baseline passes.
gate_verdict judge(const validation_report& r, const model_policy& p);

/// What the node saw of a newly promoted version on live traffic (see judge_watch).
struct watch_figures {
  uint64_t requests = 0;     // requests answered by the new version
  uint64_t errors = 0;       // of which failed
  double p99_ms = 0;         // the new version's p99 latency
  uint64_t compared = 0;     // requests the previous version also predicted
  uint64_t agreed = 0;       // ... with the same top label
  double mean_top1_new = 0;  // over the compared requests
  double mean_top1_old = 0;
  double p99_ms_old = 0;  // the previous version's predict p99 on those requests
};

/// Returns the reason to roll back ("agreement 31% < 70% over 2,000 requests"), or nullopt
/// while every rule holds or too few requests were seen to be sure.
std::optional<std::string> judge_watch(const watch_figures& w, const model_policy& p);

}  // namespace shoal
