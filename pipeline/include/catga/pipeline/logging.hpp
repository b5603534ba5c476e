#pragma once
// LoggingBehavior: one log line per handler call, through spdlog.

#include <spdlog/common.h>
#include <memory>

#include "catga/behavior.hpp"
#include "catga/pipeline/clock.hpp"

namespace spdlog {
class logger;
}

namespace catga {

// Options of LoggingBehavior.
struct LoggingOptions {
  // Where lines go; null means spdlog's default logger at the time of the call.
  std::shared_ptr<spdlog::logger> logger{};
  spdlog::level::level_enum success_level = spdlog::level::debug;
  spdlog::level::level_enum failure_level = spdlog::level::warn;
  // Measures the duration; null means Clock::system().
  std::shared_ptr<Clock> clock{};
};

// Logs every handler call with its kind, type, message id, correlation id,
// handler key, attempt, outcome (ok, or error code and message) and duration:
//
//   command PlaceOrder id=4f1c… correlation=4f1c… attempt=1 ok duration_us=12
//   command PlaceOrder id=4f1c… correlation=4f1c… attempt=1 failed code=validation
//       message="amount: must be positive" retryable=false duration_us=3
//
// When neither level is enabled on the logger the call costs two
// should_log() checks: no clock read, no formatting.
//
//   mediator.use(std::make_shared<catga::LoggingBehavior>(catga::LoggingOptions{.logger = my_logger}));
class LoggingBehavior final : public Behavior {
 public:
  explicit LoggingBehavior(LoggingOptions options = {});
  Status handle(Invocation& inv, Next next) override;

 private:
  LoggingOptions options_;
};

}  // namespace catga
