// The actors' side of a front door, in memory: keeps each call and its callback until the test
// answers it (front_door_test, console_test).
#pragma once

#include <deque>
#include <utility>
#include <vector>

#include "shoal/serving/front_door.hpp"

namespace shoal::testing {

class recording_cluster final : public cluster_port {
 public:
  void call(api_call call, api_callback done) override {
    calls.push_back(std::move(call));
    replies.push_back(std::move(done));
  }
  /// Answers call `i` as the gateway does: once, dropping the callback afterwards.
  void answer(size_t i, api_reply reply) {
    api_callback done = std::move(replies.at(i));
    replies.at(i) = nullptr;
    done(std::move(reply));
  }
  std::vector<api_call> calls;
  std::deque<api_callback> replies;
};

}  // namespace shoal::testing
