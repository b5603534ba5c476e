#include "catga/pipeline/clock.hpp"

#include <thread>

namespace catga {

const std::shared_ptr<Clock>& Clock::system() noexcept {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

void SystemClock::sleep_for(duration d) {
  if (d > duration::zero()) std::this_thread::sleep_for(d);
}

void ManualClock::sleep_for(duration d) {
  if (d < duration::zero()) d = duration::zero();
  {
    std::lock_guard lock(mutex_);
    sleeps_.push_back(d);
  }
  advance(d);
}

std::vector<ManualClock::duration> ManualClock::sleeps() const {
  std::lock_guard lock(mutex_);
  return sleeps_;
}

void ManualClock::clear_sleeps() {
  std::lock_guard lock(mutex_);
  sleeps_.clear();
}

}  // namespace catga
