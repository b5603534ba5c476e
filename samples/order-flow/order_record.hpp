#pragma once
// OrderRecord: an order as the order service stores it ("order.<id>" in the
// "orders" bucket), with the history that says who did what, when, and from
// which state.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages.hpp"

namespace order_flow {

enum class OrderStatus { pending, processing, confirmed, cancelled };

std::string_view to_string(OrderStatus s) noexcept;
std::optional<OrderStatus> order_status_from(std::string_view text) noexcept;
inline bool is_final(OrderStatus s) noexcept { return s == OrderStatus::confirmed || s == OrderStatus::cancelled; }

// One line of an order's history. `actor` is "<role>:<who>":
// "customer:c1", "saga:order-1", "inventory:inventory-2", "payment:payment-1".
// `from`/`to` are set for status changes; `id` (the event's message id, when
// it came from an event) keeps a redelivered event from being added twice.
struct HistoryEntry {
  std::string event;
  std::string actor;
  std::int64_t at_ms = 0;
  std::string from;
  std::string to;
  std::string detail;
  std::string id;
};

// The stored order.
//
//   OrderRecord r = order_service.find("ord-1f2e...").value().value();
//   if (r.status == OrderStatus::cancelled) std::cout << r.reason << " by " << r.cancelled_by;
struct OrderRecord {
  std::string order_id;
  std::string customer;
  std::vector<OrderItem> items;
  double amount = 0.0;
  OrderStatus status = OrderStatus::pending;
  std::string reason;        // why it was cancelled
  std::string cancelled_by;  // actor of the cancellation
  std::string cancelled_from;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::int64_t completed_ms = 0;  // when it became confirmed or cancelled
  std::vector<HistoryEntry> history;
  // Events of other services already noted (noted_key), so a redelivery is
  // not noted twice.
  std::vector<std::string> noted;
};

void to_json(nlohmann::json& j, const HistoryEntry& e);
void from_json(const nlohmann::json& j, HistoryEntry& e);
void to_json(nlohmann::json& j, const OrderRecord& r);
void from_json(const nlohmann::json& j, OrderRecord& r);

// "2024-05-01T10:00:00.123Z" for unix milliseconds.
std::string iso_time(std::int64_t unix_ms);

// What GET /orders/{id} returns: order_id, status, reason, items, amount,
// customer, timestamps, and the history in time order with readable times:
//   "history":[{"event":"OrderCancelled","actor":"saga:order-1","at":"...","from":"processing","to":"cancelled",...}]
nlohmann::json order_view(const OrderRecord& r);

}  // namespace order_flow
