#pragma once
// ServiceCore: what every order-flow service is made of: a Mediator with the
// standard pipeline, the ports it depends on (Transport, KeyValue buckets,
// IdempotencyStore, Metrics), and helpers to handle, serve and consume.

#include <spdlog/logger.h>
#include <catga/key_value.hpp>
#include <catga/mediator.hpp>
#include <catga/pipeline.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace order_flow {

// Opens the KeyValue bucket `name`, creating it when absent. In one process
// it hands out shared in-memory buckets; over NATS, JetStream KV buckets.
using BucketOpener = std::function<catga::Result<std::shared_ptr<catga::KeyValue>>(std::string_view name)>;

// The ports a service depends on; which implementations back them is the
// process's choice (see Infrastructure).
//
//   ServiceEnv env{.instance = "inventory-1", .transport = &transport, .buckets = buckets,
//                  .idempotency = store, .metrics = metrics};
//   InventoryService inventory(env);
struct ServiceEnv {
  std::string instance;  // names this replica in logs, metrics and records
  catga::Transport* transport = nullptr;
  BucketOpener buckets;
  std::shared_ptr<catga::IdempotencyStore> idempotency;  // null: no idempotency behavior
  std::shared_ptr<catga::Metrics> metrics;               // null: a private registry
  std::shared_ptr<spdlog::logger> logger;                // null: one named after the instance
  std::shared_ptr<catga::SpanSink> spans;                // null: no tracing (Host: OTEL_* set)
  std::chrono::milliseconds handler_timeout{std::chrono::seconds(10)};
};

// A logger named `instance` writing logfmt-style lines to stderr
// ("2024-05-01T10:00:00.123 level=info instance=order-1 ..."), shared by
// every service of the process with that instance name.
// Control characters in the message (newlines above all) are written
// escaped (\n, \r, \t, \xNN), so a value a client sent cannot start a
// forged log line.
std::shared_ptr<spdlog::logger> service_logger(const std::string& instance);

// "a\nb" → "a\\nb": what service_logger's sink does to each message.
std::string escape_log_text(std::string_view text);
// Wraps `inner` so every message is written through escape_log_text.
//
//   auto sink = escaping_sink(std::make_shared<spdlog::sinks::stderr_sink_mt>());
std::shared_ptr<spdlog::sinks::sink> escaping_sink(std::shared_ptr<spdlog::sinks::sink> inner);

// Counts finished calls of one message type handled by this instance, so
// the demo can tell which replica did how much:
//   order_flow_handled_total{service="inventory",instance="inventory-2",type="ReserveInventory",outcome="ok"} 17
class HandledByBehavior final : public catga::Behavior {
 public:
  HandledByBehavior(catga::Metrics& metrics, const std::string& service, const std::string& instance,
                    std::string_view type);
  catga::Status handle(catga::Invocation& inv, catga::Next next) override;

 private:
  catga::MetricCounter& ok_;
  catga::MetricCounter& failed_;
};

// The common part of a service. Derived classes register handlers in their
// constructor (handle/consume) and call open() from start(): registration
// must be complete before traffic flows (the Mediator's threading rule).
class ServiceCore {
 public:
  ServiceCore(std::string service, ServiceEnv env);
  virtual ~ServiceCore();
  ServiceCore(const ServiceCore&) = delete;
  ServiceCore& operator=(const ServiceCore&) = delete;

  catga::Mediator& mediator() noexcept { return mediator_; }
  const std::string& service() const noexcept { return service_; }
  const std::string& instance() const noexcept { return env_.instance; }
  const std::shared_ptr<catga::Metrics>& metrics() const noexcept { return env_.metrics; }
  spdlog::logger& log() const noexcept { return *log_; }

  // Stops consuming and serving (waits for handler calls in flight).
  void close() noexcept;

 protected:
  // Registers the handler of command M with this service's per-type
  // behaviors (handled-by counter, idempotency by message id); open() then
  // serves M as a member of the service's queue group (unless !remote).
  template <catga::Request M, class H>
  void handle(H handler, bool remote = true) {
    mediator_.handle<M>(std::move(handler));
    per_type<M>();
    if (remote) openers_.push_back([this]() { return mediator_.serve<M>(service_); });
  }

  // Consumes event E as a member of consumer group `group`; open() subscribes.
  template <catga::Event E, class H>
  void consume(std::string group, H handler, std::size_t workers = 2) {
    per_type<E>();
    openers_.push_back([this, group = std::move(group), workers, h = std::move(handler)]() mutable {
      return mediator_.subscribe<E>(subscribe_options(group, workers), std::move(h));
    });
  }

  // Consumes the events Es, keyed by CATGA_ORDERING_KEY, as a member of the
  // ordered group `group`: one key's events are handled one at a time, in
  // the order they were published, whatever their type; other keys run in
  // parallel (docs/transports.md, "Ordered groups"). One handler per type.
  //
  //   consume_ordered<OrderConfirmed, OrderCancelled>("notification", 2, on_confirmed, on_cancelled);
  template <catga::Event... Es, class... Hs>
    requires(sizeof...(Es) == sizeof...(Hs))
  void consume_ordered(std::string group, std::size_t workers, Hs... handlers) {
    (per_type<Es>(), ...);
    openers_.push_back([this, group = std::move(group), workers, hs = std::make_tuple(std::move(handlers)...)]() mutable {
      return std::apply(
          [&](auto&... h) {
            return mediator_.subscribe_ordered<Es...>(subscribe_options(group, workers), std::move(h)...);
          },
          hs);
    });
  }

  // Serves what handle() registered and subscribes what consume() asked for.
  catga::Status open();

  catga::Result<std::shared_ptr<catga::KeyValue>> bucket(std::string_view name) { return env_.buckets(name); }

  // Validators run before handlers (register them in the constructor).
  catga::ValidationBehavior& validation() noexcept { return *validation_; }

  // Publishes `event` with message id `id` (e.g. "<order>.reserved"), so
  // publishing it again after a crash or a retry is recognised as the same
  // event (stream duplicate window, consumers' idempotency store).
  template <catga::Event E>
  catga::Status publish_once(const E& event, std::string_view id) {
    catga::Context ctx = catga::Context::next();
    if (auto mid = catga::MessageId::parse(id)) ctx.message_id = *mid;
    auto s = mediator_.publish(event, std::move(ctx));
    if (!s) log_->warn("event={} id={} not published: {}", catga::message_name<E>(), id, s.error().message);
    return s;
  }

  ServiceEnv env_;

 private:
  static catga::SubscribeOptions subscribe_options(const std::string& group, std::size_t workers) {
    catga::SubscribeOptions options;
    options.group = group;
    options.workers = workers;
    options.retry.max_deliver = 10;
    return options;
  }

  template <catga::Message M>
  void per_type() {
    mediator_.use<M>(
        std::make_shared<HandledByBehavior>(*env_.metrics, service_, env_.instance, catga::message_name<M>()));
    if (env_.idempotency) mediator_.use<M>(idempotency_);
  }

  std::string service_;
  std::shared_ptr<spdlog::logger> log_;
  catga::Mediator mediator_;
  std::shared_ptr<catga::ValidationBehavior> validation_;
  std::shared_ptr<catga::IdempotencyBehavior> idempotency_;
  std::vector<std::function<catga::Result<catga::Subscription>()>> openers_;
  std::vector<catga::Subscription> subscriptions_;
};

// "correlation=<id> trace=<trace id>" of a context: what ties one order's log
// lines together across services.
std::string log_ids(const catga::Context& ctx);

}  // namespace order_flow
