#include "catga/transport.hpp"

#include "catga/wire.hpp"

namespace catga {

std::chrono::milliseconds RetryPolicy::delay_after(int attempt) const noexcept {
  if (backoff.empty()) return std::chrono::milliseconds::zero();
  const auto i = static_cast<std::size_t>(attempt < 1 ? 0 : attempt - 1);
  return i < backoff.size() ? backoff[i] : backoff.back();
}

std::optional<std::chrono::milliseconds> RetryPolicy::redeliver_after(int attempt, const Error& error) const noexcept {
  // A deferral is no failure of this delivery: whoever holds the claim
  // finishes, or its lease runs out and the next delivery takes over.
  if (error.code == errc::deferred) {
    return error.retry_after.count() > 0 ? error.retry_after : delay_after(attempt);
  }
  if (!error.retryable || exhausted(attempt)) return std::nullopt;
  return error.retry_after.count() > 0 ? error.retry_after : delay_after(attempt);
}

}  // namespace catga
