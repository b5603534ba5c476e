#include "catga/outbox/outbox_transport.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "catga/nats/jetstream_transport.hpp"
#include "catga/pipeline/metrics.hpp"
#include "catga/wire.hpp"

namespace catga::outbox {

struct OutboxTransport::State {
  std::shared_ptr<OutboxStore> store;
  Connector connect;
  OutboxTransportOptions options;

  mutable std::mutex mu;
  mutable std::condition_variable cv;  // relay wake-ups and drain() waiters
  bool wake = false;
  std::shared_ptr<Transport> inner;              // guarded by mu
  std::atomic<Transport*> inner_raw{nullptr};    // lock-free view for publish
  std::atomic<catga::nats::JetStreamTransport*> jetstream{nullptr};
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> relayed{0};
  std::atomic<std::uint64_t> dead_lettered{0};
  // options.metrics' counters (null without a registry).
  MetricCounter* stored_total = nullptr;
  MetricCounter* relayed_total = nullptr;
  MetricCounter* dead_lettered_total = nullptr;
  std::atomic<bool> outage_logged{false};
  std::thread relay;

  void set_inner(std::shared_ptr<Transport> t) {
    std::lock_guard lock(mu);
    jetstream = dynamic_cast<catga::nats::JetStreamTransport*>(t.get());
    inner_raw = t.get();
    inner = std::move(t);
  }

  void poke() {
    {
      std::lock_guard lock(mu);
      wake = true;
    }
    cv.notify_all();
  }

  // Sleeps up to `d`, or until stop()/new records.
  void pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, d, [&] { return stopping.load() || wake; });
    wake = false;
  }

  bool reachable() const noexcept {
    auto* js = jetstream.load();
    return js == nullptr || js->connection()->connected();
  }

  // Marks a relayed record as keyed: the key itself is in its
  // Catga-Ordering-Key header, which is what the transport reads.
  static std::string stored_key(const void*) { return {}; }

  // Publishes one stored record through the inner transport.
  Status relay_one(Transport& t, const OutboxRecord& r) const {
    int version = 1;  // the stored Catga-Message-Version travels on
    auto ctx = wire::read_context(
        [&](wire::HeaderVisitor visit) {
          for (const auto& [k, v] : r.headers) visit(k, v);
        },
        nullptr, &version);
    if (!ctx) return std::move(ctx).error();
    ctx->message_type = r.type;
    ctx->deadline = Context::Clock::now() + options.relay_publish_timeout;
    MessageInfo info{r.type, MessageKind::event, r.qos, 0, false, nullptr, nullptr, nullptr, nullptr, version};
    // A keyed event (the mediator stored its key in the header) goes back to
    // its partition subject, where ordered and plain groups read it.
    if (ctx->headers.get(wire::kOrderingKey)) info.ordering_key = &State::stored_key;
    return t.publish(OutboundMessage{info, r.body, *ctx});
  }

  void run() {
    auto backoff = options.retry_min;
    auto failed = [&] {
      pause(backoff);
      backoff = std::min(backoff * 2, options.retry_max);
    };
    while (!stopping) {
      if (inner_raw.load() == nullptr) {
        Result<std::shared_ptr<Transport>> t = make_error(errc::unavailable, "outbox: no connector");
        try {
          if (connect) t = connect();
        } catch (const std::exception& e) {
          t = make_error(errc::exception, std::string("outbox connector: ") + e.what(), true);
        }
        if (t && *t) {
          set_inner(std::move(*t));
          spdlog::info("catga outbox: connected; {} stored events to relay", store->size());
          continue;
        }
        if (!t) spdlog::debug("catga outbox: connect failed: {}", t.error().message);
        failed();
        continue;
      }
      Transport& t = *inner_raw.load();
      if (store->size() == 0) {
        pause(std::chrono::seconds(1));
        continue;
      }
      auto batch = store->peek(options.relay_batch);
      if (!batch) {
        spdlog::warn("catga outbox: cannot read the outbox: {}", batch.error().message);
        failed();
        continue;
      }
      std::vector<std::uint64_t> done;
      bool stalled = false;
      for (const auto& r : *batch) {
        if (stopping) break;
        if (!reachable()) {
          stalled = true;
          break;
        }
        auto s = relay_one(t, r);
        if (s) {
          done.push_back(r.sequence);
          continue;
        }
        if (s.error().retryable) {
          stalled = true;
          break;
        }
        // The broker will never take it (permission, validation, too large):
        // it must not block every later event, nor be lost. It moves to the
        // outbox's dead-letter table (`catga outbox dead`); its body is not
        // logged (it may hold personal data).
        if (auto b = store->bury(r.sequence, s.error()); !b) {
          spdlog::warn("catga outbox: cannot move '{}' (Nats-Msg-Id {}) to the dead letters: {}", r.type,
                       r.message_id, b.error().message);
          stalled = true;
          break;
        }
        ++dead_lettered;
        if (dead_lettered_total != nullptr) dead_lettered_total->inc();
        spdlog::error("catga outbox: '{}' (Nats-Msg-Id {}) refused by the broker ({}: {}); kept in catga_outbox_dead",
                      r.type, r.message_id, s.error().code, s.error().message);
      }
      if (!done.empty()) {
        if (auto s = store->remove(done); !s) {
          // Published but still stored: relayed again later, and the stream
          // drops the copy by its Nats-Msg-Id.
          spdlog::warn("catga outbox: cannot delete relayed events: {}", s.error().message);
          failed();
          continue;
        }
        relayed += done.size();
        if (relayed_total != nullptr) relayed_total->inc(done.size());
        backoff = options.retry_min;
        { std::lock_guard lock(mu); }  // a drain() waiter is either asleep or sees the new size
        cv.notify_all();
      }
      if (store->size() == 0) outage_logged = false;
      {
        std::lock_guard lock(mu);  // buried records count for drain() too
      }
      cv.notify_all();
      if (stalled) failed();
    }
  }
};

OutboxTransport::OutboxTransport(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

Result<std::unique_ptr<OutboxTransport>> OutboxTransport::create(std::shared_ptr<OutboxStore> store,
                                                                 std::shared_ptr<Transport> inner,
                                                                 OutboxTransportOptions options) {
  if (!inner) return make_error(errc::validation, "OutboxTransport: no inner transport");
  auto t = create(std::move(store), Connector{}, std::move(options));
  if (!t) return t;
  (*t)->state_->set_inner(std::move(inner));
  (*t)->state_->poke();
  return t;
}

Result<std::unique_ptr<OutboxTransport>> OutboxTransport::create(std::shared_ptr<OutboxStore> store,
                                                                 Connector connect, OutboxTransportOptions options) {
  if (!store) return make_error(errc::validation, "OutboxTransport: no outbox store");
  if (options.relay_batch == 0) return make_error(errc::validation, "OutboxTransport: relay_batch must be > 0");
  auto state = std::make_shared<State>();
  state->store = std::move(store);
  state->connect = std::move(connect);
  state->options = std::move(options);
  if (const auto& m = state->options.metrics) {
    state->stored_total = &m->counter("catga_outbox_stored_total",
                                      "Events kept in the local outbox because the broker could not take them.");
    state->relayed_total =
        &m->counter("catga_outbox_relayed_total", "Events the relay published from the outbox and deleted.");
    state->dead_lettered_total = &m->counter(
        "catga_outbox_dead_lettered_total", "Events the broker refused for good, moved to the outbox's dead letters.");
    // Read at scrape time; 0 once this transport is gone.
    m->gauge_callback("catga_outbox_pending_messages", "Events waiting in the local outbox for the broker.", {},
                      [weak = std::weak_ptr<State>(state)] {
                        auto s = weak.lock();
                        return s ? static_cast<double>(s->store->size()) : 0.0;
                      });
  }
  State* raw = state.get();
  // Weak: a transaction on the store may still commit after this transport died.
  state->store->on_append([weak = std::weak_ptr<State>(state)] {
    if (auto s = weak.lock()) s->poke();
  });
  std::unique_ptr<OutboxTransport> t(new OutboxTransport(state));
  if (state->connect) {
    state->relay = std::thread([raw] { raw->run(); });
  } else {
    // Over an existing transport: the relay starts once it is set (create above).
    state->relay = std::thread([raw] {
      while (!raw->stopping && raw->inner_raw.load() == nullptr) raw->pause(std::chrono::milliseconds(10));
      raw->run();
    });
  }
  return t;
}

OutboxTransport::~OutboxTransport() { stop(); }

void OutboxTransport::stop() {
  if (state_->stopped.exchange(true)) return;
  state_->stopping = true;
  state_->poke();
  if (state_->relay.joinable()) state_->relay.join();
  state_->store->on_append({});
}

Result<PublishRoute> OutboxTransport::publish_routed(const OutboundMessage& message) {
  // Checked before it is stored: the relay could never publish it.
  if (auto v = wire::check_subject(message.info.name, "message type"); !v) return std::move(v).error();
  auto& st = *state_;
  Transport* inner = st.inner_raw.load(std::memory_order_acquire);
  if (message.info.qos == QoS::at_most_once) {
    if (inner == nullptr) return make_error(errc::unavailable, "outbox: not connected to the broker yet", true);
    if (auto s = inner->publish(message); !s) return std::move(s).error();
    return PublishRoute::sent;
  }
  if (st.stopped) return make_error(errc::unavailable, "outbox: transport stopped");
  // Direct only while nothing waits in the outbox, so order is kept.
  if (inner != nullptr && st.store->size() == 0 && st.reachable()) {
    auto s = inner->publish(message);
    if (s) return PublishRoute::sent;
    if (!s.error().retryable) return std::move(s).error();
  }
  auto seq = st.store->append(message);
  if (!seq) return std::move(seq).error();
  st.stored++;
  if (st.stored_total != nullptr) st.stored_total->inc();
  if (!st.outage_logged.exchange(true)) {
    spdlog::warn("catga outbox: broker unreachable; '{}' and later events are stored locally until it is back",
                 message.info.name);
  }
  return PublishRoute::stored_locally;
}

Status OutboxTransport::publish(const OutboundMessage& message) {
  auto r = publish_routed(message);
  if (!r) return std::move(r).error();
  return {};
}

Result<Subscription> OutboxTransport::subscribe(std::string_view type, const SubscribeOptions& options,
                                                DeliveryHandler handler) {
  auto t = inner();
  if (!t) return make_error(errc::unavailable, "outbox: not connected to the broker yet", true);
  return t->subscribe(type, options, std::move(handler));
}

Result<Subscription> OutboxTransport::subscribe_ordered(const SubscribeOptions& options,
                                                        std::vector<TypeHandler> handlers) {
  auto t = inner();
  if (!t) return make_error(errc::unavailable, "outbox: not connected to the broker yet", true);
  return t->subscribe_ordered(options, std::move(handlers));
}

Result<std::string> OutboxTransport::request(const OutboundMessage& message) {
  auto t = inner();
  if (!t) return make_error(errc::unavailable, "outbox: not connected to the broker yet", true);
  return t->request(message);
}

Result<Subscription> OutboxTransport::serve(std::string_view type, std::string_view service, RequestHandler handler) {
  auto t = inner();
  if (!t) return make_error(errc::unavailable, "outbox: not connected to the broker yet", true);
  return t->serve(type, service, std::move(handler));
}

std::size_t OutboxTransport::pending() const noexcept { return state_->store->size(); }

bool OutboxTransport::drain(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->store->size() == 0; });
}

std::uint64_t OutboxTransport::stored_locally() const noexcept { return state_->stored.load(); }
std::uint64_t OutboxTransport::relayed() const noexcept { return state_->relayed.load(); }
std::uint64_t OutboxTransport::dead_lettered() const noexcept { return state_->dead_lettered.load(); }

std::shared_ptr<Transport> OutboxTransport::inner() const {
  std::lock_guard lock(state_->mu);
  return state_->inner;
}

}  // namespace catga::outbox
