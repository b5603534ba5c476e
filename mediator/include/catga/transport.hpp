#pragma once
// Transport: the port through which the mediator reaches other processes.
// Implementations live in transport/ (in-memory, JetStream).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/context.hpp"
#include "catga/function_ref.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"

namespace catga {

// A message leaving the process: its type, JSON body and context.
struct OutboundMessage {
  const MessageInfo& info;
  std::string_view body;
  const Context& context;
};

// A message handed to a subscription. Valid only during the handler call.
class Delivery {
 public:
  virtual ~Delivery() = default;
  virtual std::string_view subject() const noexcept = 0;
  virtual std::string_view body() const noexcept = 0;
  virtual std::optional<std::string_view> header(std::string_view name) const noexcept = 0;
  virtual void for_each_header(FunctionRef<void(std::string_view, std::string_view)> visit) const = 0;
  // 1 on the first delivery, 2 on the first redelivery, ...
  virtual int attempt() const noexcept = 0;
  // Position in the stream (0 when the transport has none).
  virtual std::uint64_t sequence() const noexcept = 0;
  // Tells the broker the handler is still working (extends the ack deadline).
  virtual void in_progress() noexcept {}
};

// Handles one delivery. ok → ack; retryable error → redeliver later;
// other error → dead letter. Must not throw (the glue catches everything).
using DeliveryHandler = std::function<Status(Delivery&)>;

// Redelivery policy of a subscription. A retryable failure is redelivered
// after backoff[attempt-1] (the last entry repeats) until max_deliver
// deliveries were made; then, or on a non-retryable failure, the message is
// copied to the dead letters with the error and terminated.
struct RetryPolicy {
  int max_deliver = 5;
  std::vector<std::chrono::milliseconds> backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(500),
                                                 std::chrono::seconds(2), std::chrono::seconds(5)};

  std::chrono::milliseconds delay_after(int attempt) const noexcept;
  // True when a failure on delivery `attempt` is final.
  bool exhausted(int attempt) const noexcept { return attempt >= max_deliver; }
  // After delivery `attempt` failed with `error`: the delay before it is
  // delivered again, or nullopt when it goes to the dead letters. A
  // `deferred` error is always redelivered (after its retry_after).
  std::optional<std::chrono::milliseconds> redeliver_after(int attempt, const Error& error) const noexcept;
};

// Where a consumer group that does not exist yet starts reading (a group
// that exists goes on where it is). Transports that keep no history
// (InMemoryTransport) support only new_only and refuse the others.
//
//   catga::StartFrom::all()                          // everything still stored
//   catga::StartFrom::new_only()                     // what is published from now on
//   catga::StartFrom::since(std::chrono::system_clock::now() - std::chrono::hours(1))
struct StartFrom {
  enum class Kind { all, new_only, time };
  Kind kind = Kind::all;
  std::chrono::system_clock::time_point time{};  // Kind::time: the first publish time to deliver

  static StartFrom all() noexcept { return {}; }
  static StartFrom new_only() noexcept { return {Kind::new_only, {}}; }
  static StartFrom since(std::chrono::system_clock::time_point t) noexcept { return {Kind::time, t}; }
  friend bool operator==(const StartFrom&, const StartFrom&) = default;
};

// How to subscribe. `group` is the consumer group (normally the service
// name): within a group each message goes to one member; every group gets
// every message. The delivery settings below override the transport's
// defaults for this subscription only; a transport that cannot honour one
// refuses the subscription with a `validation` error rather than ignoring
// it (docs/transports.md, "Per-subscription settings").
//
//   auto sub = mediator.subscribe<OrderPlaced>(
//       {.group = "billing", .retry = {.max_deliver = 3},
//        .ack_wait = std::chrono::seconds(5), .start = catga::StartFrom::new_only()},
//       on_placed).value();
struct SubscribeOptions {
  std::string group{};
  RetryPolicy retry{};  // retry.max_deliver: deliveries before the dead letters
  std::size_t workers = 1;  // concurrent handler calls in this process
  // Whether the type has an ordering key (its events travel on partition
  // subjects). Mediator::subscribe sets it from the type; set it yourself
  // only when calling Transport::subscribe with a type name.
  bool keyed = false;
  // How long the broker waits for a delivery's outcome before it delivers
  // it again (JetStream: the consumer's AckWait); unset: the transport's.
  std::optional<std::chrono::milliseconds> ack_wait{};
  // Where the group starts when it is created; unset: the transport's.
  std::optional<StartFrom> start{};
};

// One type of an ordered subscription and its handler.
struct TypeHandler {
  std::string type;
  DeliveryHandler handler;
};

// Answers one request with a reply body (see wire::encode_reply).
using RequestHandler = std::function<std::string(Delivery&)>;

// A live subscription. Destroying or stop()ping it stops deliveries and waits
// for handler calls in flight, so the handler's captures may die afterwards.
// Lifetimes: it keeps what the transport needs to stop it alive, so it may
// outlive its transport object (destroying or stopping a transport stops its
// subscriptions; the Subscription is then inert). It does not keep the
// handler's captures alive, nor the Mediator whose pipeline a typed
// subscription runs: both must outlive it (or the transport's stop).
//
//   catga::Subscription sub = mediator.subscribe<OrderPlaced>({.group = "billing"}, on_placed).value();
//   ...
//   sub.stop();  // or let it go out of scope
class Subscription {
 public:
  struct Impl {
    virtual ~Impl() = default;
    virtual void stop() noexcept = 0;
  };

  Subscription() = default;
  explicit Subscription(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      stop();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  ~Subscription() { stop(); }

  void stop() noexcept {
    if (impl_) impl_->stop();
    impl_.reset();
  }
  bool active() const noexcept { return impl_ != nullptr; }

 private:
  std::unique_ptr<Impl> impl_;
};

// The contract every transport implements. Calls may come from any thread.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends an event to every group subscribed to its type. For
  // at_least_once/exactly_once types, success means the transport has stored it.
  virtual Status publish(const OutboundMessage& message) = 0;

  // Delivers events of `type` to `handler` as a member of options.group.
  virtual Result<Subscription> subscribe(std::string_view type, const SubscribeOptions& options,
                                         DeliveryHandler handler) = 0;

  // Sends a command/query to the one service serving its type and waits for
  // the reply body until context.deadline. Errors: no_handler (nobody
  // serves it), timeout, unavailable.
  virtual Result<std::string> request(const OutboundMessage& message) {
    return make_error(errc::no_handler,
                      "transport does not carry requests ('" + std::string(message.info.name) + "')");
  }

  // Delivers keyed events of every type in `handlers` to options.group, in
  // order per ordering key across all these types: one message of a key at a
  // time, in the order the transport stored them (docs/transports.md,
  // "Ordered groups"). Transports that cannot order say `validation`.
  virtual Result<Subscription> subscribe_ordered(const SubscribeOptions& options, std::vector<TypeHandler> handlers) {
    (void)options;
    (void)handlers;
    return make_error(errc::validation, "this transport has no ordered subscriptions");
  }

  // Serves requests of `type` as a member of the `service` queue group.
  virtual Result<Subscription> serve(std::string_view type, std::string_view service, RequestHandler handler) {
    (void)service;
    (void)handler;
    return make_error(errc::no_handler, "transport does not carry requests ('" + std::string(type) + "')");
  }
};

}  // namespace catga
