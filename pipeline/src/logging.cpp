#include "catga/pipeline/logging.hpp"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <chrono>

namespace catga {

LoggingBehavior::LoggingBehavior(LoggingOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = Clock::system();
}

Status LoggingBehavior::handle(Invocation& inv, Next next) {
  spdlog::logger* logger = options_.logger ? options_.logger.get() : spdlog::default_logger_raw();
  const bool success_on = logger != nullptr && logger->should_log(options_.success_level);
  const bool failure_on = logger != nullptr && logger->should_log(options_.failure_level);
  if (!success_on && !failure_on) return next();

  const auto t0 = options_.clock->now();
  Status s = next();
  if (s ? !success_on : !failure_on) return s;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(options_.clock->now() - t0).count();

  const Context& ctx = inv.context;
  const auto id = ctx.message_id.text();
  const auto correlation = ctx.correlation_id.text();
  // The handler key only matters for events (several handlers per message).
  const std::string_view handler_sep = inv.handler_key.empty() ? "" : " handler=";
  if (s) {
    logger->log(options_.success_level, "{} {} id={} correlation={}{}{} attempt={} ok duration_us={}",
                to_string(inv.info.kind), inv.info.name, id.view(), correlation.view(), handler_sep, inv.handler_key,
                ctx.attempt, us);
  } else {
    const Error& e = s.error();
    logger->log(options_.failure_level,
                "{} {} id={} correlation={}{}{} attempt={} failed code={} message=\"{}\" retryable={} duration_us={}",
                to_string(inv.info.kind), inv.info.name, id.view(), correlation.view(), handler_sep, inv.handler_key,
                ctx.attempt, e.code, e.message, e.retryable, us);
  }
  return s;
}

}  // namespace catga
