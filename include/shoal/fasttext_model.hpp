// fastText supervised models (.bin) read by our own loader and predicted by our own code, with
// results identical to `fasttext predict-prob` (same labels in the same order, probabilities within
// 1e-4, label prefix stripped).
//
// What is read: the version 12 format written by fastText 0.9.2 (version 11 is read the way
// fastText reads it: a supervised model of that version ignores char n-grams). Every loss (softmax,
// hs, ns, ova), word n-grams and char n-grams (minn/maxn) are supported. Refused with an
// invalid_argument status that says what is wrong: empty, truncated or corrupt bytes, an unknown
// version, cbow/skipgram (word-vector) models, trailing bytes after the output matrix, sizes that
// cannot be right for the number of bytes given, and quantized models (.ftz, not supported yet).
//
// Prediction follows fastText's own arithmetic (tokenizer, FNV-1a hashing with its sign-extended
// bytes, subword and word n-gram ids, float averaging, table sigmoid for ns/ova, Huffman-tree
// search for hs, the log(p + 1e-5) ranking) so that the printed probability, p + 1e-5, is what we
// return. A text is one line: '\n' inside it is whitespace, and a literal "</s>" token ends it (as
// in fastText, where "</s>" is the end-of-line token).
//
// Labels are returned without their prefix. The prefix is not stored in a .bin (fastText's -label
// option is a training flag), so it is inferred from the labels:
//   - if every label starts with "__label__" (fastText's default), that is stripped;
//   - otherwise the longest common prefix of all labels that consists only of non-alphanumeric
//     ASCII characters is stripped ("#greet", "#bye" -> "greet", "bye"), never a whole label.
// Labels with no such common prefix are returned as they are.
//
// Thread-safety: a loaded model is immutable; predict() may run on many threads at once (each
// thread keeps its own scratch buffers, so a call allocates little beyond its result).
#pragma once

#include <memory>
#include <string_view>

#include "shoal/model.hpp"

namespace shoal {

/// Returns true if `bytes` starts with the fastText magic number.
bool looks_like_fasttext(std::string_view bytes);

/// Parses a fastText .bin. Any truncation, inconsistent size, unsupported version, non-supervised
/// model or trailing garbage is an invalid_argument status naming the problem. The model copies
/// what it needs: `bytes` may be released once this returns.
result<std::shared_ptr<const model>> load_fasttext(std::string_view bytes);

}  // namespace shoal
