#include "catga/nats/jetstream_transport.hpp"
#include "catga/nats/native/request.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "async_publisher.hpp"
#include "catga/wire.hpp"
#include "error.hpp"
#include "log.hpp"
#include "message.hpp"
#include "ordered_group.hpp"
#include "provisioning.hpp"
#include "pull_consumer.hpp"
#include "responder.hpp"
#include "transport_state.hpp"

namespace catga::nats {

using detail::AsyncPublisher;
using detail::make_message;
using detail::OrderedGroup;
using detail::PullConsumer;
using detail::Responder;
using detail::Surface;
using detail::to_error;
using Clock = std::chrono::steady_clock;

struct JetStreamTransport::State {
  std::shared_ptr<detail::TransportState> shared;
  bool owns_connection = false;
  std::unique_ptr<AsyncPublisher> async;

  std::mutex mu;  // guards the lists
  std::vector<std::shared_ptr<PullConsumer>> consumers;
  std::vector<std::shared_ptr<Responder>> responders;
  std::vector<std::shared_ptr<OrderedGroup>> ordered;

  std::atomic<bool> stopped{false};
  std::mutex stop_mu;

  template <class T>
  void forget(std::vector<std::shared_ptr<T>>& list, const T* item) {
    std::lock_guard lock(mu);
    list.erase(std::remove_if(list.begin(), list.end(), [&](const auto& p) { return p.get() == item; }), list.end());
  }
};

namespace {

// The Subscription handed to the caller: stopping it stops the consumer (or
// responder) and removes it from the transport's list, if the transport is
// still there.
template <class T>
class OwnedSubscription final : public Subscription::Impl {
 public:
  OwnedSubscription(std::shared_ptr<T> item, std::weak_ptr<JetStreamTransport::State> owner,
                    std::chrono::milliseconds timeout)
      : item_(std::move(item)), owner_(std::move(owner)), timeout_(timeout) {}
  ~OwnedSubscription() override { stop(); }

  void stop() noexcept override {
    if (!item_) return;
    item_->stop(timeout_);
    if (auto owner = owner_.lock()) {
      if constexpr (std::is_same_v<T, PullConsumer>) {
        owner->forget(owner->consumers, item_.get());
      } else if constexpr (std::is_same_v<T, OrderedGroup>) {
        owner->forget(owner->ordered, item_.get());
      } else {
        owner->forget(owner->responders, item_.get());
      }
    }
    item_.reset();
  }

 private:
  std::shared_ptr<T> item_;
  std::weak_ptr<JetStreamTransport::State> owner_;
  std::chrono::milliseconds timeout_;
};

Status validate(const JetStreamOptions& o) {
  if (auto s = wire::check_subject(o.prefix, "JetStreamOptions: prefix"); !s) return s;
  if (auto s = wire::check_subject(o.events_stream(), "JetStreamOptions: events stream name", wire::SubjectPart::token);
      !s) {
    return s;
  }
  if (auto s = wire::check_subject(o.dead_letter_stream(), "JetStreamOptions: dead-letter stream name",
                                   wire::SubjectPart::token);
      !s) {
    return s;
  }
  if (o.events_stream() == o.dead_letter_stream()) {
    return make_error(errc::validation, "JetStreamOptions: events and dead-letter streams need different names");
  }
  if (o.consumer.batch < 1) return make_error(errc::validation, "ConsumerOptions: batch must be >= 1");
  if (o.consumer.ack_wait.count() <= 0) return make_error(errc::validation, "ConsumerOptions: ack_wait must be > 0");
  if (o.partitions < 1 || o.partitions > 4096) {
    return make_error(errc::validation, "JetStreamOptions: partitions must be within [1, 4096]");
  }
  if (o.partition_lease < std::chrono::milliseconds(300)) {
    return make_error(errc::validation, "JetStreamOptions: partition_lease must be >= 300 ms");
  }
  return {};
}

// How long after a reconnect "no responders" is taken for services still
// resubscribing to the restarted server rather than for nobody serving.
constexpr auto kResubscribeSettle = std::chrono::seconds(5);

std::chrono::milliseconds left(Clock::time_point deadline) {
  return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                  std::chrono::milliseconds(0));
}

// JetStreamTransport::publish without the stopped check and the metrics.
Status publish_event(detail::TransportState& shared, const OutboundMessage& message);
// JetStreamTransport::request without the stopped check and the metrics.
Result<std::string> request_reply(detail::TransportState& shared, const OutboundMessage& message);

}  // namespace

JetStreamTransport::JetStreamTransport(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

JetStreamTransport::~JetStreamTransport() { (void)stop(state_->shared->options.stop_timeout); }

Result<std::unique_ptr<JetStreamTransport>> JetStreamTransport::create(const NatsOptions& nats, JetStreamOptions js) {
  auto conn = Connection::connect(nats);
  if (!conn) return std::move(conn).error();
  auto t = create(std::move(*conn), std::move(js));
  if (t) (*t)->state_->owns_connection = true;
  return t;
}

Result<std::unique_ptr<JetStreamTransport>> JetStreamTransport::create(std::shared_ptr<Connection> connection,
                                                                       JetStreamOptions js) {
  if (!connection) return make_error(errc::validation, "JetStreamTransport: no connection");
  if (auto s = validate(js); !s) return std::move(s).error();
  auto state = std::make_shared<State>();
  state->shared = std::make_shared<detail::TransportState>();
  auto& shared = *state->shared;
  shared.connection = std::move(connection);
  shared.options = std::move(js);
  shared.events_stream = shared.options.events_stream();
  shared.dead_letter_stream = shared.options.dead_letter_stream();
  shared.publish_meters.use(shared.options.metrics);
  shared.request_meters.use(shared.options.metrics);

  const auto deadline = Clock::now() + shared.options.startup_timeout;
  if (auto s = shared.connection->wait_connected(shared.options.startup_timeout); !s) {
    return make_error(s.error().code, "JetStreamTransport: " + s.error().message, s.error().retryable);
  }
  if (shared.options.provision) {
    // Right after a server (re)start JetStream may not answer yet: retry
    // transient failures until the startup deadline.
    auto pause = std::chrono::milliseconds(50);
    while (true) {
      auto s = detail::ensure_streams(shared.js(), shared.options,
                                      std::clamp(left(deadline), std::chrono::milliseconds(100), std::chrono::milliseconds(5000)));
      if (s) break;
      if (!s.error().retryable || Clock::now() + pause >= deadline) return std::move(s).error();
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }
  auto async = AsyncPublisher::create(state->shared);
  if (!async) return std::move(async).error();
  state->async = std::move(*async);
  return std::unique_ptr<JetStreamTransport>(new JetStreamTransport(std::move(state)));
}

const JetStreamOptions& JetStreamTransport::options() const noexcept { return state_->shared->options; }
const std::shared_ptr<Connection>& JetStreamTransport::connection() const noexcept { return state_->shared->connection; }
bool JetStreamTransport::stopped() const noexcept { return state_->stopped.load(); }

Status JetStreamTransport::ensure_streams() {
  return detail::ensure_streams(state_->shared->js(), state_->shared->options, state_->shared->options.publish_timeout);
}

Status JetStreamTransport::publish(const OutboundMessage& message) {
  auto& shared = *state_->shared;
  if (stopped()) return make_error(errc::unavailable, "publish: the transport is stopped", false);
  const auto* meters = shared.publish_meters.get(message.info);
  if (meters == nullptr) return publish_event(shared, message);
  const auto t0 = Clock::now();
  Status s = publish_event(shared, message);
  if (s) {
    meters->published->inc();
    meters->duration->observe(Clock::now() - t0);
  } else {
    detail::count_failure(*shared.publish_meters.registry(), "catga_publish_failures_total",
                          "Publishes that failed (after their retries), by type and error code.", message.info.name,
                          "code", s.error().code);
  }
  return s;
}

namespace {

Status publish_event(detail::TransportState& shared, const OutboundMessage& message) {
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return v;
  std::string subject;
  shared.event_subject(subject, message);

  if (message.info.qos == QoS::at_most_once) {
    auto msg = make_message(subject, message);
    if (!msg) return std::move(msg).error();
    // Fire and forget: buffered while reconnecting, may be lost.
    if (natsStatus s = natsConnection_PublishMsg(shared.nc(), msg->get()); s != NATS_OK) {
      return to_error(s, "publish '" + std::string(message.info.name) + "'");
    }
    return {};
  }

  // Every attempt sends this same message, reply subject included: the ack
  // of any attempt says the one message id is stored.
  native::Request request(*shared.connection);
  auto msg = make_message(subject, message, request.next_reply());
  if (!msg) return std::move(msg).error();

  const auto& ctx = message.context;
  const auto deadline = ctx.has_deadline() ? ctx.deadline : Clock::now() + shared.options.publish_timeout;
  auto pause = std::chrono::milliseconds(25);
  int attempts = 0;
  while (true) {
    const auto remaining = left(deadline);
    if (remaining.count() <= 0 && attempts > 0) break;
    ++attempts;
    // Same message (same Nats-Msg-Id) on every attempt: if an earlier
    // attempt was stored after all, the stream's dedup window drops this one.
    // (No ExpectStream check: it would add a header to every stored
    // message; the ack names the stream instead.)
    const auto answer = request.js_publish(msg->get(), {}, std::max<std::int64_t>(remaining.count(), 1));
    const natsStatus s = answer.status;
    const jsErrCode jerr = answer.js_error;
    if (s == NATS_OK) {
      if (!answer.ack.stream.empty() && shared.events_stream != answer.ack.stream) {
        return make_error(errc::conflict, "'" + subject + "' was stored by stream '" + answer.ack.stream +
                                              "', not by '" + shared.events_stream + "'");
      }
      return {};
    }
    auto e = to_error(s, jerr, "publish '" + std::string(message.info.name) + "' to stream '" + shared.events_stream + "'",
                      Surface::jetstream, answer.refusal);
    if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr) {
      (void)shared.reprovision();  // the stream may be gone (memory storage, restart)
    }
    if (!e.retryable || Clock::now() + pause >= deadline) {
      if (e.retryable && attempts > 1) e.message += " (" + std::to_string(attempts) + " attempts)";
      shared.note_error(e);
      return e;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  auto e = make_error(errc::timeout, "publish '" + std::string(message.info.name) + "': deadline passed", true);
  shared.note_error(e);
  return e;
}

}  // namespace

namespace {

// `consumer` with the subscription's own delivery settings (SubscribeOptions::
// ack_wait, ::start) in place of the transport's.
Result<ConsumerOptions> with_subscription_settings(ConsumerOptions consumer, const SubscribeOptions& options) {
  if (options.ack_wait) {
    if (options.ack_wait->count() <= 0) {
      return make_error(errc::validation, "subscribe: SubscribeOptions::ack_wait must be > 0");
    }
    consumer.ack_wait = *options.ack_wait;
  }
  if (options.start) {
    switch (options.start->kind) {
      case StartFrom::Kind::all:
        consumer.start = StartPosition::all;
        break;
      case StartFrom::Kind::new_only:
        consumer.start = StartPosition::new_messages;
        break;
      case StartFrom::Kind::time:
        consumer.start = StartPosition::since;
        consumer.start_time = options.start->time;
        break;
    }
  }
  if (consumer.ack_wait.count() <= 0) return make_error(errc::validation, "ConsumerOptions: ack_wait must be > 0");
  return consumer;
}

}  // namespace

Result<Subscription> JetStreamTransport::subscribe(std::string_view type, const SubscribeOptions& options,
                                                   DeliveryHandler handler) {
  return subscribe(type, options, std::move(handler), state_->shared->options.consumer);
}

Result<Subscription> JetStreamTransport::subscribe(std::string_view type, const SubscribeOptions& options,
                                                   DeliveryHandler handler, const ConsumerOptions& consumer) {
  auto& shared = *state_->shared;
  if (stopped()) return make_error(errc::unavailable, "subscribe: the transport is stopped", false);
  if (auto v = wire::check_subject(type, "message type"); !v) return std::move(v).error();
  PullConsumer::Config cfg;
  cfg.type = std::string(type);
  cfg.group = options.group;
  cfg.consumer = detail::consumer_name(options.group, type);
  // A keyed type travels on <prefix>.evt.<Type>.<partition>: an unordered
  // group reads every partition.
  cfg.subject = options.keyed ? wire::event_subject(shared.options.prefix, type) + ".*"
                              : wire::event_subject(shared.options.prefix, type);
  cfg.dead_letter_subject = wire::dead_letter_subject(shared.options.prefix, type);
  cfg.retry = options.retry;
  cfg.workers = options.workers;
  auto settings = with_subscription_settings(consumer, options);
  if (!settings) return std::move(settings).error();
  cfg.options = std::move(*settings);
  auto pc = PullConsumer::start(state_->shared, std::move(cfg), std::move(handler));
  if (!pc) return std::move(pc).error();
  {
    std::lock_guard lock(state_->mu);
    state_->consumers.push_back(*pc);
  }
  return Subscription(std::make_unique<OwnedSubscription<PullConsumer>>(std::move(*pc), state_, shared.options.stop_timeout));
}

Result<Subscription> JetStreamTransport::subscribe_ordered(const SubscribeOptions& options,
                                                           std::vector<TypeHandler> handlers) {
  auto& shared = *state_->shared;
  if (stopped()) return make_error(errc::unavailable, "subscribe: the transport is stopped", false);
  {
    // A second member of the same group here would skip the other's types.
    std::lock_guard lock(state_->mu);
    for (const auto& g : state_->ordered) {
      if (g->config().group == options.group) {
        return make_error(errc::validation, "subscribe_ordered: group '" + options.group +
                                                "' already has an ordered subscription on this transport; give all "
                                                "its types to one subscribe_ordered call");
      }
    }
  }
  OrderedGroup::Config cfg;
  cfg.group = options.group;
  cfg.retry = options.retry;
  cfg.workers = options.workers;
  auto settings = with_subscription_settings(shared.options.consumer, options);
  if (!settings) return std::move(settings).error();
  cfg.options = std::move(*settings);
  cfg.handlers = std::move(handlers);
  auto g = OrderedGroup::start(state_->shared, std::move(cfg));
  if (!g) return std::move(g).error();
  {
    std::lock_guard lock(state_->mu);
    state_->ordered.push_back(*g);
  }
  return Subscription(std::make_unique<OwnedSubscription<OrderedGroup>>(std::move(*g), state_, shared.options.stop_timeout));
}

Result<std::string> JetStreamTransport::request(const OutboundMessage& message) {
  auto& shared = *state_->shared;
  if (stopped()) return make_error(errc::unavailable, "request: the transport is stopped", false);
  const auto* meters = shared.request_meters.get(message.info);
  if (meters == nullptr) return request_reply(shared, message);
  const auto t0 = Clock::now();
  auto r = request_reply(shared, message);
  meters->duration->observe(Clock::now() - t0);
  if (r && r->starts_with(R"({"ok":true)")) {
    meters->ok->inc();
  } else if (const std::string outcome = r ? detail::reply_outcome(*r) : r.error().code; outcome == "ok") {
    meters->ok->inc();
  } else {
    detail::count_failure(*shared.request_meters.registry(), "catga_requests_total",
                          "Remote requests by type and outcome (ok or the error code).", message.info.name, "outcome",
                          outcome);
  }
  return r;
}

namespace {

Result<std::string> request_reply(detail::TransportState& shared, const OutboundMessage& message) {
  const auto& ctx = message.context;
  const auto deadline = ctx.has_deadline() ? ctx.deadline : Clock::now() + shared.options.request_timeout;
  const auto remaining = left(deadline);
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return std::move(v).error();
  const std::string name(message.info.name);
  if (remaining.count() <= 0) return make_error(errc::timeout, "request '" + name + "': deadline already passed", true);
  const std::string subject = wire::command_subject(shared.options.prefix, message.info.name);
  // Asked again only when nobody received it: one reply subject serves.
  native::Request request(*shared.connection);
  auto msg = make_message(subject, message, request.next_reply());
  if (!msg) return std::move(msg).error();
  const auto& conn = detail::impl_of(*shared.connection);
  auto pause = std::chrono::milliseconds(25);
  while (true) {
    detail::MsgHandle reply;
    const natsStatus s = request.send(msg->get(), left(deadline).count(), reply);
    const bool no_responders = s == NATS_NO_RESPONDERS || (s == NATS_OK && natsMsg_IsNoResponders(reply.get()));
    if (s == NATS_OK && !no_responders) return std::string(detail::body_of(reply.get()));
    if (no_responders) {
      // Nobody received it. Right after a reconnect the services may not
      // have resubscribed yet: ask again within the deadline, and if it ends
      // first say so with a retryable error (a caller retrying later may
      // meet an attempt that did reach a handler: for sagas that is an
      // outcome to settle, not a failure).
      const bool settling = conn.reconnected_within(kResubscribeSettle);
      if (settling && left(deadline) > pause) {
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(250));
        continue;
      }
      return make_error(errc::no_handler,
                        "no service serves '" + name + "' (nobody listens on '" + subject + "')" +
                            (settling ? " since the reconnect" : ""),
                        settling);
    }
    if (s == NATS_TIMEOUT) {
      // The request may have been handled and only the reply lost.
      return make_error(errc::timeout,
                        "no reply to '" + name + "' within " + std::to_string(remaining.count()) +
                            " ms (it may have been handled)",
                        true);
    }
    auto e = to_error(s, "request '" + name + "'", Surface::request);
    shared.note_error(e);
    return e;
  }
}

}  // namespace

Result<Subscription> JetStreamTransport::serve(std::string_view type, std::string_view service, RequestHandler handler) {
  if (stopped()) return make_error(errc::unavailable, "serve: the transport is stopped", false);
  auto r = Responder::start(state_->shared, std::string(type), std::string(service), std::move(handler));
  if (!r) return std::move(r).error();
  {
    std::lock_guard lock(state_->mu);
    state_->responders.push_back(*r);
  }
  return Subscription(
      std::make_unique<OwnedSubscription<Responder>>(std::move(*r), state_, state_->shared->options.stop_timeout));
}

Status JetStreamTransport::publish_async(const OutboundMessage& message, PublishCallback done) {
  if (stopped()) return make_error(errc::unavailable, "publish_async: the transport is stopped", false);
  return state_->async->publish(message, std::move(done));
}

Status JetStreamTransport::flush(std::chrono::milliseconds timeout) { return state_->async->flush(timeout); }

Health JetStreamTransport::health(std::chrono::milliseconds timeout) const {
  auto& shared = *state_->shared;
  Health h;
  h.stopped = stopped();
  h.connection = shared.connection->state();
  h.server_url = shared.connection->connected_url();
  h.reconnects = shared.connection->reconnects();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = std::max<std::int64_t>(timeout.count(), 1);
  if (h.connection != ConnectionState::closed) {
    detail::StreamInfoHandle info;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(info.out(), shared.js(), shared.events_stream.c_str(), &jo, &jerr) == NATS_OK) {
      h.stream_reachable = true;
      h.stream_messages = info.get()->State.Msgs;
    }
    jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(info.out(), shared.js(), shared.dead_letter_stream.c_str(), &jo, &jerr) == NATS_OK) {
      h.dead_letter_stream_reachable = true;
      h.dead_letters = info.get()->State.Msgs;
    }
  }
  std::vector<std::shared_ptr<PullConsumer>> consumers;
  std::vector<std::shared_ptr<OrderedGroup>> ordered;
  {
    std::lock_guard lock(state_->mu);
    consumers = state_->consumers;
    ordered = state_->ordered;
    h.responders = state_->responders.size();
  }
  for (const auto& g : ordered) {
    if (h.connection == ConnectionState::closed) continue;
    for (auto& ch : g->health(timeout)) h.consumers.push_back(std::move(ch));
  }
  for (const auto& c : consumers) {
    if (h.connection == ConnectionState::closed) {
      ConsumerHealth ch;
      ch.type = c->config().type;
      ch.group = c->config().group;
      ch.consumer = c->config().consumer;
      ch.error = make_error(errc::unavailable, "connection closed", false);
      h.consumers.push_back(std::move(ch));
    } else {
      h.consumers.push_back(c->health(timeout));
    }
  }
  h.last_error = shared.last_error();
  if (!h.last_error) h.last_error = shared.connection->last_error();
  return h;
}

Status JetStreamTransport::stop(std::chrono::milliseconds timeout) {
  std::lock_guard stop_lock(state_->stop_mu);
  if (state_->stopped.exchange(true)) return {};
  const auto deadline = Clock::now() + timeout;
  std::vector<std::shared_ptr<PullConsumer>> consumers;
  std::vector<std::shared_ptr<Responder>> responders;
  std::vector<std::shared_ptr<OrderedGroup>> ordered;
  {
    std::lock_guard lock(state_->mu);
    consumers.swap(state_->consumers);
    responders.swap(state_->responders);
    ordered.swap(state_->ordered);
  }
  // All at once: each waits for its own in-flight work.
  std::vector<std::thread> stoppers;
  for (auto& g : ordered) stoppers.emplace_back([&g, timeout] { g->stop(timeout); });
  for (auto& c : consumers) stoppers.emplace_back([&c, timeout] { c->stop(timeout); });
  for (auto& r : responders) stoppers.emplace_back([&r, timeout] { r->stop(timeout); });
  for (auto& t : stoppers) t.join();
  state_->async->close(left(deadline));
  Status result;
  if (state_->owns_connection) result = state_->shared->connection->close(std::max(left(deadline), std::chrono::milliseconds(100)));
  if (Clock::now() > deadline + std::chrono::milliseconds(500)) {
    detail::log().warn("catga.nats transport stop took longer than {} ms (handlers still running were awaited)",
                       timeout.count());
  }
  return result;
}

}  // namespace catga::nats
