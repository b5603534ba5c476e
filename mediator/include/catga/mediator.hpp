#pragma once
// Mediator: registers handlers and behaviors, dispatches commands, queries
// and events through the pipeline, and hands events to the transport.

#include <functional>
#include <memory>
#include <tuple>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catga/behavior.hpp"
#include "catga/context.hpp"
#include "catga/handler.hpp"
#include "catga/message.hpp"
#include "catga/result.hpp"
#include "catga/tracing.hpp"
#include "catga/transport.hpp"
#include "catga/wire.hpp"

namespace catga {

// Turns the JSON body of one version of a message into the next version's
// (see Mediator::upcast). May throw: the message is then `malformed`.
using Upcaster = std::function<nlohmann::json(nlohmann::json)>;

namespace detail {

struct ErasedHandler {
  virtual ~ErasedHandler() = default;
  virtual Status call(Invocation& inv) noexcept = 0;
};

template <class M, class H>
struct HandlerImpl final : ErasedHandler {
  explicit HandlerImpl(H handler) : h(std::move(handler)) {}
  Status call(Invocation& inv) noexcept override {
    CurrentContextScope scope(inv.context);
    return call_handler<M>(h, *static_cast<const M*>(inv.message), inv.context, inv.result);
  }
  H h;
};

// Wraps a handler owned by the caller (stack), for one dispatch.
template <class M, class H>
struct HandlerRef final : ErasedHandler {
  explicit HandlerRef(H& handler) noexcept : h(handler) {}
  Status call(Invocation& inv) noexcept override {
    CurrentContextScope scope(inv.context);
    return call_handler<M>(h, *static_cast<const M*>(inv.message), inv.context, inv.result);
  }
  H& h;
};

struct NamedHandler {
  std::string key;
  std::unique_ptr<ErasedHandler> handler;
};

// Everything the mediator knows about one message type.
struct Entry {
  const MessageInfo* info = nullptr;
  std::unique_ptr<ErasedHandler> handler;    // commands and queries
  std::vector<NamedHandler> event_handlers;  // events
  std::vector<std::shared_ptr<Behavior>> behaviors;  // this type only
  std::vector<Behavior*> chain;                      // global, then this type's
  // upcasters[v - 1] turns version v into v + 1 (empty: no step for v).
  // Empty vector: none registered, bodies are decoded as they come.
  std::vector<Upcaster> upcasters;
};

// Runs chain[0] → chain[1] → ... → handler. Never throws.
Status run_chain(const std::vector<Behavior*>& chain, Invocation& inv, ErasedHandler& handler) noexcept;

// run_chain, with the handler called directly when there is no behavior
// (inline: a plain send costs one virtual call past the lookup).
inline Status run_pipeline(const std::vector<Behavior*>& chain, Invocation& inv, ErasedHandler& handler) noexcept {
  if (chain.empty()) return handler.call(inv);
  return run_chain(chain, inv, handler);
}

Error no_handler_error(const MessageInfo& info);
Error no_transport_error(const MessageInfo& info);
Status combine_event_failures(const MessageInfo& info, std::vector<std::pair<std::string_view, Error>>& failures);

// Runs the steps of `upcasters` from `version` up to info.version on `body`
// (a missing step leaves the body as it is). A step that throws, or returns
// something that is not a JSON object, is a `malformed` Error.
Status upcast_body(const MessageInfo& info, const std::vector<Upcaster>& upcasters, int version, nlohmann::json& body);

// Decodes a delivery into M and its Context (errors are not retryable). With
// `upcasters` (M's, non-empty), a body older than M's version is upcast
// before it is decoded.
template <Message M>
Result<M> decode_delivery(Delivery& d, Context& ctx, const std::vector<Upcaster>* upcasters = nullptr) {
  const auto name = message_name<M>();
  std::optional<std::string_view> type;
  int version = 1;
  auto read = wire::read_context([&](wire::HeaderVisitor v) { d.for_each_header(v); }, &type, &version);
  if (type && *type != name) {
    return make_error(errc::unknown_type, "message type '" + std::string(*type) + "' received on subject '" +
                                              std::string(d.subject()) + "', expected '" + std::string(name) + "'");
  }
  if (!read) return std::move(read).error();
  ctx = std::move(*read);
  ctx.attempt = d.attempt();
  ctx.message_type = name;
  // Only a type given upcasters looks at the version; a body as new as M, or
  // newer (unknown fields are ignored), is decoded as it is.
  const bool upcast = upcasters != nullptr && !upcasters->empty() && version < message_version<M>();
  if constexpr (requires(M& m) { wire::read_fields(std::string_view{}, m); }) {
    if (!upcast) {
      M direct{};
      if (wire::read_fields(d.body(), direct)) return direct;  // no DOM: the common case
    }
  }
  auto json = wire::parse_json(d.body());
  if (!json) return std::move(json).error();
  if (upcast) {
    if (Status s = upcast_body(message_info<M>(), *upcasters, version, *json); !s) return std::move(s).error();
  }
  try {
    return json->template get<M>();
  } catch (const std::exception& e) {
    return make_error(errc::malformed, "body does not decode as '" + std::string(name) + "': " + e.what());
  }
}

}  // namespace detail

// The in-process dispatcher.
//
// Threading: register handlers, behaviors and the transport first (one
// thread); after that, send/query/publish may be called from any number of
// threads at once. Registering while dispatching is a data race.
//
// Lifetimes (not enforced; docs/transports.md, "Lifetimes"): the mediator
// neither owns nor tracks the attached transport or the Subscriptions it
// hands out. The transport must outlive every use of the mediator that
// reaches it (publish, send of a remote route, subscribe, serve). A
// Subscription's deliveries run this mediator's pipeline, so every
// subscription must be stopped (destroyed, or its transport stopped) before
// the mediator is destroyed: declare the mediator before the subscriptions.
// What handlers capture must live until their subscription's stop() returns.
//
//   catga::Mediator m;
//   m.handle<Add>([](const Add& a) { return a.x + a.y; });
//   m.on<Added>([](const Added& e) { std::cout << e.sum; });
//   m.use(catga::make_behavior([](catga::Invocation&, catga::Next next) { return next(); }));
//   catga::Result<int> r = m.send(Add{1, 2});   // 3
//   catga::Status s = m.publish(Added{3});
class Mediator {
 public:
  Mediator();
  ~Mediator();
  Mediator(const Mediator&) = delete;
  Mediator& operator=(const Mediator&) = delete;

  // --- registration --------------------------------------------------------

  // The one handler of command/query M. A second registration throws
  // catga::Exception with code duplicate_handler.
  template <Request M, class H>
  void handle(H handler) {
    static_assert(HandlerOf<H, M>,
                  "catga: a handler of M must be callable as h(const M&) or h(const M&, catga::Context&) and "
                  "return catga::result_t<M> or catga::Result<catga::result_t<M>> (nothing or catga::Status "
                  "when the result is void)");
    set_handler(message_info<M>(), std::make_unique<detail::HandlerImpl<M, H>>(std::move(handler)));
  }

  // Adds a handler of event M (any number). `name` identifies it in errors,
  // logs and idempotency keys; default "handler-<n>".
  template <Event M, class H>
  void on(H handler, std::string name = {}) {
    static_assert(HandlerOf<H, M>,
                  "catga: an event handler of M must be callable as h(const M&) or h(const M&, catga::Context&) "
                  "and return nothing or catga::Status");
    add_event_handler(message_info<M>(), std::move(name),
                      std::make_unique<detail::HandlerImpl<M, H>>(std::move(handler)));
  }

  // Adds a behavior around every handler (global behaviors run first, in
  // registration order).
  void use(std::shared_ptr<Behavior> behavior);
  // Adds a behavior around handlers of M only (after the global ones).
  template <Message M>
  void use(std::shared_ptr<Behavior> behavior) {
    add_type_behavior(message_info<M>(), std::move(behavior));
  }

  // Registers the upcaster of M's bodies of version `from_version`: it turns
  // such a body into version from_version + 1. A consumed event or served
  // request of M whose Catga-Message-Version is older than
  // message_version<M>() runs the steps from its version on, in order (a
  // version without a step is left as it is), before it is decoded. A step
  // that throws makes the message `malformed`: dead-lettered (events) or
  // answered with that error (requests). Throws catga::Exception when
  // from_version is not in [1, message_version<M>()) (validation) or a step
  // for it is already registered (duplicate_handler).
  //
  //   // Version 2 of ItemReserved renamed "qty" to "quantity".
  //   m.upcast<ItemReserved>(1, [](nlohmann::json body) {
  //     body["quantity"] = body.at("qty");
  //     body.erase("qty");
  //     return body;
  //   });
  template <Message M>
  void upcast(int from_version, Upcaster step) {
    add_upcaster(message_info<M>(), from_version, std::move(step));
  }

  // Events are also handed to `transport` after the local handlers, and
  // subscribe/serve/route_remote use it. The transport must outlive its use.
  void attach(Transport& transport) noexcept { transport_ = &transport; }
  void detach() noexcept { transport_ = nullptr; }
  Transport* transport() const noexcept { return transport_; }

  // Sends M to whichever service serves it (Transport::request) instead of a
  // local handler; the local pipeline still wraps the remote call.
  template <Request M>
  void route_remote() {
    set_handler(message_info<M>(), std::make_unique<RemoteHandler<M>>(*this));
  }

  // Sends a span of every send, query, publish, consumed delivery, remote
  // request and serve to `sink` (catga/tracing.hpp; catga::otel exports
  // them); null, the default, records nothing. Set it before dispatching,
  // like handlers.
  void trace_to(std::shared_ptr<SpanSink> sink) noexcept { span_sink_ = std::move(sink); }
  SpanSink* span_sink() const noexcept { return span_sink_.get(); }

  template <Message M>
  bool has_handler() const noexcept {
    const auto* e = find(message_info<M>());
    return e != nullptr && (e->handler != nullptr || !e->event_handlers.empty());
  }

  // --- dispatch ------------------------------------------------------------

  // Runs the one handler of command C. The context defaults to a child of
  // the current handler's context (or a new root).
  template <Command C>
  Result<result_t<C>> send(const C& command) {
    Context ctx = Context::next();
    return dispatch_request(command, ctx);
  }
  template <Command C>
  Result<result_t<C>> send(const C& command, Context ctx) {
    return dispatch_request(command, ctx);
  }

  template <Query Q>
  Result<result_t<Q>> query(const Q& query) {
    Context ctx = Context::next();
    return dispatch_request(query, ctx);
  }
  template <Query Q>
  Result<result_t<Q>> query(const Q& query, Context ctx) {
    return dispatch_request(query, ctx);
  }

  // Runs every local handler of E (a failure does not stop the others), then
  // hands E to the attached transport. The Status reports every failure.
  template <Event E>
  Status publish(const E& event) {
    Context ctx = Context::next();
    return publish_with(event, ctx);
  }
  template <Event E>
  Status publish(const E& event, Context ctx) {
    return publish_with(event, ctx);
  }

  // --- distribution (needs an attached transport) ---------------------------

  // Consumes E from the transport as a member of options.group, running the
  // pipeline of E around `handler`. Malformed or mistyped messages fail with
  // non-retryable errors, so the transport dead-letters them.
  // Lifetimes: the handler runs this mediator's pipeline, so the mediator
  // (and the transport) must outlive the Subscription: stop or destroy the
  // subscriptions first (declare them after the mediator), as with serve().
  //
  //   catga::Mediator m;                     // first: destroyed last
  //   m.attach(*transport);
  //   auto sub = m.subscribe<OrderPlaced>({.group = "billing"}, on_placed).value();
  template <Event E, class H>
  Result<Subscription> subscribe(SubscribeOptions options, H handler);

  // Consumes the keyed events Es (CATGA_ORDERING_KEY) as a member of
  // options.group, in order per key across all of them: the events of one
  // key are handled one at a time, in the order the stream stored them;
  // different keys run in parallel over the group's members and
  // options.workers. One handler per type, in the same order as Es.
  // Semantics, membership and limits: docs/transports.md, "Ordered groups".
  //
  //   auto sub = m.subscribe_ordered<OrderPlaced, OrderCancelled>(
  //       {.group = "read-model", .workers = 4}, on_placed, on_cancelled).value();
  template <Event... Es, class... Hs>
    requires(sizeof...(Es) == sizeof...(Hs) && sizeof...(Es) > 0)
  Result<Subscription> subscribe_ordered(SubscribeOptions options, Hs... handlers);

  // Answers remote requests for M with the local handler of M, as a member
  // of the `service` queue group.
  template <Request M>
  Result<Subscription> serve(std::string_view service);

  // Runs the pipeline of M around `handler` with an existing context. For
  // transports and tests; `result` is a std::optional<result_t<M>>* or null.
  template <Message M, class H>
  Status dispatch(const M& message, Context& ctx, std::string_view handler_key, H& handler,
                  void* result = nullptr) {
    const auto& info = message_info<M>();
    ctx.message_type = info.name;
    detail::HandlerRef<M, H> ref(handler);
    Invocation inv{info, &message, ctx, result, handler_key};
    return detail::run_pipeline(chain_for(info), inv, ref);
  }

 private:
  template <Request M>
  struct RemoteHandler final : detail::ErasedHandler {
    explicit RemoteHandler(Mediator& m) : mediator(m) {}
    Status call(Invocation& inv) noexcept override;
    Status request(Invocation& inv, const Context& ctx) noexcept;
    Mediator& mediator;
  };

  template <Request M>
  Result<result_t<M>> dispatch_request(const M& message, Context& ctx);
  template <Event E>
  Status publish_with(const E& event, Context& ctx);
  // The transport handler of one subscription to E: decodes, runs the pipeline of E around `handler`.
  template <Event E, class H>
  DeliveryHandler delivery_handler(std::shared_ptr<H> handler, std::string group);

  void set_handler(const MessageInfo& info, std::unique_ptr<detail::ErasedHandler> handler);
  void add_event_handler(const MessageInfo& info, std::string name, std::unique_ptr<detail::ErasedHandler> handler);
  void add_type_behavior(const MessageInfo& info, std::shared_ptr<Behavior> behavior);
  void add_upcaster(const MessageInfo& info, int from_version, Upcaster step);
  // M's upcasters, or null when it has none (the common case: no lookups).
  const std::vector<Upcaster>* upcasters_of(const MessageInfo& info) const noexcept {
    const auto* e = find(info);
    return e != nullptr && !e->upcasters.empty() ? &e->upcasters : nullptr;
  }
  detail::Entry& entry(const MessageInfo& info);
  const detail::Entry* find(const MessageInfo& info) const noexcept {
    return info.slot < entries_.size() ? entries_[info.slot].get() : nullptr;
  }
  const std::vector<Behavior*>& chain_for(const MessageInfo& info) const noexcept {
    const auto* e = find(info);
    return e != nullptr ? e->chain : global_chain_;
  }
  void rebuild_chain(detail::Entry& e);
  Status publish_to_transport(const MessageInfo& info, const void* event, const Context& ctx);

  std::vector<std::unique_ptr<detail::Entry>> entries_;  // indexed by MessageInfo::slot
  std::vector<std::shared_ptr<Behavior>> global_;
  std::vector<Behavior*> global_chain_;
  Transport* transport_ = nullptr;
  std::shared_ptr<SpanSink> span_sink_;
};

// ---------------------------------------------------------------------------
// Template definitions.

template <Request M>
Result<result_t<M>> Mediator::dispatch_request(const M& message, Context& ctx) {
  using R = result_t<M>;
  const auto& info = message_info<M>();
  ctx.message_type = info.name;
  const detail::Entry* e = find(info);
  if (e == nullptr || e->handler == nullptr) return detail::no_handler_error(info);
  detail::SpanScope span(span_sink_.get(), ctx, SpanKind::internal, Query<M> ? "query" : "send", info.name);
  if constexpr (std::is_void_v<R>) {
    Invocation inv{info, &message, ctx, nullptr, {}};
    Status s = detail::run_pipeline(e->chain, inv, *e->handler);
    span.end(s);
    return s;
  } else {
    std::optional<R> out;
    Invocation inv{info, &message, ctx, &out, {}};
    Status s = detail::run_pipeline(e->chain, inv, *e->handler);
    span.end(s);
    if (!s) return std::move(s).error();
    if (!out) return make_error(errc::internal, "handler of '" + std::string(info.name) + "' returned no value");
    return std::move(*out);
  }
}

template <Event E>
Status Mediator::publish_with(const E& event, Context& ctx) {
  const auto& info = message_info<E>();
  ctx.message_type = info.name;
  const detail::Entry* e = find(info);
  detail::SpanScope span(span_sink_.get(), ctx, transport_ != nullptr ? SpanKind::producer : SpanKind::internal,
                         "publish", info.name);
  std::vector<std::pair<std::string_view, Error>> failures;
  if (e != nullptr) {
    for (const auto& h : e->event_handlers) {
      ctx.attempt = 1;
      Invocation inv{info, &event, ctx, nullptr, h.key};
      Status s = detail::run_pipeline(e->chain, inv, *h.handler);
      if (!s) failures.emplace_back(h.key, std::move(s).error());
    }
  }
  if (transport_ != nullptr) {
    if constexpr (JsonEncodable<E>) {
      Status s = publish_to_transport(info, &event, ctx);
      if (!s) failures.emplace_back("transport", std::move(s).error());
    } else {
      failures.emplace_back("transport", make_error(errc::internal, "event '" + std::string(info.name) +
                                                                        "' has no JSON codec; it cannot leave the process"));
    }
  }
  if (failures.empty()) {
    span.end(nullptr);
    return {};
  }
  Status s = detail::combine_event_failures(info, failures);
  span.end(s);
  return s;
}

template <Event E, class H>
Result<Subscription> Mediator::subscribe(SubscribeOptions options, H handler) {
  static_assert(HandlerOf<H, E>,
                "catga: an event handler of E must be callable as h(const E&) or h(const E&, catga::Context&) "
                "and return nothing or catga::Status");
  const auto& info = message_info<E>();
  if (transport_ == nullptr) return detail::no_transport_error(info);
  options.keyed = info.keyed();
  return transport_->subscribe(info.name, options,
                               delivery_handler<E>(std::make_shared<H>(std::move(handler)), options.group));
}

template <Event E, class H>
DeliveryHandler Mediator::delivery_handler(std::shared_ptr<H> shared, std::string group) {
  static_assert(HandlerOf<H, E>,
                "catga: an event handler of E must be callable as h(const E&) or h(const E&, catga::Context&) "
                "and return nothing or catga::Status");
  return [this, shared = std::move(shared), group = std::move(group)](Delivery& d) -> Status {
    try {
      Context ctx;
      auto decoded = detail::decode_delivery<E>(d, ctx, upcasters_of(message_info<E>()));
      // One consumer span per delivery attempt, child of the publisher's span.
      detail::SpanScope span(span_sink_.get(), ctx, SpanKind::consumer, "process", message_info<E>().name);
      if (span.recording()) [[unlikely]] detail::describe_delivery(span.span(), d, group);
      if (!decoded) {
        span.end(&decoded.error());
        return std::move(decoded).error();
      }
      Status s = dispatch(*decoded, ctx, group, *shared);
      span.end(s);
      return s;
    } catch (...) {
      return error_from_current_exception();
    }
  };
}

template <Event... Es, class... Hs>
  requires(sizeof...(Es) == sizeof...(Hs) && sizeof...(Es) > 0)
Result<Subscription> Mediator::subscribe_ordered(SubscribeOptions options, Hs... handlers) {
  static_assert((detail::HasOrderingKey<Es> && ...),
                "catga: subscribe_ordered needs types with an ordering key (CATGA_ORDERING_KEY)");
  const MessageInfo& first = message_info<std::tuple_element_t<0, std::tuple<Es...>>>();
  if (transport_ == nullptr) return detail::no_transport_error(first);
  options.keyed = true;
  std::vector<TypeHandler> list;
  list.reserve(sizeof...(Es));
  (list.push_back(TypeHandler{std::string(message_info<Es>().name),
                              delivery_handler<Es>(std::make_shared<Hs>(std::move(handlers)), options.group)}),
   ...);
  return transport_->subscribe_ordered(options, std::move(list));
}

template <Request M>
Result<Subscription> Mediator::serve(std::string_view service) {
  const auto& info = message_info<M>();
  if (transport_ == nullptr) return detail::no_transport_error(info);
  return transport_->serve(info.name, service, [this, &info](Delivery& d) -> std::string {
    try {
      const detail::Entry* e = find(info);
      if (e == nullptr || e->handler == nullptr) return wire::encode_reply(detail::no_handler_error(info), nullptr);
      Context ctx;
      auto decoded = detail::decode_delivery<M>(d, ctx, e->upcasters.empty() ? nullptr : &e->upcasters);
      // The server span, child of the caller's client span.
      detail::SpanScope span(span_sink_.get(), ctx, SpanKind::server, "serve", info.name);
      if (span.recording()) [[unlikely]] detail::describe_delivery(span.span(), d, {});
      if (!decoded) {
        span.end(&decoded.error());
        return wire::encode_reply(std::move(decoded).error(), nullptr);
      }
      using R = result_t<M>;
      if constexpr (std::is_void_v<R>) {
        Invocation inv{info, &*decoded, ctx, nullptr, {}};
        Status s = detail::run_pipeline(e->chain, inv, *e->handler);
        span.end(s);
        return wire::encode_reply(s, nullptr);
      } else {
        std::optional<R> out;
        Invocation inv{info, &*decoded, ctx, &out, {}};
        Status s = detail::run_pipeline(e->chain, inv, *e->handler);
        span.end(s);
        if (!s || !out) return wire::encode_reply(s, nullptr);
        nlohmann::json value = *out;
        return wire::encode_reply(s, &value);
      }
    } catch (...) {
      return wire::encode_reply(error_from_current_exception(), nullptr);
    }
  });
}

template <Request M>
Status Mediator::RemoteHandler<M>::call(Invocation& inv) noexcept {
  SpanSink* sink = mediator.span_sink_.get();
  if (sink == nullptr || (inv.context.trace.flags & 1) == 0) [[likely]] return request(inv, inv.context);
  try {
    // The client span, child of the send/query span: the request carries
    // it as its traceparent, so the server's span is its child.
    Context client = inv.context;
    client.trace.parent_span_id = inv.context.trace.span_id;
    client.trace.span_id = detail::new_span_id();
    detail::SpanScope span(sink, client, SpanKind::client, "request", inv.info.name);
    Status s = request(inv, client);
    span.end(s);
    return s;
  } catch (...) {
    return error_from_current_exception();
  }
}

template <Request M>
Status Mediator::RemoteHandler<M>::request(Invocation& inv, const Context& ctx) noexcept {
  using R = result_t<M>;
  try {
    Transport* t = mediator.transport_;
    if (t == nullptr) return detail::no_transport_error(inv.info);
    const std::string body = wire::encode_body(*static_cast<const M*>(inv.message));
    auto reply = t->request(OutboundMessage{inv.info, body, ctx});
    if (!reply) return std::move(reply).error();
    auto value = wire::decode_reply(*reply);
    if (!value) return std::move(value).error();
    if constexpr (!std::is_void_v<R>) {
      try {
        static_cast<std::optional<R>*>(inv.result)->emplace(value->template get<R>());
      } catch (const std::exception& ex) {
        return make_error(errc::malformed, "reply to '" + std::string(inv.info.name) + "' does not decode: " + ex.what());
      }
    }
    return {};
  } catch (...) {
    return error_from_current_exception();
  }
}

}  // namespace catga
