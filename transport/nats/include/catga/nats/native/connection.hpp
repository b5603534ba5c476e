#pragma once
// The nats.c handles of a catga::nats::Connection, for code that calls
// nats.c itself (nats.c level: includes <nats/nats.h>, see
// catga/nats/native/handle.hpp).
//
//   auto conn = catga::nats::Connection::connect(options).value();
//   natsConnection* nc = catga::nats::native::connection_of(*conn);
//   catga::nats::native::SubscriptionHandle sub;
//   natsConnection_SubscribeSync(sub.out(), nc, inbox);
//   ...
//   catga::nats::native::retire(*conn, std::move(sub), std::chrono::seconds(1));

#include <nats/nats.h>

#include <chrono>

#include "catga/nats/connection.hpp"
#include "catga/nats/native/handle.hpp"

namespace catga::nats::native {

// The connection's natsConnection and its JetStream context (the library's
// defaults: no domain, API prefix $JS.API). Borrowed: valid while
// `connection` lives; do not close or destroy them. Once the Connection is
// closed, calls through them fail with NATS_CONNECTION_CLOSED.
natsConnection* connection_of(const Connection& connection) noexcept;
jsCtx* jetstream_of(const Connection& connection) noexcept;

// The way to let go of a subscription the server may still send to (nats.c
// before 3.10 can deliver to a destroyed subscription: nats.c issue 637).
// Unsubscribes it, waits up to `wait` for a PING/PONG round trip (after it
// the read thread is done with the subscription), then destroys it; when the
// round trip fails it is kept until the connection has closed.
void retire(const Connection& connection, SubscriptionHandle subscription, std::chrono::milliseconds wait) noexcept;

// retire() without waiting: unsubscribes now and hands the subscription to
// a thread of the connection, which does one round trip for all handed over
// meanwhile and then destroys them. Off the caller's path; for hot paths.
//
//   catga::nats::native::retire_later(*conn, std::move(sub));
void retire_later(const Connection& connection, SubscriptionHandle subscription) noexcept;

}  // namespace catga::nats::native
