#pragma once
// In-process order-flow cluster for the fast tests: every service (two
// replicas of inventory, payment and notification) on one in-memory
// infrastructure, with the order API on a real HTTP port.

#include <httplib.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_api.hpp"
#include "infrastructure.hpp"
#include "inventory_service.hpp"
#include "notification_service.hpp"
#include "order_service.hpp"
#include "payment_service.hpp"

namespace oft {

using namespace order_flow;

// Services log errors only, so test output stays readable (expected
// business failures are logged as warnings).
inline std::shared_ptr<spdlog::logger> quiet_logger() {
  static auto logger = [] {
    auto l = std::make_shared<spdlog::logger>("order-flow-test", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_level(spdlog::level::err);
    return l;
  }();
  return logger;
}

// Saga settings that keep failing tests short; the lease is long enough
// that a live instance is never taken over during a test.
inline OrderServiceOptions fast_order_options() {
  OrderServiceOptions o;
  o.saga.workers = 4;
  o.saga.lease = std::chrono::seconds(5);
  o.saga.recovery_interval = std::chrono::milliseconds(0);
  o.timings.step_timeout = std::chrono::seconds(5);
  o.timings.retry_delay = std::chrono::milliseconds(20);
  o.timings.compensation_delay = std::chrono::milliseconds(20);
  return o;
}

class Cluster {
 public:
  explicit Cluster(int replicas = 2, OrderServiceOptions order_options = fast_order_options())
      : infra_(memory_infrastructure()), metrics_(std::make_shared<catga::Metrics>()) {
    for (int i = 1; i <= replicas; ++i) {
      inventories.push_back(std::make_unique<InventoryService>(env("inventory-" + std::to_string(i))));
      payments.push_back(std::make_unique<PaymentService>(env("payment-" + std::to_string(i))));
      notifications.push_back(std::make_unique<NotificationService>(env("notification-" + std::to_string(i))));
    }
    order = std::make_unique<OrderService>(env("order-1"), order_options);
  }

  ~Cluster() { stop(); }

  // Starts every service (tests may add behaviors to their mediators
  // before), then the HTTP API.
  void start() {
    for (auto& s : inventories) REQUIRE(s->start());
    for (auto& s : payments) REQUIRE(s->start());
    for (auto& s : notifications) REQUIRE(s->start());
    REQUIRE(order->start());
    add_order_routes(http_, *order);
    port_ = http_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    http_thread_ = std::thread([this] { http_.listen_after_bind(); });
    // stop() before the thread runs would be lost (httplib only stops a running server).
    for (int i = 0; i < 5000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(http_.is_running());
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    http_.stop();
    if (http_thread_.joinable()) http_thread_.join();
    if (order) order->stop();
    for (auto& s : notifications) s->close();
    for (auto& s : payments) s->close();
    for (auto& s : inventories) s->close();
    infra_->stop();
  }

  ServiceEnv env(std::string instance) {
    ServiceEnv e;
    e.instance = std::move(instance);
    e.transport = &infra_->transport();
    e.buckets = infra_->buckets();
    e.idempotency = infra_->idempotency();
    e.metrics = metrics_;
    e.logger = quiet_logger();
    return e;
  }

  Infrastructure& infra() { return *infra_; }
  const std::shared_ptr<catga::Metrics>& metrics() { return metrics_; }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(30));
    return c;
  }

  std::vector<std::unique_ptr<InventoryService>> inventories;
  std::vector<std::unique_ptr<PaymentService>> payments;
  std::vector<std::unique_ptr<NotificationService>> notifications;
  std::unique_ptr<OrderService> order;

 private:
  std::unique_ptr<Infrastructure> infra_;
  std::shared_ptr<catga::Metrics> metrics_;
  httplib::Server http_;
  std::thread http_thread_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace oft
