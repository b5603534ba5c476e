#include "order_service.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/logger.h>
#include <algorithm>
#include <cmath>

#include <catga/saga/events.hpp>

#include "kv_json.hpp"
#include "message_rules.hpp"

namespace order_flow {
namespace {

constexpr std::string_view kOrdersBucket = "orders";
constexpr std::string_view kSagasBucket = "order_sagas";

std::string idempotency_key(std::string_view key) { return "idem." + key_token(key); }

// "ord-" + 16 hex digits: short enough to read, random enough not to clash
// (and creating the order record would notice if it did).
std::string new_order_id() {
  const auto id = catga::MessageId::generate();
  const std::uint64_t mixed = id.hi() ^ (id.lo() * 0x9e3779b97f4a7c15ULL);
  char hex[17];
  catga::append_hex_u64(hex, mixed);
  return "ord-" + std::string(hex, 16);
}

// Identifies what a request asked for, so reusing an idempotency key for a
// different order is refused instead of silently answered with the old one.
std::string fingerprint(const PlaceOrder& c) {
  const std::string text = nlohmann::json{{"customer", c.customer}, {"items", c.items}, {"amount", c.amount}}.dump();
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : text) h = (h ^ ch) * 1099511628211ULL;
  char hex[17];
  catga::append_hex_u64(hex, h);
  return std::string(hex, 16);
}

using Events = std::vector<OrderEvent>;

}  // namespace

void validate_place_order(const PlaceOrder& c, catga::ValidationErrors& e) {
  if (c.customer.empty()) e.add("customer", "is required");
  if (c.customer.size() > 64) e.add("customer", "must be at most 64 characters");
  if (std::any_of(c.customer.begin(), c.customer.end(),
                  [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; })) {
    e.add("customer", "must not contain control characters (newlines, tabs, ...)");
  }
  if (c.items.empty()) e.add("items", "must name at least one item");
  if (c.items.size() > 50) e.add("items", "must name at most 50 items");
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    const auto field = "items[" + std::to_string(i) + "]";
    if (!valid_token(c.items[i].sku)) e.add(field + ".sku", "must be 1-64 characters of [A-Za-z0-9_-]");
    if (c.items[i].qty < 1 || c.items[i].qty > 1000) e.add(field + ".qty", "must be between 1 and 1000");
  }
  if (!std::isfinite(c.amount) || c.amount <= 0.0) e.add("amount", "must be a positive number");
  if (std::isfinite(c.amount) && c.amount > 1e9) e.add("amount", "must be at most 1000000000");
  // Idempotency-Key: 1-128 characters of [A-Za-z0-9._:+/=-] (UUIDs, base64);
  // anything else could forge log lines or keys.
  if (c.idempotency_key.size() > 128) e.add("idempotency_key", "must be at most 128 characters");
  for (char ch : c.idempotency_key) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                    ch == '_' || ch == ':' || ch == '+' || ch == '/' || ch == '=' || ch == '-';
    if (!ok) {
      e.add("idempotency_key", "must be characters of [A-Za-z0-9._:+/=-]");
      break;
    }
  }
}

OrderService::OrderService(ServiceEnv env, OrderServiceOptions options)
    : ServiceCore("order", std::move(env)),
      options_(std::move(options)),
      saga_(order_saga("saga:" + instance(), options_.timings)) {
  if (options_.saga.instance_id.empty()) options_.saga.instance_id = instance();
  validation().add<PlaceOrder>(validate_place_order);

  // [snippet:order-flow-order-handlers]
  handle<PlaceOrder>([this](const PlaceOrder& c, catga::Context& ctx) { return on_place(c, ctx); });
  handle<BeginOrderProcessing>([this](const BeginOrderProcessing& c) { return on_begin(c); }, false);
  handle<ConfirmOrder>([this](const ConfirmOrder& c) { return on_confirm(c); });
  handle<CancelOrder>([this](const CancelOrder& c) { return on_cancel(c); });

  // The other services' commands go to whichever of their instances is free.
  mediator().route_remote<ReserveInventory>();
  mediator().route_remote<ReleaseInventory>();
  mediator().route_remote<ChargePayment>();
  mediator().route_remote<RefundPayment>();
  // [/snippet:order-flow-order-handlers]

  // The history projection: what other services did to an order goes on
  // the order as well. An ordered group: one order's events are recorded
  // in the order they were published (a reservation before its release)
  // even when one of them is redelivered; other orders go on meanwhile.
  consume_ordered<InventoryReserved, InventoryReleased, PaymentCharged, PaymentFailed>(
      "order-history", 2,
      [this](const InventoryReserved& e) { return add_history(e.order_id, "inventory:" + e.by, e); },
      [this](const InventoryReleased& e) { return add_history(e.order_id, "inventory:" + e.by, e); },
      [this](const PaymentCharged& e) { return add_history(e.order_id, "payment:" + e.by, e); },
      [this](const PaymentFailed& e) { return add_history(e.order_id, "payment:" + e.by, e); });
  // A compensation kept failing: the order stays where it is and needs an
  // operator; its history says so (the orchestrator publishes SagaFailed
  // through this mediator).
  mediator().on<catga::SagaFailed>(
      [this](const catga::SagaFailed& e) { return add_history(e.saga_id, "saga:" + instance(), e); },
      "order-history");
}

OrderService::~OrderService() { stop(); }

catga::Status OrderService::start() {
  auto orders = bucket(kOrdersBucket);
  if (!orders) return std::move(orders).error();
  kv_ = std::move(*orders);
  if (!options_.repository) options_.repository = kv_order_repository(kv_);
  auto sagas = bucket(kSagasBucket);
  if (!sagas) return std::move(sagas).error();
  saga_store_ = std::make_shared<catga::KvSagaStore>(std::move(*sagas));
  if (!options_.saga.metrics) options_.saga.metrics = metrics();  // catga_sagas_*_total in /metrics
  orchestrator_ = std::make_unique<catga::SagaOrchestrator>(mediator(), saga_store_, options_.saga);
  orchestrator_->add(saga_);
  if (auto s = open(); !s) return s;
  // Sagas this instance drove before a restart resume now; orphans of other
  // instances once their lease ran out (recovery_interval).
  auto resumed = orchestrator_->recover();
  if (!resumed) return std::move(resumed).error();
  if (*resumed > 0) log().info("resumed sagas={}", *resumed);
  return {};
}

void OrderService::stop() {
  if (orchestrator_) orchestrator_->stop();
  close();
  if (options_.repository) options_.repository->close();
}

catga::Result<PlaceOrderResult> OrderService::place(const PlaceOrder& c, catga::Context ctx) {
  return mediator().send(c, std::move(ctx));
}

catga::Status OrderService::cancel(const std::string& order_id, const std::string& reason, const std::string& actor) {
  return mediator().send(CancelOrder{order_id, reason, actor});
}

// Order of writes, so a crash at any point leaves something consistent:
// 1. the idempotency key → order id (create-if-absent: one order per key,
//    whichever replica gets the request);
// 2. the saga (idempotent start): from here on the order will be finished
//    by this or another instance, even if we die now;
// 3. the order's OrderPlaced event (the saga's first step records it if we
//    died first).
catga::Result<PlaceOrderResult> OrderService::on_place(const PlaceOrder& c, catga::Context& ctx) {
  // [snippet:order-flow-place-order]
  std::string order_id = new_order_id();
  bool created = true;
  const auto now = catga::unix_ms_now();
  if (!c.idempotency_key.empty()) {
    const std::string print = fingerprint(c);
    auto mapped = create_json(*kv_, idempotency_key(c.idempotency_key),
                              {{"order_id", order_id}, {"fingerprint", print}, {"created_ms", now}});
    if (!mapped) return std::move(mapped).error();
    const auto& m = mapped->entry.value;
    if (m.value("fingerprint", "") != print) {
      // Not naming that order: a guessed key must not reveal another customer's order.
      return catga::make_error(errc::idempotency_key_reused,
                               "idempotency key '" + c.idempotency_key + "' was already used for a different order");
    }
    order_id = m.value("order_id", order_id);
    created = mapped->created;
  }

  // A new order id has nothing recorded: its first decision (ours or the
  // saga's first step, whichever comes first) need not read its stream.
  if (created) options_.repository->expect_new(order_id);
  OrderSagaData data{order_id, c.customer, c.items, c.amount, now, "", "", ""};
  auto saga = orchestrator_->start(saga_, order_id, data);
  if (!saga) return std::move(saga).error();
  // The saga keeps the first request's data and time.
  const auto first = saga->data.get<OrderSagaData>();

  const OrderPlaced placed{order_id, first.customer, first.items, first.amount, first.placed_ms};
  auto stored = options_.repository->update(order_id, "customer:" + first.customer,
                                            [&](const std::optional<OrderRecord>& o) -> catga::Result<Events> {
                                              if (o) return Events{};  // a replay, or the saga came first
                                              return Events{placed};
                                            });
  if (!stored) return std::move(stored).error();
  // [/snippet:order-flow-place-order]
  // Also on a replay: the first request may have died before publishing. A
  // failed publish fails the request (retryable): the client's retry with the
  // same key publishes it again.
  if (auto s = publish_once(OrderPlaced{order_id, first.customer, first.items, first.amount, first.placed_ms},
                            order_id + ".placed");
      !s) {
    return std::move(s).error();
  }
  if (created) {
    log().info("placed order={} customer={} amount={:.2f} {}", order_id, c.customer, c.amount, log_ids(ctx));
    return PlaceOrderResult{order_id, "pending", true};
  }
  if (!*stored) return catga::make_error(catga::errc::internal, "order " + order_id + " was not stored");
  log().info("replayed order={} idempotency_key={} {}", order_id, c.idempotency_key, log_ids(ctx));
  return PlaceOrderResult{order_id, std::string(to_string((*stored)->status)), false};
}

catga::Status OrderService::on_begin(const BeginOrderProcessing& c) {
  auto r = options_.repository->update(
      c.order_id, "saga:" + instance(), [&](const std::optional<OrderRecord>& o) -> catga::Result<Events> {
        const OrderProcessing processing{c.order_id, instance(), catga::unix_ms_now()};
        // PlaceOrder died between starting the saga and recording the order.
        if (!o) return Events{OrderPlaced{c.order_id, c.customer, c.items, c.amount, c.placed_ms}, processing};
        if (o->status == OrderStatus::processing || o->status == OrderStatus::confirmed) return Events{};
        if (o->status == OrderStatus::cancelled) {
          return catga::make_error(errc::order_cancelled, "order " + c.order_id + " was cancelled: " + o->reason);
        }
        return Events{processing};
      });
  if (!r) return std::move(r).error();
  return {};
}

catga::Status OrderService::on_confirm(const ConfirmOrder& c) {
  auto r = options_.repository->update(
      c.order_id, "saga:" + instance(), [&](const std::optional<OrderRecord>& o) -> catga::Result<Events> {
        if (!o) return catga::make_error(errc::not_found, "no order " + c.order_id);
        if (o->status == OrderStatus::confirmed) return Events{};
        if (o->status == OrderStatus::cancelled) {
          return catga::make_error(errc::order_cancelled,
                                   "order " + c.order_id + " was cancelled by " + o->cancelled_by + ": " + o->reason);
        }
        return Events{OrderConfirmed{c.order_id, o->customer, o->amount, instance(), catga::unix_ms_now()}};
      });
  if (!r) return std::move(r).error();
  if (!*r) return catga::make_error(errc::not_found, "no order " + c.order_id);
  const OrderRecord& order = **r;
  // Also after a repeat: the first attempt may have died before publishing.
  // A failed publish fails the step (retryable, uncertain): the saga sends
  // it again, which finds the order confirmed and publishes again. Inventory
  // commits the sale and the customer is notified from this event.
  return publish_once(OrderConfirmed{order.order_id, order.customer, order.amount, instance(), order.completed_ms},
                      order.order_id + ".confirmed");
}

catga::Status OrderService::on_cancel(const CancelOrder& c) {
  auto r = options_.repository->update(
      c.order_id, c.actor, [&](const std::optional<OrderRecord>& o) -> catga::Result<Events> {
        if (!o) return catga::make_error(errc::not_found, "no order " + c.order_id);
        if (o->status == OrderStatus::cancelled) return Events{};  // the first cancellation's reason stays
        if (o->status == OrderStatus::confirmed) {
          return catga::make_error(errc::order_confirmed, "order " + c.order_id + " is already confirmed");
        }
        return Events{OrderCancelled{c.order_id, o->customer, c.reason, c.actor, std::string(to_string(o->status)),
                                     instance(), catga::unix_ms_now()}};
      });
  if (!r) return std::move(r).error();
  if (!*r) return catga::make_error(errc::not_found, "no order " + c.order_id);
  const OrderRecord& order = **r;
  // As for OrderConfirmed: the sender (saga compensation, customer) retries.
  return publish_once(OrderCancelled{order.order_id, order.customer, order.reason, order.cancelled_by,
                                     order.cancelled_from, instance(), order.completed_ms},
                      order.order_id + ".cancelled");
}

catga::Status OrderService::add_history(const std::string& order_id, const std::string& actor, OrderEvent event) {
  bool unknown = false;
  const std::string key = noted_key(event);
  auto r = options_.repository->update(order_id, actor, [&](const std::optional<OrderRecord>& o) -> catga::Result<Events> {
    unknown = !o;
    if (!o) return Events{};
    if (!key.empty() && std::find(o->noted.begin(), o->noted.end(), key) != o->noted.end()) {
      return Events{};  // redelivered
    }
    return Events{event};
  });
  if (!r) return std::move(r).error();
  if (unknown) log().warn("event for unknown order={} by {}", order_id, actor);
  return {};
}

catga::Result<std::optional<OrderRecord>> OrderService::find(std::string_view order_id) {
  return options_.repository->find(order_id);
}

catga::Result<std::vector<OrderRecord>> OrderService::list(std::optional<OrderStatus> status, std::size_t limit) {
  return options_.repository->list(status, limit);
}

catga::Result<std::map<std::string, std::size_t>> OrderService::saga_counts() {
  // Active sagas through the store's index, finished ones from the totals it
  // keeps as sagas finish: a scrape reads the active sagas only, however
  // many finished ones the bucket holds.
  auto c = saga_store_->count();
  if (!c) return std::move(c).error();
  const auto name = [](catga::SagaStatus s) { return std::string(catga::to_string(s)); };
  return std::map<std::string, std::size_t>{
      {name(catga::SagaStatus::running), c->running},
      {name(catga::SagaStatus::compensating), c->compensating},
      {name(catga::SagaStatus::completed), c->completed},
      {name(catga::SagaStatus::compensated), c->compensated},
      {name(catga::SagaStatus::compensation_failed), c->compensation_failed},
  };
}

catga::Result<catga::SagaRecord> OrderService::saga(std::string_view order_id) {
  auto s = saga_store_->load(order_id);
  if (!s) return std::move(s).error();
  return std::move(s->record);
}

}  // namespace order_flow
