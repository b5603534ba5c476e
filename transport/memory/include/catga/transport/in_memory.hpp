#pragma once
// InMemoryTransport: the embedded transport for tests and single-process use.
// It keeps the semantics of JetStream durable consumer groups (see
// docs/transports.md) so code tested against it behaves the same on NATS.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catga/context.hpp"
#include "catga/result.hpp"
#include "catga/transport.hpp"

namespace catga {

namespace detail {
struct InMemoryCore;
}

// Settings of an InMemoryTransport.
//
//   catga::InMemoryTransport t({.prefix = "shop", .max_pending = 1000});
struct InMemoryTransportOptions {
  // Subject prefix: events go to "<prefix>.evt.<Type>".
  std::string prefix = "catga";
  // Unfinished messages (queued + delayed + in flight) one consumer group or
  // service may hold; a publish/request beyond it fails with a retryable
  // `unavailable` error instead of blocking.
  std::size_t max_pending = 1'000'000;
  // Dead letters kept; the oldest is dropped beyond it.
  std::size_t max_dead_letters = 100'000;
  // How long request() waits when the context has no deadline.
  std::chrono::milliseconds request_timeout{30'000};
  // Handler threads per serve() call.
  std::size_t serve_workers = 1;
  // Requests one serve() call holds at once (queued or running), as on the
  // JetStream transport; one more fails at once with a retryable
  // `overloaded` error. 0: 32 x serve_workers.
  std::size_t serve_max_in_flight = 0;

  // The bound in effect per serve() call.
  std::size_t serve_bound() const noexcept {
    return serve_max_in_flight > 0 ? serve_max_in_flight : 32 * (serve_workers > 0 ? serve_workers : 1);
  }
};

// A message as it travels on the wire: subject, headers, body.
//
//   catga::WireMessage m{"catga.evt.OrderPlaced", {}, R"({"id":"A-1"})"};
struct WireMessage {
  std::string subject;
  Headers headers;
  std::string body;
};

// A message a consumer group gave up on, with why. `message.headers` holds
// the original headers plus Catga-Error, Catga-Error-Code, Catga-Deliveries,
// Catga-Original-Subject and Catga-Original-Seq; `message.subject` is
// "<prefix>.dlq.<Type>".
//
//   for (const auto& d : transport.dead_letters()) log(d.type, d.error.message);
struct DeadLetter {
  std::uint64_t sequence = 0;  // position in the dead-letter list, from 1
  std::string type;            // event type (from the original subject)
  std::string group;           // consumer group that dead-lettered it
  WireMessage message;
  Error error;
  int deliveries = 0;
  std::uint64_t original_sequence = 0;
};

// Counters of one consumer group (events) or service (requests).
//
//   auto s = transport.group_stats("OrderPlaced", "billing");
//   if (s && s->pending > 100) scale_out();
struct GroupStats {
  std::string type;
  std::string group;
  bool service = false;           // true for a serve() queue group
  std::size_t members = 0;        // live subscriptions
  std::size_t pending = 0;        // waiting for a free member
  std::size_t delayed = 0;        // waiting for their redelivery backoff
  std::size_t in_flight = 0;      // handed to a member, not yet acked
  std::uint64_t delivered = 0;    // handler calls started (redeliveries included)
  std::uint64_t acked = 0;
  std::uint64_t redelivered = 0;  // retryable failures scheduled again
  std::uint64_t dead_lettered = 0;
};

// An in-process Transport with JetStream-like consumer groups: every group
// subscribed to a type gets every event, one member of the group handles
// each, failures are redelivered with backoff and finally dead-lettered.
// Also carries remote commands and queries (request/serve) between mediators
// of one process.
//
// Threads: each subscription runs `options.workers` threads of its own, each
// serve() runs `serve_workers`; one timer thread handles redelivery delays.
// Handlers run on those threads, never on the publisher's, and without any
// transport lock held: a handler may publish, request, subscribe, read
// stats and stop other subscriptions. It must not destroy or shut down the
// transport.
//
//   catga::InMemoryTransport transport;
//   catga::Mediator m;
//   m.attach(transport);
//   auto sub = m.subscribe<OrderPlaced>({.group = "billing"}, on_placed).value();
//   m.publish(OrderPlaced{"A-1"});
//   transport.wait_idle(std::chrono::seconds(5));
class InMemoryTransport final : public Transport {
 public:
  explicit InMemoryTransport(InMemoryTransportOptions options = {});
  // Calls shutdown().
  ~InMemoryTransport() override;
  InMemoryTransport(const InMemoryTransport&) = delete;
  InMemoryTransport& operator=(const InMemoryTransport&) = delete;

  // --- Transport ------------------------------------------------------------

  // Stores a copy in the queue of every group subscribed to the type (all or
  // nothing). A type with no group yet keeps nothing: a new group starts with
  // the messages published after it was created. at_most_once is treated
  // like at_least_once.
  Status publish(const OutboundMessage& message) override;
  // Joins options.group (creating it on first use) with options.workers
  // handler threads. It has no history and no ack deadline, so
  // options.ack_wait and an options.start other than StartFrom::new_only()
  // (what it always does) are refused with `validation`; so in
  // subscribe_ordered.
  Result<Subscription> subscribe(std::string_view type, const SubscribeOptions& options,
                                 DeliveryHandler handler) override;
  // Joins the ordered group options.group of the handlers' types: events
  // with the same Catga-Ordering-Key run one at a time in publish order,
  // other keys in parallel (docs/transports.md, "Ordered groups"). Members of
  // one ordered group must name the same types.
  //
  //   auto sub = m.subscribe_ordered<OrderPlaced, OrderShipped>({.group = "history", .workers = 4},
  //                                                             on_placed, on_shipped).value();
  Result<Subscription> subscribe_ordered(const SubscribeOptions& options, std::vector<TypeHandler> handlers) override;
  // Hands the request to one member of every service serving the type and
  // returns the first reply. Waits until context.deadline, or
  // request_timeout without one.
  Result<std::string> request(const OutboundMessage& message) override;
  Result<Subscription> serve(std::string_view type, std::string_view service, RequestHandler handler) override;

  // --- beyond the Transport interface -----------------------------------------

  // Publishes a message exactly as given (tests, replay, foreign producers).
  // The subject must be "<prefix>.evt.<Type>"; headers are not checked, so
  // consumers see malformed messages as they would arrive from the network.
  Status publish_raw(std::string_view subject, const Headers& headers, std::string_view body);

  // Copies of the dead letters, oldest first.
  std::vector<DeadLetter> dead_letters() const;
  // Publishes dead letter `sequence` again on its original subject with its
  // original headers (same Nats-Msg-Id) plus Catga-Replayed, and removes it.
  // Every group of the type receives it again (as on JetStream).
  Status replay_dead_letter(std::uint64_t sequence);
  // Removes one dead letter; false when there is none with that sequence.
  bool remove_dead_letter(std::uint64_t sequence);
  // Removes every dead letter (of `type`, or all when empty); returns how many.
  std::size_t purge_dead_letters(std::string_view type = {});

  // Waits until every event group is empty: nothing queued, delayed or in
  // flight. False when `timeout` passed first. Requests are not counted.
  bool wait_idle(std::chrono::milliseconds timeout) const;
  std::vector<GroupStats> stats() const;
  std::optional<GroupStats> group_stats(std::string_view type, std::string_view group) const;

  // Stops every subscription (waiting for handler calls in flight), fails
  // waiting requests with `unavailable`, joins all threads. Later calls fail
  // with `unavailable`. Idempotent; must not be called from a handler.
  void shutdown() noexcept;

  const InMemoryTransportOptions& options() const noexcept;

 private:
  // Shared with subscriptions and worker threads, which may outlive this object.
  std::shared_ptr<detail::InMemoryCore> core_;
};

}  // namespace catga
