#pragma once
// JetStreamTransport: catga::Transport over NATS JetStream (nats.c).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catga/context.hpp"
#include "catga/message.hpp"
#include "catga/nats/connection.hpp"
#include "catga/nats/health.hpp"
#include "catga/nats/options.hpp"
#include "catga/nats/publish_outcome.hpp"
#include "catga/result.hpp"
#include "catga/transport.hpp"
#include "catga/wire.hpp"

namespace catga::nats {

// catga::Transport over JetStream. Events go to the events stream and are
// consumed by durable pull consumers, one per (group, type), shared by every
// instance of the group; commands and queries travel by request/reply with
// queue groups. Subjects, headers and bodies: docs/wire-format.md.
//
// Threads: each subscription runs one fetch thread and `workers` handler
// threads (with one worker the fetch thread runs the handler itself and a
// keeper thread sends "+WPI"); each serve() runs one receive thread and
// `serve_workers` handler threads. Handlers never run on nats.c's threads
// and may block (long ones are kept alive with "+WPI"); they may publish,
// request and subscribe, but must not stop or destroy the transport. publish_async callbacks do run on
// a nats.c thread: keep them short. All members are thread-safe.
//
//   auto transport = catga::nats::JetStreamTransport::create(
//       catga::nats::NatsOptions::from_env(), catga::nats::JetStreamOptions{}).value();
//   catga::Mediator m;
//   m.attach(*transport);
//   auto sub = m.subscribe<OrderPlaced>({.group = "billing"}, on_placed).value();
//   m.publish(OrderPlaced{"A-1"});       // returns once the stream stored it
//   transport->stop(std::chrono::seconds(10));
class JetStreamTransport final : public Transport {
 public:
  struct State;  // private to catga::nats
  using PublishCallback = nats::PublishCallback;

  // Connects (a server that is not up yet is waited for, up to
  // js.startup_timeout) and provisions the streams (js.provision).
  static Result<std::unique_ptr<JetStreamTransport>> create(const NatsOptions& nats, JetStreamOptions js = {});
  // Uses an existing connection (shared with stores, other transports).
  static Result<std::unique_ptr<JetStreamTransport>> create(std::shared_ptr<Connection> connection,
                                                            JetStreamOptions js = {});

  // stop(options().stop_timeout).
  ~JetStreamTransport() override;
  JetStreamTransport(const JetStreamTransport&) = delete;
  JetStreamTransport& operator=(const JetStreamTransport&) = delete;

  // --- catga::Transport ----------------------------------------------------

  // at_most_once: core publish (no broker ack). at_least_once/exactly_once:
  // JetStream publish; returns success once the stream stored it (or had
  // already stored that Nats-Msg-Id). Retryable failures are retried until
  // the context deadline (else publish_timeout); then a retryable Error.
  Status publish(const OutboundMessage& message) override;
  // Joins consumer group options.group for `type` with the transport's
  // ConsumerOptions.
  Result<Subscription> subscribe(std::string_view type, const SubscribeOptions& options,
                                 DeliveryHandler handler) override;
  // The same with JetStream settings for this subscription.
  Result<Subscription> subscribe(std::string_view type, const SubscribeOptions& options, DeliveryHandler handler,
                                 const ConsumerOptions& consumer);
  // Ordered consumer group over every partition of the keyed types in
  // `handlers`: members share the partitions through leases in the KV
  // bucket <events stream>_LEASES (docs/transports.md, "Ordered groups").
  Result<Subscription> subscribe_ordered(const SubscribeOptions& options, std::vector<TypeHandler> handlers) override;
  // Request/reply on <prefix>.cmd.<Type>. no_handler when nobody serves the
  // type, timeout (retryable) after the context deadline (else request_timeout).
  Result<std::string> request(const OutboundMessage& message) override;
  // Queue subscription on <prefix>.cmd.<Type> with queue group `service`.
  Result<Subscription> serve(std::string_view type, std::string_view service, RequestHandler handler) override;

  // --- batch publishing ----------------------------------------------------

  // Hands the message to JetStream without waiting for the store; `done` is
  // called once with the outcome (on a nats.c thread; exceptions are
  // swallowed). At most options().max_async_pending publishes are in flight:
  // a full window waits until the context deadline (else publish_timeout).
  // An error returned here means `done` will not be called.
  Status publish_async(const OutboundMessage& message, PublishCallback done);
  // Encodes `event` and publish_async()es it (no local handlers run).
  template <Event E>
  Status publish_async(const E& event, PublishCallback done, Context ctx = Context::next()) {
    const auto& info = message_info<E>();
    ctx.message_type = info.name;
    if (info.keyed() && !ctx.headers.get(wire::kOrderingKey)) ctx.headers.set(wire::kOrderingKey, info.ordering_key(&event));
    const std::string body = wire::encode_body(event);
    return publish_async(OutboundMessage{info, body, ctx}, std::move(done));
  }
  // Waits until every publish_async() so far has its outcome.
  Status flush(std::chrono::milliseconds timeout);

  // --- operations ----------------------------------------------------------

  // Creates/checks the events and dead-letter streams (create() does this
  // when options().provision is set).
  Status ensure_streams();
  // Connection state, streams, consumer lag, last error. Asks the server;
  // each question waits at most `timeout`.
  Health health(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;
  // Graceful stop, at most about `timeout` (handlers already running are
  // always awaited): stops fetching, finishes the messages already received
  // (past the timeout they are nak'ed for redelivery), acks, waits for async
  // publishes, drains and closes the connection if this transport created it.
  // Later calls do nothing. Publishing after stop fails with `unavailable`.
  Status stop(std::chrono::milliseconds timeout);
  bool stopped() const noexcept;

  const JetStreamOptions& options() const noexcept;
  const std::shared_ptr<Connection>& connection() const noexcept;

 private:
  JetStreamTransport(std::shared_ptr<State> state) noexcept;
  std::shared_ptr<State> state_;
};

}  // namespace catga::nats
