// answer_inline: what a front end answers on its own thread for one request, in one call (find
// the loaded snapshot with find_inline, then predict), for tests of the serving view. The node
// itself calls find_inline and predicts through its micro-batcher.
#pragma once

#include <optional>

#include "shoal/serving/serving_view.hpp"

namespace shoal::testing {

struct inline_answer {
  /// Set when the view answered: the result, or the error the actors would give too (unknown
  /// model, version or label).
  std::optional<result<infer_result>> answer;
  /// When `answer` is empty: the version the request resolved to (not loaded, or too many texts).
  uint32_t version = 0;
};

inline inline_answer answer_inline(const serving_view& view, const infer_request& req,
                                   size_t max_texts) {
  inline_answer out;
  inline_target target = find_inline(view, req, max_texts);
  if (target.error) {
    out.answer = result<infer_result>(std::move(*target.error));
    return out;
  }
  out.version = target.version;
  if (!target.m) return out;
  infer_result r;
  r.id = req.id;
  r.version = target.version;
  r.rows = target.m->predict_batch(req.texts, req.top_k == 0 ? 1 : req.top_k);
  out.answer = result<infer_result>(std::move(r));
  return out;
}

}  // namespace shoal::testing
