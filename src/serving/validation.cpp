#include "shoal/serving/validation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "shoal/base/utf8.hpp"

namespace shoal {
namespace {

using json = nlohmann::ordered_json;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

// Splits a line into whitespace-separated tokens, as fastText reads it.
std::vector<std::string_view> tokens_of(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !is_space(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

status check_size(std::string_view bytes) {
  if (bytes.size() > max_validation_set_bytes) {
    return status::invalid_argument("a validation set of " + std::to_string(bytes.size()) +
                                    " bytes is over the limit of " +
                                    std::to_string(max_validation_set_bytes));
  }
  if (!utf8::is_valid_utf8(bytes)) {
    return status::invalid_argument("the validation set is not UTF-8 text (bad byte at offset " +
                                    std::to_string(utf8::first_invalid_byte(bytes)) + ")");
  }
  return status::ok();
}

// Calls f(line number, line) for each line that is not blank.
template <class F>
status each_line(std::string_view bytes, F&& f) {
  size_t number = 0;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    ++number;
    std::string_view line = bytes.substr(start, end - start);
    start = end + 1;
    if (tokens_of(line).empty()) continue;
    SHOAL_RETURN_IF_ERROR(f(number, line));
  }
  return status::ok();
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * double(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  std::nth_element(v.begin(), v.begin() + long(rank - 1), v.end());
  return v[rank - 1];
}

std::string points(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", share * 100.0);
  return buf;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string count_text(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

json figures_json(const model_figures& f) {
  json labels = json::object();
  for (const auto& [name, l] : f.labels) {
    labels[name] = {{"support", l.support}, {"precision", l.precision}, {"recall", l.recall}};
  }
  return {{"version", f.version},           {"examples", f.examples},
          {"accuracy", f.accuracy},         {"macro_f1", f.macro_f1},
          {"mean_top1", f.mean_top1},       {"p99_predict_us", f.p99_predict_us},
          {"memory_bytes", f.memory_bytes}, {"labels", std::move(labels)}};
}

model_figures figures_from(const json& j) {
  model_figures f;
  f.version = j.at("version").get<uint32_t>();
  f.examples = j.at("examples").get<uint32_t>();
  f.accuracy = j.at("accuracy").get<double>();
  f.macro_f1 = j.at("macro_f1").get<double>();
  f.mean_top1 = j.at("mean_top1").get<double>();
  f.p99_predict_us = j.at("p99_predict_us").get<double>();
  f.memory_bytes = j.at("memory_bytes").get<uint64_t>();
  for (const auto& [name, l] : j.at("labels").items()) {
    f.labels[name] = label_figures{l.at("support").get<uint32_t>(), l.at("precision").get<double>(),
                                   l.at("recall").get<double>()};
  }
  return f;
}

// "10m", "90s", "1h", "600000ms" or plain milliseconds.
std::optional<int64_t> duration_ms(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  int64_t n = std::stoll(text.substr(0, digits));
  std::string unit = text.substr(digits);
  if (unit.empty() || unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60000;
  if (unit == "h") return n * 3600000;
  return std::nullopt;
}

// A number, or a percentage ("70%" -> 0.7 when `share`, 70 points otherwise).
std::optional<double> number_value(const std::string& text, bool share) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::string t = text;
  bool percent = false;
  if (t.back() == '%') {
    percent = true;
    t.pop_back();
  }
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  if (share && (percent || v > 1.0)) v /= 100.0;
  return v;
}

}  // namespace

result<std::vector<labelled_example>> parse_validation_set(std::string_view bytes,
                                                           std::string_view label_prefix) {
  SHOAL_RETURN_IF_ERROR(check_size(bytes));
  std::vector<labelled_example> out;
  status s = each_line(bytes, [&](size_t number, std::string_view line) -> status {
    if (out.size() >= max_validation_examples) {
      return status::invalid_argument("the validation set has more than " +
                                      std::to_string(max_validation_examples) + " examples");
    }
    labelled_example ex;
    for (std::string_view tok : tokens_of(line)) {
      if (!label_prefix.empty() && tok.size() > label_prefix.size() &&
          tok.substr(0, label_prefix.size()) == label_prefix) {
        ex.labels.emplace_back(tok.substr(label_prefix.size()));
      } else {
        if (!ex.text.empty()) ex.text += ' ';
        ex.text.append(tok.data(), tok.size());
      }
    }
    if (ex.labels.empty()) {
      return status::invalid_argument("validation set line " + std::to_string(number) +
                                      " has no label (a line starts with " +
                                      std::string(label_prefix) + "LABEL)");
    }
    out.push_back(std::move(ex));
    return status::ok();
  });
  if (!s) return s;
  if (out.empty()) return status::invalid_argument("the validation set has no examples");
  return out;
}

result<uint32_t> check_validation_set(std::string_view bytes) {
  SHOAL_RETURN_IF_ERROR(check_size(bytes));
  uint32_t count = 0;
  // Every line starts with a label, and labels share the model's prefix, so the first words of
  // all lines share a prefix (the model's, or more): a line whose first word shares none with
  // the others' has no label.
  std::string first_word;
  size_t common = 0;
  status s = each_line(bytes, [&](size_t number, std::string_view line) -> status {
    if (++count > max_validation_examples) {
      return status::invalid_argument("the validation set has more than " +
                                      std::to_string(max_validation_examples) + " examples");
    }
    auto toks = tokens_of(line);
    if (toks.size() < 2) {
      return status::invalid_argument("validation set line " + std::to_string(number) +
                                      " is not 'LABEL TEXT' (fastText's format: __label__x text)");
    }
    if (count == 1) {
      first_word = std::string(toks[0]);
      common = first_word.size();
      return status::ok();
    }
    size_t i = 0;
    while (i < common && i < toks[0].size() && toks[0][i] == first_word[i]) ++i;
    common = i;
    if (common == 0) {
      return status::invalid_argument(
          "validation set line " + std::to_string(number) + " does not start with a label: '" +
          std::string(toks[0].substr(0, 40)) + "' shares no prefix with the first line's '" +
          first_word.substr(0, 40) + "' (lines look like __label__x text)");
    }
    return status::ok();
  });
  if (!s) return s;
  if (count == 0) return status::invalid_argument("the validation set has no examples");
  return count;
}

model_figures score(const std::vector<labelled_example>& set, const std::vector<std::string>& top,
                    const std::vector<double>& top1, std::vector<double> times_us) {
  model_figures f;
  f.examples = static_cast<uint32_t>(set.size());
  struct counts {
    uint32_t tp = 0, fp = 0, fn = 0, support = 0;
  };
  std::map<std::string, counts> c;
  uint64_t right = 0;
  double top1_sum = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    const auto& labels = set[i].labels;
    std::set<std::string> truth(labels.begin(), labels.end());
    for (const auto& l : truth) ++c[l].support;
    const bool hit = truth.count(top[i]) > 0;
    if (hit) {
      ++right;
      ++c[top[i]].tp;
    } else if (!top[i].empty()) {
      ++c[top[i]].fp;
    }
    for (const auto& l : truth) {
      if (l != top[i]) ++c[l].fn;
    }
    top1_sum += top1[i];
  }
  double f1_sum = 0;
  size_t f1_labels = 0;
  for (const auto& [name, k] : c) {
    if (k.support == 0) continue;  // predicted but never in the set: not one of the set's labels
    label_figures l;
    l.support = k.support;
    l.precision = k.tp + k.fp == 0 ? 0.0 : double(k.tp) / double(k.tp + k.fp);
    l.recall = double(k.tp) / double(k.tp + k.fn);
    const double f1 =
        l.precision + l.recall == 0 ? 0.0 : 2 * l.precision * l.recall / (l.precision + l.recall);
    f1_sum += f1;
    ++f1_labels;
    f.labels[name] = l;
  }
  f.accuracy = set.empty() ? 0.0 : double(right) / double(set.size());
  f.macro_f1 = f1_labels == 0 ? 0.0 : f1_sum / double(f1_labels);
  f.mean_top1 = set.empty() ? 0.0 : top1_sum / double(set.size());
  f.p99_predict_us = percentile(std::move(times_us), 0.99);
  f.top = top;
  return f;
}

model_figures evaluate(const model& m, uint32_t version, const std::vector<labelled_example>& set) {
  std::vector<std::string> top;
  std::vector<double> top1, times;
  top.reserve(set.size());
  top1.reserve(set.size());
  times.reserve(set.size());
  for (const auto& ex : set) {
    const auto start = std::chrono::steady_clock::now();
    auto preds = m.predict(ex.text, 1);
    const auto took = std::chrono::steady_clock::now() - start;
    times.push_back(std::chrono::duration<double, std::micro>(took).count());
    top.push_back(preds.empty() ? std::string() : preds[0].label);
    top1.push_back(preds.empty() ? 0.0 : double(preds[0].score));
  }
  model_figures f = score(set, top, top1, std::move(times));
  f.version = version;
  f.memory_bytes = m.memory_bytes();
  return f;
}

validation_report compare(model_figures candidate, std::optional<model_figures> baseline) {
  validation_report r;
  if (baseline && baseline->top.size() == candidate.top.size() && !candidate.top.empty()) {
    size_t changed = 0;
    for (size_t i = 0; i < candidate.top.size(); ++i) {
      changed += candidate.top[i] != baseline->top[i];
    }
    r.top_changed = double(changed) / double(candidate.top.size());
  }
  r.candidate = std::move(candidate);
  r.baseline = std::move(baseline);
  return r;
}

std::string report_to_json(const validation_report& r) {
  json j = {{"candidate", figures_json(r.candidate)},
            {"baseline", r.baseline ? figures_json(*r.baseline) : json(nullptr)},
            {"top_changed", r.top_changed}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

result<validation_report> report_from_json(std::string_view text) {
  try {
    json j = json::parse(text.begin(), text.end());
    validation_report r;
    r.candidate = figures_from(j.at("candidate"));
    if (!j.at("baseline").is_null()) r.baseline = figures_from(j.at("baseline"));
    r.top_changed = j.at("top_changed").get<double>();
    return r;
  } catch (const json::exception& e) {
    return status::corruption(std::string("a validation report that does not parse: ") + e.what());
  }
}

const std::vector<std::string>& policy_keys() {
  static const std::vector<std::string> keys = {
      "accuracy_drop", "recall_drop",     "min_label_examples", "watch",         "watch_share",
      "min_agreement", "confidence_drop", "max_error_rate",     "max_p99_ratio", "min_requests"};
  return keys;
}

result<model_policy> apply_policy(model_policy p,
                                  const std::map<std::string, std::string>& settings) {
  for (const auto& setting : settings) {
    // (named references, not a structured binding: C++17 lambdas cannot capture a binding)
    const std::string& key = setting.first;
    const std::string& value = setting.second;
    if (value.empty()) continue;
    auto bad = [&](const std::string& what) {
      return status::invalid_argument("policy " + key + "=" + utf8::to_valid_utf8(value) + ": " +
                                      what);
    };
    if (key == "watch") {
      auto ms = duration_ms(value);
      if (!ms || *ms > 7 * 24 * 3600000LL) {
        return bad("a duration such as 10m, 90s or 1h (0 turns the watch off; at most 7 days)");
      }
      p.watch_ms = *ms;
      continue;
    }
    const bool is_share = key == "watch_share" || key == "min_agreement" ||
                          key == "confidence_drop" || key == "max_error_rate";
    auto v = number_value(value, is_share);
    if (key == "accuracy_drop" || key == "recall_drop") {
      if (!v || *v > 100) return bad("points of percentage from 0 to 100");
      (key == "accuracy_drop" ? p.max_accuracy_drop : p.max_recall_drop) = *v;
    } else if (is_share) {
      if (!v || *v > 1.0) return bad("a share such as 70% or 0.7");
      if (key == "watch_share") p.watch_share = *v;
      if (key == "min_agreement") p.min_agreement = *v;
      if (key == "confidence_drop") p.max_confidence_drop = *v;
      if (key == "max_error_rate") p.max_error_rate = *v;
    } else if (key == "max_p99_ratio") {
      if (!v || *v < 1.0 || *v > 1000) return bad("a ratio from 1 to 1000");
      p.max_p99_ratio = *v;
    } else if (key == "min_label_examples" || key == "min_requests") {
      if (!v || *v != std::floor(*v) || *v < 1 || *v > 1e9) return bad("a whole number from 1");
      (key == "min_requests" ? p.min_requests : p.min_label_examples) = uint32_t(*v);
    } else {
      std::string known;
      for (const auto& k : policy_keys()) known += (known.empty() ? "" : ", ") + k;
      return status::invalid_argument("unknown policy setting '" +
                                      utf8::to_valid_utf8(key.substr(0, 64)) +
                                      "' (settings: " + known + ")");
    }
  }
  return p;
}

std::map<std::string, std::string> policy_settings(const model_policy& p) {
  auto percent = [](double share) { return number_text(share * 100.0) + "%"; };
  std::string watch = p.watch_ms % 60000 == 0  ? std::to_string(p.watch_ms / 60000) + "m"
                      : p.watch_ms % 1000 == 0 ? std::to_string(p.watch_ms / 1000) + "s"
                                               : std::to_string(p.watch_ms) + "ms";
  return {{"accuracy_drop", number_text(p.max_accuracy_drop)},
          {"recall_drop", number_text(p.max_recall_drop)},
          {"min_label_examples", std::to_string(p.min_label_examples)},
          {"watch", watch},
          {"watch_share", percent(p.watch_share)},
          {"min_agreement", percent(p.min_agreement)},
          {"confidence_drop", percent(p.max_confidence_drop)},
          {"max_error_rate", percent(p.max_error_rate)},
          {"max_p99_ratio", number_text(p.max_p99_ratio)},
          {"min_requests", std::to_string(p.min_requests)}};
}

std::string gate_verdict::text() const {
  if (passed) return "passed";
  std::string out;
  for (const auto& f : failures) out += (out.empty() ? "" : "; ") + f;
  return out;
}

gate_verdict judge(const validation_report& r, const model_policy& p) {
  gate_verdict v;
  if (!r.baseline) return v;
  const model_figures& c = r.candidate;
  const model_figures& b = *r.baseline;
  const double drop = (b.accuracy - c.accuracy) * 100.0;
  // A hair of tolerance so that "exactly the allowed drop" passes despite rounding.
  if (drop > p.max_accuracy_drop + 1e-9) {
    v.failures.push_back("accuracy dropped " + number_text(std::round(drop * 10) / 10) +
                         " points (" + points(b.accuracy) + "% -> " + points(c.accuracy) +
                         "%; the policy allows " + number_text(p.max_accuracy_drop) + ")");
  }
  struct drop_of {
    double points;
    std::string text;  // "label 95.0% -> 80.0%"
  };
  std::vector<drop_of> drops;
  for (const auto& [name, before] : b.labels) {
    if (before.support < p.min_label_examples) continue;
    auto it = c.labels.find(name);
    const double after = it == c.labels.end() ? 0.0 : it->second.recall;
    const double recall_drop = (before.recall - after) * 100.0;
    if (recall_drop > p.max_recall_drop + 1e-9) {
      drops.push_back(
          {recall_drop, name + " " + points(before.recall) + "% -> " + points(after) + "%"});
    }
  }
  if (!drops.empty()) {
    // The worst first; many labels can fail at once, so name three and count the rest.
    std::stable_sort(drops.begin(), drops.end(),
                     [](const drop_of& x, const drop_of& y) { return x.points > y.points; });
    std::string text;
    if (drops.size() == 1) {
      text = "recall of label " + drops[0].text.substr(0, drops[0].text.find(' ')) + " dropped " +
             number_text(std::round(drops[0].points * 10) / 10) + " points (" +
             drops[0].text.substr(drops[0].text.find(' ') + 1) + "; the policy allows " +
             number_text(p.max_recall_drop) + ")";
    } else {
      text = "recall of " + std::to_string(drops.size()) + " labels dropped more than " +
             number_text(p.max_recall_drop) + " points: ";
      for (size_t i = 0; i < drops.size() && i < 3; ++i) text += (i ? ", " : "") + drops[i].text;
      if (drops.size() > 3) text += " and " + std::to_string(drops.size() - 3) + " more";
    }
    v.failures.push_back(std::move(text));
  }
  v.passed = v.failures.empty();
  return v;
}

std::optional<std::string> judge_watch(const watch_figures& w, const model_policy& p) {
  if (w.compared >= p.min_requests) {
    const double agreement = double(w.agreed) / double(w.compared);
    if (agreement < p.min_agreement) {
      return "agreement " + points(agreement) + "% < " + points(p.min_agreement) + "% over " +
             count_text(w.compared) + " requests";
    }
    if (w.mean_top1_old - w.mean_top1_new > p.max_confidence_drop) {
      return "mean top-1 probability " + points(w.mean_top1_new) + "% vs " +
             points(w.mean_top1_old) + "% before, over " + count_text(w.compared) + " requests";
    }
    // Below 1 ms a ratio says nothing a user would notice.
    if (w.p99_ms > std::max(1.0, p.max_p99_ratio * w.p99_ms_old)) {
      return "p99 " + number_text(std::round(w.p99_ms * 100) / 100) + " ms > " +
             number_text(p.max_p99_ratio) + "x the previous version's " +
             number_text(std::round(w.p99_ms_old * 100) / 100) + " ms over " +
             count_text(w.requests) + " requests";
    }
  }
  if (w.requests >= p.min_requests) {
    const double rate = double(w.errors) / double(w.requests);
    if (rate > p.max_error_rate) {
      return "error rate " + points(rate) + "% > " + points(p.max_error_rate) + "% over " +
             count_text(w.requests) + " requests";
    }
  }
  return std::nullopt;
}

}  // namespace shoal
