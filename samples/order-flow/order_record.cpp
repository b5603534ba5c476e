#include "order_record.hpp"

#include <spdlog/fmt/fmt.h>
#include <algorithm>
#include <ctime>

namespace order_flow {

std::string_view to_string(OrderStatus s) noexcept {
  switch (s) {
    case OrderStatus::pending:
      return "pending";
    case OrderStatus::processing:
      return "processing";
    case OrderStatus::confirmed:
      return "confirmed";
    case OrderStatus::cancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<OrderStatus> order_status_from(std::string_view text) noexcept {
  for (auto s : {OrderStatus::pending, OrderStatus::processing, OrderStatus::confirmed, OrderStatus::cancelled}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

void to_json(nlohmann::json& j, const HistoryEntry& e) {
  j = {{"event", e.event}, {"actor", e.actor},   {"at_ms", e.at_ms}, {"from", e.from},
       {"to", e.to},       {"detail", e.detail}, {"id", e.id}};
}

void from_json(const nlohmann::json& j, HistoryEntry& e) {
  e.event = j.value("event", "");
  e.actor = j.value("actor", "");
  e.at_ms = j.value("at_ms", std::int64_t{0});
  e.from = j.value("from", "");
  e.to = j.value("to", "");
  e.detail = j.value("detail", "");
  e.id = j.value("id", "");
}

void to_json(nlohmann::json& j, const OrderRecord& r) {
  j = {{"order_id", r.order_id},
       {"customer", r.customer},
       {"items", r.items},
       {"amount", r.amount},
       {"status", to_string(r.status)},
       {"reason", r.reason},
       {"cancelled_by", r.cancelled_by},
       {"cancelled_from", r.cancelled_from},
       {"created_ms", r.created_ms},
       {"updated_ms", r.updated_ms},
       {"completed_ms", r.completed_ms},
       {"history", r.history},
       {"noted", r.noted}};
}

void from_json(const nlohmann::json& j, OrderRecord& r) {
  j.at("order_id").get_to(r.order_id);
  r.customer = j.value("customer", "");
  r.items = j.value("items", std::vector<OrderItem>{});
  r.amount = j.value("amount", 0.0);
  auto status = order_status_from(j.value("status", ""));
  if (!status) throw std::invalid_argument("unknown order status " + j.value("status", std::string("(none)")));
  r.status = *status;
  r.reason = j.value("reason", "");
  r.cancelled_by = j.value("cancelled_by", "");
  r.cancelled_from = j.value("cancelled_from", "");
  r.created_ms = j.value("created_ms", std::int64_t{0});
  r.updated_ms = j.value("updated_ms", std::int64_t{0});
  r.completed_ms = j.value("completed_ms", std::int64_t{0});
  r.history = j.value("history", std::vector<HistoryEntry>{});
  r.noted = j.value("noted", std::vector<std::string>{});
}

std::string iso_time(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
}

nlohmann::json order_view(const OrderRecord& r) {
  // Time order; within one millisecond, the order of the flow (entries from
  // events are appended when the event arrives, which may be later).
  auto rank = [](const std::string& event) {
    static const std::vector<std::string> kFlow = {"OrderPlaced",    "OrderProcessing", "InventoryReserved",
                                                   "PaymentCharged", "PaymentFailed",   "InventoryReleased",
                                                   "OrderConfirmed", "OrderCancelled"};
    return std::find(kFlow.begin(), kFlow.end(), event) - kFlow.begin();
  };
  auto history = r.history;
  std::stable_sort(history.begin(), history.end(), [&](const HistoryEntry& a, const HistoryEntry& b) {
    return a.at_ms != b.at_ms ? a.at_ms < b.at_ms : rank(a.event) < rank(b.event);
  });
  nlohmann::json h = nlohmann::json::array();
  for (const auto& e : history) {
    nlohmann::json line = {{"event", e.event}, {"actor", e.actor}, {"at", iso_time(e.at_ms)}};
    if (!e.from.empty()) line["from"] = e.from;
    if (!e.to.empty()) line["to"] = e.to;
    if (!e.detail.empty()) line["detail"] = e.detail;
    h.push_back(std::move(line));
  }
  nlohmann::json v = {{"order_id", r.order_id},
                      {"status", to_string(r.status)},
                      {"reason", r.reason},
                      {"customer", r.customer},
                      {"items", r.items},
                      {"amount", r.amount},
                      {"created_at", iso_time(r.created_ms)},
                      {"history", std::move(h)}};
  if (r.completed_ms > 0) {
    v["completed_at"] = iso_time(r.completed_ms);
    v["completion_ms"] = r.completed_ms - r.created_ms;
  }
  if (r.status == OrderStatus::cancelled) {
    v["cancelled_by"] = r.cancelled_by;
    v["cancelled_from"] = r.cancelled_from;
  }
  return v;
}

}  // namespace order_flow
