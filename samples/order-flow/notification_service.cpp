#include "notification_service.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/logger.h>
#include <catga/saga/record.hpp>

#include "kv_json.hpp"

namespace order_flow {
namespace {

constexpr std::string_view kBucket = "notifications";

}  // namespace

NotificationService::NotificationService(ServiceEnv env)
    : ServiceCore("notification", std::move(env)),
      sent_(metrics()->counter("order_flow_notifications_sent_total", "Notifications sent by this instance",
                               {{"instance", instance()}})),
      duplicates_(metrics()->counter("order_flow_notification_duplicates_total",
                                     "Deliveries of an order outcome that was notified before",
                                     {{"instance", instance()}})) {
  // An ordered group keyed by order id: the customer hears of one order's
  // outcomes in the order they happened.
  consume_ordered<OrderConfirmed, OrderCancelled>(
      "notification", 2,
      [this](const OrderConfirmed& e, catga::Context& ctx) -> catga::Status {
        auto r = notify({e.order_id, "OrderConfirmed", e.customer,
                         fmt::format("Your order {} is confirmed ({:.2f}).", e.order_id, e.amount), instance(),
                         catga::unix_ms_now()},
                        ctx);
        if (!r) return std::move(r).error();
        return {};
      },
      [this](const OrderCancelled& e, catga::Context& ctx) -> catga::Status {
        auto r = notify({e.order_id, "OrderCancelled", e.customer,
                         fmt::format("Your order {} was cancelled: {}", e.order_id, e.reason), instance(),
                         catga::unix_ms_now()},
                        ctx);
        if (!r) return std::move(r).error();
        return {};
      });
}

catga::Status NotificationService::start() {
  auto kv = bucket(kBucket);
  if (!kv) return std::move(kv).error();
  kv_ = std::move(*kv);
  return open();
}

catga::Result<bool> NotificationService::notify(const Notification& n, const catga::Context& ctx) {
  // [snippet:order-flow-notify-once]
  auto r = create_json(*kv_, "notification." + key_token(n.order_id) + "." + n.event, nlohmann::json(n));
  if (!r) return std::move(r).error();
  if (!r->created) {
    duplicates_.inc();
    log().info("already notified order={} event={} {}", n.order_id, n.event, log_ids(ctx));
    return false;
  }
  sent_.inc();
  // [/snippet:order-flow-notify-once]
  log().info("notified customer={} order={} event={} text=\"{}\" {}", n.customer, n.order_id, n.event, n.text,
             log_ids(ctx));
  return true;
}

catga::Result<std::vector<Notification>> NotificationService::notifications() {
  auto keys = kv_->keys("notification.");
  if (!keys) return std::move(keys).error();
  std::vector<Notification> out;
  for (const auto& k : *keys) {
    auto doc = load_json(*kv_, k);
    if (!doc) return std::move(doc).error();
    if (*doc) out.push_back((*doc)->value.get<Notification>());
  }
  return out;
}

}  // namespace order_flow
