#pragma once
// The wire contract of the order-flow sample: every command and event the
// services exchange. The wire names (the type names) and the JSON fields are
// what services written in other languages use to join:
//   commands  catga.cmd.<Type>   request/reply, queue group = the service name
//   events    catga.evt.<Type>   stream CATGA_EVENTS, one durable consumer per group
//             catga.evt.<Type>.<partition> for the events keyed by order id
//             (CATGA_ORDERING_KEY): an ordered group handles one order's
//             events one at a time, in the order they were published
// See docs/order-flow.md for who sends and who handles each one.

#include <catga/mediator.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace order_flow {

// One line of an order.
struct OrderItem {
  std::string sku;
  int qty = 0;

  friend bool operator==(const OrderItem&, const OrderItem&) = default;
};
inline void to_json(nlohmann::json& j, const OrderItem& i) { j = {{"sku", i.sku}, {"qty", i.qty}}; }
// `qty` must be a JSON integer: 1e308 or 2147483648 would not fit an int
// (converting them is undefined behaviour); out-of-range values become -1,
// which validation refuses (message_rules.hpp).
inline void from_json(const nlohmann::json& j, OrderItem& i) {
  j.at("sku").get_to(i.sku);
  const auto& q = j.at("qty");
  if (!q.is_number_integer()) throw std::invalid_argument("qty: must be an integer");
  if (q.is_number_unsigned()) {
    const auto v = q.get<std::uint64_t>();
    i.qty = v > static_cast<std::uint64_t>(std::numeric_limits<int>::max()) ? -1 : static_cast<int>(v);
  } else {
    const auto v = q.get<std::int64_t>();
    i.qty = v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max() ? -1 : static_cast<int>(v);
  }
}

// --- order service -----------------------------------------------------------

// What PlaceOrder answers: the order (new, or the one an earlier request with
// the same idempotency key created) and its status now.
struct PlaceOrderResult {
  std::string order_id;
  std::string status;
  bool created = false;  // false: an earlier request with this key created it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PlaceOrderResult, order_id, status, created)

// Places an order (served remotely by the order service; POST /orders sends
// it too). `idempotency_key` may be empty; when set, repeating the request
// returns the same order instead of a new one.
//
//   {"customer":"c1","items":[{"sku":"A-1","qty":2}],"amount":40.0,"idempotency_key":"k-1"}
struct PlaceOrder {
  std::string customer;
  std::vector<OrderItem> items;
  double amount = 0.0;
  std::string idempotency_key;
};
CATGA_MESSAGE(PlaceOrder, ::catga::CommandTag<PlaceOrderResult>, "PlaceOrder")
// idempotency_key is optional on the wire.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PlaceOrder, customer, items, amount, idempotency_key)

// Marks the order as processing: the first step of the order saga, local to
// the order service. Creates the order if PlaceOrder crashed before it did.
// Its compensation is CancelOrder (with the reason the saga failed).
struct BeginOrderProcessing {
  std::string order_id;
  std::string customer;
  std::vector<OrderItem> items;
  double amount = 0.0;
  std::int64_t placed_ms = 0;
};
CATGA_COMMAND(BeginOrderProcessing, void, order_id, customer, items, amount, placed_ms)

// The last saga step: the order is confirmed (fails with `order_cancelled`
// if it was cancelled meanwhile, which makes the saga compensate).
struct ConfirmOrder {
  std::string order_id;
};
CATGA_COMMAND(ConfirmOrder, void, order_id)

// Cancels an order that is not confirmed. `actor` says who asked
// ("saga:order-1", "customer:c1"); cancelling twice keeps the first reason.
struct CancelOrder {
  std::string order_id;
  std::string reason;
  std::string actor;
};
CATGA_COMMAND(CancelOrder, void, order_id, reason, actor)

// --- inventory service -------------------------------------------------------

// What ReserveInventory answers.
struct Reservation {
  std::string order_id;
  std::string reserved_by;  // instance that holds the reservation record
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Reservation, order_id, reserved_by)

// Holds stock for every item of an order, all or nothing. Idempotent per
// order. Fails with `out_of_stock` / `unknown_sku` (not retryable).
struct ReserveInventory {
  std::string order_id;
  std::vector<OrderItem> items;
};
CATGA_COMMAND(ReserveInventory, Reservation, order_id, items)

// Gives the stock held for an order back. Idempotent; releasing an order that
// holds nothing is fine (and stops a late ReserveInventory for it).
struct ReleaseInventory {
  std::string order_id;
  std::string reason;
};
CATGA_COMMAND(ReleaseInventory, void, order_id, reason)

// --- payment service ---------------------------------------------------------

// What ChargePayment answers.
struct PaymentReceipt {
  std::string payment_id;
  std::string charged_by;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaymentReceipt, payment_id, charged_by)

// Charges the customer once per order. Fails with `payment_declined` (not
// retryable) for customer "declined" or an amount over the customer's limit.
struct ChargePayment {
  std::string order_id;
  std::string customer;
  double amount = 0.0;
};
CATGA_COMMAND(ChargePayment, PaymentReceipt, order_id, customer, amount)

// Refunds the charge of an order. Idempotent; refunding an order that was
// never charged is fine (and stops a late ChargePayment for it).
struct RefundPayment {
  std::string order_id;
  std::string reason;
};
CATGA_COMMAND(RefundPayment, void, order_id, reason)

// --- events --------------------------------------------------------------------
// `by` names the instance that produced the event; `at_ms` is unix time in ms.
// Each event has a message id derived from the order id (e.g.
// "<order>.confirmed"), so a repeated publish is dropped by the stream's
// duplicate window and by the consumers' idempotency store.

struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::vector<OrderItem> items;
  double amount = 0.0;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(OrderPlaced, order_id, customer, items, amount, at_ms)
CATGA_QOS(OrderPlaced, ::catga::QoS::exactly_once)

struct InventoryReserved {
  std::string order_id;
  std::vector<OrderItem> items;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(InventoryReserved, order_id, items, by, at_ms)
CATGA_QOS(InventoryReserved, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(InventoryReserved, order_id)

struct InventoryReleased {
  std::string order_id;
  std::vector<OrderItem> items;
  std::string reason;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(InventoryReleased, order_id, items, reason, by, at_ms)
CATGA_QOS(InventoryReleased, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(InventoryReleased, order_id)

struct PaymentCharged {
  std::string order_id;
  std::string customer;
  double amount = 0.0;
  std::string payment_id;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(PaymentCharged, order_id, customer, amount, payment_id, by, at_ms)
CATGA_QOS(PaymentCharged, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(PaymentCharged, order_id)

struct PaymentFailed {
  std::string order_id;
  std::string customer;
  double amount = 0.0;
  std::string reason;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(PaymentFailed, order_id, customer, amount, reason, by, at_ms)
CATGA_QOS(PaymentFailed, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(PaymentFailed, order_id)

struct OrderConfirmed {
  std::string order_id;
  std::string customer;
  double amount = 0.0;
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(OrderConfirmed, order_id, customer, amount, by, at_ms)
CATGA_QOS(OrderConfirmed, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(OrderConfirmed, order_id)

struct OrderCancelled {
  std::string order_id;
  std::string customer;
  std::string reason;
  std::string actor;  // who cancelled it
  std::string from;   // the status it was cancelled from
  std::string by;
  std::int64_t at_ms = 0;
};
CATGA_EVENT(OrderCancelled, order_id, customer, reason, actor, from, by, at_ms)
CATGA_QOS(OrderCancelled, ::catga::QoS::exactly_once)
CATGA_ORDERING_KEY(OrderCancelled, order_id)

// Error codes of the sample's business rules (not retryable).
namespace errc {
inline constexpr std::string_view out_of_stock = "out_of_stock";
inline constexpr std::string_view unknown_sku = "unknown_sku";
inline constexpr std::string_view reservation_released = "reservation_released";
inline constexpr std::string_view reservation_committed = "reservation_committed";
inline constexpr std::string_view payment_declined = "payment_declined";
inline constexpr std::string_view payment_refunded = "payment_refunded";
inline constexpr std::string_view order_cancelled = "order_cancelled";
inline constexpr std::string_view order_confirmed = "order_confirmed";
inline constexpr std::string_view not_found = "not_found";
inline constexpr std::string_view idempotency_key_reused = "idempotency_key_reused";
}  // namespace errc

}  // namespace order_flow
