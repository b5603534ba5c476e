#include "message_rules.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "messages.hpp"
#include "order_record.hpp"

namespace order_flow {
namespace {

using catga::ValidationErrors;

constexpr std::size_t kMaxText = 1024;  // reasons, actors, instance names
constexpr int kMaxQty = 1000;
constexpr double kMaxAmount = 1e9;

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void order_id(ValidationErrors& e, std::string_view id) {
  if (!valid_token(id)) e.add("order_id", "must be 1-64 characters of [A-Za-z0-9_-]");
}

void name(ValidationErrors& e, const char* field, std::string_view s, bool required = true) {
  if (required && s.empty()) e.add(field, "is required");
  if (s.size() > kMaxText) e.add(field, "must be at most 1024 characters");
  if (has_control(s)) e.add(field, "must not contain control characters");
}

// Reasons carry other services' error texts: any characters (logs escape
// them), bounded generously. Refusing one would fail a compensation or
// dead-letter a terminal event; the message size limit bounds them anyway.
void reason(ValidationErrors& e, std::string_view s) {
  if (s.size() > 64 * kMaxText) e.add("reason", "must be at most 65536 characters");
}

void amount(ValidationErrors& e, double a) {
  if (!std::isfinite(a) || a <= 0.0 || a > kMaxAmount) e.add("amount", "must be a number above 0 and at most 1e9");
}

// Unix time in milliseconds: never before 1970.
void time_ms(ValidationErrors& e, const char* field, std::int64_t ms) {
  if (ms < 0) e.add(field, "must be a unix time in milliseconds (not negative)");
}

// The status an order was cancelled from: one of the order statuses.
void status_name(ValidationErrors& e, const char* field, std::string_view s) {
  if (!order_status_from(s)) e.add(field, "must be one of pending, processing, confirmed, cancelled");
}

void items(ValidationErrors& e, const std::vector<OrderItem>& items, bool allow_empty = false) {
  if (items.empty() && !allow_empty) e.add("items", "must name at least one item");
  if (items.size() > 50) e.add("items", "must name at most 50 items");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string field = "items[" + std::to_string(i) + "]";
    if (!valid_token(items[i].sku)) e.add(field + ".sku", "must be 1-64 characters of [A-Za-z0-9_-]");
    if (items[i].qty < 1 || items[i].qty > kMaxQty) e.add(field + ".qty", "must be between 1 and 1000");
  }
}

}  // namespace

bool valid_token(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

void add_message_rules(catga::ValidationBehavior& v) {
  v.add<BeginOrderProcessing>([](const BeginOrderProcessing& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    name(e, "customer", c.customer);
    items(e, c.items);
    amount(e, c.amount);
    time_ms(e, "placed_ms", c.placed_ms);
  });
  v.add<ConfirmOrder>([](const ConfirmOrder& c, ValidationErrors& e) { order_id(e, c.order_id); });
  v.add<CancelOrder>([](const CancelOrder& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    reason(e, c.reason);
    name(e, "actor", c.actor);
  });
  v.add<ReserveInventory>([](const ReserveInventory& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    items(e, c.items);
  });
  v.add<ReleaseInventory>([](const ReleaseInventory& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    reason(e, c.reason);
  });
  v.add<ChargePayment>([](const ChargePayment& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    name(e, "customer", c.customer);
    amount(e, c.amount);
  });
  v.add<RefundPayment>([](const RefundPayment& c, ValidationErrors& e) {
    order_id(e, c.order_id);
    reason(e, c.reason);
  });
  v.add<OrderPlaced>([](const OrderPlaced& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    name(e, "customer", m.customer);
    items(e, m.items);
    amount(e, m.amount);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<InventoryReserved>([](const InventoryReserved& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    items(e, m.items);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<InventoryReleased>([](const InventoryReleased& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    items(e, m.items, true);  // releasing an order that held nothing
    reason(e, m.reason);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<PaymentCharged>([](const PaymentCharged& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    name(e, "customer", m.customer);
    amount(e, m.amount);
    name(e, "payment_id", m.payment_id);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<PaymentFailed>([](const PaymentFailed& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    name(e, "customer", m.customer);
    amount(e, m.amount);
    reason(e, m.reason);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<OrderConfirmed>([](const OrderConfirmed& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    name(e, "customer", m.customer);
    amount(e, m.amount);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
  v.add<OrderCancelled>([](const OrderCancelled& m, ValidationErrors& e) {
    order_id(e, m.order_id);
    name(e, "customer", m.customer);
    reason(e, m.reason);
    name(e, "actor", m.actor);
    status_name(e, "from", m.from);
    name(e, "by", m.by);
    time_ms(e, "at_ms", m.at_ms);
  });
}

}  // namespace order_flow
