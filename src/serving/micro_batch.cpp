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

bool micro_batcher::after_flush(std::function<void()> fn) {
  const bool was_empty = empty();
  after_.push_back(std::move(fn));
  return was_empty;
}

void micro_batcher::flush() {
  // Taken out first: a done callback may add() to this batcher again.
  std::map<key, group> now;
  now.swap(groups_);
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
  for (auto& fn : after) call_guarded("a call after the flush", fn);
}

void micro_batcher::run(group& g) {
  pending_texts_ -= std::min(pending_texts_, g.texts.size());
  // CPU time, not wall time: a batch during which the machine kept the thread off the CPU must
  // not look expensive (the round budget refuses work by this cost).
  const double start = thread_cpu_ms();
  auto rows = g.m->predict_batch(g.texts, g.k);
  const double ms = thread_cpu_ms() - start;
  if (!g.texts.empty()) {
    const double per_text = ms / static_cast<double>(g.texts.size());
    ms_per_text_ = batches_ == 0 ? per_text : ms_per_text_ + (per_text - ms_per_text_) / 8;
  }
  ++batches_;
  texts_ += g.texts.size();
  for (auto& r : g.requests) {
    std::vector<std::vector<prediction>> mine;
    mine.reserve(r.count);
    for (size_t i = 0; i < r.count; ++i) mine.push_back(std::move(rows[r.first + i]));
    // The request whose callback threw is dropped.
    call_guarded("answering a request", [&] { r.done(std::move(mine)); });
  }
}

}  // namespace shoal
