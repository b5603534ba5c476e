#pragma once
// NotificationService: tells customers how their order ended, once per order
// and outcome, whatever the transport redelivers.

#include <memory>
#include <string>
#include <vector>

#include "messages.hpp"
#include "service_core.hpp"

namespace order_flow {

// One notification as stored at "notification.<order>.<event>" in the
// "notifications" bucket.
struct Notification {
  std::string order_id;
  std::string event;  // OrderConfirmed or OrderCancelled
  std::string customer;
  std::string text;
  std::string by;  // instance that sent it
  std::int64_t at_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Notification, order_id, event, customer, text, by, at_ms)

// Consumes OrderConfirmed and OrderCancelled in the ordered group
// "notification", keyed by order id (replicas share the orders; one order's
// outcomes are told in the order they happened). Each notification is recorded
// with create-if-absent keyed by order and event: the first delivery creates
// it and "sends" it (a log line here), any later one finds it and does
// nothing, so a customer is told exactly once.
//
//   order_flow::NotificationService notification(env);
//   notification.start().value();
class NotificationService final : public ServiceCore {
 public:
  explicit NotificationService(ServiceEnv env);

  catga::Status start();

  // Records and sends one notification; false when it was sent before.
  catga::Result<bool> notify(const Notification& n, const catga::Context& ctx);
  catga::Result<std::vector<Notification>> notifications();

 private:
  std::shared_ptr<catga::KeyValue> kv_;
  catga::MetricCounter& sent_;
  catga::MetricCounter& duplicates_;
};

}  // namespace order_flow
