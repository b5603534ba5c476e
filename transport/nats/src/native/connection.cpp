#include "catga/nats/native/connection.hpp"

#include "../connection_impl.hpp"

namespace catga::nats::native {

natsConnection* connection_of(const Connection& connection) noexcept { return connection.impl().conn(); }

jsCtx* jetstream_of(const Connection& connection) noexcept { return connection.impl().jet(); }

void retire(const Connection& connection, SubscriptionHandle subscription, std::chrono::milliseconds wait) noexcept {
  connection.impl().retire(std::move(subscription), wait);
}

}  // namespace catga::nats::native
