#pragma once
// OutboxTransport: a Transport decorator that keeps at-least-once and
// exactly-once events in a local durable outbox while the broker cannot be
// reached, and relays them in order once it can.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "catga/outbox/outbox_store.hpp"
#include "catga/result.hpp"
#include "catga/transport.hpp"

namespace catga {
class Metrics;  // catga/pipeline/metrics.hpp
}

namespace catga::outbox {

// Where a publish went.
enum class PublishRoute {
  sent,            // the inner transport stored it (the broker acknowledged)
  stored_locally,  // in the outbox; the relay publishes it later
};

struct OutboxTransportOptions {
  std::size_t relay_batch = 64;                          // records per relay round (one delete transaction)
  std::chrono::milliseconds retry_min{100};               // relay pause after a failure, doubling...
  std::chrono::milliseconds retry_max{2'000};             // ...up to this
  std::chrono::milliseconds relay_publish_timeout{5'000};  // deadline of one relayed publish
  // Records catga_outbox_pending_messages (events waiting, read at scrape
  // time) and catga_outbox_{stored,relayed,dead_lettered}_total here; null:
  // nothing is recorded.
  std::shared_ptr<Metrics> metrics;
};

// Decorates the transport that talks to the broker (JetStreamTransport).
// publish() of an at_least_once / exactly_once event:
//  - outbox empty and the inner transport reachable: published directly;
//  - else (or the direct publish fails with a retryable error): appended to
//    the outbox (fsync'ed) and reported as success, PublishRoute::stored_locally.
// Once anything waits in the outbox, later publishes queue behind it until
// it drains, so one thread's events reach the stream in publish order. The
// relay thread publishes stored events oldest first with their original
// headers (Nats-Msg-Id: the stream drops a copy it already has) and deletes
// them after the broker acknowledged; it runs again after a process restart.
// at_most_once events, subscriptions and requests go straight to the inner
// transport. A full outbox fails publish with `outbox_full`.
//
// The inner transport may not exist yet (the broker is down at start): give a
// connector, which the relay calls until it succeeds; until then everything
// goes to the outbox and subscribe/request fail with `unavailable`.
//
//   auto store = catga::outbox::OutboxStore::open({.path = "outbox.db"}).value();
//   auto t = catga::outbox::OutboxTransport::create(store, [opts] {
//     return catga::nats::JetStreamTransport::create(opts).transform(...);  // Result<shared_ptr<Transport>>
//   }).value();
//   mediator.attach(*t);
//   mediator.publish(OrderPlaced{"A-1"});   // ok even while NATS is down
class OutboxTransport final : public Transport {
 public:
  using Connector = std::function<Result<std::shared_ptr<Transport>>()>;
  struct State;

  // Over an existing inner transport.
  static Result<std::unique_ptr<OutboxTransport>> create(std::shared_ptr<OutboxStore> store,
                                                         std::shared_ptr<Transport> inner,
                                                         OutboxTransportOptions options = {});
  // Connecting in the background: `connect` is retried by the relay until it succeeds.
  static Result<std::unique_ptr<OutboxTransport>> create(std::shared_ptr<OutboxStore> store, Connector connect,
                                                         OutboxTransportOptions options = {});
  // stop().
  ~OutboxTransport() override;
  OutboxTransport(const OutboxTransport&) = delete;
  OutboxTransport& operator=(const OutboxTransport&) = delete;

  // --- catga::Transport ----------------------------------------------------
  Status publish(const OutboundMessage& message) override;
  Result<Subscription> subscribe(std::string_view type, const SubscribeOptions& options,
                                 DeliveryHandler handler) override;
  Result<Subscription> subscribe_ordered(const SubscribeOptions& options, std::vector<TypeHandler> handlers) override;
  Result<std::string> request(const OutboundMessage& message) override;
  Result<Subscription> serve(std::string_view type, std::string_view service, RequestHandler handler) override;

  // publish() that says where the event went.
  Result<PublishRoute> publish_routed(const OutboundMessage& message);

  // Records waiting in the outbox.
  std::size_t pending() const noexcept;
  // Waits until the outbox is empty; false at the timeout.
  bool drain(std::chrono::milliseconds timeout) const;
  // Events stored locally / relayed since this object was created.
  std::uint64_t stored_locally() const noexcept;
  std::uint64_t relayed() const noexcept;
  // Events the broker refused for good, moved to the outbox database's
  // dead-letter table (OutboxStore::dead_letters, `catga outbox dead`).
  std::uint64_t dead_lettered() const noexcept;
  // The inner transport once connected (nullptr before).
  std::shared_ptr<Transport> inner() const;
  // Stops the relay (what is stored stays for the next start). Idempotent.
  void stop();

 private:
  explicit OutboxTransport(std::shared_ptr<State> state) noexcept;
  std::shared_ptr<State> state_;
};

}  // namespace catga::outbox
