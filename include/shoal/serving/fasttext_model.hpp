// fastText supervised models, plain (.bin) and quantized (.ftz), read by our own loader and
// predicted by our own code, with results identical to `fasttext predict-prob` (same labels in the
// same order, probabilities within 1e-4, label prefix stripped).
//
// What is read: the version 12 format written by fastText 0.9.2 (version 11 is read the way
// fastText reads it: a supervised model of that version ignores char n-grams). Every loss (softmax,
// hs, ns, ova), word n-grams and char n-grams (minn/maxn) are supported, and so are the models
// `fasttext quantize` writes: a product-quantized input matrix (any -dsub, with or without -qnorm),
// a product-quantized output matrix (-qout), and a dictionary pruned by -cutoff (with or without
// -retrain), whose kept n-gram buckets are remapped and the rest ignored, as fastText does. As in
// fastText, the qout flag only matters after a quantized input (`fasttext supervised -qout` writes
// a .bin with the flag set and a dense output, which is read as dense).
//
// Refused with an invalid_argument status that says what is wrong: empty, truncated or corrupt
// bytes, an unknown version, cbow/skipgram (word-vector) models, trailing bytes after the output
// matrix, sizes that cannot be right for the number of bytes given, non-finite weights, centroids
// or norms, a pruned dictionary followed by a dense input matrix (fastText refuses it too), and
// quantized parts that do not fit together: a codesize other than rows x nsubq, a quantizer whose
// dim, nsubq, dsub and lastdsub disagree with the matrix and with each other, a norm quantizer of
// dim other than 1, or a pruned index with a bucket outside 0..bucket-1, a row outside its range,
// or a bucket or row given twice.
//
// memory_bytes() counts what the model holds: for a .ftz that is the codes, centroids and norms
// (roughly the file size), not the dense matrices they stand for.
//
// Prediction follows fastText's own arithmetic (tokenizer, FNV-1a hashing with its sign-extended
// bytes, subword and word n-gram ids, float averaging, table sigmoid for ns/ova, Huffman-tree
// search for hs, the log(p + 1e-5) ranking) so that the printed probability, p + 1e-5, is what we
// return. A text is one line: '\n' inside it is whitespace, and a literal "</s>" token ends it (as
// in fastText, where "</s>" is the end-of-line token). A quantized row is decoded from its codes
// where it is used, in fastText's order (ProductQuantizer::addcode / mulcode, times the row's norm
// with -qnorm), never expanded into a dense matrix and without allocating.
//
// predict_batch() of a model whose dense output layer is large enough for OpenBLAS (labels x dim
// of 1024 or more; softmax, ns, ova) stacks the texts' hidden vectors and computes the output layer
// of up to 64 texts in one sgemm, so the weights are read once per block instead of once per text;
// each call stays small enough that OpenBLAS runs it on the calling thread. Its answers follow the
// same rule against the fasttext tool as predict(). Other models predict a batch text by text.
//
// Labels are returned without their prefix. The prefix is not stored in a .bin or .ftz (fastText's
// -label option is a training flag), so it is inferred from the labels:
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

#include "shoal/serving/model.hpp"

namespace shoal {

/// Returns true if `bytes` starts with the fastText magic number.
bool looks_like_fasttext(std::string_view bytes);

/// Parses a fastText .bin or .ftz. Any truncation, inconsistent size, unsupported version,
/// non-supervised model or trailing garbage is an invalid_argument status naming the problem. The
/// model copies what it needs: `bytes` may be released once this returns. `map_weights`: the
/// dense weights get mappings of their own (a model that stays loaded); false: on the heap (a
/// model checked and dropped).
result<std::shared_ptr<const model>> load_fasttext(std::string_view bytes,
                                                   bool map_weights = true);

}  // namespace shoal
