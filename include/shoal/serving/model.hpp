// model: the runtime interface every model format implements: fastText, and ONNX (onnx_model.hpp).
// A text model answers texts with labels (predict); a tensor model (an ONNX graph without a text
// front end) answers tensors (run). A loaded model is immutable; predict() and run() are const and
// safe to call from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"
#include "shoal/serving/tensor.hpp"

namespace shoal {

/// One answer: a label (prefix stripped) and its probability.
struct prediction {
  std::string label;
  float score = 0.0f;

  friend bool operator==(const prediction& a, const prediction& b) {
    return a.label == b.label && a.score == b.score;
  }
};

class model {
 public:
  virtual ~model() = default;

  /// Returns the k most probable labels for one text, most probable first. Fewer than k when the
  /// model has fewer labels. An empty text yields what the format yields for an empty line.
  virtual std::vector<prediction> predict(std::string_view text, size_t k) const = 0;

  /// Returns predict() for each text of a batch; the default loops. A format may predict the batch
  /// together (fastText: one sgemm for a large output layer), with the same labels and
  /// probabilities within 1e-4 of predict().
  virtual std::vector<std::vector<prediction>> predict_batch(const std::vector<std::string>& texts,
                                                             size_t k) const;

  /// Returns the format name ("fasttext").
  virtual std::string format() const = 0;

  /// Returns the prefix the model's labels carry in its training data (stripped in
  /// predictions): what marks a label in a validation set ("__label__").
  virtual std::string label_prefix() const { return "__label__"; }
  /// Returns the number of labels the model can answer.
  virtual size_t label_count() const = 0;

  /// Returns the bytes of memory the loaded model holds (approximately).
  virtual size_t memory_bytes() const = 0;

  /// Returns whether the model answers texts with labels (predict). A tensor model returns false:
  /// its predict() answers nothing, run() is how it is used.
  virtual bool takes_texts() const { return true; }

  /// Returns the tensors the model takes and gives, as V2 model metadata shows them. A text model
  /// takes "text" (BYTES [-1]) and gives "labels" (BYTES [-1,-1]) and "scores" (FP32 [-1,-1]).
  virtual std::vector<tensor_spec> inputs() const;
  virtual std::vector<tensor_spec> outputs() const;

  /// Runs a tensor model: `inputs` holds one tensor per model input, by name, in any order;
  /// `want` names the outputs to return, in that order (empty: all, in the model's order). A
  /// missing or unknown input, a wrong type or shape, or an unknown output name is an
  /// invalid_argument that says which and what the model takes. A text model refuses (it is
  /// asked through predict).
  virtual result<std::vector<tensor>> run(const std::vector<tensor>& inputs,
                                          const std::vector<std::string>& want) const;
};

/// Returns the model's inputs and outputs as compact JSON, what snapshot_info::signature_json
/// keeps: {"inputs":[{"name":"x","datatype":"FP32","shape":[-1,300]}],"outputs":[...]}.
std::string signature_json(const model& m);

/// What a load is for: serving (the model stays loaded; its weights get mappings of their own,
/// returned whole on unload) or a check of pushed bytes (the model is dropped at once; its
/// weights stay on the heap, sparing a map and unmap per push).
enum class load_use : uint8_t { serve, check };

/// Detects the format of `bytes` by content (fastText's magic number, else an ONNX ModelProto) and
/// loads it. Unknown, empty, truncated or corrupt input is an
/// invalid_argument status whose message says what is wrong ("not a fastText model: bad magic").
result<std::shared_ptr<const model>> load_model(std::string_view bytes,
                                                load_use use = load_use::serve);

}  // namespace shoal
