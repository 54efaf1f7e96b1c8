// ONNX models (a ModelProto, as torch.onnx.export writes it), read with ONNX's own protobuf schema
// and run by Shoal's own kernels (FP32 compute). Gemm and MatMul with constant weights run on the
// weights packed once at load (AVX-512 or AVX2+FMA code, chosen by CPU detection: Debian's
// OpenBLAS repacks the weights on every call); otherwise, and for Conv, OpenBLAS's sgemm.
//
// What is read: opsets 11 to 18 of the default domain; graph inputs, outputs and initializers of
// FLOAT, DOUBLE, INT32, INT64 or BOOL; dynamic dims (dim_param, or no dim_value) on inputs. The
// operators, with their opset 11..18 semantics (attributes that became inputs: Squeeze,
// Unsqueeze and ReduceSum axes since 13, ReduceMean/ReduceMax axes since 18; Softmax and
// LogSoftmax coerce to 2-D before 13 and take one axis, default -1, since 13):
//   arithmetic: Add Sub Mul Div Pow (numpy broadcasting; FP32, FP64, INT32, INT64), Equal
//     Greater Less And Or Not Where, Relu LeakyRelu Sigmoid Tanh Erf Gelu Sqrt Exp Log Neg Abs
//     Reciprocal, Softmax LogSoftmax, Gemm MatMul (batched, broadcast), ReduceSum ReduceMean
//     ReduceMax, LayerNormalization (Y only), Conv and MaxPool (1-D only: [N,C,L], group 1);
//   data movement: Reshape Flatten Squeeze Unsqueeze Identity Dropout (no copy), Transpose Slice
//     Expand Concat Gather Cast, Shape Size Constant ConstantOfShape Range.
// GELU as torch exports it (Div, Erf, Add, Mul) and a decomposed LayerNorm (ReduceMean, Sub, Pow,
// Sqrt, Div) run through the elementwise operators.
//
// Refused at load with an invalid_argument status that says what is wrong: bytes that do not
// parse (truncated or corrupt), no graph or ir_version, an opset outside 11..18, an operator of
// another domain, unsupported operators (all of them named), a node reading a value no one
// produces, a cycle, initializers whose data does not match their dims or that are stored outside
// the file (external data), element types other than the five above, 2-D convolutions or pools,
// any tensor over 1 GiB or a plan over 2 GiB of working memory at batch 1 (dynamic dims = 1), and
// any shape that does not fit its operator. A model is planned at load for all dynamic dims = 1,
// so every such error surfaces when the model is pushed.
//
// Planning (once per set of input shapes): topological order, shape inference with concrete
// shapes, folding of every node whose inputs are constants or shapes (the Shape, Gather,
// Unsqueeze, Concat, Reshape chains torch writes for x.view(x.size(0), -1)), a kernel per node,
// and one arena whose buffers are reused once their last reader ran. Views (Reshape, Flatten,
// Squeeze, Unsqueeze, Identity, Dropout) share their input's bytes. Up to 32 plans are cached per
// model, keyed by input shapes (lock-free lookups); a call whose shapes find no free slot builds a
// plan for itself. Each thread keeps its arena (thread_local, grown to the largest need), so a
// run with a cached plan allocates only its result tensors. NaN and Inf pass through.
//
// A text front end makes an ONNX model a text model (takes_texts(), predict() like fastText). It
// is carried in the file itself as metadata_props entries, so the file stays a valid ONNX model:
//   shoal.tokenizer   "whitespace": split on ASCII and Unicode whitespace, nothing else (no
//                     punctuation stripping); "wordpiece": BERT's BasicTokenizer on ASCII (drop
//                     control characters, split on whitespace and on each ASCII punctuation
//                     character; non-ASCII characters are word characters, accents are kept),
//                     then greedy longest-match-first WordPiece with "##" continuations; a word
//                     over 100 characters, or one that cannot be split, is the unknown token.
//                     Both lowercase ASCII letters unless shoal.lowercase is "0".
//   shoal.vocab       the vocabulary, one token per line; the line number from 0 is the id.
//   shoal.labels      the label names, one per line; line i names output column i.
//   shoal.unk         the unknown token (default "[UNK]" for wordpiece, "<unk>" for whitespace);
//                     it must be in the vocabulary.
//   shoal.max_tokens  at most this many tokens are given to the model (default 256); longer
//                     texts are truncated. An empty text is one unknown token.
//   shoal.scores      what output 0 holds: "logits" (default: scores are its softmax),
//                     "probabilities" (used as they are) or "log_probabilities" (exp).
//   shoal.lowercase   "1" (default) or "0".
// Such a model must have one input, INT64 or INT32 [batch, seq], and a first output [batch,
// labels] with one column per label. predict() runs each text alone as [1, n] (a model need not be
// padding-invariant); predict_batch() does it text by text.
//
// Thread-safety: a loaded model is immutable; run() and predict() may be called from many threads
// at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shoal/serving/model.hpp"

namespace shoal {

/// Returns true if `bytes` look like an ONNX ModelProto: the top-level fields are ModelProto's,
/// with an ir_version and a graph (or a last field cut short: load_onnx says it is truncated).
bool looks_like_onnx(std::string_view bytes);

/// Reads and plans an ONNX model; any refusal listed above is an invalid_argument status. The
/// model copies what it needs: `bytes` may be released once this returns.
result<std::shared_ptr<const model>> load_onnx(std::string_view bytes);

/// How an ONNX text model turns a text into token ids and its output into scores.
class onnx_text_front_end {
 public:
  enum class tokenizer_kind : uint8_t { whitespace, wordpiece };
  enum class score_kind : uint8_t { logits, probabilities, log_probabilities };

  /// Returns the front end `props` describe (the shoal.* keys above), or an invalid_argument
  /// naming the key that is missing, unknown or wrong.
  static result<onnx_text_front_end> parse(const std::map<std::string, std::string>& props);

  /// Returns the tokens of `text` as the vocabulary spells them (WordPiece continuations with
  /// "##", unknown words as the unknown token), without truncation.
  std::vector<std::string> tokens(std::string_view text) const;
  /// Replaces `ids` with the ids of `text`: unknown tokens are the unknown id, an empty text is
  /// one unknown id, and at most max_tokens() ids are kept.
  void ids(std::string_view text, std::vector<int64_t>* ids) const;

  /// Returns the label names, by output column.
  const std::vector<std::string>& labels() const { return labels_; }
  /// Returns what the model's first output holds.
  score_kind scores() const { return scores_; }
  /// Returns the most tokens given to the model.
  size_t max_tokens() const { return max_tokens_; }
  /// Returns the id of the unknown token.
  int64_t unk_id() const { return unk_id_; }
  /// Returns the number of tokens in the vocabulary.
  size_t vocab_size() const { return vocab_size_; }
  /// Returns the bytes the vocabulary and labels take (approximately).
  size_t memory_bytes() const;

 private:
  // Calls emit(piece, continuation, id) for each token of `text` (id -1: not in the
  // vocabulary) until emit returns false.
  template <class F>
  void each_token(std::string_view text, F&& emit) const;
  int64_t lookup(std::string_view token) const;

  tokenizer_kind kind_ = tokenizer_kind::whitespace;
  score_kind scores_ = score_kind::logits;
  bool lowercase_ = true;
  size_t max_tokens_ = 256;
  int64_t unk_id_ = 0;
  std::string_view unk_token_;  // into vocab_text_
  size_t vocab_size_ = 0;
  std::shared_ptr<const std::string> vocab_text_;  // the views below point into it
  std::unordered_map<std::string_view, int64_t> vocab_;
  std::vector<std::string> labels_;
};

/// Returns ok when `props` describe a valid text front end (known keys only, a known tokenizer,
/// a non-empty vocabulary without duplicate tokens, labels, every value at most 16 MiB), else
/// an invalid_argument naming the key; what a CLI checks before it pushes.
status check_text_front_end(const std::map<std::string, std::string>& props);

/// Returns `onnx_bytes` with `props` appended as ModelProto metadata_props entries (protobuf
/// merges repeated fields of concatenated messages, so nothing is re-serialized).
/// @pre onnx_bytes holds no shoal.* metadata_props yet (load refuses a key given twice).
std::string with_text_front_end(std::string onnx_bytes,
                                const std::map<std::string, std::string>& props);

}  // namespace shoal
