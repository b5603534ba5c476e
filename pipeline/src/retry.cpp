#include "catga/pipeline/retry.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace catga {
namespace {

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// One splitmix64 output for the state value `x` (already advanced).
std::uint64_t mix(std::uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

RetryBehavior::RetryBehavior(RetryOptions options)
    : options_(std::move(options)), rng_state_(options_.seed ? *options_.seed : random_seed()) {
  if (!options_.clock) options_.clock = Clock::system();
  options_.max_attempts = std::max(1, options_.max_attempts);
  if (options_.initial_delay < std::chrono::nanoseconds::zero()) options_.initial_delay = {};
  if (options_.max_delay < std::chrono::nanoseconds::zero()) options_.max_delay = {};
  if (!(options_.multiplier >= 1.0)) options_.multiplier = 1.0;
}

std::chrono::nanoseconds RetryBehavior::max_delay_after(int attempt) const noexcept {
  // In double, so large exponents saturate at max_delay instead of overflowing.
  const double cap = static_cast<double>(options_.initial_delay.count()) *
                     std::pow(options_.multiplier, static_cast<double>(std::max(0, attempt - 1)));
  const double max = static_cast<double>(options_.max_delay.count());
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(cap, max)));
}

std::chrono::nanoseconds RetryBehavior::jittered_delay(int attempt) noexcept {
  const auto cap = max_delay_after(attempt).count();
  const std::uint64_t r =
      mix(rng_state_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL);
  // 53 random bits → [0, 1]; the cap itself is a possible delay.
  const double u = static_cast<double>(r >> 11) / static_cast<double>((1ULL << 53) - 1);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(u * static_cast<double>(cap)));
}

Status RetryBehavior::handle(Invocation& inv, Next next) {
  Context& ctx = inv.context;
  const int caller_attempt = ctx.attempt;
  struct Restore {
    Context& ctx;
    int attempt;
    ~Restore() { ctx.attempt = attempt; }
  } restore{ctx, caller_attempt};

  for (int attempt = 1;; ++attempt) {
    ctx.attempt = attempt;
    Status s = next();
    if (s || !s.error().retryable || attempt >= options_.max_attempts) return s;
    // A deferral (another consumer holds the message's claim) says when to
    // come back; sooner would only meet the same claim.
    const auto delay = std::max<std::chrono::nanoseconds>(jittered_delay(attempt), s.error().retry_after);
    if (ctx.has_deadline() && options_.clock->now() + delay >= ctx.deadline) return s;
    options_.clock->sleep_for(delay);
  }
}

}  // namespace catga
