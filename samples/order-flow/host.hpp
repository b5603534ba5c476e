#pragma once
// Host: one process of the sample: the infrastructure it runs on, the
// services of its role, and its HTTP server.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "infrastructure.hpp"
#include "inventory_service.hpp"
#include "notification_service.hpp"
#include "order_service.hpp"
#include "payment_service.hpp"

namespace httplib {
class Server;
}

namespace order_flow {

// What a process runs (from flags and environment, see main.cpp).
struct HostSettings {
  // order | inventory | payment | notification | all (every service in one process)
  std::string role = "all";
  // memory (one process) | nats (JetStream; services may be separate processes)
  std::string transport = "memory";
  NatsSettings nats{};
  std::string http_host = "127.0.0.1";
  int http_port = 8080;  // 0: any free port (see Host::port)
  // Names this replica (logs, metrics, saga ownership); keep it stable across
  // restarts. Empty: "<role>-<random>". Role "all" names its services
  // "<service>-<n>".
  std::string instance_id;
  // Role "all": inventory and payment replicas in the process.
  int replicas = 2;
  // Role order/all on NATS: directory of the order list's SQLite read model.
  // Empty: a temporary directory per instance (rebuilt from the event store
  // at every start).
  std::string data_dir;
  OrderServiceOptions order{};
  PaymentOptions payment{};
};

// Starts the services of settings.role on the chosen infrastructure and
// serves HTTP on a background thread; stop() (or the destructor) shuts
// everything down in order: HTTP, sagas, consumers, transport.
//
//   auto host = order_flow::Host::start({.role = "all", .http_port = 0}).value();
//   std::cout << "listening on " << host->port();
//   ...
//   host->stop();
class Host {
 public:
  static catga::Result<std::unique_ptr<Host>> start(HostSettings settings);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  int port() const noexcept { return port_; }
  void stop();

  OrderService* order() noexcept { return orders_.empty() ? nullptr : orders_.front().get(); }
  const std::vector<std::unique_ptr<InventoryService>>& inventories() const noexcept { return inventories_; }
  const std::vector<std::unique_ptr<PaymentService>>& payments() const noexcept { return payments_; }
  const std::vector<std::unique_ptr<NotificationService>>& notifications() const noexcept { return notifications_; }

  // The /metrics text: the pipeline's metrics plus saga counts and consumer lag.
  std::string metrics_text();

 private:
  explicit Host(HostSettings settings);
  catga::Status start_services();
  catga::Status start_http();
  ServiceEnv env(const std::string& instance);

  HostSettings settings_;
  std::unique_ptr<Infrastructure> infra_;
  std::shared_ptr<catga::Metrics> metrics_ = std::make_shared<catga::Metrics>();
  std::vector<std::unique_ptr<OrderService>> orders_;
  std::vector<std::unique_ptr<InventoryService>> inventories_;
  std::vector<std::unique_ptr<PaymentService>> payments_;
  std::vector<std::unique_ptr<NotificationService>> notifications_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int port_ = 0;
  bool stopped_ = false;
};

// True for the roles Host runs.
bool is_service_role(std::string_view role) noexcept;

}  // namespace order_flow
