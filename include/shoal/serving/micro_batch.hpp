// micro_batch: concurrent inference requests for the same loaded model, predicted together.
//
// A front-end thread (or a model host) that has a request for a loaded model does not predict it
// at once: it adds it to its micro_batcher and, when the batcher was empty, arranges for flush()
// to run on the same thread once the requests that have already arrived are read (the HTTP
// server posts it behind them on the I/O thread; the ZeroMQ server calls it after each round of
// messages; a model host sends itself a message, which queues behind its mailbox). flush()
// predicts each model's pending texts with one predict_batch() (for fastText: one sgemm for the
// output layer instead of one gemv per text) and hands each request its rows, smallest group
// first (the shortest mean wait; a lone request is not held behind another model's burst).
//
// A front end's refusals of a round can wait for it too (after_flush): in a storm most requests
// of a round are refused, and each 429 costs the thread a socket write; sent after the round's
// few answers rather than as each was read, they no longer delay every accepted request of the
// round.
//
// The wait is bounded without a timer: at most the time the thread takes to read what arrived
// together, and a group that reaches max_texts is predicted at once. An idle node adds nothing
// (a lone request is flushed right after it is read). Requests with different top-k are kept in
// separate groups (the answer of each is exactly what it would get alone).
//
// Tensor requests (add_tensors) are batched the same way: requests for one model whose inputs
// agree in names, datatypes and every dimension but the first, and that ask for the same outputs,
// are stacked along the first (batch) dimension and run once; each gets its own rows of every
// output back. Where that cannot give each request exactly its own answer (an output whose first
// dimension is not the batch, or a run that fails), the group's requests run one by one.
//
// Not thread-safe: one batcher per thread (front ends keep a thread_local one), so no lock.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shoal/serving/model.hpp"

namespace shoal {

class micro_batcher {
 public:
  /// Receives one request's rows (one per text, in order).
  using on_rows = std::function<void(std::vector<std::vector<prediction>>)>;

  /// Groups predict at most `max_texts` texts together (at least 1).
  explicit micro_batcher(size_t max_texts = 64);

  /// Receives one tensor request's outputs (or the model's error for it).
  using on_tensors = std::function<void(result<std::vector<tensor>>)>;

  /// Returns whether `inputs` can be stacked with others: every input has a first dimension,
  /// the same for all, of at least 1.
  static bool batchable(const std::vector<tensor>& inputs);

  /// Queues a tensor request for `m` (see the file comment); `done` runs in flush() (or here,
  /// when the group is full). Returns as add() does.
  /// @pre batchable(inputs)
  bool add_tensors(std::shared_ptr<const model> m, std::vector<tensor> inputs,
                   std::vector<std::string> outputs, on_tensors done);

  /// Queues `texts` for `m` at top-k `k`; `done` runs in flush() (or here, when the group is
  /// full). Returns true when the batcher was empty before: the caller must arrange a flush() on
  /// this thread.
  bool add(std::shared_ptr<const model> m, size_t k, std::vector<std::string> texts,
           on_rows done);

  /// Runs `fn` in the next flush(), after every group is answered (a refusal the thread need not
  /// send before its answers). Returns true when the batcher was empty before, as add() does.
  bool after_flush(std::function<void()> fn);

  /// Predicts every pending group and calls each request's `done` (smallest group first, each
  /// group's requests in arrival order), then runs the after_flush() calls in their order. A
  /// `done` or an after_flush() call may add() again; that waits for the next flush.
  void flush();

  bool empty() const { return groups_.empty() && tensor_groups_.empty() && after_.empty(); }

  /// Texts waiting for the next flush.
  size_t pending_texts() const { return pending_texts_; }

  /// What predicting the pending texts will take, in milliseconds: pending_texts() times the
  /// average CPU time of a text in the batches this batcher predicted (a moving average over all
  /// its models; 0 before the first batch). The node bounds a round's work with it
  /// (max_queue_ms).
  double pending_cost_ms() const { return static_cast<double>(pending_texts_) * ms_per_text_; }

  /// The average CPU time of one text so far, in milliseconds.
  double ms_per_text() const { return ms_per_text_; }

  /// Batches predicted and texts in them since construction (for tests and stats).
  size_t batches() const { return batches_; }
  size_t texts() const { return texts_; }

 private:
  struct pending {
    size_t first = 0;  // index of its first text in the group's texts
    size_t count = 0;
    on_rows done;
  };
  struct group {
    std::shared_ptr<const model> m;
    size_t k = 1;
    std::vector<std::string> texts;
    std::vector<pending> requests;
  };
  using key = std::pair<const model*, size_t>;

  void run(group& g);  // predicts g and calls its requests' done

  struct tensor_request {
    std::vector<tensor> inputs;  // sorted by name
    size_t rows = 0;
    on_tensors done;
  };
  struct tensor_group {
    std::shared_ptr<const model> m;
    std::vector<std::string> outputs;
    size_t rows = 0;
    std::vector<tensor_request> requests;
  };
  // (model, what its requests share: input names, datatypes, dims after the first; outputs)
  using tensor_key = std::pair<const model*, std::string>;

  void run(tensor_group& g);             // runs g and calls its requests' done
  void account(double ms, size_t rows);  // the moving average of a row's CPU time

  size_t max_texts_;
  std::map<key, group> groups_;
  std::map<tensor_key, tensor_group> tensor_groups_;
  std::vector<std::function<void()>> after_;  // after_flush(), in order
  size_t batches_ = 0;
  size_t texts_ = 0;
  size_t pending_texts_ = 0;
  double ms_per_text_ = 0;  // moving average (1/8 per batch)
};

}  // namespace shoal
