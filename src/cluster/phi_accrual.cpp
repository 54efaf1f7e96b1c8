#include "shoal/cluster/phi_accrual.hpp"

#include <algorithm>
#include <cmath>

namespace shoal {

double phi_of(double elapsed_ms, double mean_ms, double std_dev_ms) {
  // Akka's PhiAccrualFailureDetector: a logistic approximation of the normal CDF (error < 0.0002),
  // written so neither branch loses precision for large y.
  double y = (elapsed_ms - mean_ms) / std_dev_ms;
  double exponent = -y * (1.5976 + 0.070566 * y * y);
  double e = std::exp(exponent);
  // Late: -log10(e / (1 + e)) = -exponent / ln 10 + log10(1 + e), finite even where e underflows
  // (Akka's form would give infinity after a long silence, which JSON cannot carry).
  if (elapsed_ms > mean_ms) return -exponent / std::log(10.0) + std::log10(1.0 + e);
  return -std::log10(1.0 - 1.0 / (1.0 + e));
}

phi_accrual::phi_accrual(phi_accrual_config cfg) : cfg_(cfg) {
  if (cfg_.window == 0) cfg_.window = 1;
}

void phi_accrual::add_sample(double interval_ms) {
  samples_.push_back(interval_ms);
  sum_ += interval_ms;
  sum_sq_ += interval_ms * interval_ms;
  if (samples_.size() > cfg_.window) {
    double old = samples_.front();
    samples_.pop_front();
    sum_ -= old;
    sum_sq_ -= old * old;
  }
}

void phi_accrual::heartbeat(int64_t now_ms) {
  if (!has_last_) {
    // Like Akka: seed the window with two samples around the first estimate, so phi is defined
    // (and modest) until real intervals arrive.
    double d = cfg_.first_interval_ms / 4;
    add_sample(cfg_.first_interval_ms - d);
    add_sample(cfg_.first_interval_ms + d);
  } else if (now_ms >= last_ms_) {
    add_sample(static_cast<double>(now_ms - last_ms_));
  }
  has_last_ = true;
  last_ms_ = std::max(last_ms_, now_ms);
}

double phi_accrual::mean_ms() const {
  return samples_.empty() ? cfg_.first_interval_ms : sum_ / static_cast<double>(samples_.size());
}

double phi_accrual::std_dev_ms() const {
  if (samples_.size() < 2) return 0;
  double n = static_cast<double>(samples_.size());
  double mean = sum_ / n;
  double var = sum_sq_ / n - mean * mean;
  return var > 0 ? std::sqrt(var) : 0;
}

double phi_accrual::phi(int64_t now_ms) const {
  if (!has_last_) return 0;
  double elapsed = static_cast<double>(std::max<int64_t>(0, now_ms - last_ms_));
  double std_dev = std::max(std_dev_ms(), cfg_.min_std_dev_ms);
  return phi_of(elapsed, mean_ms() + cfg_.acceptable_pause_ms, std_dev);
}

void phi_accrual::reset() {
  samples_.clear();
  sum_ = 0;
  sum_sq_ = 0;
  has_last_ = false;
  last_ms_ = 0;
}

void phi_accrual::restart_clock(int64_t now_ms) {
  if (has_last_) last_ms_ = std::max(last_ms_, now_ms);
}

}  // namespace shoal
