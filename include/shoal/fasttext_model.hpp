// fastText supervised models (.bin) read by our own loader and predicted by our own code, with
// results identical to `fasttext predict-prob` (same labels in the same order, probabilities within
// 1e-4, label prefix stripped).
// Thread-safety: a loaded model is immutable; predict() may run on many threads at once.
#pragma once

#include <memory>
#include <string_view>

#include "shoal/model.hpp"

namespace shoal {

/// Returns true if `bytes` starts with the fastText magic number.
bool looks_like_fasttext(std::string_view bytes);

/// Parses a fastText .bin. Any truncation, inconsistent size, unsupported version, non-supervised
/// model or trailing garbage is an invalid_argument status naming the problem.
result<std::shared_ptr<const model>> load_fasttext(std::string_view bytes);

}  // namespace shoal
