#include "shoal/serving/micro_batch.hpp"

#include <algorithm>
#include <exception>

#include "shoal/base/log.hpp"
#include "shoal/serving/overload.hpp"

namespace shoal {
namespace {

// Runs a callback of a flush. Flushes run from event loops (an asio handler, the ZeroMQ loop):
// an exception must not escape into them and stop the thread; it is logged as `what` failing.
template <typename F>
void call_guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    log_error("micro-batch: a call failed", {{"call", what}, {"error", e.what()}});
  } catch (...) {
    log_error("micro-batch: a call failed", {{"call", what}});
  }
}

}  // namespace

micro_batcher::micro_batcher(size_t max_texts) : max_texts_(std::max<size_t>(1, max_texts)) {}

bool micro_batcher::add(std::shared_ptr<const model> m, size_t k, std::vector<std::string> texts,
                        on_rows done) {
  const bool was_empty = empty();
  const key id{m.get(), k};
  auto it = groups_.find(id);
  if (it != groups_.end() && it->second.texts.size() + texts.size() > max_texts_) {
    // Full: what is pending goes now, this request starts the next batch.
    group full = std::move(it->second);
    groups_.erase(it);
    run(full);
    it = groups_.end();
  }
  if (it == groups_.end()) {
    it = groups_.emplace(id, group{}).first;
    it->second.m = std::move(m);
    it->second.k = k;
  }
  group& g = it->second;
  pending_texts_ += texts.size();
  g.requests.push_back({g.texts.size(), texts.size(), std::move(done)});
  for (auto& t : texts) g.texts.push_back(std::move(t));
  return was_empty;
}

bool micro_batcher::batchable(const std::vector<tensor>& inputs) {
  if (inputs.empty()) return false;
  for (const auto& t : inputs) {
    if (t.shape.empty() || t.shape[0] < 1 || t.shape[0] != inputs.front().shape[0]) return false;
  }
  return true;
}

bool micro_batcher::add_tensors(std::shared_ptr<const model> m, std::vector<tensor> inputs,
                                std::vector<std::string> outputs, on_tensors done) {
  const bool was_empty = empty();
  std::sort(inputs.begin(), inputs.end(),
            [](const tensor& a, const tensor& b) { return a.name < b.name; });
  std::string shared;
  for (const auto& t : inputs) {
    shared += t.name;
    shared += '\0';
    shared += v2_datatype_name(t.type);
    for (size_t d = 1; d < t.shape.size(); ++d) shared += ',' + std::to_string(t.shape[d]);
    shared += '\n';
  }
  shared += "->";
  for (const auto& o : outputs) {
    shared += o;
    shared += '\0';
  }
  const size_t rows = size_t(inputs.front().shape[0]);
  tensor_key id{m.get(), std::move(shared)};
  auto it = tensor_groups_.find(id);
  if (it != tensor_groups_.end() && it->second.rows + rows > max_texts_) {
    tensor_group full = std::move(it->second);
    tensor_groups_.erase(it);
    run(full);
    it = tensor_groups_.end();
  }
  if (it == tensor_groups_.end()) {
    it = tensor_groups_.emplace(std::move(id), tensor_group{}).first;
    it->second.m = std::move(m);
    it->second.outputs = std::move(outputs);
  }
  tensor_group& g = it->second;
  g.rows += rows;
  pending_texts_ += rows;
  g.requests.push_back({std::move(inputs), rows, std::move(done)});
  return was_empty;
}

bool micro_batcher::after_flush(std::function<void()> fn) {
  const bool was_empty = empty();
  after_.push_back(std::move(fn));
  return was_empty;
}

void micro_batcher::flush() {
  // Taken out first: a done callback may add() to this batcher again.
  std::map<key, group> now;
  now.swap(groups_);
  std::map<tensor_key, tensor_group> tensors_now;
  tensors_now.swap(tensor_groups_);
  std::vector<std::function<void()>> after;
  after.swap(after_);
  // Smallest group first: every request of a round waits for the groups before its own, so
  // this makes the round's mean wait the shortest, and a tenant's lone request is not held
  // behind another tenant's burst on the same thread.
  std::vector<group*> order;
  order.reserve(now.size());
  for (auto& entry : now) order.push_back(&entry.second);
  std::stable_sort(order.begin(), order.end(), [](const group* a, const group* b) {
    return a->texts.size() < b->texts.size();
  });
  for (group* g : order) run(*g);
  std::vector<tensor_group*> tensor_order;
  for (auto& entry : tensors_now) tensor_order.push_back(&entry.second);
  std::stable_sort(tensor_order.begin(), tensor_order.end(),
                   [](const tensor_group* a, const tensor_group* b) { return a->rows < b->rows; });
  for (tensor_group* g : tensor_order) run(*g);
  for (auto& fn : after) call_guarded("a call after the flush", fn);
}

void micro_batcher::run(group& g) {
  pending_texts_ -= std::min(pending_texts_, g.texts.size());
  // CPU time, not wall time: a batch during which the machine kept the thread off the CPU must
  // not look expensive (the round budget refuses work by this cost).
  const double start = thread_cpu_ms();
  auto rows = g.m->predict_batch(g.texts, g.k);
  account(thread_cpu_ms() - start, g.texts.size());
  for (auto& r : g.requests) {
    std::vector<std::vector<prediction>> mine;
    mine.reserve(r.count);
    for (size_t i = 0; i < r.count; ++i) mine.push_back(std::move(rows[r.first + i]));
    // The request whose callback threw is dropped.
    call_guarded("answering a request", [&] { r.done(std::move(mine)); });
  }
}

void micro_batcher::account(double ms, size_t rows) {
  if (rows > 0) {
    const double per_row = ms / static_cast<double>(rows);
    ms_per_text_ = batches_ == 0 ? per_row : ms_per_text_ + (per_row - ms_per_text_) / 8;
  }
  ++batches_;
  texts_ += rows;
}

namespace {

// The rows [first, first + count) of `t` (first dimension: the batch).
tensor rows_of(const tensor& t, size_t first, size_t count) {
  tensor out;
  out.name = t.name;
  out.type = t.type;
  out.shape = t.shape;
  out.shape[0] = int64_t(count);
  const size_t per_row = t.elements() / size_t(t.shape[0]);
  if (t.type == data_type::bytes) {
    out.strings.assign(t.strings.begin() + long(first * per_row),
                       t.strings.begin() + long((first + count) * per_row));
  } else {
    const size_t row_bytes = per_row * element_size(t.type);
    out.data = t.data.substr(first * row_bytes, count * row_bytes);
  }
  return out;
}

}  // namespace

void micro_batcher::run(tensor_group& g) {
  pending_texts_ -= std::min(pending_texts_, g.rows);
  const double start = thread_cpu_ms();
  auto one_by_one = [&] {
    for (auto& r : g.requests) {
      auto out = g.m->run(r.inputs, g.outputs);
      call_guarded("answering a request", [&] { r.done(std::move(out)); });
    }
    account(thread_cpu_ms() - start, g.rows);
  };
  if (g.requests.size() == 1) return one_by_one();
  // Stack every input along the batch dimension, in the requests' order.
  std::vector<tensor> stacked = g.requests.front().inputs;
  for (auto& t : stacked) t.shape[0] = int64_t(g.rows);
  for (size_t i = 1; i < g.requests.size(); ++i) {
    for (size_t j = 0; j < stacked.size(); ++j) {
      const tensor& more = g.requests[i].inputs[j];
      stacked[j].data += more.data;
      stacked[j].strings.insert(stacked[j].strings.end(), more.strings.begin(), more.strings.end());
    }
  }
  auto all = g.m->run(stacked, g.outputs);
  bool split = all.is_ok();
  for (size_t j = 0; split && j < all->size(); ++j) {
    const tensor& t = (*all)[j];
    split = !t.shape.empty() && t.shape[0] == int64_t(g.rows) && t.check_size().is_ok();
  }
  // A failed run (one request's bad index, say) or an output that is not batch-major: each
  // request alone, so each gets exactly its own answer or error.
  if (!split) return one_by_one();
  account(thread_cpu_ms() - start, g.rows);
  size_t first = 0;
  for (auto& r : g.requests) {
    std::vector<tensor> mine;
    mine.reserve(all->size());
    for (const tensor& t : *all) mine.push_back(rows_of(t, first, r.rows));
    first += r.rows;
    call_guarded("answering a request", [&] { r.done(std::move(mine)); });
  }
}

}  // namespace shoal
