#include "catga/pipeline/clock.hpp"

#include <thread>

#if defined(__linux__)
#include <ctime>
#endif

namespace catga {

const std::shared_ptr<Clock>& Clock::system() noexcept {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

Clock::time_point SystemClock::coarse_now() const noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  // libstdc++'s steady_clock is CLOCK_MONOTONIC; the coarse variant shares
  // its origin, so both kinds of reading compare.
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
    return time_point(
        std::chrono::duration_cast<duration>(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
  }
#endif
  return now();
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
