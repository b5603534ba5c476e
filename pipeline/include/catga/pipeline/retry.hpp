#pragma once
// RetryBehavior: calls the rest of the pipeline again after retryable errors,
// with exponential backoff and full jitter.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "catga/behavior.hpp"
#include "catga/pipeline/clock.hpp"

namespace catga {

// Options of RetryBehavior.
struct RetryOptions {
  // Calls of the rest of the pipeline in total, the first one included.
  int max_attempts = 3;
  // Cap of the delay after attempt n is min(max_delay, initial_delay * multiplier^(n-1)).
  std::chrono::nanoseconds initial_delay = std::chrono::milliseconds(50);
  double multiplier = 2.0;
  std::chrono::nanoseconds max_delay = std::chrono::seconds(5);
  // Sleeps and reads time; null means Clock::system().
  std::shared_ptr<Clock> clock{};
  // Seed of the jitter; unset means a random seed per behavior.
  std::optional<std::uint64_t> seed{};
};

// Retries a failed call when its Error is retryable, up to max_attempts
// calls. Before each call it sets inv.context.attempt to the attempt number
// (1, 2, ...) and restores the caller's value when done. The delay after
// failed attempt n is drawn uniformly from [0, cap(n)] ("full jitter"), so
// many clients retrying together spread out instead of hammering in step.
//
// Deadline: if sleeping the chosen delay would reach inv.context.deadline,
// the behavior stops at once and returns the LAST ERROR (not a timeout
// error): it is the more useful diagnosis, and its retryable flag still lets
// an outer layer (a transport's redelivery) decide. Non-retryable errors and
// successes return immediately. The success path does not allocate.
//
//   mediator.use(std::make_shared<catga::RetryBehavior>(catga::RetryOptions{
//       .max_attempts = 5, .initial_delay = std::chrono::milliseconds(20)}));
class RetryBehavior final : public Behavior {
 public:
  explicit RetryBehavior(RetryOptions options = {});
  Status handle(Invocation& inv, Next next) override;

  // The cap of the delay after failed attempt `attempt` (1-based).
  std::chrono::nanoseconds max_delay_after(int attempt) const noexcept;
  const RetryOptions& options() const noexcept { return options_; }

 private:
  std::chrono::nanoseconds jittered_delay(int attempt) noexcept;

  RetryOptions options_;
  // splitmix64 state: lock-free and shareable between threads.
  std::atomic<std::uint64_t> rng_state_;
};

}  // namespace catga
