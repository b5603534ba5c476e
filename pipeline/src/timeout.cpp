#include "catga/pipeline/timeout.hpp"

#include <algorithm>
#include <string>

namespace catga {

TimeoutBehavior::TimeoutBehavior(TimeoutOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = Clock::system();
}

Status TimeoutBehavior::handle(Invocation& inv, Next next) {
  Context& ctx = inv.context;
  if (!options_.default_timeout && !ctx.has_deadline()) return next();  // nothing to enforce, no clock read

  const Clock& clock = *options_.clock;
  const auto now = clock.now();
  if (options_.default_timeout) {
    const auto limit = *options_.default_timeout;
    if (limit < Clock::time_point::max() - now) ctx.deadline = std::min(ctx.deadline, now + limit);
  }
  if (ctx.expired(now)) {
    return make_error(errc::timeout, "deadline passed before '" + std::string(inv.info.name) + "' was handled", true);
  }

  Status s = next();
  if (s || s.error().code == errc::timeout || !ctx.expired(clock.now())) return s;
  const Error& e = s.error();
  return make_error(
      errc::timeout,
      "deadline passed while handling '" + std::string(inv.info.name) + "' (" + e.code + ": " + e.message + ")", true);
}

}  // namespace catga
