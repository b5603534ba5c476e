#pragma once
// catga::nats in one include: connection, JetStream transport, KV idempotency store, start-up.
//
//   #include <catga/nats/nats.hpp>
//   auto transport = catga::nats::JetStreamTransport::create(catga::nats::NatsOptions::from_env()).value();

#include "catga/nats/connection.hpp"
#include "catga/nats/jetstream_transport.hpp"
#include "catga/nats/kv_idempotency_store.hpp"
#include "catga/nats/options.hpp"
#include "catga/nats/startup.hpp"
