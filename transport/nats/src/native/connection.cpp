#include "catga/nats/native/connection.hpp"

#include "../connection_impl.hpp"

namespace catga::nats::native {

natsConnection* connection_of(const Connection& connection) noexcept { return detail::impl_of(connection).conn(); }

jsCtx* jetstream_of(const Connection& connection) noexcept { return detail::impl_of(connection).jet(); }

void retire(const Connection& connection, SubscriptionHandle subscription, std::chrono::milliseconds wait) noexcept {
  detail::impl_of(connection).retire(std::move(subscription), wait);
}

void retire_later(const Connection& connection, SubscriptionHandle subscription) noexcept {
  detail::impl_of(connection).retire_later(std::move(subscription));
}

}  // namespace catga::nats::native
