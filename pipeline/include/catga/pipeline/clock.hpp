#pragma once
// Clock: the time source of the behaviors that wait or expire things (retry,
// timeout, idempotency TTL, metrics), injectable so tests never sleep.

#include <time.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

namespace catga {

// Reads steady time and sleeps. Uses the same time_point as Context::deadline
// (std::chrono::steady_clock), so deadlines compare directly with now().
//
//   std::shared_ptr<catga::Clock> clock = catga::Clock::system();
//   auto t0 = clock->now();
//   clock->sleep_for(std::chrono::milliseconds(10));
class Clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual time_point now() const noexcept = 0;
  virtual void sleep_for(duration d) = 0;
  // now() that may lag by a few milliseconds, for expiry times (TTLs,
  // leases) where a cheaper read matters more than precision.
  virtual time_point coarse_now() const noexcept { return now(); }

  // The process-wide SystemClock; behaviors use it when given no clock.
  static const std::shared_ptr<Clock>& system() noexcept;
};

// Real time: std::chrono::steady_clock and std::this_thread::sleep_for;
// coarse_now() reads CLOCK_MONOTONIC_COARSE on Linux (same time base, a few
// times cheaper, lags by at most one kernel tick).
class SystemClock final : public Clock {
 public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
  // Inline: callers holding a SystemClock (the in-memory idempotency store
  // reads it twice per message) skip the virtual call.
  time_point coarse_now() const noexcept override {
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
  void sleep_for(duration d) override;
};

// Time that moves only when told to. sleep_for(d) returns at once, advances
// the time by d and records d, so tests can check the delays a behavior chose.
// Thread-safe.
//
//   auto clock = std::make_shared<catga::ManualClock>();
//   clock->advance(std::chrono::seconds(5));
//   retry_behavior_runs_here();
//   auto slept = clock->sleeps();  // every sleep_for duration, in order
class ManualClock final : public Clock {
 public:
  // Starts at the current steady time, so contexts built with real deadlines
  // still make sense against it.
  ManualClock() noexcept : ManualClock(std::chrono::steady_clock::now()) {}
  explicit ManualClock(time_point start) noexcept : now_(start.time_since_epoch().count()) {}

  time_point now() const noexcept override { return time_point(duration(now_.load(std::memory_order_acquire))); }
  void sleep_for(duration d) override;

  void advance(duration d) noexcept { now_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void set(time_point t) noexcept { now_.store(t.time_since_epoch().count(), std::memory_order_release); }

  // Every duration passed to sleep_for since construction or clear_sleeps().
  std::vector<duration> sleeps() const;
  void clear_sleeps();

 private:
  std::atomic<duration::rep> now_;
  mutable std::mutex mutex_;
  std::vector<duration> sleeps_;
};

}  // namespace catga
