#include "order_repository.hpp"

#include <spdlog/fmt/fmt.h>
#include <algorithm>

#include <catga/saga/record.hpp>

#include "kv_json.hpp"

namespace order_flow {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string describe(const std::vector<OrderItem>& items) {
  std::string s;
  for (const auto& i : items) {
    if (!s.empty()) s += ", ";
    s += i.sku + " x" + std::to_string(i.qty);
  }
  return s;
}

// The time an event carries itself (0: none).
std::int64_t own_time(const OrderEvent& e) {
  return std::visit(Overloaded{[](const catga::SagaFailed&) -> std::int64_t { return 0; },
                               [](const auto& x) -> std::int64_t { return x.at_ms; }},
                    e);
}

}  // namespace

void apply_event(OrderRecord& r, const OrderEvent& e) {
  if (auto key = noted_key(e); !key.empty()) r.noted.push_back(std::move(key));
  std::visit(Overloaded{
                 [&](const OrderPlaced& x) {
                   r.order_id = x.order_id;
                   r.customer = x.customer;
                   r.items = x.items;
                   r.amount = x.amount;
                   r.status = OrderStatus::pending;
                   r.created_ms = r.updated_ms = x.at_ms;
                 },
                 [&](const OrderProcessing& x) {
                   r.status = OrderStatus::processing;
                   r.updated_ms = x.at_ms;
                 },
                 [&](const OrderConfirmed& x) {
                   r.status = OrderStatus::confirmed;
                   r.updated_ms = r.completed_ms = x.at_ms;
                 },
                 [&](const OrderCancelled& x) {
                   r.status = OrderStatus::cancelled;
                   r.reason = x.reason;
                   r.cancelled_by = x.actor;
                   r.cancelled_from = x.from;
                   r.updated_ms = r.completed_ms = x.at_ms;
                 },
                 [](const auto&) {},  // other services' events only add to the history
             },
             e);
}

HistoryEntry order_history_line(const OrderEvent& e, std::string actor, std::int64_t fallback_ms) {
  const std::int64_t own = own_time(e);
  HistoryEntry h;
  h.actor = std::move(actor);
  h.at_ms = own > 0 ? own : fallback_ms;
  std::visit(Overloaded{
                 [&](const OrderPlaced& x) {
                   // Always the customer's act, also when the saga wrote it
                   // down first (PlaceOrder's own write then finds the order).
                   h.actor = "customer:" + x.customer;
                   h.event = "OrderPlaced";
                   h.to = "pending";
                   h.detail = fmt::format("{} for {:.2f}", describe(x.items), x.amount);
                 },
                 [&](const OrderProcessing&) {
                   h.event = "OrderProcessing";
                   h.from = "pending";
                   h.to = "processing";
                 },
                 [&](const OrderConfirmed&) {
                   h.event = "OrderConfirmed";
                   h.from = "processing";
                   h.to = "confirmed";
                 },
                 [&](const OrderCancelled& x) {
                   h.event = "OrderCancelled";
                   h.from = x.from;
                   h.to = "cancelled";
                   h.detail = x.reason;
                 },
                 [&](const InventoryReserved& x) {
                   h.event = "InventoryReserved";
                   h.detail = describe(x.items);
                 },
                 [&](const InventoryReleased& x) {
                   h.event = "InventoryReleased";
                   h.detail = describe(x.items);
                 },
                 [&](const PaymentCharged& x) {
                   h.event = "PaymentCharged";
                   h.detail = fmt::format("{:.2f} ({})", x.amount, x.payment_id);
                 },
                 [&](const PaymentFailed& x) {
                   h.event = "PaymentFailed";
                   h.detail = x.reason;
                 },
                 [&](const catga::SagaFailed& x) {
                   h.event = "SagaFailed";
                   h.detail = x.error;
                 },
             },
             e);
  return h;
}

std::string noted_key(const OrderEvent& e) {
  return std::visit(Overloaded{[](const InventoryReserved& x) { return "InventoryReserved:" + x.by + ":" + std::to_string(x.at_ms); },
                               [](const InventoryReleased& x) { return "InventoryReleased:" + x.by + ":" + std::to_string(x.at_ms); },
                               [](const PaymentCharged& x) { return "PaymentCharged:" + x.payment_id; },
                               [](const PaymentFailed& x) { return "PaymentFailed:" + x.by + ":" + std::to_string(x.at_ms); },
                               [](const auto&) { return std::string(); }},
                    e);
}

namespace {

std::string order_key(std::string_view id) { return "order." + key_token(id); }

catga::Result<OrderRecord> decode(const nlohmann::json& doc) {
  try {
    return doc.get<OrderRecord>();
  } catch (const std::exception& e) {
    return catga::make_error(catga::errc::malformed, std::string("stored order: ") + e.what());
  }
}

class KvOrderRepository final : public OrderRepository {
 public:
  explicit KvOrderRepository(std::shared_ptr<catga::KeyValue> kv) : kv_(std::move(kv)) {}

  catga::Result<std::optional<OrderRecord>> update(const std::string& order_id, const std::string& actor,
                                                   const OrderDecision& decide) override {
    auto doc = modify_json(*kv_, order_key(order_id), [&](nlohmann::json& d) -> catga::Result<Write> {
      std::optional<OrderRecord> current;
      if (!d.is_null()) {
        auto r = decode(d);
        if (!r) return std::move(r).error();
        current = std::move(*r);
      }
      auto events = decide(current);
      if (!events) return std::move(events).error();
      if (events->empty()) return Write::no;
      OrderRecord r = current ? std::move(*current) : OrderRecord{};
      for (const auto& e : *events) {
        apply_event(r, e);
        r.history.push_back(order_history_line(e, actor, catga::unix_ms_now()));
      }
      d = r;
      return Write::yes;
    });
    if (!doc) return std::move(doc).error();
    if (doc->is_null()) return std::optional<OrderRecord>();
    auto r = decode(*doc);
    if (!r) return std::move(r).error();
    return std::optional<OrderRecord>(std::move(*r));
  }

  catga::Result<std::optional<OrderRecord>> find(std::string_view order_id) override {
    auto doc = load_json(*kv_, order_key(order_id));
    if (!doc) return std::move(doc).error();
    if (!*doc) return std::optional<OrderRecord>();
    auto r = decode((*doc)->value);
    if (!r) return std::move(r).error();
    return std::optional<OrderRecord>(std::move(*r));
  }

  catga::Result<std::vector<OrderRecord>> list(std::optional<OrderStatus> status, std::size_t limit) override {
    auto keys = kv_->keys("order.");
    if (!keys) return std::move(keys).error();
    std::vector<OrderRecord> out;
    for (const auto& k : *keys) {
      auto doc = load_json(*kv_, k);
      if (!doc) return std::move(doc).error();
      if (!*doc) continue;
      auto r = decode((*doc)->value);
      if (!r) return std::move(r).error();
      if (!status || r->status == *status) out.push_back(std::move(*r));
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const OrderRecord& a, const OrderRecord& b) { return a.created_ms < b.created_ms; });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

 private:
  std::shared_ptr<catga::KeyValue> kv_;
};

}  // namespace

std::shared_ptr<OrderRepository> kv_order_repository(std::shared_ptr<catga::KeyValue> kv) {
  return std::make_shared<KvOrderRepository>(std::move(kv));
}

}  // namespace order_flow
