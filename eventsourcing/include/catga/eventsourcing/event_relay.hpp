#pragma once
// EventRelay: publishes the events appended to the store as catga events.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "catga/eventsourcing/event_store.hpp"
#include "catga/result.hpp"

namespace catga::eventsourcing {

// Settings of EventRelay.
struct EventRelayOptions {
  // Names the durable consumer on the store ("es_relay_<name>"); instances
  // with the same name share the work.
  std::string name = "events";
  // Events go to <events_prefix>.evt.<Type> (the JetStreamTransport's prefix;
  // its events stream must exist: the transport provisions it).
  std::string events_prefix = "catga";
  // Which streams: a subject filter such as "catga.es.Order.>"; empty: all.
  std::string filter{};
  int batch = 256;
  std::chrono::milliseconds ack_wait{30'000};
  // How long one batch of publishes may take before it is retried.
  std::chrono::milliseconds publish_timeout{10'000};
};

// What a relay has done and met (health reports).
struct EventRelayHealth {
  std::uint64_t published = 0;      // events published by this instance
  std::uint64_t dead_lettered = 0;  // commits that could not be read, parked in the dead-letter stream
  std::uint64_t ignored = 0;        // double appends not relayed (an earlier commit holds their versions)
  std::string last_error;           // last failure met (empty: none)
};

// Turns the store into the source of catga events, with no second write an
// application could lose: a durable consumer on the store stream reads each
// commit and publishes every event in it to <prefix>.evt.<Type> (the wire
// format of docs/wire-format.md: body = the event's data, Nats-Msg-Id = the
// event's id, Catga-Correlation-Id / Catga-Causation-Id from the event, plus
// Catga-Es-Stream and Catga-Es-Version; Catga-Message-Version is the event's
// schema when above 1: number the store's upcaster schemas and the type's
// CATGA_VERSION alike). The commit is acked only after the
// events stream stored all of its events; a crash or failure republishes
// them, and the events stream drops the repeats by Nats-Msg-Id (within its
// duplicate window). A commit that cannot be read (undecodable, failing
// upcaster) is stored in the dead-letter stream (`catga dlq list`) and
// counted in health(), never skipped silently. A commit that claims versions
// an earlier commit of its stream already holds (a second conditional append
// the server let through: nats-server 2.9 on a clustered stream) is not
// relayed, by the store's read rule; it is logged and counted in health().
// nats-server 2.9 cannot source a stream with a subject transform, and one
// commit holds several events, hence a relay.
//
//   auto transport = catga::nats::JetStreamTransport::create(conn).value();  // provisions CATGA_EVENTS
//   auto relay = EventRelay::start(store).value();
//   mediator.subscribe<OrderPlaced>({.group = "billing"}, on_placed);        // receives appended OrderPlaced
class EventRelay {
 public:
  static Result<std::unique_ptr<EventRelay>> start(std::shared_ptr<EventStore> store, EventRelayOptions options = {});
  ~EventRelay();
  EventRelay(const EventRelay&) = delete;
  EventRelay& operator=(const EventRelay&) = delete;

  // Events published by this instance (repeats after a retry included).
  std::uint64_t published() const noexcept;
  // Counters and the last failure, for readiness/health endpoints.
  EventRelayHealth health() const;
  // Commits not yet relayed, as the server counts them.
  Result<std::uint64_t> lag() const;
  // Stops (the current batch finishes). Idempotent.
  void stop() noexcept;

  struct Impl;

 private:
  explicit EventRelay(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catga::eventsourcing
