#include "catga/transport.hpp"

#include "catga/wire.hpp"

namespace catga {

std::chrono::milliseconds RetryPolicy::delay_after(int attempt) const noexcept {
  if (backoff.empty()) return std::chrono::milliseconds::zero();
  const auto i = static_cast<std::size_t>(attempt < 1 ? 0 : attempt - 1);
  return i < backoff.size() ? backoff[i] : backoff.back();
}

}  // namespace catga
