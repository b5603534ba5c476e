#include "catga/transport.hpp"

#include "catga/wire.hpp"

namespace catga {

void Delivery::for_each_app_header(FunctionRef<void(std::string_view, std::string_view)> visit) const {
  for_each_header([&](std::string_view k, std::string_view v) {
    if (!wire::is_managed_header(k)) visit(k, v);
  });
}

std::chrono::milliseconds RetryPolicy::delay_after(int attempt) const noexcept {
  if (backoff.empty()) return std::chrono::milliseconds::zero();
  const auto i = static_cast<std::size_t>(attempt < 1 ? 0 : attempt - 1);
  return i < backoff.size() ? backoff[i] : backoff.back();
}

}  // namespace catga
