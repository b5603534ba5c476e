#pragma once
// TimeoutBehavior: enforces the context deadline around handler calls.

#include <chrono>
#include <memory>
#include <optional>

#include "catga/behavior.hpp"
#include "catga/pipeline/clock.hpp"

namespace catga {

// Options of TimeoutBehavior.
struct TimeoutOptions {
  // Gives every call at most this long: ctx.deadline = min(ctx.deadline,
  // now + default_timeout). Unset: only deadlines already in the context count.
  std::optional<std::chrono::nanoseconds> default_timeout{};
  // Reads time; null means Clock::system().
  std::shared_ptr<Clock> clock{};
};

// Cooperative deadlines. Handlers are synchronous and cannot be interrupted,
// so the behavior acts before and after the call:
//  - before: a deadline already passed fails with `timeout` (retryable) and
//    the handler is not called;
//  - after: a FAILED call that ended past the deadline reports `timeout`
//    (its message keeps the handler's error); a SUCCESSFUL late call keeps
//    its result: the work is done, and reporting a timeout would invite the
//    caller to send a duplicate.
// Long handlers should check ctx.expired() / ctx.remaining() themselves
// (and pass the context on, so nested sends inherit the deadline).
//
//   mediator.use(std::make_shared<catga::TimeoutBehavior>(
//       catga::TimeoutOptions{.default_timeout = std::chrono::seconds(2)}));
class TimeoutBehavior final : public Behavior {
 public:
  explicit TimeoutBehavior(TimeoutOptions options = {});
  Status handle(Invocation& inv, Next next) override;

 private:
  TimeoutOptions options_;
};

}  // namespace catga
