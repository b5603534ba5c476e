#pragma once
// EventStore::Impl: shared with the projection and the relay (same stream,
// same connection).

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "catga/eventsourcing/event_store.hpp"
#include "catga/nats/native/connection.hpp"
#include "catga/nats/native/handle.hpp"

namespace catga::eventsourcing {

struct EventStore::Impl {
  std::shared_ptr<nats::Connection> connection;
  EventStoreOptions options;
  std::string stream_name;
  nats::native::JsHandle js;  // own context: Wait = options.timeout
  std::atomic<std::uint64_t> ignored{0};  // commits skipped by the read rule

  natsConnection* nc() const noexcept { return nats::native::connection_of(*connection); }
  jsCtx* jet() const noexcept { return js.get(); }
  const Upcasters* upcasters() const noexcept { return options.upcasters.get(); }
};

}  // namespace catga::eventsourcing
