// overload: keeps a front-end thread's queueing delay within what its requests can wait, by
// refusing a share of new inference requests when the thread falls behind.
//
// How long a request may wait is the client's to say, because the node cannot tell the two kinds
// of load apart. A connection pool (closed loop: each connection sends its next request when the
// last is answered) of C connections keeps C requests at the node; the queue they wait in is the
// concurrency the client chose, it never grows past C, and refusing some of them only turns
// answers into errors (the pool sends the next request at once). An open-loop client (requests
// due at a rate, whatever became of the earlier ones) wants a quick refusal instead of a long
// wait. At the node both look the same: C busy connections, each sending again as soon as it is
// answered (bench/README.md, "Admission": the node's delay is the same in both). So:
//  - a request that says nothing may wait max_queue_ms (default 100: a pool of a thousand
//    connections on two cores waits about 20 ms and is never refused; a storm with no bound
//    on its connections is cut off there);
//  - a request that says how long it may wait (HTTP header Shoal-Max-Queue-Ms, as a deadline
//    travels with a request in gRPC, Envoy or Triton's queue policy) is refused at once while
//    the thread is behind by more than that, so an open-loop client gets fast refusals and
//    answers within its budget.
//
// The HTTP server measures how late a timer on the thread fires (about how long a request that
// just arrived waits for the thread) every millisecond while the thread is busy, and feeds it
// here. Once that delay is above the target (the tightest budget among the requests taken since
// the last measurement) three samples in a row (a late timer or two is a burst or a big batch,
// not a queue), the thread sheds: the share of requests admitted falls (times 0.8 per sample
// above the target, which tightens to half as the share falls; never below 2%) and climbs back
// (+5% per sample below it) until it is whole again; an idle thread admits everything at once.
// A request whose own budget is looser than the target and covers the delay now is taken
// anyway. The rest get 429 at once, which costs the thread a fraction of an answer, so accepted
// requests keep a latency near their budget even at several times the node's capacity, and the
// node recovers as soon as the storm ends.
//
// Admission is spread evenly (a credit counter, not a coin): with share 0.25 exactly every fourth
// request is admitted.
//
// Only the thread's own backlog counts (thread_cpu_ms, own_lag_ms): a thread that is late because
// the machine kept it off the CPU (other processes, a paused VM) would not get that time back by
// refusing requests, so that part of the delay is not a reason to shed.
//
// Not thread-safe: one per thread (front ends keep a thread_local one).
#pragma once

#include <time.h>

#include <chrono>

namespace shoal {

/// CPU time the calling thread has used, in milliseconds (CLOCK_THREAD_CPUTIME_ID): unlike the
/// wall clock, it does not advance while the thread waits for the CPU or is stopped.
inline double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

/// The part of a probe's lateness the thread owes to its own work: `lag_ms` scaled by the share of
/// the probe's interval (`wall_ms` from arming to firing) the thread spent running (`cpu_ms`).
/// A thread busy all along keeps the whole lag; one that was waiting for the CPU or stopped
/// (cpu_ms near 0) keeps next to none of it.
inline double own_lag_ms(double lag_ms, double wall_ms, double cpu_ms) {
  if (lag_ms <= 0 || wall_ms <= 0) return 0;
  double running = cpu_ms / wall_ms;
  if (running < 0) running = 0;
  if (running > 1) running = 1;
  return lag_ms * running;
}

/// The bookkeeping of one front-end thread's lag probe; the HTTP and ZeroMQ servers each drive
/// one with their own timer. Armed when the thread takes a request and none is under way; when
/// it fires, it reads how late it came (own_lag_ms) and whether the thread took any request since
/// it was armed (if not, the thread is idle and the probe stays unarmed until the next request).
class lag_probe_state {
 public:
  using clock = std::chrono::steady_clock;

  /// A request was taken. Returns true when the probe must be armed now (none is under way).
  bool note_request() {
    busy_ = true;
    return !armed_;
  }

  /// Arms the probe `interval` from now; returns when it is due.
  clock::time_point arm(clock::duration interval) {
    armed_ = true;
    busy_ = false;
    armed_at_ = clock::now();
    due_ = armed_at_ + interval;
    cpu_at_arm_ = thread_cpu_ms();
    return due_;
  }

  struct reading {
    double lag_ms;  // own_lag_ms of how late it fired
    bool idle;      // no request since it was armed: re-arm only when not idle
  };

  /// The probe fired (on the thread it measures); it is unarmed afterwards.
  reading fire() {
    armed_ = false;
    using ms = std::chrono::duration<double, std::milli>;
    const auto now = clock::now();
    const double lag = own_lag_ms(ms(now - due_).count(), ms(now - armed_at_).count(),
                                  thread_cpu_ms() - cpu_at_arm_);
    return {lag, !busy_};
  }

  /// Forgets an armed probe whose timer was cancelled.
  void disarm() { armed_ = false; }

  bool armed() const { return armed_; }
  clock::time_point due() const { return due_; }

 private:
  bool armed_ = false;
  bool busy_ = false;  // a request was taken since the probe was armed
  clock::time_point armed_at_, due_;
  double cpu_at_arm_ = 0;  // thread_cpu_ms() when armed
};

class admission_control {
 public:
  /// `default_ms`: the queueing delay allowed to a request that states none (max_queue_ms);
  /// <= 0: such requests are never shed (one that states its own budget still is).
  explicit admission_control(double default_ms)
      : default_ms_(default_ms > 0 ? default_ms : kNone), target_ms_(default_ms_) {}

  /// One queueing-delay measurement (milliseconds), held against the target: the tightest
  /// budget among the requests taken lately. A tighter one applies at once; the target loosens
  /// (to the tightest of the last measurement's requests, or the default) only after
  /// `samples_to_loosen` measurements in a row without one as tight, so a storm of hasty
  /// requests is not let in by a moment in which only patient ones arrived.
  void sample(double lag_ms) {
    last_lag_ms_ = lag_ms;
    const double seen = tightest_ms_ < kNone ? tightest_ms_ : default_ms_;
    tightest_ms_ = kNone;
    if (seen <= target_ms_) {
      target_ms_ = seen;
      looser_samples_ = 0;
    } else if (++looser_samples_ >= samples_to_loosen) {
      target_ms_ = seen;
      looser_samples_ = 0;
    }
    if (target_ms_ >= kNone) {
      share_ = 1.0;
      late_in_a_row_ = 0;
      return;
    }
    if (shedding()) {
      // Behind for certain: hold the delay below the target, down to half of it as the share
      // falls. Just over capacity (share near 1) the target itself, so a peak costs few
      // refusals; in a storm (share near the floor) half, because a request taken then waits
      // for about two probes' worth of work, refusals included.
      if (lag_ms > target_ms_ * (0.5 + 0.5 * share_)) {
        share_ = share_ * 0.8 < min_share ? min_share : share_ * 0.8;
      } else {
        share_ = share_ + 0.05 >= 1.0 ? 1.0 : share_ + 0.05;
        if (share_ >= 1.0) late_in_a_row_ = 0;
      }
      return;
    }
    if (lag_ms <= target_ms_) {
      late_in_a_row_ = 0;
    } else if (++late_in_a_row_ >= late_samples_to_shed) {
      share_ = 0.8;
    }
  }

  /// The thread had nothing to do: admit everything again.
  void idle() {
    share_ = 1.0;
    late_in_a_row_ = 0;
    last_lag_ms_ = 0;
  }

  /// Whether to take the next request. `budget_ms`: the longest this request may wait (the
  /// client said so); <= 0: it said nothing, the default applies. While the thread sheds for a
  /// tighter budget than this request's, the request is taken when the delay now is within its
  /// own budget; otherwise it takes its turn in the share.
  bool admit(double budget_ms = 0) {
    const double budget = budget_ms > 0 ? budget_ms : default_ms_;
    if (budget >= kNone) return true;
    if (budget < tightest_ms_) tightest_ms_ = budget;
    if (share_ >= 1.0) return true;
    if (budget > target_ms_ && last_lag_ms_ <= budget) return true;
    credit_ += share_;
    if (credit_ >= 1.0) {
      credit_ -= 1.0;
      return true;
    }
    return false;
  }

  double share() const { return share_; }
  /// Whether the thread refuses some requests now (its share is below 1).
  bool shedding() const { return share_ < 1.0; }
  double last_lag_ms() const { return last_lag_ms_; }
  /// Whether the thread holds its delay to a target now (no: nothing asks, max_queue_ms 0).
  bool has_target() const { return target_ms_ < kNone; }
  /// The delay the thread holds now (see sample()).
  double target_ms() const { return target_ms_; }
  /// max_queue_ms, or a huge number when it is 0 (off).
  double default_ms() const { return default_ms_; }

  static constexpr double min_share = 0.02;
  static constexpr int late_samples_to_shed = 3;
  static constexpr int samples_to_loosen = 100;  // about 100 ms of a busy thread

 private:
  static constexpr double kNone = 1e300;
  double default_ms_;
  double target_ms_;
  double tightest_ms_ = kNone;  // the tightest budget taken since the last sample
  int looser_samples_ = 0;      // samples in a row whose requests were all looser than target
  double share_ = 1.0;
  double credit_ = 0;
  double last_lag_ms_ = 0;
  int late_in_a_row_ = 0;
};

}  // namespace shoal
