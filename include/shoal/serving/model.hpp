// model: the runtime interface every model format implements (fastText today, more later).
// A loaded model is immutable; predict() is const and safe to call from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/base/status.hpp"

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
};

/// What a load is for: serving (the model stays loaded; its weights get mappings of their own,
/// returned whole on unload) or a check of pushed bytes (the model is dropped at once; its
/// weights stay on the heap, sparing a map and unmap per push).
enum class load_use : uint8_t { serve, check };

/// Detects the format of `bytes` and loads it. Unknown, empty, truncated or corrupt input is an
/// invalid_argument status whose message says what is wrong ("not a fastText model: bad magic").
result<std::shared_ptr<const model>> load_model(std::string_view bytes,
                                                load_use use = load_use::serve);

}  // namespace shoal
